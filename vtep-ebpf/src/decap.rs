//! Decapsulation: XDP on the underlay, TC ingress on the underlay.
//!
//! XDP parses outer Ethernet/IPv4/UDP/VXLAN, validates the VNI and the
//! sending VTEP, looks up the inner destination and strips the outer
//! headers. A frame for a port that accepts XDP frames is redirected from
//! here; any other frame is passed up with a [`DecapMeta`] in front of it,
//! and the TC program delivers it (or clones it to every port of the VNI)
//! as an skb. Frames that are not VXLAN for us pass to the kernel untouched.

use core::{ffi::c_void, mem::size_of};

use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT, xdp_action},
    helpers::{bpf_check_mtu, bpf_redirect, bpf_xdp_adjust_head, bpf_xdp_adjust_meta},
    programs::{TcContext, XdpContext},
};
use aya_log_ebpf::warn;
use network_types::{eth::EthHdr, ip::Ipv4Hdr, udp::UdpHdr, vxlan::VxlanHdr};
use vtep_common::{
    consts::{
        ETH_HLEN, ETH_P_ARP, ETH_P_IP, IPPROTO_UDP, IPV4_HLEN, UDP_HLEN, VLAN_HLEN, VXLAN_HLEN,
    },
    counters::{Counter, DropReason},
    maps::{
        CONFIG_F_NO_DECAP_CACHE, DECAP_META_MAGIC, DecapMeta, FDB_F_XDP, META_ACTION_DELIVER,
        META_ACTION_FLOOD, REMOTE_F_LEARN, RemoteKey,
    },
    vxlan::{VXLAN_FLAG_I, vni_of},
};

use crate::{
    arp::{self, Arp},
    cache::{self, Decision, Macs},
    encap::copy_to_ports,
    learn::{Location, learn, lookup_until, now},
    maps::{CONFIG, REMOTES, VNIS, count, count_drop, count_rx},
    parse::{Cursor, is_group, is_vlan},
};

/// A drop: why, and the stats slot of the VNI to charge it to once known.
type Drop = (DropReason, Option<u32>);

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
fn pass() -> Result<u32, Drop> {
    count(Counter::PassToKernel);
    Ok(xdp_action::XDP_PASS)
}

