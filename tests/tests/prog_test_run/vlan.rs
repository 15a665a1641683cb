//! Trunk bindings (802.1Q VLANs of a port bound to VNIs): tagged input to
//! the encap program (the tag inline, as BPF_PROG_TEST_RUN builds the
//! skb), tagged output from decap (inline from XDP, in the metadata for
//! TC to push).

use super::*;

/// VLAN 10 of p1 in VNI 100, VLAN 20 of p1 in VNI 200, p2 untagged in
/// VNI 100, MAC_TRUNK behind VLAN 10 of p1.
#[test]
fn encap_from_a_trunk() {
    let (ul0, ul0_mac) = private_netns();
    let (p1, p2) = (ifindex("p1"), ifindex("p2"));
    let mut l = Loaded::new(config(ul0));
    let (v10, v20) = (PortKey::new(p1, 10), PortKey::new(p1, 20));
    l.vni_bindings(100, &[], &[v10, PortKey::new(p2, 0)]);
    l.vni_bindings(200, &[], &[v20]);
    l.binding(v10, 100, 0);
    l.binding(v20, 200, 0);
    l.port(p2, 100, 0);
    l.fdb(100, MAC_BEHIND_REMOTE, Some(REMOTE), 0);
    l.fdb(200, MAC_BEHIND_REMOTE, Some(REMOTE), 0);
    l.fdb(100, MAC_SKB_PORT, None, p2);
    l.fdb_at(100, MAC_TRUNK, None, v10, FDB_F_STATIC);

    let peer_mac = [2, 0xee, 0, 0, 0, 2];
    let to_remote = inner_frame(MAC_BEHIND_REMOTE);
    let encap = |vni| Some(encapsulated(&to_remote, ul0_mac, peer_mac, REMOTE, vni));
    let drop = Bump::Drop;
    let cases = vec![
        Case {
            what: "VLAN 10 to a remote VTEP: VNI 100, the tag not carried (RFC 7348 §6.1)",
            input: tagged(&to_remote, 0x8100, 10),
            action: TC_ACT_REDIRECT,
            output: encap(100),
            bump: Bump::Event(Counter::EncapUnicast),
        },
        Case {
            what: "VLAN 20 (priority bits set) to the same MAC: VNI 200",
            input: tagged(&to_remote, 0x8100, 0xa000 | 20),
            action: TC_ACT_REDIRECT,
            output: encap(200),
            bump: Bump::Event(Counter::EncapUnicast),
        },
        Case {
            what: "VLAN 10 to an access port of its VNI: switched, untagged",
            input: tagged(&inner_frame(MAC_SKB_PORT), 0x8100, 10),
            action: TC_ACT_REDIRECT,
            output: Some(inner_frame(MAC_SKB_PORT)),
            bump: Bump::Event(Counter::LocalSwitch),
        },
        Case {
            what: "a VLAN without a binding",
            input: tagged(&to_remote, 0x8100, 30),
            action: TC_ACT_SHOT,
            output: Some(to_remote.clone()),
            bump: drop(DropReason::UnboundVlan),
        },
        Case {
            what: "untagged, on a trunk without an untagged binding",
            input: to_remote.clone(),
            action: TC_ACT_SHOT,
            output: None,
            bump: drop(DropReason::UnboundVlan),
        },
        Case {
            what: "priority tagged (VID 0): the untagged binding, which p1 has not",
            input: tagged(&to_remote, 0x8100, 0),
            action: TC_ACT_SHOT,
            output: Some(to_remote.clone()),
            bump: drop(DropReason::UnboundVlan),
        },
        Case {
            what: "an 802.1ad (QinQ) tag: refused, untouched",
            input: tagged(&to_remote, 0x88a8, 10),
            action: TC_ACT_SHOT,
            output: None,
            bump: drop(DropReason::Qinq),
        },
        Case {
            what: "two 802.1Q tags: the inner one is RFC 7348 §6.1's",
            input: tagged(&tagged(&to_remote, 0x8100, 20), 0x8100, 10),
            action: TC_ACT_SHOT,
            output: Some(to_remote.clone()),
            bump: drop(DropReason::InnerVlan),
        },
        Case {
            what: "VLAN 10 to a MAC behind VLAN 10 of the same port: hairpin",
            input: tagged(&inner_frame(MAC_TRUNK), 0x8100, 10),
            action: TC_ACT_SHOT,
            output: Some(inner_frame(MAC_TRUNK)),
            bump: drop(DropReason::Hairpin),
        },
    ];
    check(&l, cases, run_tc(&l, p1));
    // From VLAN 10: the frames its binding took (encapsulated, switched,
    // hairpin; not the QinQ, unbound or double-tagged ones); to p2: the
    // one switched there.
    let from10 = l.binding_stats(v10);
    assert_eq!(from10.tx_packets, 3, "{from10:?}");
    // (The three frames are the same size untagged.)
    assert_eq!(from10.tx_bytes, 3 * to_remote.len() as u64, "{from10:?}");
    assert_eq!(l.binding_stats(PortKey::new(p2, 0)).rx_packets, 1);
    let cases = vec![
        Case {
            what: "priority tagged on an access port: its untagged binding",
            input: tagged(&to_remote, 0x8100, 0),
            action: TC_ACT_REDIRECT,
            output: encap(100),
            bump: Bump::Event(Counter::EncapUnicast),
        },
        Case {
            what: "access port to a MAC behind a trunk's VLAN: switched (the tag pushed)",
            input: inner_frame(MAC_TRUNK),
            action: TC_ACT_REDIRECT,
            output: None,
            bump: Bump::Event(Counter::LocalSwitch),
        },
    ];
    check(&l, cases, run_tc(&l, p2));
}

