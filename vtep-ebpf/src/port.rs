//! Handing an skb in TC ingress to the VM behind a port.
//!
//! A `PORT_F_PEER` port is a veth whose peer is in another namespace:
//! `bpf_redirect_peer` hands the skb straight to the peer's ingress, where
//! it is received in this same softirq run (no transmit through the veth,
//! no second pass through the backlog queue). The kernel scrubs the skb on
//! the way (`skb_scrub_packet`: `pkt_type` becomes `PACKET_HOST`), which
//! is right for the frames sent here: each is for a MAC the FDB places
//! behind this port. Any other port gets the skb out of its device
//! (`bpf_redirect`), as a frame the VM receives from the wire.
//!
//! A binding with a VLAN gets its tag pushed first (`vlan::push`).
//!
//! Precondition: the program runs in TC ingress (the kernel drops a peer
//! redirect from anywhere else).

use aya_ebpf::{
    helpers::{bpf_redirect, bpf_redirect_peer},
    programs::TcContext,
};
use vtep_common::{counters::DropReason, maps::PORT_F_PEER};

use crate::vlan;

/// Redirects the skb to the VM or VLAN host behind binding (`ifindex`,
/// `vid`) of a port whose `PORT_F_*` bits are `port_flags`: the TC action
/// to return, or `KernelRefused` if the tag could not be pushed.
#[inline(always)]
pub fn to_binding(
    ctx: &TcContext,
    ifindex: u32,
    vid: u16,
    port_flags: u32,
) -> Result<i32, DropReason> {
    if !vlan::push(ctx, vid) {
        return Err(DropReason::KernelRefused);
    }
    Ok(to_port(ifindex, port_flags))
}

/// Redirects the skb, as it is, to port `ifindex` (`PORT_F_*` bits
/// `port_flags`): the TC action to return.
#[inline(always)]
fn to_port(ifindex: u32, port_flags: u32) -> i32 {
    if port_flags & PORT_F_PEER != 0 {
        // SAFETY: plain helper call; only flags 0 are defined.
        unsafe { bpf_redirect_peer(ifindex, 0) as i32 }
    } else {
        // SAFETY: plain helper call.
        unsafe { bpf_redirect(ifindex, 0) as i32 }
    }
}
