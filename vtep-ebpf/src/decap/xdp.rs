//! Decapsulation in XDP: the frame leaves redirected to a port that takes
//! XDP frames, or passed up to `vtep_decap_tc` with its decision in the
//! XDP metadata (a [`DecapMeta`]): delivery as an skb, and flooding (cloning
//! needs an skb).

use core::mem::{offset_of, size_of};

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_redirect, bpf_xdp_adjust_head, bpf_xdp_adjust_meta},
    programs::XdpContext,
};
use aya_log_ebpf::warn;
use vtep_common::{
    caches::Decision,
    consts::{ETH_P_8021Q, VLAN_HLEN},
    counters::{Counter, DropReason},
    maps::{DECAP_META_MAGIC, DecapMeta, FDB_F_XDP, META_ACTION_FLOOD, deliver_action},
};

use super::{Exit, process};
use crate::{
    maps::{Dropped, config, count, count_drop},
    parse::{self, Vxlan},
    pkt,
};

/// XDP entry: see the module docs.
#[inline(always)]
pub fn xdp(ctx: &XdpContext) -> u32 {
    match try_xdp(ctx) {
        Ok(action) => action,
        Err((reason, slot)) => {
            count_drop(reason, slot);
            if reason == DropReason::KernelRefused {
                warn!(ctx, "decap: the kernel refused to strip or pass up a frame");
            }
            xdp_action::XDP_DROP
        }
    }
}

#[inline(always)]
fn try_xdp(ctx: &XdpContext) -> Result<u32, Dropped> {
    let cfg = config();
    let (data, end) = (ctx.data(), ctx.data_end());
    let Some(pkt) = parse::vxlan(data, end, end - data, cfg)? else {
        count(Counter::PassToKernel);
        return Ok(xdp_action::XDP_PASS);
    };
    process(ctx, &pkt, cfg)
}

impl Exit for XdpContext {
    type Action = u32;
    const DROPPED: u32 = xdp_action::XDP_DROP;

    /// A tag pushed here (XDP delivery) counts: the kernel's check is for
    /// a tagged frame. One pushed in TC is the skb's, outside the frame.
    #[inline(always)]
    fn fits(&self, d: &Decision, pkt: &Vxlan) -> bool {
        let tag = if d.vid != 0 && d.flags & FDB_F_XDP != 0 {
            VLAN_HLEN as u32
        } else {
            0
        };
        pkt.inner_len + tag <= d.max_len
    }

    #[inline(always)]
    fn deliver(&self, d: &Decision, pkt: &Vxlan) -> Result<u32, Dropped> {
        if d.flags & FDB_F_XDP != 0 {
            if d.vid != 0 {
                strip_and_tag(self, pkt, d.vid as u16, d.slot)?;
            } else {
                strip_outer(self, pkt.strip, d.slot)?;
            }
            count(Counter::DecapXdp);
            // SAFETY: plain helper call; an unknown ifindex fails the redirect.
            return Ok(unsafe { bpf_redirect(d.ifindex, 0) } as u32);
        }
        count(Counter::DecapSkb);
        let meta = DecapMeta {
            magic: DECAP_META_MAGIC,
            action: deliver_action(d.flags),
            vni: d.vni,
            ifindex: d.ifindex,
            vid: d.vid,
        };
        pass_up(self, pkt.strip, &meta, d.slot)
    }

    #[inline(always)]
    fn flood(&self, pkt: &Vxlan, slot: u32) -> Result<u32, Dropped> {
        let meta = DecapMeta {
            magic: DECAP_META_MAGIC,
            action: META_ACTION_FLOOD,
            vni: pkt.vni,
            ifindex: 0,
            vid: 0,
        };
        pass_up(self, pkt.strip, &meta, slot)
    }
}

/// Removes the `len` bytes of outer headers in front of the inner frame.
#[inline(always)]
fn strip_outer(ctx: &XdpContext, len: usize, slot: u32) -> Result<(), Dropped> {
    // SAFETY: `ctx.ctx` is the xdp_md the kernel passed; the kernel checks
    // that the new head stays within the buffer.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, len as i32) } != 0 {
        return Err((DropReason::KernelRefused, slot));
    }
    Ok(())
}

/// Strips the outer headers but 4 bytes, and turns the inner frame into
/// one tagged with `vid` (802.1Q): its MACs moved 4 bytes forward, the
/// tag written behind them, in front of the inner EtherType.
#[inline(always)]
fn strip_and_tag(ctx: &XdpContext, pkt: &Vxlan, vid: u16, slot: u32) -> Result<(), Dropped> {
    // SAFETY: the 12 bytes of MACs are within the inner header parsed.
    let macs = unsafe { pkt::read::<[u8; 12]>(pkt.eth as usize) };
    strip_outer(ctx, pkt.strip - VLAN_HLEN, slot)?;
    // Pointers are re-derived after the head adjustment.
    let at = ctx.data();
    if at + 2 * 6 + VLAN_HLEN > ctx.data_end() {
        return Err((DropReason::KernelRefused, slot));
    }
    let tpid = ETH_P_8021Q.to_be_bytes();
    let tci = vid.to_be_bytes();
    // SAFETY: [at, at + 16) lies within the frame, checked just above.
    unsafe {
        pkt::write(at, macs);
        pkt::write(at + 12, [tpid[0], tpid[1], tci[0], tci[1]]);
    }
    Ok(())
}

/// Strips the outer headers and passes the inner frame up to
/// `vtep_decap_tc` with `meta` in the metadata area; a refusal is charged
/// to the VNI in `slot`.
#[inline(always)]
fn pass_up(ctx: &XdpContext, strip: usize, meta: &DecapMeta, slot: u32) -> Result<u32, Dropped> {
    strip_outer(ctx, strip, slot)?;
    let refused = (DropReason::KernelRefused, slot);
    // SAFETY: as for `bpf_xdp_adjust_head`; the kernel checks the room.
    if unsafe { bpf_xdp_adjust_meta(ctx.ctx, -(size_of::<DecapMeta>() as i32)) } != 0 {
        return Err(refused);
    }
    // Pointers are re-derived after every head/meta adjustment.
    let at = ctx.metadata();
    if at + size_of::<DecapMeta>() > ctx.data() {
        return Err(refused);
    }
    // Field by field, straight from registers: built on the stack and
    // copied in 8-byte words, each word's load waited on the two 4-byte
    // stores behind it (store forwarding fails): the hottest spot of this
    // program in a profile (AMD EPYC, perf cpu-clock samples).
    // SAFETY: the metadata area [at, at + 20) was just checked to lie
    // before `data`.
    unsafe {
        pkt::put_u32_off::<{ offset_of!(DecapMeta, magic) }>(at, meta.magic);
        pkt::put_u32_off::<{ offset_of!(DecapMeta, action) }>(at, meta.action);
        pkt::put_u32_off::<{ offset_of!(DecapMeta, vni) }>(at, meta.vni);
        pkt::put_u32_off::<{ offset_of!(DecapMeta, ifindex) }>(at, meta.ifindex);
        pkt::put_u32_off::<{ offset_of!(DecapMeta, vid) }>(at, meta.vid);
    }
    Ok(xdp_action::XDP_PASS)
}
