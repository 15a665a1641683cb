//! ND suppression, the IPv6 counterpart of ARP suppression (RFC 4861
//! messages, read and built by `vtep_common::nd`): tenant IPv6 bindings
//! learned from the Neighbor Solicitations and Advertisements the data
//! plane sees, and solicitations for a known binding answered by the VTEP
//! itself instead of being flooded across the overlay. Duplicate address
//! detection probes are never answered, nor learned from.

use aya_ebpf::{helpers::bpf_skb_change_tail, programs::TcContext};
use network_types::eth::{EthHdr, EtherType};
use vtep_common::{
    consts::{ETH_HLEN, IPPROTO_ICMPV6},
    counters::Counter,
    maps::Config,
    nd::{NA_FRAME_LEN, Nd, emit_neighbor_advert, kind, parse},
};

use crate::{
    maps::count,
    neigh,
    parse::{read, word_at},
    pkt,
};

/// The ND message of the frame in `ctx` and its Ethernet header.
#[inline(always)]
fn message(ctx: &TcContext) -> Option<(Nd, EthHdr)> {
    Some((parse(|at| read::<u32>(ctx, at))?, read::<EthHdr>(ctx, 0)?))
}

/// From a port (TC), when its VNI learns: learns the binding an ND
/// message teaches. Returns whether it is new.
///
/// Not inlined, and not calling [`neigh::learn`] (which is not inlined
/// either): the encap program, this frame and that one would exceed the
/// 512 bytes of stack BPF allows a chain of calls, measured.
#[inline(never)]
pub fn learn_from_port(ctx: &TcContext, vni: u32) -> bool {
    let Some((nd, eth)) = message(ctx) else {
        return false;
    };
    nd.teaches()
        .is_some_and(|ip| neigh::bind(vni, &ip, &eth.src_addr))
}

/// Whether the IPv6 frame in `ctx` carries ICMPv6 right after its
/// header: the cheap test before the calls below, so that other IPv6
/// traffic from ports pays for neither.
#[inline(always)]
pub fn is_icmpv6(ctx: &TcContext) -> bool {
    read::<u8>(ctx, ETH_HLEN + 6) == Some(IPPROTO_ICMPV6)
}

/// From a port (TC): answers a solicitation for a known binding, sent to
/// a multicast address (the caller checks); the frame is rewritten into
/// the advertisement, for the caller to send back out of the port.
/// Returns whether it answered.
///
/// Not inlined: the message it parses gets a stack frame of its own.
#[inline(never)]
pub fn answer(ctx: &TcContext, vni: u32, cfg: &Config) -> bool {
    let Some((nd, eth)) = message(ctx) else {
        return false;
    };
    if !nd.answerable() {
        return false;
    }
    let Some(mac) = neigh::owner(vni, &nd.target, cfg) else {
        return false;
    };
    // Never tell a host its own address is taken.
    if mac == eth.src_addr {
        return false;
    }
    // A multicast solicitation from a specified source carries the
    // source link-layer address option (RFC 4861 §4.3), so the frame is at
    // least as long as the advertisement: written over it in place.
    if ctx.len() < NA_FRAME_LEN as u32 || ctx.pull_data(NA_FRAME_LEN as u32).is_err() {
        return false;
    }
    let (data, end) = (ctx.data(), ctx.data_end());
    if data + NA_FRAME_LEN > end {
        return false;
    }
    let back = EthHdr {
        dst_addr: eth.src_addr,
        src_addr: mac,
        ether_type: EtherType::Ipv6 as u16,
    };
    // SAFETY: [data, data + NA_FRAME_LEN) lies within the linear data,
    // checked just above; the writes below are within it (the Ethernet
    // header, then NA_LEN bytes after it) and unaligned.
    unsafe { pkt::write(data, back) };
    let at = data + ETH_HLEN;
    // SAFETY: as above.
    let mut put = |i: usize, w: u16| unsafe { pkt::put_u16(at + 2 * i, w) };
    emit_neighbor_advert(&nd.target, &nd.src, mac, &mut put);
    // The solicitation's further options go. Should the kernel refuse,
    // they stay as padding after a complete advertisement (its payload
    // length says where it ends).
    // SAFETY: plain helper call on our skb.
    let _ = unsafe { bpf_skb_change_tail(ctx.skb.skb, NA_FRAME_LEN as u32, 0) };
    count(Counter::NdSuppressed);
    true
}

/// Whether the inner frame at `eth` (the packet ends at `end`) is a
/// Neighbor Solicitation or Advertisement (XDP).
#[inline(always)]
pub fn is_nd(eth: usize, end: usize) -> bool {
    kind(&|at| word_at(eth + at, end)).is_some()
}

/// From a remote VTEP (XDP): learns the binding the ND message in the
/// inner frame at `eth` (the packet ends at `end`) teaches. Returns
/// whether it learned one.
///
/// Not inlined, for the reason [`from_port`] is not.
#[inline(never)]
pub fn from_remote(vni: u32, eth: usize, end: usize) -> bool {
    let Some(nd) = parse(|at| word_at(eth + at, end)) else {
        return false;
    };
    let Some(ip) = nd.teaches() else {
        return false;
    };
    // SAFETY: the caller's inner Ethernet header lies within the packet.
    let src = unsafe { (*(eth as *const EthHdr)).src_addr };
    neigh::learn(vni, &ip, &src)
}
