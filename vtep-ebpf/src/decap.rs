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
use network_types::{arp::ArpHdr, eth::EtherType};
use vtep_common::{
    caches::{Decision, Macs},
    consts::{ETH_HLEN, ETH_P_8021Q, VLAN_HLEN},
    counters::{Counter, DropReason},
    maps::{
        CONFIG_F_NO_DECAP_CACHE, Config, DECAP_META_MAGIC, DECISION_REMOTE_SHIFT, DecapMeta,
        FDB_F_DELIVERY, FDB_F_XDP, META_ACTION_DELIVER, META_ACTION_DELIVER_PEER,
        META_ACTION_FLOOD, PORT_F_PEER, REMOTE_F_GBP, REMOTE_F_LEARN, REMOTE_F_POLICY, RemoteKey,
        deliver_action,
    },
    policy::Gbp,
};

use crate::{
    arp, cache, ecn,
    encap::copy_to_ports,
    identity,
    learn::{Location, learn, lookup_until, now},
    maps::{CONFIG, Dropped, REMOTES, VNIS, count, count_binding_rx, count_drop, count_rx},
    nd,
    parse::{self, Vxlan, is, is_group, is_vlan},
    pkt, port,
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

/// Parse, then the cache, then authorise, learn, look up, deliver.
#[inline(always)]
fn try_xdp(ctx: &XdpContext) -> Result<u32, Dropped> {
    let cfg = CONFIG.load();
    let Some(pkt) = parse::vxlan(ctx.data(), ctx.data_end(), &cfg)? else {
        count(Counter::PassToKernel);
        return Ok(xdp_action::XDP_PASS);
    };
    let macs = cache_key(&pkt, &cfg);
    if let Some(macs) = macs
        && let Some(d) = cache::get(&pkt.saddr, pkt.vni, macs)
    {
        return deliver(ctx, d, &pkt);
    }
    // Read before the tables: a change after this makes the decision out
    // of date at once.
    let generation = if macs.is_some() {
        cache::generation(pkt.vni)
    } else {
        0
    };
    let sender = authorise(&pkt)?;
    learn_from(ctx, &pkt, &sender, &cfg);
    // SAFETY: `eth` is within the packet (checked by the parse).
    let dst = unsafe { (*pkt.eth).dst_addr };
    let entry = if is_group(&dst) {
        None
    } else {
        lookup_until(pkt.vni, dst, &cfg)
    };
    let Some((entry, until)) = entry else {
        return flood(ctx, &pkt, &sender);
    };
    if entry.ifindex == 0 {
        return Err((DropReason::RemoteToRemote, Some(sender.slot)));
    }
    let mut d = Decision {
        expires: 0,
        generation,
        saddr: pkt.saddr,
        vni: pkt.vni,
        macs: macs.unwrap_or_default(),
        ifindex: entry.ifindex,
        max_len: max_frame(ctx, entry.ifindex),
        slot: sender.slot,
        peer: sender.peer,
        flags: (entry.flags & FDB_F_DELIVERY)
            | ((sender.flags & (REMOTE_F_POLICY | REMOTE_F_GBP)) << DECISION_REMOTE_SHIFT),
        vid: entry.vid.into(),
        stats: entry.peer,
    };
    // An unknown port (max_len 0: the redirect fails) is not cached.
    if macs.is_some() && d.max_len != 0 {
        d.expires = cache::expiry(cache::jiffies(), until.saturating_sub(now()));
        cache::put(&d);
        count(Counter::DecapCacheFill);
    }
    deliver(ctx, &d, &pkt)
}

/// The cache key's MACs, if this frame may be decided from the cache: not
/// with the cache off, and never for ARP or Neighbor Discovery frames
/// (snooping learns from each) or tagged ones (dropped by the tables,
/// charged to their VNI).
#[inline(always)]
fn cache_key(pkt: &Vxlan, cfg: &Config) -> Option<Macs> {
    let end = pkt.rest.end();
    let cached = cfg.flags & CONFIG_F_NO_DECAP_CACHE == 0
        && !is(pkt.inner_type, EtherType::Arp)
        && !is_vlan(pkt.inner_type)
        && !(is(pkt.inner_type, EtherType::Ipv6) && nd::is_nd(pkt.eth as usize, end));
    // SAFETY: the 12 bytes of MACs are within the inner header parsed.
    cached.then(|| unsafe { cache::macs_at(pkt.eth as usize) })
}

/// The sending VTEP, as the VNI's `REMOTES` entry has it.
struct Sender {
    /// The VNI's stats slot.
    slot: u32,
    /// `REMOTE_F_*`.
    flags: u32,
    /// Its `PEER_STATS` slot.
    peer: u32,
}

/// Whether the sender may send this VNI, and the inner frame may be
/// carried (untagged, RFC 7348 §6.1; from a unicast source MAC).
#[inline(always)]
fn authorise(pkt: &Vxlan) -> Result<Sender, Dropped> {
    // One lookup answers both "is this VNI configured here?" and "may this
    // VTEP send it?": REMOTES only has entries for configured VNIs.
    let key = RemoteKey {
        vni: pkt.vni,
        ip: pkt.saddr,
    };
    let Some(remote) = REMOTES.get_ptr(key) else {
        // Off the fast path: name the reason.
        return Err(match VNIS.get_ptr(pkt.vni) {
            None => (DropReason::UnknownVni, None),
            // SAFETY: map values stay valid for the duration of the program.
            Some(info) => (DropReason::UnknownRemote, Some(unsafe { (*info).slot })),
        });
    };
    // SAFETY: as above.
    let remote = unsafe { &*remote };
    let sender = Sender {
        slot: remote.slot,
        flags: remote.flags,
        peer: remote.peer,
    };
    if is_vlan(pkt.inner_type) {
        return Err((DropReason::InnerVlan, Some(sender.slot)));
    }
    // SAFETY: `eth` is within the packet (checked by the parse).
    if is_group(&unsafe { (*pkt.eth).src_addr }) {
        return Err((DropReason::GroupSourceMac, Some(sender.slot)));
    }
    Ok(sender)
}

/// Learns the inner source MAC behind the sender, and from an ARP frame
/// the sender's IPv4 binding, when the VNI learns (and a VXLAN-GBP sender
/// did not set the D bit: draft-smith-vxlan-group-policy §2.1).
#[inline(always)]
fn learn_from(ctx: &XdpContext, pkt: &Vxlan, sender: &Sender, cfg: &Config) {
    if sender.flags & REMOTE_F_LEARN == 0
        || (sender.flags & REMOTE_F_GBP != 0 && Gbp::parse(pkt.vx.to_ne_bytes()).dont_learn)
    {
        return;
    }
    let at = Location {
        remote: pkt.saddr,
        ifindex: 0,
        vid: 0,
        flags: 0,
        peer: sender.peer,
    };
    // SAFETY: `eth` is within the packet (checked by the parse).
    if learn(ctx, pkt.vni, unsafe { (*pkt.eth).src_addr }, &at, cfg) {
        cache::bump(pkt.vni);
    }
    if is(pkt.inner_type, EtherType::Arp)
        && let Some(a) = pkt.rest.peek::<ArpHdr>()
    {
        // SAFETY: bounds checked by `peek`; ArpHdr is plain bytes.
        let a = unsafe { pkt::read::<ArpHdr>(a as usize) };
        if arp::is_ipv4_ether(&a) {
            arp::learn(pkt.vni, &a);
        }
    }
    if is(pkt.inner_type, EtherType::Ipv6)
        && nd::from_remote(pkt.vni, pkt.eth as usize, pkt.rest.end())
    {
        count(Counter::NeighLearned);
    }
}

/// BUM or unknown unicast: to every local port of the VNI (from TC, as
/// skb clones), never to another remote VTEP (split horizon).
#[inline(always)]
fn flood(ctx: &XdpContext, pkt: &Vxlan, sender: &Sender) -> Result<u32, Dropped> {
    let (n_ports, ingress) = VNIS.get_ptr(pkt.vni).map_or((0, 0), |info| {
        // SAFETY: map values stay valid for the duration of the program.
        unsafe { ((*info).n_ports, (*info).ingress) }
    });
    if n_ports == 0 {
        return Err((DropReason::NoFloodTarget, Some(sender.slot)));
    }
    if sender.flags & REMOTE_F_POLICY != 0 && !identity::police(ingress, pkt.inner_len) {
        return Err((DropReason::RateLimited, Some(sender.slot)));
    }
    ecn::decap(ctx, pkt).map_err(|r| (r, Some(sender.slot)))?;
    count_rx(sender.slot, sender.peer, pkt.inner_len.into());
    count(Counter::DecapFlood);
    let meta = DecapMeta {
        magic: DECAP_META_MAGIC,
        action: META_ACTION_FLOOD,
        vni: pkt.vni,
        ifindex: 0,
        vid: 0,
    };
    pass_up(ctx, pkt.strip, &meta, sender.slot)
}

/// Delivers the inner frame of `pkt` as decided by `d`: redirected from
/// XDP, or passed up to TC.
#[inline(always)]
fn deliver(ctx: &XdpContext, d: &Decision, pkt: &Vxlan) -> Result<u32, Dropped> {
    // A tag pushed here (XDP delivery) counts: the check below is the
    // kernel's for a tagged frame.
    let tag_len = if d.vid != 0 && d.flags & FDB_F_XDP != 0 {
        VLAN_HLEN as u32
    } else {
        0
    };
    if d.max_len != 0 && pkt.inner_len + tag_len > d.max_len {
        return Err((DropReason::TooBig, Some(d.slot)));
    }
    let remote_flags = d.flags >> DECISION_REMOTE_SHIFT;
    if remote_flags & REMOTE_F_POLICY != 0 {
        let vx = if remote_flags & REMOTE_F_GBP != 0 {
            pkt.vx
        } else {
            0
        };
        let to = u64::from(d.ifindex) | (u64::from(d.vid) << 32);
        // SAFETY: `eth` is within the packet (checked by the parse).
        let dst = unsafe { &(*pkt.eth).dst_addr };
        let vx_len = u64::from(vx) | (u64::from(pkt.inner_len) << 32);
        if !identity::from_remote(to, d.vni, d.slot, dst, vx_len) {
            // Counted by `identity`.
            return Ok(xdp_action::XDP_DROP);
        }
    }
    ecn::decap(ctx, pkt).map_err(|r| (r, Some(d.slot)))?;
    count_rx(d.slot, d.peer, pkt.inner_len.into());
    count_binding_rx(d.stats, pkt.inner_len.into());
    if d.flags & FDB_F_XDP != 0 {
        if d.vid != 0 {
            strip_and_tag(ctx, pkt, d.vid as u16, d.slot)?;
        } else {
            strip_outer(ctx, pkt.strip, d.slot)?;
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
    pass_up(ctx, pkt.strip, &meta, d.slot)
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
fn strip_outer(ctx: &XdpContext, len: usize, slot: u32) -> Result<(), Dropped> {
    // SAFETY: `ctx.ctx` is the xdp_md the kernel passed; the kernel checks
    // that the new head stays within the buffer.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, len as i32) } != 0 {
        return Err((DropReason::KernelRefused, Some(slot)));
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
        return Err((DropReason::KernelRefused, Some(slot)));
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
    let refused = (DropReason::KernelRefused, Some(slot));
    // SAFETY: as for `bpf_xdp_adjust_head`; the kernel checks the room.
    if unsafe { bpf_xdp_adjust_meta(ctx.ctx, -(size_of::<DecapMeta>() as i32)) } != 0 {
        return Err(refused);
    }
    // Pointers are re-derived after every head/meta adjustment.
    let at = ctx.metadata();
    if at + size_of::<DecapMeta>() > ctx.data() {
        return Err(refused);
    }
    // SAFETY: the metadata area [at, at + 16) was just checked to lie
    // before `data`.
    unsafe { pkt::write(at, *meta) };
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
    let m = unsafe { pkt::read::<DecapMeta>(meta) };
    if m.magic != DECAP_META_MAGIC {
        return TC_ACT_OK;
    }
    let to = match m.action {
        META_ACTION_DELIVER => 0,
        META_ACTION_DELIVER_PEER => PORT_F_PEER,
        META_ACTION_FLOOD => {
            if let Some(info) = VNIS.get_ptr(m.vni) {
                // SAFETY: map values stay valid for the duration of the
                // program.
                copy_to_ports(ctx, unsafe { &*info }, (0, 0));
            }
            return TC_ACT_SHOT;
        }
        _ => return TC_ACT_OK,
    };
    port::to_binding(ctx, m.ifindex, m.vid as u16, to).unwrap_or_else(|reason| {
        count_drop(reason, None);
        TC_ACT_SHOT
    })
}
