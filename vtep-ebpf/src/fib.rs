//! The next hop towards a remote VTEP: the kernel's FIB and neighbour
//! table asked with `bpf_fib_lookup`, for the encap program.

use core::{
    ffi::c_void,
    mem::{MaybeUninit, size_of},
};

use aya_ebpf::{
    bindings::{
        BPF_FIB_LKUP_RET_FRAG_NEEDED, BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS,
        bpf_fib_lookup as FibParams,
    },
    helpers::bpf_fib_lookup,
    programs::TcContext,
};
use network_types::ip::IpProto;
use vtep_common::{addr::Addr, counters::DropReason, maps::Config};

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

const _: () = assert!(size_of::<FibParams>() == 64);
const _: () = assert!(
    cfg!(target_endian = "little"),
    "next_hop packs a little-endian block"
);

/// Where to send a packet for `remote`: the egress interface, and the MACs
/// when the neighbour is resolved.
pub struct Hop {
    pub ifindex: u32,
    /// Whether the FIB has a route at all (else nothing else holds).
    routed: bool,
    pub resolved: bool,
    /// The outer Ethernet header's destination (the hop's) and source
    /// (ours) MACs, as `Outer::macs` holds them.
    pub eth: [u32; 3],
    /// The egress device's MTU when the lookup gave it (resolved hops),
    /// else 0.
    pub mtu: u32,
}

/// Asks the kernel FIB (and neighbour table) for the next hop towards
/// `remote`, from our underlay address (the family of both).
///
/// The lookup is a forwarding lookup as if the packet had arrived on `port`
/// (the ingress port): `bpf_fib_lookup` refuses interfaces without
/// forwarding for the family, and the port is the one interface whose
/// forwarding flag changes nothing else, since this program consumes every
/// frame entering it. `vtep port add` sets the flag. `NoRoute` without a
/// route.
#[inline(always)]
pub fn next_hop(
    ctx: &TcContext,
    cfg: &Config,
    port: u32,
    remote: &Addr,
) -> Result<Hop, DropReason> {
    let hop = lookup(ctx, cfg, port, remote);
    if hop.routed {
        Ok(hop)
    } else {
        Err(DropReason::NoRoute)
    }
}

/// [`next_hop`]'s lookup. Not inlined, for the reason `encap::write_outer`
/// is not; returns a plain struct, not a `Result`: the BTF of a Rust enum
/// carrying data in a function's signature has a union member at a
/// non-zero offset, which the kernel refuses (the object's BTF was then
/// loaded without, with a warning at every `vtep up`).
#[inline(never)]
fn lookup(ctx: &TcContext, cfg: &Config, port: u32, remote: &Addr) -> Hop {
    // The 64-byte parameter block written as eight volatile u64 stores: a
    // struct literal (or any run of zero stores LLVM can merge) compiles to
    // a memset call, which the verifier walks byte by byte in every
    // iteration of the flood loop. Little-endian layout of `struct
    // bpf_fib_lookup`: family, l4_protocol, sport, dport, tot_len | ifindex,
    // tos/flowinfo | source (16 bytes: ipv4_src or ipv6_src) | destination
    // (16 bytes) | tbid, smac, dmac.
    let mut block = MaybeUninit::<[u64; 8]>::uninit();
    let w = block.as_mut_ptr() as *mut u64;
    let (src, dst) = (&cfg.local_ip, remote);
    let pair = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    let values = if src.is_v4() {
        [
            u64::from(AF_INET) | (u64::from(IpProto::Udp as u8) << 8),
            u64::from(src.v4_word()),
            0,
            u64::from(dst.v4_word()),
            0,
        ]
    } else {
        [
            u64::from(AF_INET6) | (u64::from(IpProto::Udp as u8) << 8),
            pair(src.w[0], src.w[1]),
            pair(src.w[2], src.w[3]),
            pair(dst.w[0], dst.w[1]),
            pair(dst.w[2], dst.w[3]),
        ]
    };
    // SAFETY: `w` points at 8 writable u64 slots of `block`; each index
    // below is in 0..8.
    unsafe {
        w.write_volatile(values[0]);
        w.add(1).write_volatile(u64::from(port));
        w.add(2).write_volatile(values[1]);
        w.add(3).write_volatile(values[2]);
        w.add(4).write_volatile(values[3]);
        w.add(5).write_volatile(values[4]);
        w.add(6).write_volatile(0);
        w.add(7).write_volatile(0);
    }
    let p = w as *mut FibParams;
    // SAFETY: `block` is a writable, initialised block of exactly the size
    // of bpf_fib_lookup (asserted below) and outlives the call.
    let rc = unsafe {
        bpf_fib_lookup(
            ctx.skb.skb as *mut c_void,
            p,
            size_of::<FibParams>() as i32,
            0,
        )
    };
    // SAFETY: the helper filled in the block; plain field reads (the
    // tot_len/mtu_result union holds the device MTU on success).
    let (ifindex, smac, dmac, mtu) = unsafe {
        (
            (*p).ifindex,
            (*p).smac,
            (*p).dmac,
            (*p).__bindgen_anon_1.mtu_result,
        )
    };
    match rc as u32 {
        // FRAG_NEEDED: resolved, but the frame exceeds the device's MTU
        // even before encapsulation; the caller's size check says so.
        BPF_FIB_LKUP_RET_SUCCESS | BPF_FIB_LKUP_RET_FRAG_NEEDED => Hop {
            ifindex,
            routed: true,
            resolved: true,
            eth: [
                u32::from_ne_bytes([dmac[0], dmac[1], dmac[2], dmac[3]]),
                u32::from_ne_bytes([dmac[4], dmac[5], smac[0], smac[1]]),
                u32::from_ne_bytes([smac[2], smac[3], smac[4], smac[5]]),
            ],
            mtu: u32::from(mtu),
        },
        BPF_FIB_LKUP_RET_NO_NEIGH => Hop {
            ifindex,
            routed: true,
            resolved: false,
            eth: [0; 3],
            mtu: 0,
        },
        _ => Hop {
            ifindex: 0,
            routed: false,
            resolved: false,
            eth: [0; 3],
            mtu: 0,
        },
    }
}
