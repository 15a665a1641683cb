//! Decapsulation on the underlay, in XDP (`xdp`) or, where the underlay
//! runs no XDP (`vtep up --xdp-mode off`), in TC ingress (`tc`), and there
//! of what GRO merged behind the kernel's vxlan (`merged`).
//!
//! Both parse outer Ethernet/IPv4 or IPv6/UDP/VXLAN, validate the VNI and
//! the sending VTEP, learn, look the inner destination up (through the
//! per-CPU decision cache), apply policy and ECN and count, here in
//! [`process`], once for both; only how a decided frame leaves differs
//! ([`Exit`]): XDP strips and redirects to a port that takes XDP frames or
//! passes the frame up to TC with a [`DecapMeta`](vtep_common::maps::DecapMeta)
//! in front of it; TC strips the skb and hands it to the port itself; a
//! merged frame comes stripped by the kernel and is handed over.
//! Frames that are not VXLAN for us pass to the kernel untouched.

mod merged;
mod tc;
mod xdp;

use aya_ebpf::{EbpfContext, helpers::bpf_check_mtu};
use network_types::{arp::ArpHdr, eth::EtherType};
use vtep_common::{
    caches::{Decision, Macs},
    consts::{ETH_HLEN, VLAN_HLEN},
    counters::{Counter, DropReason},
    maps::{
        CONFIG_F_NO_DECAP_CACHE, Config, DECISION_REMOTE_SHIFT, FDB_F_DELIVERY, REMOTE_F_GBP,
        REMOTE_F_LEARN, REMOTE_F_POLICY, RemoteKey,
    },
    policy::{Gbp, Receiver},
};

pub use self::{merged::merged, tc::tc, xdp::xdp};
use crate::{
    arp, cache, ecn, identity,
    learn::{Location, learn, lookup_until},
    maps::{Dropped, NO_SLOT, REMOTES, VNIS, count, count_binding_rx, count_rx},
    nd,
    parse::{Vxlan, is, is_group, is_vlan},
    pkt,
};

/// How a decided frame leaves the program: what differs between
/// decapsulating in XDP and in TC.
pub trait Exit: EbpfContext {
    /// The program's return value.
    type Action;
    /// What the program returns for a frame policy dropped (counted by
    /// `identity`).
    const DROPPED: Self::Action;
    /// Whether the inner frame of `pkt` fits port `d` (`d.max_len`, not
    /// 0), as the frame handed over will be.
    fn fits(&self, d: &Decision, pkt: &Vxlan) -> bool;
    /// Strips `pkt`'s outer headers and hands the inner frame to the port
    /// `d` names (admitted and counted already).
    fn deliver(&self, d: &Decision, pkt: &Vxlan) -> Result<Self::Action, Dropped>;
    /// Strips `pkt`'s outer headers and floods the inner frame to every
    /// local port of its VNI (admitted and counted already); a refusal is
    /// charged to the VNI in `slot`.
    fn flood(&self, pkt: &Vxlan, slot: u32) -> Result<Self::Action, Dropped>;
}

/// The cache, then authorise, learn, look up, deliver: a VXLAN frame for
/// us, from either program.
#[inline(always)]
pub fn process<C: Exit>(ctx: &C, pkt: &Vxlan, cfg: &Config) -> Result<C::Action, Dropped> {
    let macs = cache_key(pkt, cfg);
    if let Some(macs) = macs
        && let Some(d) = cache::get(&pkt.saddr, pkt.vni, macs)
    {
        return deliver(ctx, d, pkt);
    }
    // Read before the tables: a change after this makes the decision out
    // of date at once.
    let generation = if macs.is_some() {
        cache::decap_generation(pkt.vni)
    } else {
        0
    };
    let sender = authorise(pkt)?;
    learn_from(ctx, pkt, &sender, cfg);
    // SAFETY: `eth` is within the packet (checked by the parse).
    let dst = unsafe { (*pkt.eth).dst_addr };
    let entry = if is_group(&dst) {
        None
    } else {
        lookup_until(pkt.vni, dst, cfg)
    };
    let Some((entry, until)) = entry else {
        return flood(ctx, pkt, &sender);
    };
    if entry.ifindex == 0 {
        return Err((DropReason::RemoteToRemote, sender.slot));
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
        receiver: Receiver::default(),
    };
    if sender.flags & REMOTE_F_POLICY != 0 {
        let to = u64::from(d.ifindex) | (u64::from(d.vid) << 32);
        identity::receiver(to, d.vni, &dst, &mut d.receiver);
    }
    // An unknown port (max_len 0: the redirect fails) is not cached.
    if macs.is_some() && d.max_len != 0 {
        d.expires = cache::expiry(until, cfg);
        cache::put(&d);
        count(Counter::DecapCacheFill);
    }
    deliver(ctx, &d, pkt)
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
            None => (DropReason::UnknownVni, NO_SLOT),
            // SAFETY: map values stay valid for the duration of the program.
            Some(info) => (DropReason::UnknownRemote, unsafe { (*info).slot }),
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
        return Err((DropReason::InnerVlan, sender.slot));
    }
    // SAFETY: `eth` is within the packet (checked by the parse).
    if is_group(&unsafe { (*pkt.eth).src_addr }) {
        return Err((DropReason::GroupSourceMac, sender.slot));
    }
    Ok(sender)
}

