//! Programs of the bench (`cargo xtask bench`) and of the test harness;
//! `vtep` never loads them.
//!
//! - `bench_gen`: the traffic generator. Run by BPF_PROG_TEST_RUN with
//!   BPF_F_TEST_XDP_LIVE_FRAMES (as xdp-trafficgen does): each run puts
//!   the frame's first `HEADER_WORDS` words back as they were (`HEADER`),
//!   rewrites a 16-bit field to one of `FLOWS` values (many inner flows,
//!   not one) and redirects the frame out of `TARGET`. The live-frames
//!   mode recycles its pages without rewriting their data, and whatever
//!   received a frame may have written into it (decap writes its XDP
//!   metadata over the outer headers it strips): without the restore, only
//!   the first batch would be the frame the bench means.
//! - `bench_sink`: counts and drops in XDP (the `xdp-drop` ceiling, where
//!   the generator's frames arrive).
//! - `bench_sink_tc`: counts and drops in TC ingress: the sink of every
//!   other variant (in the VM for decap, so each ends where a VM's stack
//!   would take the frame, an skb, whichever way it was delivered).
//! - `bench_pass`: `XDP_PASS`, for a veth that must take the generator's
//!   XDP frames with GRO off (the `kernel-nogro` variant).
//! - `bench_strip_redirect`: the `xdp-redirect` ceiling: strips the 50
//!   bytes of VXLAN encapsulation and redirects to `TARGET`, no lookups.
//! - `bench_strip_peer`: the `tc-peer` ceiling (TC on the underlay): saves
//!   the inner Ethernet header, removes the 50 bytes behind the outer one
//!   (`bpf_skb_adjust_room`, MAC mode), writes the inner header over the
//!   outer and hands the skb to `TARGET`'s peer (`bpf_redirect_peer`).
//!   Only for the bench's IPv4-in-IPv4 frames: `skb->protocol` stays the
//!   outer header's.
//! - `vlan_host_egress` / `vlan_host_ingress` (tests, TC on a legacy
//!   host's interface): an 802.1Q VLAN interface where the kernel has no
//!   8021q module: frames sent get tag `VID` pushed, frames received are
//!   taken only with tag `VID` (popped), anything else dropped.
//! - `underlay_mark_ce` (tests, TC egress on an underlay router's
//!   interface): marks every IPv4 VXLAN packet (UDP to 4789) CE, as a
//!   congested router would (RFC 3168), the header checksum updated.
//! - `bench_encap_ceiling`: the `encap-ceiling` variant (TC on the port):
//!   makes room for 50 bytes of outer headers, writes the fixed ones in
//!   `HEADER` (a frame of the generator's size) and redirects to `TARGET`:
//!   what encapsulation costs without lookups.
#![no_std]
#![no_main]
// BPF inline assembly: whole-word packet stores (`pkt`).
#![feature(asm_experimental_arch)]

// The datapath's packet access, so that the ceilings write as it does.
#[allow(dead_code)]
mod pkt;

use aya_ebpf::{
    Global,
    bindings::{
        BPF_F_ADJ_ROOM_ENCAP_L2_ETH, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4, BPF_F_ADJ_ROOM_ENCAP_L4_UDP,
        TC_ACT_OK, TC_ACT_SHOT, bpf_adj_room_mode::BPF_ADJ_ROOM_MAC, xdp_action,
    },
    helpers::{
        bpf_redirect, bpf_redirect_peer, bpf_skb_vlan_pop, bpf_skb_vlan_push, bpf_xdp_adjust_head,
    },
    macros::{classifier, map, xdp},
    maps::PerCpuArray,
    programs::{TcContext, XdpContext},
};
use vtep_common::{
    consts::{
        ENCAP_LEN, ETH_HLEN, ETH_P_8021Q, ETH_P_IP, IPPROTO_UDP, IPV4_HLEN, UDP_HLEN, VID_MASK,
        VXLAN_PORT,
    },
    ecn,
};

/// Interface to redirect to.
#[unsafe(no_mangle)]
static TARGET: Global<u32> = Global::new(0);
/// Number of distinct flows the generator makes (a power of two).
#[unsafe(no_mangle)]
static FLOWS: Global<u32> = Global::new(1);
/// Byte offset of the 16-bit field the generator varies.
#[unsafe(no_mangle)]
static FLOW_OFFSET: Global<u32> = Global::new(0);
/// The frame's first bytes, as the generator restores them.
#[unsafe(no_mangle)]
static HEADER: Global<[u64; HEADER_MAX]> = Global::new([0; HEADER_MAX]);
/// How many words of `HEADER` the generator restores (at most
/// `HEADER_MAX`, and the frame holds them).
#[unsafe(no_mangle)]
static HEADER_WORDS: Global<u32> = Global::new(0);

/// The VLAN of `vlan_host_*`.
#[unsafe(no_mangle)]
static VID: Global<u32> = Global::new(0);

/// The most words the generator restores: 96 bytes, the outer headers
/// over IPv6 and the inner Ethernet header with room to spare.
const HEADER_MAX: usize = 12;

/// Slot 0: frames counted by `bench_sink`; slot 1: the generator's sequence.
#[map]
static BENCH: PerCpuArray<u64> = PerCpuArray::with_max_entries(2, 0);