#[inline(always)]
fn try_xdp(ctx: &XdpContext) -> Result<u32, Drop> {
    let cfg = CONFIG.load();
    let data = ctx.data();
    let mut c = Cursor::new(data, ctx.data_end());

    let Some(eth) = c.next::<EthHdr>() else {
        return pass();
    };
    // SAFETY: `next` checked that the header lies within the packet.
    if unsafe { (*eth).ether_type } != ETH_P_IP.to_be() {
        return pass();
    }
    let Some(ip) = c.next::<Ipv4Hdr>() else {
        return pass();
    };
    // SAFETY: as above, for every header read below.
    let (vihl, proto, ttl, frags, tot_len, saddr, daddr) = unsafe {
        (
            (*ip).vihl,
            (*ip).proto,
            (*ip).ttl,
            u16::from_be_bytes((*ip).frags),
            u16::from_be_bytes((*ip).tot_len),
            u32::from_ne_bytes((*ip).src_addr),
            u32::from_ne_bytes((*ip).dst_addr),
        )
    };
    if vihl >> 4 != 4 || daddr != cfg.local_ip || proto != IPPROTO_UDP {
        return pass();
    }
    // A later fragment carries no UDP header: the kernel's business.
    if frags & 0x1fff != 0 {
        return pass();
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    if ihl < IPV4_HLEN {
        return pass();
    }
    if c.skip(ihl - IPV4_HLEN).is_none() {
        return pass();
    }
    let Some(udp) = c.next::<UdpHdr>() else {
        return pass();
    };
    // SAFETY: bounds checked by `next`.
    let (dport, udp_len) = unsafe { ((*udp).dst, u16::from_be_bytes((*udp).len)) };
    if dport != cfg.udp_port.to_be_bytes() {
        return pass();
    }

    // VXLAN for us from here on: anything wrong is a counted drop.
    let malformed = (DropReason::Malformed, None);
    // A first fragment (MF set): VTEPs never fragment (RFC 7348 §4.3), and
    // we do not reassemble. TTL 0 never arrives from a real sender.
    if frags & 0x2000 != 0 || ttl == 0 {
        return Err(malformed);
    }
    let udp_len = usize::from(udp_len);
    let avail = ctx.data_end() - (c.pos() - UDP_HLEN);
    if udp_len < UDP_HLEN + VXLAN_HLEN + ETH_HLEN
        || udp_len > avail
        || usize::from(tot_len) < ihl + udp_len
    {
        return Err(malformed);
    }
    let vx = c.next::<VxlanHdr>().ok_or(malformed)?;
    // SAFETY: bounds checked by `next`; VxlanHdr is 8 plain bytes.
    let vx = unsafe { *(vx as *const [u8; 8]) };
    // RFC 7348 §5: the I flag MUST be set; reserved bits are ignored on
    // receipt.
    if vx[0] & VXLAN_FLAG_I == 0 {
        return Err((DropReason::NoIFlag, None));
    }
    let vni = vni_of(&vx);
    // udp_len >= 30 and within the packet, checked above: the inner
    // Ethernet header is there; the check is for the verifier.
    let inner = c.next::<EthHdr>().ok_or(malformed)?;
    let inner_start = c.pos() - ETH_HLEN;
    let strip = inner_start - data;
    let inner_len = (ctx.data_end() - inner_start) as u32;
    // SAFETY: bounds checked by `next`.
    let inner_type = unsafe { (*inner).ether_type };
    // ARP frames always take the tables (ARP snooping learns from each),
    // and so do tagged frames (dropped there, charged to their VNI).
    let cached = cfg.flags & CONFIG_F_NO_DECAP_CACHE == 0
        && inner_type != ETH_P_ARP.to_be()
        && !is_vlan(inner_type);
    // SAFETY: the 12 bytes of MACs are within the inner header checked.
    let macs = cached.then(|| unsafe { Macs::at(inner_start) });
    if let Some(macs) = macs
        && let Some(d) = cache::get(saddr, vni, macs)
    {
        return deliver(ctx, d, strip, inner_len);
    }
    // Read before the tables: a change after this makes the decision out
    // of date at once.
    let generation = if cached { cache::generation() } else { 0 };
    // SAFETY: bounds checked by `next`.
    let (dst, src) = unsafe { ((*inner).dst_addr, (*inner).src_addr) };

    // One lookup answers both "is this VNI configured here?" and "may this
    // VTEP send it?": REMOTES only has entries for configured VNIs.
    let Some(remote) = REMOTES.get_ptr(RemoteKey { vni, ip: saddr }) else {
        // Off the fast path: name the reason.
        return Err(match VNIS.get_ptr(vni) {
            None => (DropReason::UnknownVni, None),
            // SAFETY: map values stay valid for the duration of the program.
            Some(info) => (DropReason::UnknownRemote, Some(unsafe { (*info).slot })),
        });
    };
    // SAFETY: as above.
    let (slot, remote_flags, peer) = unsafe { ((*remote).slot, (*remote).flags, (*remote).peer) };
    if is_vlan(inner_type) {
        return Err((DropReason::InnerVlan, Some(slot)));
    }
    if is_group(&src) {
        return Err((DropReason::GroupSourceMac, Some(slot)));
    }
    if remote_flags & REMOTE_F_LEARN != 0 {
        let at = Location {
            remote: saddr,
            ifindex: 0,
            flags: 0,
            peer,
        };
        learn(ctx, vni, src, &at, &cfg);
        if inner_type == ETH_P_ARP.to_be()
            && let Some(a) = c.next::<Arp>()
        {
            // SAFETY: bounds checked by `next`; Arp is plain bytes.
            let a = unsafe { a.read_unaligned() };
            if a.is_ipv4_ether() {
                arp::learn(vni, &a);
            }
        }
    }

    let entry = if is_group(&dst) {
        None
    } else {
        lookup_until(vni, dst, &cfg)
    };
    let Some((entry, until)) = entry else {
        // BUM or unknown unicast: to every local port of the VNI, never to
        // another remote VTEP (split horizon).
        let n_ports = VNIS.get_ptr(vni).map_or(0, |info| {
            // SAFETY: map values stay valid for the duration of the program.
            unsafe { (*info).n_ports }
        });
        if n_ports == 0 {
            return Err((DropReason::NoFloodTarget, Some(slot)));
        }
        count_rx(slot, peer, inner_len.into());
        count(Counter::DecapFlood);
        return pass_up(ctx, strip, META_ACTION_FLOOD, vni, slot, 0);
    };
    if entry.ifindex == 0 {
        return Err((DropReason::RemoteToRemote, Some(slot)));
    }
    let mut d = Decision {
        expires: 0,
        generation,
        saddr,
        vni,
        macs: macs.unwrap_or_default(),
        ifindex: entry.ifindex,
        max_len: max_frame(ctx, entry.ifindex),
        slot,
        peer,
        flags: entry.flags & FDB_F_XDP,
        _pad: 0,
    };
    // An unknown port (max_len 0: the redirect fails) is not cached.
    if macs.is_some() && d.max_len != 0 {
        d.expires = cache::expiry(cache::jiffies(), until.saturating_sub(now()));
        cache::put(&d);
        count(Counter::DecapCacheFill);
    }
    deliver(ctx, &d, strip, inner_len)
}

/// Delivers the inner frame (`inner_len` bytes after `strip` bytes of outer
/// headers) as decided by `d`: redirected from XDP, or passed up to TC.
#[inline(always)]
fn deliver(ctx: &XdpContext, d: &Decision, strip: usize, inner_len: u32) -> Result<u32, Drop> {
    if d.max_len != 0 && inner_len > d.max_len {
        return Err((DropReason::TooBig, Some(d.slot)));
    }
    count_rx(d.slot, d.peer, inner_len.into());
    if d.flags & FDB_F_XDP != 0 {
        strip_outer(ctx, strip, d.slot)?;
        count(Counter::DecapXdp);
        // SAFETY: plain helper call; an unknown ifindex fails the redirect.
        return Ok(unsafe { bpf_redirect(d.ifindex, 0) } as u32);
    }
    count(Counter::DecapSkb);
    pass_up(ctx, strip, META_ACTION_DELIVER, d.vni, d.slot, d.ifindex)
}

/// The largest frame port `ifindex` takes: its MTU plus its Ethernet
/// header plus a VLAN tag's 4 bytes, as the kernel's forwarding check
/// allows (after a redirect, the kernel would drop a larger frame without
/// a word). 0 for an unknown ifindex (not for this check to judge: the
/// redirect fails).
#[inline(always)]
fn max_frame(ctx: &XdpContext, ifindex: u32) -> u32 {
    let mut mtu = 0u32;
    // SAFETY: `ctx.ctx` is the xdp_md the kernel passed; `mtu` is writable
    // for the call (0 in: check the frame's own length; the MTU out).
    let rc = unsafe { bpf_check_mtu(ctx.ctx as *mut c_void, ifindex, &mut mtu, 0, 0) };
    if rc < 0 {
        return 0;
    }
    mtu + (ETH_HLEN + VLAN_HLEN) as u32
}

/// Removes the `len` bytes of outer headers in front of the inner frame.
#[inline(always)]
fn strip_outer(ctx: &XdpContext, len: usize, slot: u32) -> Result<(), Drop> {
    // SAFETY: `ctx.ctx` is the xdp_md the kernel passed; the kernel checks
    // that the new head stays within the buffer.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, len as i32) } != 0 {
        return Err((DropReason::KernelRefused, Some(slot)));
    }
    Ok(())
}

