//! Encap (TC) tables, and tenants never crossed on random frames.

use super::*;

#[test]
fn encap_table() {
    let (ul0, ul0_mac) = private_netns();
    let (p1, p2, p3, p4) = (ifindex("p1"), ifindex("p2"), ifindex("p3"), ifindex("p4"));
    let mut l = Loaded::new(config(ul0));
    l.vni(100, &[], &[p1, p2]);
    l.vni(200, &[], &[p3]);
    l.port(p1, 100, 0);
    l.port(p2, 100, 0);
    l.port(p3, 200, 0);
    l.fdb(100, MAC_BEHIND_REMOTE, Some(REMOTE), 0);
    l.fdb(100, MAC_SKB_PORT, None, p2);
    l.fdb(100, MAC_XDP_PORT, None, p1);
    l.fdb(100, MAC_OTHER_VNI_PORT, None, p3);
    l.fdb(100, MAC_UNKNOWN, Some(REMOTE_UNRESOLVED), 0);
    l.fdb(100, MAC_A, Some(REMOTE_UNROUTED), 0);

    let peer_mac = [2, 0xee, 0, 0, 0, 2];
    let ip_to_remote = inner_frame(MAC_BEHIND_REMOTE);
    let arp_to_remote = arp_frame(MAC_BEHIND_REMOTE);
    let unresolved_ip = inner_frame(MAC_UNKNOWN);
    let drop = Bump::Drop;
    let cases = vec![
        Case {
            what: "IPv4 unicast to a remote VTEP: encapsulated",
            input: ip_to_remote.clone(),
            action: TC_ACT_REDIRECT,
            output: Some(encapsulated(&ip_to_remote, ul0_mac, peer_mac, REMOTE, 100)),
            bump: Bump::Event(Counter::EncapUnicast),
        },
        Case {
            what: "ARP unicast to a remote VTEP: encapsulated",
            input: arp_to_remote.clone(),
            action: TC_ACT_REDIRECT,
            output: Some(encapsulated(&arp_to_remote, ul0_mac, peer_mac, REMOTE, 100)),
            bump: Bump::Event(Counter::EncapUnicast),
        },
        Case {
            what: "same VNI, other local port: switched as it is",
            input: inner_frame(MAC_SKB_PORT),
            action: TC_ACT_REDIRECT,
            output: None,
            bump: Bump::Event(Counter::LocalSwitch),
        },
        Case {
            what: "frame tagged with a VLAN the access port has no binding for",
            input: vlan_frame(MAC_BEHIND_REMOTE),
            action: TC_ACT_SHOT,
            output: Some(inner_frame(MAC_BEHIND_REMOTE)),
            bump: drop(DropReason::UnboundVlan),
        },
        Case {
            what: "frame from a group source MAC",
            input: from_group(MAC_BEHIND_REMOTE),
            action: TC_ACT_SHOT,
            output: None,
            bump: drop(DropReason::GroupSourceMac),
        },
        Case {
            what: "destination is the ingress port",
            input: inner_frame(MAC_XDP_PORT),
            action: TC_ACT_SHOT,
            output: None,
            bump: drop(DropReason::Hairpin),
        },
        Case {
            what: "FDB names a port of another VNI",
            input: inner_frame(MAC_OTHER_VNI_PORT),
            action: TC_ACT_SHOT,
            output: None,
            bump: drop(DropReason::VniMismatch),
        },
        Case {
            what: "IP to a remote whose next hop is unresolved: waits in redirect_neigh",
            input: unresolved_ip.clone(),
            action: TC_ACT_REDIRECT,
            output: Some(encapsulated(
                &unresolved_ip,
                [0; 6],
                [0; 6],
                REMOTE_UNRESOLVED,
                100,
            )),
            bump: Bump::Event(Counter::NeighResolve),
        },
        Case {
            what: "ARP to a remote whose next hop is unresolved",
            input: arp_frame(MAC_UNKNOWN),
            action: TC_ACT_SHOT,
            output: None,
            bump: drop(DropReason::NoNeighbour),
        },
        Case {
            what: "remote VTEP without a route",
            input: inner_frame(MAC_A),
            action: TC_ACT_SHOT,
            output: None,
            bump: drop(DropReason::NoRoute),
        },
    ];
    check(&l, cases, run_tc(&l, p1));
    assert_eq!(l.vni_stats(100).tx_packets, 3);
    let (resolved, unresolved) = (l.peer_stats(REMOTE), l.peer_stats(REMOTE_UNRESOLVED));
    assert_eq!(
        resolved.tx_packets + unresolved.tx_packets,
        3,
        "each frame sent is counted against the remote it went to"
    );
    assert_eq!(
        resolved.tx_bytes + unresolved.tx_bytes,
        l.vni_stats(100).tx_bytes
    );

    let cases = vec![Case {
        what: "BUM in a VNI with no other port and no remote",
        input: arp_frame(BROADCAST),
        action: TC_ACT_SHOT,
        output: None,
        bump: drop(DropReason::NoFloodTarget),
    }];
    check(&l, cases, run_tc(&l, p3));
    let cases = vec![Case {
        what: "frame from an unbound port",
        input: inner_frame(MAC_BEHIND_REMOTE),
        action: TC_ACT_SHOT,
        output: None,
        bump: drop(DropReason::UnboundVlan),
    }];
    check(&l, cases, run_tc(&l, p4));
}

