//! Decap (XDP) over an IPv6 underlay: the verdicts, lengths that lie,
//! extension headers left to the kernel, and frames of the other family
//! (frames cut short at every length: `decap`, over both families).

use super::*;

/// Offsets in a VXLAN frame over IPv6: payload length, next header, hop
/// limit, UDP length.
const PAYLOAD_LEN: usize = 18;
const NEXT_HEADER: usize = 20;
const HOP_LIMIT: usize = 21;
const UDP_LEN: usize = 58;

#[test]
fn decap_table_over_ipv6() {
    let l = decap_loaded_at(V6);
    let to_skb = inner_frame(MAC_SKB_PORT);
    let to_xdp = inner_frame(MAC_XDP_PORT);
    let with_meta = |m: Vec<u8>, inner: &[u8]| Some([m, inner.to_vec()].concat());
    let good = vxlan(REMOTE6, VXLAN_PORT, I, 100, &to_skb);
    let damaged = |at: &[(usize, u8)]| {
        let mut p = good.clone();
        for (i, b) in at {
            p[*i] = *b;
        }
        p
    };
    let pass = Bump::Event(Counter::PassToKernel);
    let malformed = Bump::Drop(DropReason::Malformed);
    let cases = vec![
        Case {
            what: "known unicast, skb port: the 70 outer bytes stripped, DELIVER",
            input: good.clone(),
            action: XDP_PASS,
            output: with_meta(meta(META_ACTION_DELIVER, 100, P_SKB), &to_skb),
            bump: Bump::Event(Counter::DecapSkb),
        },
        Case {
            what: "known unicast, XDP port: stripped and redirected",
            input: vxlan(REMOTE6, VXLAN_PORT, I, 100, &to_xdp),
            action: XDP_REDIRECT,
            output: Some(to_xdp.clone()),
            bump: Bump::Event(Counter::DecapXdp),
        },
        Case {
            what: "a sender not in the VNI's list",
            input: vxlan(STRANGER6, VXLAN_PORT, I, 100, &to_skb),
            action: XDP_DROP,
            output: None,
            bump: Bump::Drop(DropReason::UnknownRemote),
        },
        Case {
            what: "an IPv4-mapped source (RFC 4291 §2.5.5.2) is never a remote",
            input: damaged(&[
                (22, 0),
                (23, 0),
                (24, 0),
                (25, 0),
                (26, 0),
                (27, 0),
                (28, 0),
                (29, 0),
                (30, 0),
                (31, 0),
                (32, 0xff),
                (33, 0xff),
            ]),
            action: XDP_DROP,
            output: None,
            bump: Bump::Drop(DropReason::UnknownRemote),
        },
        Case {
            what: "unknown VNI",
            input: vxlan(REMOTE6, VXLAN_PORT, I, 4242, &to_skb),
            action: XDP_DROP,
            output: None,
            bump: Bump::Drop(DropReason::UnknownVni),
        },
        Case {
            what: "an extension header (hop-by-hop) before UDP: the kernel's",
            input: damaged(&[(NEXT_HEADER, 0)]),
            action: XDP_PASS,
            output: None,
            bump: pass,
        },
        Case {
            what: "to another address",
            input: damaged(&[(53, 9)]),
            action: XDP_PASS,
            output: None,
            bump: pass,
        },
        Case {
            what: "UDP to us on another port",
            input: vxlan(REMOTE6, 4790, I, 100, &to_skb),
            action: XDP_PASS,
            output: None,
            bump: pass,
        },
        Case {
            what: "IPv4 VXLAN to an IPv6 instance: the kernel's",
            input: vxlan(REMOTE, VXLAN_PORT, I, 100, &to_skb),
            action: XDP_PASS,
            output: None,
            bump: pass,
        },
        Case {
            what: "payload length longer than the frame (1400 on a short frame)",
            input: damaged(&[(PAYLOAD_LEN, 0x05), (PAYLOAD_LEN + 1, 0x78)]),
            action: XDP_DROP,
            output: None,
            bump: malformed,
        },
        Case {
            what: "payload length shorter than the UDP datagram",
            input: damaged(&[(PAYLOAD_LEN, 0), (PAYLOAD_LEN + 1, 8)]),
            action: XDP_DROP,
            output: None,
            bump: malformed,
        },
        Case {
            what: "UDP length longer than the packet",
            input: damaged(&[(UDP_LEN, 0x7f)]),
            action: XDP_DROP,
            output: None,
            bump: malformed,
        },
        Case {
            what: "UDP length too short for an inner Ethernet header",
            input: damaged(&[(UDP_LEN, 0), (UDP_LEN + 1, 8 + 8 + 13)]),
            action: XDP_DROP,
            output: None,
            bump: malformed,
        },
        Case {
            what: "hop limit 0",
            input: damaged(&[(HOP_LIMIT, 0)]),
            action: XDP_DROP,
            output: None,
            bump: malformed,
        },
        Case {
            what: "I flag clear",
            input: vxlan(REMOTE6, VXLAN_PORT, [0, 0, 0, 0], 100, &to_skb),
            action: XDP_DROP,
            output: None,
            bump: Bump::Drop(DropReason::NoIFlag),
        },
    ];
    check(&l, cases, run_xdp(&l));
    assert_eq!(l.peer_stats(REMOTE6).rx_packets, 2, "per remote, over IPv6");
}