/// Strips the outer headers and passes the inner frame up to
/// `vtep_decap_tc` with `action` in the metadata area.
#[inline(always)]
fn pass_up(
    ctx: &XdpContext,
    strip: usize,
    action: u32,
    vni: u32,
    slot: u32,
    ifindex: u32,
) -> Result<u32, Drop> {
    strip_outer(ctx, strip, slot)?;
    let refused = (DropReason::KernelRefused, Some(slot));
    // SAFETY: as for `bpf_xdp_adjust_head`; the kernel checks the room.
    if unsafe { bpf_xdp_adjust_meta(ctx.ctx, -(size_of::<DecapMeta>() as i32)) } != 0 {
        return Err(refused);
    }
    // Pointers are re-derived after every head/meta adjustment.
    let meta = ctx.metadata();
    if meta + size_of::<DecapMeta>() > ctx.data() {
        return Err(refused);
    }
    // SAFETY: the metadata area [meta, meta + 16) was just checked to lie
    // before `data`.
    unsafe {
        (meta as *mut DecapMeta).write_unaligned(DecapMeta {
            magic: DECAP_META_MAGIC,
            action,
            vni,
            ifindex,
        })
    };
    Ok(xdp_action::XDP_PASS)
}

/// TC entry: finishes what XDP decided for frames it passed up.
#[inline(always)]
pub fn tc(ctx: &TcContext) -> i32 {
    // SAFETY: `skb` is the __sk_buff the kernel passed to the program.
    let meta = unsafe { (*ctx.skb.skb).data_meta } as usize;
    if meta + size_of::<DecapMeta>() > ctx.data() {
        return TC_ACT_OK;
    }
    // SAFETY: [meta, meta + 16) lies before `data`, checked just above.
    let m = unsafe { (meta as *const DecapMeta).read_unaligned() };
    if m.magic != DECAP_META_MAGIC {
        return TC_ACT_OK;
    }
    match m.action {
        // SAFETY: plain helper call.
        META_ACTION_DELIVER => unsafe { bpf_redirect(m.ifindex, 0) as i32 },
        META_ACTION_FLOOD => {
            if let Some(info) = VNIS.get_ptr(m.vni) {
                // SAFETY: map values stay valid for the duration of the
                // program.
                copy_to_ports(ctx, unsafe { &*info }, 0);
            }
            TC_ACT_SHOT
        }
        _ => TC_ACT_OK,
    }
}