/// Decap towards VLAN 10 of a trunk: from XDP the tag is written into the
/// frame; for TC it travels in the metadata.
#[test]
fn decap_to_a_trunk() {
    let mut l = decap_loaded();
    const P_TRUNK: u32 = 1004;
    let (xdp_trunk, skb_trunk) = (PortKey::new(P_TRUNK, 10), PortKey::new(P_TRUNK, 11));
    l.vni_bindings(
        100,
        &[REMOTE],
        &[
            PortKey::new(P_SKB, 0),
            PortKey::new(P_XDP, 0),
            xdp_trunk,
            skb_trunk,
        ],
    );
    l.binding(xdp_trunk, 100, PORT_F_XDP);
    l.binding(skb_trunk, 100, 0);
    l.fdb_at(100, MAC_TRUNK, None, xdp_trunk, FDB_F_STATIC | FDB_F_XDP);
    l.fdb_at(100, MAC_PEER_PORT, None, skb_trunk, FDB_F_STATIC);
    let to_xdp = inner_frame(MAC_TRUNK);
    let to_skb = inner_frame(MAC_PEER_PORT);
    let cases = vec![
        Case {
            what: "to VLAN 10 from XDP: stripped, tagged 10 behind the MACs",
            input: vxlan(REMOTE, VXLAN_PORT, I, 100, &to_xdp),
            action: XDP_REDIRECT,
            output: Some(tagged(&to_xdp, 0x8100, 10)),
            bump: Bump::Event(Counter::DecapXdp),
        },
        Case {
            what: "to VLAN 11 from TC: stripped, the VID in the metadata",
            input: vxlan(REMOTE, VXLAN_PORT, I, 100, &to_skb),
            action: XDP_PASS,
            output: Some(
                [
                    tagged_meta(META_ACTION_DELIVER, 100, P_TRUNK, 11),
                    to_skb.clone(),
                ]
                .concat(),
            ),
            bump: Bump::Event(Counter::DecapSkb),
        },
    ];
    check(&l, cases, run_xdp(&l));
    for (key, frame) in [(xdp_trunk, &to_xdp), (skb_trunk, &to_skb)] {
        let s = l.binding_stats(key);
        assert_eq!((s.rx_packets, s.rx_bytes), (1, frame.len() as u64), "{s:?}");
    }
}
