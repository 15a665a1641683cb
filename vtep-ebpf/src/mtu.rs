//! The underlay MTU on encap: whether a frame fits a device, whether it
//! still fits the underlay once encapsulated (50 outer bytes over IPv4,
//! 70 over IPv6; GSO packets by their segments), and the answers that
//! make path-MTU discovery work through the overlay (RFC 1191, RFC 4443
//! §3.2, RFC 8201) for the frames that do not.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::bpf_check_mtu_ret::BPF_MTU_CHK_RET_FRAG_NEEDED,
    helpers::{bpf_check_mtu, bpf_skb_change_tail},
    programs::TcContext,
};
use network_types::{
    eth::{EthHdr, EtherType},
    ip::IpProto,
};
use vtep_common::{
    consts::{ENCAP_L3_LEN, ENCAP6_L3_LEN, ETH_HLEN, IPV4_HLEN, IPV6_HLEN, VLAN_HLEN},
    counters::Counter,
    icmp::{
        FRAG_NEEDED_LEN, FRAG_QUOTE, PACKET_TOO_BIG_LEN, PTB_QUOTE, emit_frag_needed,
        emit_packet_too_big, frag_quote_sum, may_answer_v6, quote_sum,
    },
    maps::Config,
};

use crate::parse::{IPV4_DF, inner_ipv4, is, read};

/// `bpf_check_mtu` of this skb, `len_diff` bytes longer, against device
/// `ifindex`: whether it fits (a GSO packet does: its segments are checked
/// where it is segmented; an unknown ifindex is not judged) and the
/// device's MTU (0 if it cannot be had).
#[inline(always)]
fn check_mtu(ctx: &TcContext, ifindex: u32, len_diff: i32) -> (bool, u32) {
    let mut mtu = 0u32;
    // SAFETY: `mtu` is writable for the call; 0 in means "this skb".
    let rc = unsafe { bpf_check_mtu(ctx.skb.skb as *mut c_void, ifindex, &mut mtu, len_diff, 0) };
    (rc != i64::from(BPF_MTU_CHK_RET_FRAG_NEEDED), mtu)
}

/// Whether the frame, as it is, fits device `ifindex`: its MTU plus its
/// Ethernet header plus a VLAN tag's 4 bytes, as the kernel's forwarding
/// check allows.
#[inline(always)]
pub fn fits(ctx: &TcContext, ifindex: u32) -> bool {
    check_mtu(ctx, ifindex, -(VLAN_HLEN as i32)).0
}

/// The MTU of device `ifindex` (0 if it cannot be had). The unicast path
/// gets it for free from its FIB lookup; this is for the others.
#[inline(always)]
pub fn device_mtu(ctx: &TcContext, ifindex: u32) -> u32 {
    check_mtu(ctx, ifindex, 0).1
}

/// Outer bytes from the outer IP header to the inner Ethernet header: 36
/// over an IPv4 underlay, 56 over IPv6.
#[inline(always)]
pub fn encap_l3_len(cfg: &Config) -> u32 {
    if cfg.local_ip.is_v4() {
        ENCAP_L3_LEN as u32
    } else {
        ENCAP6_L3_LEN as u32
    }
}

/// The MTU left for the inner packet on an underlay device of MTU
/// `dev_mtu`: 50 bytes less over IPv4 (outer IPv4, UDP, VXLAN and the
/// inner Ethernet header), 70 over IPv6.
#[inline(always)]
pub fn inner_mtu(dev_mtu: u32, cfg: &Config) -> u16 {
    dev_mtu.saturating_sub(encap_l3_len(cfg) + ETH_HLEN as u32) as u16
}

/// Whether the frame no longer fits `mtu` once encapsulated; for a GSO
/// packet, whether its segments would not (inner IPv4 or IPv6 and TCP
/// headers plus `gso_size`: only TCP segmentation comes from VMs).
#[inline(always)]
pub fn too_big(ctx: &TcContext, eth: &EthHdr, mtu: u32, cfg: &Config) -> bool {
    if mtu == 0 {
        return false;
    }
    // SAFETY: `skb` is the __sk_buff the kernel passed to the program.
    let gso_size = unsafe { (*ctx.skb.skb).gso_size };
    if gso_size == 0 {
        // The frame with its Ethernet header, plus the outer headers,
        // against the MTU plus the outer Ethernet header.
        return ctx.len() + encap_l3_len(cfg) > mtu;
    }
    // The inner IP header's length, if TCP follows it.
    let ihl = if is(eth.ether_type, EtherType::Ipv6) {
        // TCP right after the fixed header (no extension headers).
        match read::<u8>(ctx, ETH_HLEN + 6) {
            Some(next) if next == IpProto::Tcp as u8 => IPV6_HLEN,
            _ => return false,
        }
    } else {
        let Some(ip) = inner_ipv4(ctx, eth) else {
            return false;
        };
        if ip.version() != 4 || ip.proto != IpProto::Tcp as u8 {
            return false;
        }
        usize::from(ip.ihl())
    };
    // Through the helper: the verifier refuses a direct read at this
    // offset ("R1 offset is outside of the packet"), tried.
    let Ok(doff) = ctx.load::<u8>(ETH_HLEN + ihl + 12) else {
        return false;
    };
    let segment = ihl as u32 + u32::from(doff >> 4) * 4 + gso_size;
    segment + encap_l3_len(cfg) + ETH_HLEN as u32 > mtu
}

