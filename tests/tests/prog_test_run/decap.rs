//! Decap (XDP) tables: every verdict and counter, frames cut short at
//! every length (over both underlay families), inner frames too big for
//! their port; decap in TC (no XDP): skbs stripped, GSO packets refused,
//! and behind XDP nothing done to frames XDP left undecided.

use super::*;

#[test]
fn decap_table() {
    let l = decap_loaded();
    let to_skb = inner_frame(MAC_SKB_PORT);
    let to_xdp = inner_frame(MAC_XDP_PORT);
    let bcast = arp_frame(BROADCAST);
    let unknown = inner_frame(MAC_UNKNOWN);
    let with_meta = |m: Vec<u8>, inner: &[u8]| Some([m, inner.to_vec()].concat());
    let pass = Bump::Event(Counter::PassToKernel);
    let drop = Bump::Drop;
    // A good packet for the skb port with bytes overwritten (offsets into
    // the frame: outer IPv4 at 14, UDP at 34, VXLAN at 42).
    let damaged = |at: &[(usize, u8)]| {
        let mut p = vxlan(REMOTE, VXLAN_PORT, I, 100, &to_skb);
        for (i, b) in at {
            p[*i] = *b;
        }
        p
    };
    let mut fragment = vxlan(REMOTE, VXLAN_PORT, I, 100, &to_skb);
    fragment[20] = 0x20; // MF set, DF clear
    let options = {
        let outer_ip = ipv4(
            v4_addr(REMOTE),
            v4_addr(LOCAL),
            17,
            0,
            &[1, 1, 1, 0], // NOP, NOP, NOP, EOL
            &udp(
                50000,
                VXLAN_PORT,
                0,
                &[I.to_vec(), vec![0, 0, 100, 0], to_skb.clone()].concat(),
            ),
        );
        eth(
            [2, 0xee, 0, 0, 0, 1],
            [2, 0xee, 0, 0, 0, 2],
            0x0800,
            &outer_ip,
        )
    };
    let cases = vec![
        Case {
            what: "ARP on the underlay passes untouched",
            input: arp_frame(BROADCAST),
            action: XDP_PASS,
            output: None,
            bump: pass,
        },
        Case {
            what: "VXLAN for another address passes",
            input: {
                let mut p = vxlan(REMOTE, VXLAN_PORT, I, 100, &to_skb);
                p[33] = 9;
                p
            },
            action: XDP_PASS,
            output: None,
            bump: pass,
        },
        Case {
            what: "UDP to us on another port passes",
            input: vxlan(REMOTE, 4790, I, 100, &to_skb),
            action: XDP_PASS,
            output: None,
            bump: pass,
        },
        Case {
            what: "known unicast, skb port: stripped, DELIVER in the metadata",
            input: vxlan(REMOTE, VXLAN_PORT, I, 100, &to_skb),
            action: XDP_PASS,
            output: with_meta(meta(META_ACTION_DELIVER, 100, P_SKB), &to_skb),
            bump: Bump::Event(Counter::DecapSkb),
        },
        Case {
            what: "known unicast, XDP port: stripped and redirected",
            input: vxlan(REMOTE, VXLAN_PORT, I, 100, &to_xdp),
            action: XDP_REDIRECT,
            output: Some(to_xdp.clone()),
            bump: Bump::Event(Counter::DecapXdp),
        },
        Case {
            what: "broadcast: stripped, FLOOD in the metadata",
            input: vxlan(REMOTE, VXLAN_PORT, I, 100, &bcast),
            action: XDP_PASS,
            output: with_meta(meta(META_ACTION_FLOOD, 100, 0), &bcast),
            bump: Bump::Event(Counter::DecapFlood),
        },
        Case {
            what: "unknown unicast: flooded to local ports",
            input: vxlan(REMOTE, VXLAN_PORT, I, 100, &unknown),
            action: XDP_PASS,
            output: with_meta(meta(META_ACTION_FLOOD, 100, 0), &unknown),
            bump: Bump::Event(Counter::DecapFlood),
        },
        Case {
            what: "reserved bits set: ignored on receipt (RFC 7348 §5)",
            input: vxlan(REMOTE, VXLAN_PORT, [0xf8, 0xff, 0xff, 0xff], 100, &to_skb),
            action: XDP_PASS,
            output: with_meta(meta(META_ACTION_DELIVER, 100, P_SKB), &to_skb),
            bump: Bump::Event(Counter::DecapSkb),
        },
        Case {
            what: "outer IPv4 options are skipped",
            input: options.clone(),
            action: XDP_PASS,
            output: with_meta(meta(META_ACTION_DELIVER, 100, P_SKB), &to_skb),
            bump: Bump::Event(Counter::DecapSkb),
        },
        Case {
            what: "outer IPv4 options count in the header checksum",
            input: {
                let mut p = options.clone();
                p[14 + 20] = 0; // NOP → EOL, the checksum as it was
                p
            },
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::Malformed),
        },
        Case {
            what: "inner VLAN tag (RFC 7348 §6.1)",
            input: vxlan(REMOTE, VXLAN_PORT, I, 100, &vlan_frame(MAC_SKB_PORT)),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::InnerVlan),
        },
        Case {
            what: "inner frame from a group source MAC",
            input: vxlan(REMOTE, VXLAN_PORT, I, 100, &from_group(MAC_SKB_PORT)),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::GroupSourceMac),
        },
        Case {
            what: "outer TTL 0",
            input: {
                let mut p = vxlan(REMOTE, VXLAN_PORT, I, 100, &to_skb);
                p[22] = 0;
                p
            },
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::Malformed),
        },
        Case {
            what: "I flag clear",
            input: vxlan(REMOTE, VXLAN_PORT, [0, 0, 0, 0], 100, &to_skb),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::NoIFlag),
        },
        Case {
            what: "unknown VNI",
            input: vxlan(REMOTE, VXLAN_PORT, I, 4242, &to_skb),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::UnknownVni),
        },
        Case {
            what: "known VNI from a VTEP not in its list",
            input: vxlan(STRANGER, VXLAN_PORT, I, 100, &to_skb),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::UnknownRemote),
        },
        Case {
            what: "UDP length longer than the packet",
            input: {
                let mut p = vxlan(REMOTE, VXLAN_PORT, I, 100, &to_skb);
                p[38] = 0x7f;
                p
            },
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::Malformed),
        },
        Case {
            what: "first fragment of a VXLAN packet",
            input: fragment,
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::Malformed),
        },
        Case {
            what: "destination behind another remote VTEP (split horizon)",
            input: vxlan(REMOTE, VXLAN_PORT, I, 100, &inner_frame(MAC_BEHIND_REMOTE)),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::RemoteToRemote),
        },
        Case {
            what: "BUM in a VNI without local ports",
            input: vxlan(REMOTE, VXLAN_PORT, I, 300, &bcast),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::NoFloodTarget),
        },
        Case {
            what: "IHL below 5: not a valid IPv4 header, left to the kernel",
            input: damaged(&[(14, 0x44)]),
            action: XDP_PASS,
            output: None,
            bump: pass,
        },
        Case {
            what: "later fragment: no UDP header, left to the kernel",
            input: damaged(&[(20, 0x00), (21, 0x10)]),
            action: XDP_PASS,
            output: None,
            bump: pass,
        },
        Case {
            what: "bad outer IPv4 header checksum (RFC 1122 §3.2.1.2)",
            input: {
                let mut p = vxlan(REMOTE, VXLAN_PORT, I, 100, &to_skb);
                p[24] ^= 0x01;
                p
            },
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::Malformed),
        },
        Case {
            what: "IPv4 total length shorter than the UDP datagram",
            input: damaged(&[(16, 0), (17, 20 + 8)]),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::Malformed),
        },
        Case {
            what: "IPv4 total length longer than the frame (1400 on a short frame)",
            input: damaged(&[(16, 0x05), (17, 0x78)]),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::Malformed),
        },
        Case {
            what: "UDP length too short for an inner Ethernet header",
            input: damaged(&[(38, 0), (39, 8 + 8 + 13)]),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::Malformed),
        },
        Case {
            what: "VNI 0 (never configured)",
            input: vxlan(REMOTE, VXLAN_PORT, I, 0, &to_skb),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::UnknownVni),
        },
        Case {
            what: "VNI 0xffffff, not configured",
            input: vxlan(REMOTE, VXLAN_PORT, I, 0xff_ffff, &to_skb),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::UnknownVni),
        },
    ];
    check(&l, cases, run_xdp(&l));
    let s = l.vni_stats(100);
    assert_eq!(
        s.rx_packets, 6,
        "rx counts delivered and flooded frames of VNI 100"
    );
    let from_remote = l.peer_stats(REMOTE);
    assert_eq!(
        from_remote.rx_packets,
        s.rx_packets + l.vni_stats(200).rx_packets,
        "every frame delivered came from REMOTE: its per-remote rx counts them all"
    );
    assert_eq!(from_remote.rx_bytes, s.rx_bytes + l.vni_stats(200).rx_bytes);
    assert_eq!(
        s.drop_packets, 4,
        "drops charged to VNI 100 once it is known: inner_vlan, group_source_mac, unknown_remote, remote_to_remote"
    );
}

