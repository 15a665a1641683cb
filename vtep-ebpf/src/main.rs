//! The vtep kernel programs.
//!
//! - `vtep_decap` (XDP, underlay): decapsulates VXLAN for us; known unicast
//!   to an XDP-capable port is redirected from XDP, everything else goes up
//!   to `vtep_decap_tc` with its decision in the XDP metadata.
//! - `vtep_decap_tc` (TC ingress, underlay): delivers or floods the frames
//!   XDP decapsulated, as skbs (cloning needs an skb); on an underlay
//!   without XDP (`--xdp-mode off`) it decapsulates them itself.
//! - `vtep_decap_merged` (TC ingress, the instance's merge device, where
//!   the underlay runs no XDP): what GRO merged on the underlay and the
//!   kernel's vxlan decapsulated, decided and handed to its port
//!   (`decap::merged`).
//! - `vtep_encap` (TC ingress, each port): encapsulation, local switching
//!   and head-end replication. TC rather than XDP because frames from VMs
//!   and containers arrive as GSO super-packets with CHECKSUM_PARTIAL, which
//!   XDP cannot see or keep, and because XDP on a veth strips GSO from its
//!   peer (see README, "Why XDP for decap and TC for encap").
//!
//! Each entry point is a thin wrapper turning a `try_*` result into an
//! action; the logic lives in one module per concern.
#![no_std]
#![no_main]
// `atomic_xadd`: the generation bump in `cache` (see there).
#![allow(internal_features)]
#![feature(core_intrinsics)]
// BPF inline assembly: whole-word packet access (`pkt`).
#![feature(asm_experimental_arch)]

mod arp;
mod cache;
mod decap;
mod ecn;
mod encap;
mod encap_cache;
mod fib;
mod flow;
mod identity;
mod learn;
mod maps;
mod mtu;
mod nd;
mod neigh;
mod parse;
mod pkt;
mod port;
mod storm;
mod vlan;

use aya_ebpf::{
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};

/// XDP on the underlay interface.
#[xdp]
pub fn vtep_decap(ctx: XdpContext) -> u32 {
    decap::xdp(&ctx)
}

/// TC ingress on the underlay interface.
#[classifier]
pub fn vtep_decap_tc(ctx: TcContext) -> i32 {
    decap::tc(&ctx)
}

/// TC ingress on the merge device (underlays without XDP).
#[classifier]
pub fn vtep_decap_merged(ctx: TcContext) -> i32 {
    decap::merged(ctx)
}

/// TC ingress on every port.
#[classifier]
pub fn vtep_encap(ctx: TcContext) -> i32 {
    encap::tc(&ctx)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// GPL-compatible licence: `bpf_fib_lookup` and friends are GPL-only helpers.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