#[test]
fn encap_never_crosses_tenants_on_random_frames() {
    let (ul0, _) = private_netns();
    let (p1, p2, p3) = (ifindex("p1"), ifindex("p2"), ifindex("p3"));
    let mut l = Loaded::new(config(ul0));
    l.vni(100, &[REMOTE], &[p1, p2]);
    l.vni(200, &[REMOTE], &[p3]);
    l.port(p1, 100, 0);
    l.port(p2, 100, 0);
    l.port(p3, 200, 0);
    // The same MAC in both tenants, behind the same remote VTEP.
    l.fdb(100, MAC_BEHIND_REMOTE, Some(REMOTE), 0);
    l.fdb(200, MAC_BEHIND_REMOTE, Some(REMOTE), 0);
    l.fdb(100, MAC_SKB_PORT, None, p2);
    // An entry of VNI 100 that names VNI 200's port: must never be used.
    l.fdb(100, MAC_OTHER_VNI_PORT, None, p3);

    let mut rng = Rng(0x7e4a_4e71_5014_u64);
    let mut encapsulated = [0u32; 2];
    for i in 0..20_000u32 {
        let (from, vni) = if i % 2 == 0 { (p1, 100) } else { (p3, 200) };
        let dst = match rng.below(5) {
            0 => MAC_BEHIND_REMOTE,
            1 => MAC_SKB_PORT,
            2 => MAC_OTHER_VNI_PORT,
            3 => BROADCAST,
            _ => [2, rng.next_u64() as u8, 0, 0, 0, rng.next_u64() as u8],
        };
        let mut frame = match rng.below(3) {
            0 => inner_frame(dst),
            1 => arp_frame(dst),
            _ => vlan_frame(dst),
        };
        if rng.below(4) == 0 {
            let at = 12 + rng.below(frame.len() as u64 - 12) as usize;
            frame[at] = rng.next_u64() as u8;
        }
        let mut out = vec![0u8; frame.len() + 256];
        let (action, len) = run_tc(&l, from)(&frame, &mut out);
        let got = &out[..len];
        // Whatever left encapsulated carries the ingress port's VNI.
        if len == frame.len() + 50 && got[36..38] == VXLAN_PORT.to_be_bytes() {
            let carried = u32::from_be_bytes([0, got[46], got[47], got[48]]);
            assert_eq!(
                carried, vni,
                "frame {i} from VNI {vni} left in VNI {carried}"
            );
            encapsulated[(i % 2) as usize] += 1;
        }
        if vni == 100 && dst == MAC_OTHER_VNI_PORT && frame[12..14] != [0x81, 0x00] {
            assert_eq!(
                action, TC_ACT_SHOT,
                "frame {i}: an entry pointing at VNI 200's port was used"
            );
        }
    }
    assert!(encapsulated.iter().all(|n| *n > 1000), "{encapsulated:?}");
}
