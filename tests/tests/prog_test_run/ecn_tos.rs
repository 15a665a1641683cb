//! ECN and DSCP across the tunnel (RFC 6040 normal mode): the outer
//! dsfield encap writes under each VNI's TOS setting, and what an outer
//! CE does to the inner packet on decap.

use vtep_common::{
    consts::ETH_HLEN,
    ecn::{CE, ECT_0, ECT_1, TOS_INHERIT},
    maps::with_port_tos,
};

use super::*;

/// TOS 0xba: DSCP 46 (EF), ECT(0).
const EF_ECT0: u8 = 0xba;

#[test]
fn encap_writes_the_vni_dscp_and_the_inner_ecn() {
    let (ul0, ul0_mac) = private_netns();
    let (p1, p2) = (ifindex("p1"), ifindex("p2"));
    let mut l = Loaded::new(config(ul0));
    l.vni(100, &[], &[p1]);
    l.vni(200, &[], &[p2]);
    l.port(p1, 100, with_port_tos(0, TOS_INHERIT));
    l.port(p2, 200, with_port_tos(0, 0x20));
    l.fdb(100, MAC_BEHIND_REMOTE, Some(REMOTE), 0);
    l.fdb(200, MAC_BEHIND_REMOTE, Some(REMOTE), 0);
    let peer_mac = [2, 0xee, 0, 0, 0, 2];
    // (port, VNI, its setting, inner dsfield, outer dsfield)
    let cases = [
        (p1, 100, TOS_INHERIT, EF_ECT0, EF_ECT0),
        (p1, 100, TOS_INHERIT, 0xb8 | CE, 0xb8 | ECT_0),
        (p1, 100, TOS_INHERIT, 0x48 | ECT_1, 0x48 | ECT_1),
        (p2, 200, 0x20, EF_ECT0, 0x20 | ECT_0),
        (p2, 200, 0x20, 0, 0x20),
        (p2, 200, 0x20, CE, 0x20 | ECT_0),
    ];
    for (port, vni, setting, inner_ds, want) in cases {
        for v6 in [false, true] {
            let mut inner = if v6 {
                sized_frame6(MAC_BEHIND_REMOTE, 120)
            } else {
                inner_frame(MAC_BEHIND_REMOTE)
            };
            set_ds(&mut inner, ETH_HLEN, inner_ds);
            let mut out = vec![0u8; inner.len() + 256];
            let (action, len) = run_tc(&l, port)(&inner, &mut out);
            assert_eq!(action, TC_ACT_REDIRECT);
            assert_eq!(
                out[15], want,
                "inner {inner_ds:#04x} in VNI {vni} (IPv6 inner {v6})"
            );
            let expected = encapsulated_tos(&inner, (ul0_mac, peer_mac), REMOTE, (vni, setting));
            assert_eq!(&out[..len], &expected[..]);
        }
    }
    // A frame that is not IP: the fixed DSCP, Not-ECT; inherit gives 0.
    for (port, want) in [(p1, 0), (p2, 0x20)] {
        let arp = arp_frame(MAC_BEHIND_REMOTE);
        let mut out = vec![0u8; arp.len() + 256];
        run_tc(&l, port)(&arp, &mut out);
        assert_eq!(out[15], want);
    }
}

#[test]
fn decap_passes_an_outer_ce_on_or_drops() {
    let l = decap_loaded();
    let inner = |ds: u8, v6: bool| {
        let mut f = if v6 {
            sized_frame6(MAC_XDP_PORT, 120)
        } else {
            inner_frame(MAC_XDP_PORT)
        };
        set_ds(&mut f, ETH_HLEN, ds);
        f
    };
    let outer = |inner: &[u8], ds: u8| {
        let mut p = vxlan(REMOTE, VXLAN_PORT, I, 100, inner);
        set_ds(&mut p, ETH_HLEN, ds);
        p
    };
    for v6 in [false, true] {
        let marked = {
            let mut f = inner(EF_ECT0, v6);
            set_ds(&mut f, ETH_HLEN, 0xb8 | CE);
            f
        };
        let cases = vec![
            Case {
                what: "outer CE over ECT(0): the inner packet marked CE",
                input: outer(&inner(EF_ECT0, v6), CE),
                action: XDP_REDIRECT,
                output: Some(marked.clone()),
                bump: Bump::Event(Counter::EcnCeMarked),
            },
            Case {
                what: "outer CE over CE: unchanged",
                input: outer(&marked, CE),
                action: XDP_REDIRECT,
                output: Some(marked.clone()),
                bump: Bump::Event(Counter::DecapXdp),
            },
            Case {
                what: "outer ECT(0) over ECT(1): unchanged (only CE is passed on)",
                input: outer(&inner(0x48 | ECT_1, v6), ECT_0),
                action: XDP_REDIRECT,
                output: Some(inner(0x48 | ECT_1, v6)),
                bump: Bump::Event(Counter::DecapXdp),
            },
            Case {
                what: "outer CE over Not-ECT: dropped (RFC 6040 §4.2)",
                input: outer(&inner(0xb8, v6), CE),
                action: XDP_DROP,
                output: None,
                bump: Bump::Drop(DropReason::CeNotEct),
            },
            Case {
                what: "outer CE over a frame that is not IP: unchanged",
                input: outer(&arp_frame(MAC_XDP_PORT), CE),
                action: XDP_REDIRECT,
                output: Some(arp_frame(MAC_XDP_PORT)),
                bump: Bump::Event(Counter::DecapXdp),
            },
        ];
        check(&l, cases, run_xdp(&l));
    }
    // Through TC (an skb port): marked before it goes up.
    let mut to_skb = inner_frame(MAC_SKB_PORT);
    set_ds(&mut to_skb, ETH_HLEN, ECT_0);
    let mut marked = to_skb.clone();
    set_ds(&mut marked, ETH_HLEN, CE);
    let cases = vec![Case {
        what: "outer CE over ECT(0), skb port: marked, then up",
        input: outer(&to_skb, CE),
        action: XDP_PASS,
        output: Some([meta(META_ACTION_DELIVER, 100, P_SKB), marked].concat()),
        bump: Bump::Event(Counter::EcnCeMarked),
    }];
    check(&l, cases, run_xdp(&l));
}
