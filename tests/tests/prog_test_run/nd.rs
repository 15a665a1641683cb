//! ND suppression (encap, TC): a solicitation for a known binding is
//! answered with exactly the advertisement RFC 4861 asks for; probes,
//! solicitations from the owner itself, unknown targets and messages not
//! from the link go on as they are (flooded); bindings are learned from
//! solicitations and advertisements.

use vtep_common::{
    maps::PORT_F_LEARN,
    nd::{NA_LEN, emit_neighbor_advert},
};

use super::*;

const T6_C: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0x100, 0, 0, 0, 3);

/// A Neighbor Solicitation from `src` (MAC `src_mac`) for `target`, to its
/// solicited-node multicast address, with the source link-layer address
/// option unless `src` is unspecified (RFC 4861 §4.3), hop limit `hops`.
fn ns(src_mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr, hops: u8) -> Vec<u8> {
    let t = target.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&t);
    if !src.is_unspecified() {
        icmp.extend_from_slice(&[1, 1]);
        icmp.extend_from_slice(&src_mac);
    }
    let mut ip = ipv6(src, group, 58, &icmp);
    ip[7] = hops;
    eth(
        [0x33, 0x33, 0xff, t[13], t[14], t[15]],
        src_mac,
        0x86dd,
        &ip,
    )
}

/// An unsolicited Neighbor Advertisement of `target` from `src_mac`, to
/// all nodes.
fn na(src_mac: [u8; 6], target: Ipv6Addr) -> Vec<u8> {
    let mut icmp = vec![136, 0, 0, 0, 0x20, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[2, 1]);
    icmp.extend_from_slice(&src_mac);
    let all = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut ip = ipv6(target, all, 58, &icmp);
    ip[7] = 255;
    eth([0x33, 0x33, 0, 0, 0, 1], src_mac, 0x86dd, &ip)
}

/// The advertisement answering `to` (at `to_mac`) for `target`, owned by
/// `owner`, as RFC 4861 §7.2.4 has it (built by the shared builder, whose
/// bytes `vtep-common`'s own test checks field by field).
fn advert(to_mac: [u8; 6], to: Ipv6Addr, target: Ipv6Addr, owner: [u8; 6]) -> Vec<u8> {
    let mut words = [0u16; NA_LEN / 2];
    let (t, d) = (Addr::from(target), Addr::from(to));
    emit_neighbor_advert(&t, &d, owner, &mut |i, w| words[i] = w);
    let body: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    eth(to_mac, owner, 0x86dd, &body)
}

#[test]
fn nd_table() {
    let (ul0, ul0_mac) = private_netns();
    let (p1, p2) = (ifindex("p1"), ifindex("p2"));
    let mut l = Loaded::new(config(ul0));
    l.vni(100, &[REMOTE], &[p1, p2]);
    l.port(p1, 100, PORT_F_LEARN);
    l.port(p2, 100, 0);
    l.neigh(100, IpAddr::V6(T6_B), MAC_SKB_PORT);
    let peer_mac = [2, 0xee, 0, 0, 0, 2];
    let flooded = |f: &[u8]| Some(encapsulated(f, ul0_mac, peer_mac, REMOTE, 100));
    let flood = Bump::Event(Counter::EncapFlood);
    let unknown = ns(MAC_A, T6_A, T6_C, 255);
    let dad = ns(MAC_A, Ipv6Addr::UNSPECIFIED, T6_B, 255);
    let from_owner = ns(MAC_SKB_PORT, T6_B, T6_B, 255);
    let off_link = ns(MAC_A, T6_A, T6_B, 64);
    let cases = vec![
        Case {
            what: "solicitation for a known binding: answered by the VTEP",
            input: ns(MAC_A, T6_A, T6_B, 255),
            action: TC_ACT_REDIRECT,
            output: Some(advert(MAC_A, T6_A, T6_B, MAC_SKB_PORT)),
            bump: Bump::Event(Counter::NdSuppressed),
        },
        Case {
            what: "solicitation for an unknown target: flooded as it is",
            input: unknown.clone(),
            action: TC_ACT_SHOT,
            output: flooded(&unknown),
            bump: flood,
        },
        Case {
            what: "duplicate address detection probe: never answered (RFC 4862 §5.4.3)",
            input: dad.clone(),
            action: TC_ACT_SHOT,
            output: flooded(&dad),
            bump: flood,
        },
        Case {
            what: "solicitation from the owner itself: not told its address is taken",
            input: from_owner.clone(),
            action: TC_ACT_SHOT,
            output: flooded(&from_owner),
            bump: flood,
        },
        Case {
            what: "hop limit below 255: not from the link (RFC 4861 §7.1.1)",
            input: off_link.clone(),
            action: TC_ACT_SHOT,
            output: flooded(&off_link),
            bump: flood,
        },
    ];
    check(&l, cases, run_tc(&l, p1));
    // p1 learns: the solicitations taught T6_A (never the probe's `::`),
    // an advertisement teaches its target.
    assert_eq!(l.bound(100, IpAddr::V6(T6_A)), Some(MAC_A));
    assert_eq!(l.bound(100, IpAddr::V6(Ipv6Addr::UNSPECIFIED)), None);
    assert_eq!(
        l.bound(100, IpAddr::V6(T6_B)),
        Some(MAC_SKB_PORT),
        "a configured binding is never replaced"
    );
    let mut out = vec![0u8; 512];
    run_tc(&l, p1)(&na(MAC_XDP_PORT, T6_C), &mut out);
    assert_eq!(l.bound(100, IpAddr::V6(T6_C)), Some(MAC_XDP_PORT));
    // p2 does not learn.
    run_tc(&l, p2)(&na(MAC_OTHER_VNI_PORT, T6_A), &mut out);
    assert_eq!(l.bound(100, IpAddr::V6(T6_A)), Some(MAC_A));
}