/// Learns the inner source MAC behind the sender, and from an ARP frame
/// the sender's IPv4 binding, when the VNI learns (and a VXLAN-GBP sender
/// did not set the D bit: draft-smith-vxlan-group-policy §2.1).
#[inline(always)]
fn learn_from<C: EbpfContext>(ctx: &C, pkt: &Vxlan, sender: &Sender, cfg: &Config) {
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

/// BUM or unknown unicast: to every local port of the VNI (as skb
/// clones), never to another remote VTEP (split horizon).
#[inline(always)]
fn flood<C: Exit>(ctx: &C, pkt: &Vxlan, sender: &Sender) -> Result<C::Action, Dropped> {
    let (n_ports, ingress) = VNIS.get_ptr(pkt.vni).map_or((0, 0), |info| {
        // SAFETY: map values stay valid for the duration of the program.
        unsafe { ((*info).n_ports, (*info).ingress) }
    });
    if n_ports == 0 {
        return Err((DropReason::NoFloodTarget, sender.slot));
    }
    if sender.flags & REMOTE_F_POLICY != 0 && !identity::police(ingress, pkt.inner_len) {
        return Err((DropReason::RateLimited, sender.slot));
    }
    ecn::decap(pkt).map_err(|r| (r, sender.slot))?;
    count_rx(sender.slot, sender.peer, pkt.inner_len.into());
    count(Counter::DecapFlood);
    ctx.flood(pkt, sender.slot)
}

/// Delivers the inner frame of `pkt` as decided by `d`: within the
/// port's MTU, allowed by policy, ECN passed on, counted; then handed over
/// as the program does it.
#[inline(always)]
fn deliver<C: Exit>(ctx: &C, d: &Decision, pkt: &Vxlan) -> Result<C::Action, Dropped> {
    if d.max_len != 0 && !ctx.fits(d, pkt) {
        return Err((DropReason::TooBig, d.slot));
    }
    let remote_flags = d.flags >> DECISION_REMOTE_SHIFT;
    if remote_flags & REMOTE_F_POLICY != 0 {
        let vx = if remote_flags & REMOTE_F_GBP != 0 {
            pkt.vx
        } else {
            0
        };
        let vx_len = u64::from(vx) | (u64::from(pkt.inner_len) << 32);
        if !identity::from_remote(&d.receiver, d.vni, d.slot, vx_len) {
            return Ok(C::DROPPED);
        }
    }
    ecn::decap(pkt).map_err(|r| (r, d.slot))?;
    count_rx(d.slot, d.peer, pkt.inner_len.into());
    count_binding_rx(d.stats, pkt.inner_len.into());
    ctx.deliver(d, pkt)
}

/// The largest frame port `ifindex` takes: its MTU plus its Ethernet
/// header plus a VLAN tag's 4 bytes, as the kernel's forwarding check
/// allows (after a redirect, the kernel would drop a larger frame without
/// a word). 0 for an unknown ifindex (not for this check to judge: the
/// redirect fails).
#[inline(always)]
fn max_frame<C: EbpfContext>(ctx: &C, ifindex: u32) -> u32 {
    let mut mtu = 0u32;
    // SAFETY: `as_ptr` is the xdp_md or __sk_buff the kernel passed; `mtu`
    // is writable for the call (0 in: check the frame's own length; the
    // MTU out).
    let rc = unsafe { bpf_check_mtu(ctx.as_ptr(), ifindex, &mut mtu, 0, 0) };
    if rc < 0 {
        return 0;
    }
    mtu + (ETH_HLEN + VLAN_HLEN) as u32
}