#[test]
fn decap_truncated_at_every_length() {
    for fam in [V4, V6] {
        let l = decap_loaded_at(fam);
        let full = vxlan(fam.remote, VXLAN_PORT, I, 100, &inner_frame(MAC_SKB_PORT));
        let ip_hlen = if fam.local.is_ipv4() { 20 } else { 40 };
        // Up to the end of the UDP header nothing says the packet is VXLAN
        // for us: it goes to the kernel. From there on it is ours and
        // malformed (its IP and UDP lengths claim more than the frame
        // holds).
        let cases = (14..full.len())
            .map(|cut| {
                let ours = cut >= 14 + ip_hlen + 8;
                Case {
                    what: if ours {
                        "truncated VXLAN"
                    } else {
                        "truncated before the UDP port"
                    },
                    input: full[..cut].to_vec(),
                    action: if ours { XDP_DROP } else { XDP_PASS },
                    output: None,
                    bump: if ours {
                        Bump::Drop(DropReason::Malformed)
                    } else {
                        Bump::Event(Counter::PassToKernel)
                    },
                }
            })
            .collect();
        check(&l, cases, run_xdp(&l));
    }
}

#[test]
fn decap_drops_inner_frames_too_big_for_their_port() {
    private_netns();
    let (p1, p2) = (ifindex("p1"), ifindex("p2"));
    let mut l = decap_loaded();
    l.port(p1, 100, PORT_F_XDP);
    l.port(p2, 100, 0);
    l.fdb_flags(100, MAC_XDP_PORT, None, p1, FDB_F_STATIC | FDB_F_XDP);
    l.fdb(100, MAC_SKB_PORT, None, p2);
    let frame = |dst, len| vxlan(REMOTE, VXLAN_PORT, I, 100, &sized_frame(dst, len, true));
    let delivered = |dst, len: usize| {
        let f = frame(dst, len);
        let inner = f[50..].to_vec();
        (f, inner)
    };
    // The largest frame a port takes: MTU + Ethernet header + the 4 bytes
    // of a VLAN tag the kernel's forwarding check allows.
    let (fits_xdp, fits_xdp_out) = delivered(MAC_XDP_PORT, 1518);
    let (fits_skb, fits_skb_inner) = delivered(MAC_SKB_PORT, P2_MTU as usize + 18);
    let cases = vec![
        Case {
            what: "inner frame of exactly the port's MTU (1500) + 18, XDP delivery",
            input: fits_xdp,
            action: XDP_REDIRECT,
            output: Some(fits_xdp_out),
            bump: Bump::Event(Counter::DecapXdp),
        },
        Case {
            what: "one byte more: dropped and counted, not lost silently",
            input: frame(MAC_XDP_PORT, 1519),
            action: XDP_DROP,
            output: None,
            bump: Bump::Drop(DropReason::TooBig),
        },
        Case {
            what: "inner frame of exactly the port's MTU (1400) + 18, skb delivery",
            input: fits_skb,
            action: XDP_PASS,
            output: Some([meta(META_ACTION_DELIVER, 100, p2), fits_skb_inner].concat()),
            bump: Bump::Event(Counter::DecapSkb),
        },
        Case {
            what: "inner jumbo (9000-byte MTU sender) to a 1400-byte port",
            input: frame(MAC_SKB_PORT, 1600),
            action: XDP_DROP,
            output: None,
            bump: Bump::Drop(DropReason::TooBig),
        },
    ];
    check(&l, cases, run_xdp(&l));
}

