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
//! Precondition: the program runs in TC ingress (the kernel drops a peer
//! redirect from anywhere else).

use aya_ebpf::helpers::{bpf_redirect, bpf_redirect_peer};
use vtep_common::maps::PORT_F_PEER;

/// Redirects the skb to the VM behind port `ifindex`, whose `PORT_F_*`
/// bits are `port_flags`: the TC action to return.
#[inline(always)]
pub fn to_port(ifindex: u32, port_flags: u32) -> i32 {
    if port_flags & PORT_F_PEER != 0 {
        // SAFETY: plain helper call; only flags 0 are defined.
        unsafe { bpf_redirect_peer(ifindex, 0) as i32 }
    } else {
        // SAFETY: plain helper call.
        unsafe { bpf_redirect(ifindex, 0) as i32 }
    }
}
