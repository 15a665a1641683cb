//! Decapsulation of what the underlay's GRO merged, where the underlay
//! runs no XDP (`vtep up --xdp-mode off`).
//!
//! GRO runs before TC, and merges VXLAN packets only for a UDP tunnel
//! socket that tells it how: the kernel's vxlan's. So an instance that
//! decapsulates in TC keeps a kernel vxlan device in metadata mode next to
//! its underlay (`vtx<N>`, made by `vtep up`: no VNI, no FDB, no learning
//! of its own), whose socket lets GRO put a VM's TCP segments back
//! together per flow (same VNI, inner MACs and flow), still encapsulated.
//! `vtep_decap_tc` leaves such a merged packet (a GSO skb) to the kernel:
//! its vxlan strips the outer headers and clears the tunnel offload state
//! (which a BPF program cannot on Linux 6.18), checks the VXLAN flags,
//! passes the outer ECN on (RFC 6040 §4.2, as `ecn` does) and hands the
//! inner frame to the device, the outer addresses, the VNI and (VXLAN-GBP)
//! the group as its tunnel metadata. This program, on the device's TC
//! ingress, decides it as every other frame ([`process`]: authorise,
//! learn, look up, policy, count) and hands it to the port. Nothing is
//! left to the device's own stack: every frame is redirected or dropped.

use core::mem::{MaybeUninit, size_of};

use aya_ebpf::{
    EbpfContext,
    bindings::{BPF_F_TUNINFO_IPV6, TC_ACT_SHOT, bpf_tunnel_key},
    helpers::{bpf_skb_get_tunnel_key, bpf_skb_get_tunnel_opt},
    programs::TcContext,
};
use network_types::eth::EthHdr;
use vtep_common::{
    addr::Addr,
    caches::Decision,
    consts::{ETH_HLEN, IPV6_HLEN},
    counters::{Counter, DropReason},
    ecn::ECN_MASK,
    maps::{CONFIG_F_DECAP_TC, Config, FDB_F_PEER, PORT_F_PEER},
    policy::gbp_word_of_metadata,
};

use super::{Exit, process};
use crate::{
    encap::copy_to_ports,
    maps::{Dropped, NO_SLOT, VNIS, config, count, count_drop},
    parse::{Cursor, Vxlan},
    port,
};

/// A frame the kernel's vxlan decapsulated, in TC ingress of its device.
pub struct Merged {
    ctx: TcContext,
}

impl EbpfContext for Merged {
    fn as_ptr(&self) -> *mut core::ffi::c_void {
        self.ctx.as_ptr()
    }
}

/// TC entry: see the module docs.
#[inline(always)]
pub fn merged(ctx: TcContext) -> i32 {
    let m = Merged { ctx };
    match try_merged(&m) {
        Ok(action) => action,
        Err((reason, slot)) => {
            count_drop(reason, slot);
            TC_ACT_SHOT
        }
    }
}

#[inline(always)]
fn try_merged(m: &Merged) -> Result<i32, Dropped> {
    let cfg = config();
    let Some(tunnel) = tunnel(&m.ctx, cfg) else {
        // Not from the device's socket (nothing else sends into it).
        return Err((DropReason::KernelRefused, NO_SLOT));
    };
    if cfg.flags & CONFIG_F_DECAP_TC == 0 || tunnel.local != cfg.local_ip {
        // VXLAN to another of the host's addresses, or an instance that
        // never made the device: not ours to decapsulate.
        return Err((DropReason::NotToUs, NO_SLOT));
    }
    let ctx = &m.ctx;
    let len = ctx.len();
    // The inner Ethernet header is linear (the kernel's vxlan pulled it);
    // what the decision reads behind it (IPv6's next header, for Neighbor
    // Discovery) may not be.
    let want = ((ETH_HLEN + IPV6_HLEN) as u32).min(len);
    if ((ctx.data_end() - ctx.data()) as u32) < want {
        let _ = ctx.pull_data(want);
    }
    let mut rest = Cursor::new(ctx.data(), ctx.data_end());
    let eth = rest
        .next::<EthHdr>()
        .ok_or((DropReason::InnerTooShort, NO_SLOT))?;
    let pkt = Vxlan {
        saddr: tunnel.remote,
        vni: tunnel.vni,
        eth,
        // SAFETY: `next` checked that the header lies within the packet.
        inner_type: unsafe { (*eth).ether_type },
        strip: 0,
        inner_len: len,
        rest,
        // The ECN was passed on by the kernel already.
        outer_ds: tunnel.tos & !ECN_MASK,
        vx: u32::from_ne_bytes(gbp_word_of_metadata(tunnel.gbp)),
    };
    process(m, &pkt, cfg)
}