#[test]
fn decap_in_tc_strips_skbs_and_leaves_gso_packets_to_the_kernel() {
    let (ul0, _) = private_netns();
    let p2 = ifindex("p2");
    let mut cfg = config_at(V4.local, 1);
    cfg.flags |= CONFIG_F_DECAP_TC;
    let mut l = decap_loaded_with(V4, cfg);
    l.port(p2, 100, 0);
    l.fdb(100, MAC_SKB_PORT, None, p2);
    let inner = inner_frame(MAC_SKB_PORT);
    let frame = vxlan(REMOTE, VXLAN_PORT, I, 100, &inner);
    let case = Case {
        what: "a VXLAN skb for a port: stripped and redirected from TC",
        input: frame.clone(),
        action: TC_ACT_REDIRECT,
        output: Some(inner.clone()),
        bump: Bump::Event(Counter::DecapSkb),
    };
    check(&l, vec![case], |input, out| {
        run_decap_tc(&l, ul0, 0, input, out)
    });
    // What GRO merged is for the kernel's vxlan (the merge device), whose
    // tunnel offload state only the kernel can clear: passed untouched,
    // nothing counted.
    let (events, drops) = (
        l.counters(MAP_COUNTERS, Counter::COUNT),
        l.counters(MAP_DROPS, DropReason::COUNT),
    );
    let mut out = vec![0u8; frame.len() + 64];
    let (action, len) = run_decap_tc(&l, ul0, 1400, &frame, &mut out);
    assert_eq!((action, &out[..len]), (TC_ACT_OK, &frame[..]));
    assert_eq!(l.counters(MAP_COUNTERS, Counter::COUNT), events);
    assert_eq!(l.counters(MAP_DROPS, DropReason::COUNT), drops);
}

#[test]
fn decap_tc_behind_xdp_leaves_frames_without_a_decision_alone() {
    let (ul0, _) = private_netns();
    let l = decap_loaded();
    let frame = vxlan(REMOTE, VXLAN_PORT, I, 100, &inner_frame(MAC_SKB_PORT));
    let events = l.counters(MAP_COUNTERS, Counter::COUNT);
    let mut out = vec![0u8; frame.len() + 64];
    let (action, len) = run_decap_tc(&l, ul0, 0, &frame, &mut out);
    assert_eq!(
        (action, &out[..len]),
        (TC_ACT_OK, &frame[..]),
        "XDP decides VXLAN: TC passes what has no decision, unchanged"
    );
    assert_eq!(
        l.counters(MAP_COUNTERS, Counter::COUNT),
        events,
        "nothing counted"
    );
}