/// Answers a frame too big for the underlay once encapsulated: VTEPs MUST
/// NOT fragment (RFC 7348 §4.3). As the kernel's vxlan does, the sender
/// is told the MTU `mtu` left for the inner packet: IPv4 with DF by ICMP
/// "fragmentation needed", IPv6 by ICMPv6 Packet Too Big. Returns the
/// counter of the answer the frame became (for the caller to send back
/// out of the port), or `None`: nothing to answer, drop it.
#[inline(always)]
pub fn answer(ctx: &TcContext, eth: &EthHdr, mtu: u16) -> Option<Counter> {
    if is(eth.ether_type, EtherType::Ipv6) {
        packet_too_big(ctx, eth, mtu).then_some(Counter::IcmpPacketTooBig)
    } else {
        frag_needed(ctx, eth, mtu).then_some(Counter::IcmpFragNeeded)
    }
}

/// IPv4 with DF too big: ICMP "fragmentation needed" (RFC 1191), built
/// in place as [`packet_too_big`] is.
///
/// Not inlined: a rare path kept out of the encap program's stack frame
/// (512 bytes at most, with its callees).
#[inline(never)]
fn frag_needed(ctx: &TcContext, eth: &EthHdr, mtu: u16) -> bool {
    const QUOTE: usize = ETH_HLEN + IPV4_HLEN + 8;
    // Judged before anything changes: a 20-byte header with DF, and the
    // 8 bytes after it to quote.
    let Some(ip) = inner_ipv4(ctx, eth) else {
        return false;
    };
    if ctx.len() < (ETH_HLEN + FRAG_QUOTE) as u32
        || ip.version() != 4
        || usize::from(ip.ihl()) != IPV4_HLEN
        || ip.frag_flags() & IPV4_DF == 0
    {
        return false;
    }
    let Some((data, sum)) = make_room(ctx, FRAG_NEEDED_LEN, QUOTE, FRAG_QUOTE, |_, w| {
        frag_quote_sum(w)
    }) else {
        return false;
    };
    emit_frag_needed(|i| word(data + QUOTE, i), sum, mtu, &mut |i, v| {
        put(data + ETH_HLEN, i, v)
    });
    send_back(data, eth, EtherType::Ipv4);
    true
}

/// IPv6 too big: ICMPv6 Packet Too Big (RFC 4443 §3.2), so that path MTU
/// discovery works through the overlay (RFC 8201), unless RFC 4443 §2.4
/// (e) forbids an answer. Built in place ([`make_room`]): no block on the
/// stack.
///
/// Not inlined, as [`frag_needed`].
#[inline(never)]
fn packet_too_big(ctx: &TcContext, eth: &EthHdr, mtu: u16) -> bool {
    const QUOTE: usize = ETH_HLEN + IPV6_HLEN + 8;
    // Judged before anything changes: a frame dropped stays as it was.
    let first = |i: usize| read::<u16>(ctx, ETH_HLEN + 2 * i).unwrap_or(0);
    if ctx.len() < (ETH_HLEN + PTB_QUOTE) as u32
        || first(0).to_ne_bytes()[0] >> 4 != 6
        || !may_answer_v6(first)
    {
        return false;
    }
    let Some((data, sum)) = make_room(ctx, PACKET_TOO_BIG_LEN, QUOTE, PTB_QUOTE, quote_sum) else {
        return false;
    };
    emit_packet_too_big(
        |i| word(data + QUOTE, i),
        sum,
        u32::from(mtu),
        &mut |i, v| put(data + ETH_HLEN, i, v),
    );
    send_back(data, eth, EtherType::Ipv6);
    true
}

/// Makes the frame the room of an ICMP answer of `len` bytes after the
/// Ethernet header: cut to that length, the first `quote` bytes of the
/// packet copied to `at`, where the answer quotes them, and summed word
/// by word by `sum` (no word kept for later: nothing spilled). Returns
/// the linear data's start, the answer's `ETH_HLEN + len` bytes all
/// within it, and the sum; `None` if the kernel refuses.
#[inline(always)]
fn make_room(
    ctx: &TcContext,
    len: usize,
    at: usize,
    quote: usize,
    sum: impl Fn(usize, u16) -> u32,
) -> Option<(usize, u32)> {
    // SAFETY: plain helper call on our skb (longer than the answer: this
    // cuts it).
    if unsafe { bpf_skb_change_tail(ctx.skb.skb, (ETH_HLEN + len) as u32, 0) } != 0 {
        return None;
    }
    let (data, end) = (ctx.data(), ctx.data_end());
    if data + ETH_HLEN + len > end {
        return None;
    }
    let mut total = 0;
    for i in 0..quote / 2 {
        let w = word(data + ETH_HLEN, i);
        put(data + at, i, w);
        total += sum(i, w);
    }
    Some((data, total))
}

/// Word `i` at packet address `base`.
///
/// Precondition (of it and [`put`]): the caller checked that the word
/// lies within the linear data ([`make_room`]'s bounds).
#[inline(always)]
fn word(base: usize, i: usize) -> u16 {
    // SAFETY: within the linear data, by the precondition; unaligned.
    unsafe { ((base + 2 * i) as *const u16).read_unaligned() }
}

/// Writes word `i` at packet address `base` (precondition: [`word`]'s).
#[inline(always)]
fn put(base: usize, i: usize, v: u16) {
    // SAFETY: as in `word`.
    unsafe { ((base + 2 * i) as *mut u16).write_unaligned(v) }
}

/// The answer's Ethernet header at `data`: back to the sender of `eth`,
/// as `ether_type` (precondition: [`word`]'s).
#[inline(always)]
fn send_back(data: usize, eth: &EthHdr, ether_type: EtherType) {
    let back = EthHdr {
        dst_addr: eth.src_addr,
        src_addr: eth.dst_addr,
        ether_type: ether_type as u16,
    };
    // SAFETY: the 14 bytes at `data`, within the linear data.
    unsafe { (data as *mut EthHdr).write_unaligned(back) };
}