/// The outer headers, as the kernel's vxlan left them in the skb's tunnel
/// metadata.
struct Tunnel {
    remote: Addr,
    local: Addr,
    vni: u32,
    tos: u8,
    /// `struct vxlan_metadata`'s `gbp` (0 without VXLAN-GBP).
    gbp: u32,
}

/// The skb's tunnel metadata, in the instance's underlay family (`cfg`).
#[inline(always)]
fn tunnel(ctx: &TcContext, cfg: &Config) -> Option<Tunnel> {
    let v4 = cfg.local_ip.is_v4();
    let flags = if v4 { 0 } else { BPF_F_TUNINFO_IPV6 };
    let mut key = MaybeUninit::<bpf_tunnel_key>::uninit();
    // SAFETY: `key` is writable for its whole size, which is what the
    // helper is told; it fills all of it or fails.
    let rc = unsafe {
        bpf_skb_get_tunnel_key(
            ctx.skb.skb,
            key.as_mut_ptr(),
            size_of::<bpf_tunnel_key>() as u32,
            flags.into(),
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: the helper filled the key in (rc 0).
    let key = unsafe { key.assume_init() };
    // IPv4 addresses come in host order, IPv6 ones as on the wire.
    // SAFETY: the union members the family says the kernel wrote.
    let (remote, local) = unsafe {
        if v4 {
            (
                Addr::v4(key.__bindgen_anon_1.remote_ipv4.to_be()),
                Addr::v4(key.__bindgen_anon_3.local_ipv4.to_be()),
            )
        } else {
            (
                Addr {
                    w: key.__bindgen_anon_1.remote_ipv6,
                },
                Addr {
                    w: key.__bindgen_anon_3.local_ipv6,
                },
            )
        }
    };
    let mut gbp = 0u32;
    // SAFETY: `gbp` is writable for the 4 bytes the helper is told; the
    // device carries VXLAN-GBP metadata, a u32, or none (an error, `gbp`
    // then stays 0).
    unsafe {
        bpf_skb_get_tunnel_opt(
            ctx.skb.skb,
            (&mut gbp as *mut u32).cast(),
            size_of::<u32>() as u32,
        )
    };
    Some(Tunnel {
        remote,
        local,
        vni: key.tunnel_id & 0x00ff_ffff,
        tos: key.tunnel_tos,
        gbp,
    })
}

impl Exit for Merged {
    type Action = i32;
    const DROPPED: i32 = TC_ACT_SHOT;

    /// A merged frame (GSO) is judged by its segments, as the kernel's
    /// forwarding check does; any other by its length.
    #[inline(always)]
    fn fits(&self, d: &Decision, pkt: &Vxlan) -> bool {
        // SAFETY: `skb` is the __sk_buff the kernel passed to the program.
        let gso_size = unsafe { (*self.ctx.skb.skb).gso_size };
        gso_size != 0 || pkt.inner_len <= d.max_len
    }

    #[inline(always)]
    fn deliver(&self, d: &Decision, _: &Vxlan) -> Result<i32, Dropped> {
        count(Counter::DecapSkb);
        // The kernel set the inner frame's protocol: any may go into a
        // veth peer.
        let to = if d.flags & FDB_F_PEER != 0 {
            PORT_F_PEER
        } else {
            0
        };
        port::to_binding(&self.ctx, d.ifindex, d.vid as u16, to).map_err(|r| (r, d.slot))
    }

    #[inline(always)]
    fn flood(&self, pkt: &Vxlan, _: u32) -> Result<i32, Dropped> {
        if let Some(info) = VNIS.get_ptr(pkt.vni) {
            // SAFETY: map values stay valid for the duration of the program.
            copy_to_ports(&self.ctx, unsafe { &*info }, (0, 0));
        }
        Ok(TC_ACT_SHOT)
    }
}