#[xdp]
pub fn bench_gen(ctx: XdpContext) -> u32 {
    let Some(seq) = BENCH.get_ptr_mut(1) else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: per-CPU slot, only this CPU touches it while we run.
    let n = unsafe {
        *seq += 1;
        *seq
    };
    write_header(ctx.data(), ctx.data_end());
    let off = (FLOW_OFFSET.load() & 0xff) as usize;
    let field = ctx.data() + off;
    if field + 2 > ctx.data_end() {
        return xdp_action::XDP_ABORTED;
    }
    let flow = (n as u32 & (FLOWS.load() - 1)) as u16;
    // SAFETY: [field, field + 2) was checked to lie within the frame.
    unsafe { (field as *mut [u8; 2]).write_unaligned((1024 + flow).to_be_bytes()) };
    // SAFETY: plain helper call.
    unsafe { bpf_redirect(TARGET.load(), 0) as u32 }
}

/// Writes the first `HEADER_WORDS` words of `HEADER` at `data`, as far as
/// the packet memory up to `end` holds them.
#[inline(always)]
fn write_header(data: usize, end: usize) {
    let (header, words) = (HEADER.load(), HEADER_WORDS.load() as usize);
    for (i, w) in header.iter().enumerate() {
        let at = data + 8 * i;
        if i >= words || at + 8 > end {
            break;
        }
        // SAFETY: [at, at + 8) was checked to lie within the packet's
        // (linear) data.
        unsafe { pkt::put_u64(at, *w) };
    }
}

/// Counts one frame at the sink.
#[inline(always)]
fn sink() {
    if let Some(c) = BENCH.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, only this CPU touches it while we run.
        unsafe { *c += 1 };
    }
}

#[xdp]
pub fn bench_sink(_ctx: XdpContext) -> u32 {
    sink();
    xdp_action::XDP_DROP
}

#[classifier]
pub fn bench_sink_tc(_ctx: TcContext) -> i32 {
    sink();
    TC_ACT_SHOT
}

#[xdp]
pub fn bench_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[classifier]
pub fn bench_encap_ceiling(ctx: TcContext) -> i32 {
    let flags = u64::from(
        BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP | BPF_F_ADJ_ROOM_ENCAP_L2_ETH,
    ) | ((ETH_HLEN as u64) << 56);
    if ctx
        .adjust_room(ENCAP_LEN as i32, BPF_ADJ_ROOM_MAC, flags)
        .is_err()
    {
        return TC_ACT_SHOT;
    }
    write_header(ctx.data(), ctx.data_end());
    // SAFETY: plain helper call.
    unsafe { bpf_redirect(TARGET.load(), 0) as i32 }
}

#[xdp]
pub fn bench_strip_redirect(ctx: XdpContext) -> u32 {
    // SAFETY: the kernel checks the new head stays within the buffer.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, ENCAP_LEN as i32) } != 0 {
        return xdp_action::XDP_ABORTED;
    }
    // SAFETY: plain helper call.
    unsafe { bpf_redirect(TARGET.load(), 0) as u32 }
}

#[classifier]
pub fn bench_strip_peer(ctx: TcContext) -> i32 {
    let Ok(inner) = ctx.load::<[u8; ETH_HLEN]>(ENCAP_LEN) else {
        return TC_ACT_SHOT;
    };
    if ctx
        .adjust_room(-(ENCAP_LEN as i32), BPF_ADJ_ROOM_MAC, 0)
        .is_err()
    {
        return TC_ACT_SHOT;
    }
    if ctx.store(0, &inner, 0).is_err() {
        return TC_ACT_SHOT;
    }
    // SAFETY: plain helper call.
    unsafe { bpf_redirect_peer(TARGET.load(), 0) as i32 }
}

#[classifier]
pub fn vlan_host_egress(ctx: TcContext) -> i32 {
    // SAFETY: plain helper call on the skb the kernel passed.
    if unsafe { bpf_skb_vlan_push(ctx.skb.skb, ETH_P_8021Q.to_be(), VID.load() as u16) } != 0 {
        return TC_ACT_SHOT;
    }
    TC_ACT_OK
}

#[classifier]
pub fn vlan_host_ingress(ctx: TcContext) -> i32 {
    let skb = ctx.skb.skb;
    // SAFETY: `skb` is the __sk_buff the kernel passed to the program.
    let (present, tci) = unsafe { ((*skb).vlan_present, (*skb).vlan_tci) };
    if present == 0 || tci & u32::from(VID_MASK) != VID.load() {
        return TC_ACT_SHOT;
    }
    // SAFETY: as above.
    if unsafe { bpf_skb_vlan_pop(skb) } != 0 {
        return TC_ACT_SHOT;
    }
    TC_ACT_OK
}

#[classifier]
pub fn underlay_mark_ce(ctx: TcContext) -> i32 {
    let (data, end) = (ctx.data(), ctx.data_end());
    let ip = data + ETH_HLEN;
    if ip + IPV4_HLEN + UDP_HLEN > end {
        return TC_ACT_OK;
    }
    // SAFETY: [data, ip + 28) lies within the packet, checked above.
    let (ty, h, dport) = unsafe {
        (
            ((data + 12) as *const [u8; 2]).read_unaligned(),
            (ip as *const [u8; IPV4_HLEN]).read_unaligned(),
            ((ip + IPV4_HLEN + 2) as *const [u8; 2]).read_unaligned(),
        )
    };
    if ty != ETH_P_IP.to_be_bytes()
        || h[0] != 0x45
        || h[9] != IPPROTO_UDP
        || dport != VXLAN_PORT.to_be_bytes()
    {
        return TC_ACT_OK;
    }
    let old = u16::from_be_bytes([h[0], h[1]]);
    let new = u16::from_be_bytes([h[0], h[1] | ecn::CE]);
    let check = ecn::checksum_update(u16::from_be_bytes([h[10], h[11]]), old, new);
    // SAFETY: as above.
    unsafe {
        ((ip + 1) as *mut u8).write(h[1] | ecn::CE);
        ((ip + 10) as *mut [u8; 2]).write_unaligned(check.to_be_bytes());
    }
    TC_ACT_OK
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
