//! The GRO lane, where the underlay runs no XDP.
//!
//! The kernel's GRO runs before TC, on the outer UDP packets, which it
//! cannot merge: decapsulated in TC, a VM's TCP would reach it one
//! segment at a time. So TCP frames decapsulated in TC cross a veth pair
//! of the instance's (`Config::gro_lane` is its sending end) whose
//! receiving end has GRO on: each flow's segments are put back together
//! there, and `vtep_gro_lane` hands the result to the port ([`leave`]).
//!
//! What keeps flows apart: GRO merges only frames with equal VLAN
//! metadata, so each frame crosses with its binding's stats slot (unique
//! per binding, 1 to 4095) as the skb's VLAN tag (kept beside the frame,
//! not in it): frames for different bindings, and so of different VNIs,
//! are never merged. The port's ifindex rides in `skb->mark` (a veth
//! keeps it within one namespace), its top bit saying "into the veth
//! peer". Only untagged bindings take the lane.

use aya_ebpf::{
    bindings::TC_ACT_SHOT,
    helpers::{bpf_redirect, bpf_redirect_peer, bpf_skb_vlan_pop, bpf_skb_vlan_push},
    programs::TcContext,
};
use network_types::eth::EtherType;
use vtep_common::{
    caches::Decision,
    consts::{ETH_HLEN, ETH_P_8021Q, IPPROTO_TCP, VID_MASK},
};

use crate::{
    maps::CONFIG,
    parse::{Vxlan, is},
    pkt,
};

/// `skb->mark` bit: into the port's veth peer (`bpf_redirect_peer`).
const MARK_PEER: u32 = 1 << 31;

/// The lane for the inner frame of `pkt`, delivered as `d` says, if it
/// takes one: a TCP segment to an untagged binding where the instance has
/// a lane. Precondition: `pkt`'s headers are still in place.
#[inline(always)]
pub fn of(pkt: &Vxlan, d: &Decision) -> Option<u32> {
    let lane = CONFIG.load().gro_lane;
    if lane == 0 || d.vid != 0 || d.stats == 0 || d.stats > u32::from(VID_MASK) {
        return None;
    }
    // The protocol byte: IPv4's at 9, IPv6's next header at 6.
    let at = if is(pkt.inner_type, EtherType::Ipv4) {
        9
    } else if is(pkt.inner_type, EtherType::Ipv6) {
        6
    } else {
        return None;
    };
    let ip = pkt.eth as usize + ETH_HLEN;
    if ip + 10 > pkt.rest.end() {
        return None;
    }
    // SAFETY: [ip, ip + 10) lies within the packet, checked just above.
    let proto = unsafe { pkt::read::<u8>(ip + at) };
    (proto == IPPROTO_TCP).then_some(lane)
}

/// Sends the decapsulated skb for decision `d` into `lane` (see the
/// module docs; `peer`: into the port's veth peer at the end): the TC
/// action, or `None` if the tag could not be given.
#[inline(always)]
pub fn enter(ctx: &TcContext, lane: u32, d: &Decision, peer: bool) -> Option<i32> {
    // SAFETY: `skb` is the __sk_buff the kernel passed to the program.
    if unsafe { bpf_skb_vlan_push(ctx.skb.skb, ETH_P_8021Q.to_be(), d.stats as u16) } != 0 {
        return None;
    }
    let mark = d.ifindex | if peer { MARK_PEER } else { 0 };
    // SAFETY: as above; TC programs may write `mark`.
    unsafe { (*ctx.skb.skb).mark = mark };
    // SAFETY: plain helper call.
    Some(unsafe { bpf_redirect(lane, 0) } as i32)
}

/// TC ingress on the lane's receiving end: hands what GRO made of the
/// frames to their port, tag and mark taken off. Anything that did not
/// come through [`enter`] is dropped.
#[inline(always)]
pub fn leave(ctx: &TcContext) -> i32 {
    let skb = ctx.skb.skb;
    // SAFETY: `skb` is the __sk_buff the kernel passed to the program.
    let (mark, tagged) = unsafe { ((*skb).mark, (*skb).vlan_present != 0) };
    let ifindex = mark & !MARK_PEER;
    // SAFETY: as above; the tag popped is the skb's own (checked present),
    // never one in the frame.
    if ifindex == 0 || !tagged || unsafe { bpf_skb_vlan_pop(skb) } != 0 {
        return TC_ACT_SHOT;
    }
    // SAFETY: as above; TC programs may write `mark`.
    unsafe { (*skb).mark = 0 };
    // SAFETY: plain helper calls.
    unsafe {
        if mark & MARK_PEER != 0 {
            bpf_redirect_peer(ifindex, 0) as i32
        } else {
            bpf_redirect(ifindex, 0) as i32
        }
    }
}
