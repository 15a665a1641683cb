//! Encapsulation, local switching and flooding: TC ingress on each port.
//!
//! The frame's VNI comes from its port binding (the port, and on a trunk
//! the 802.1Q VLAN it came in with, its tag then removed: `vlan`), never
//! from the frame. Known
//! unicast to a remote VTEP is encapsulated and sent out of the underlay
//! towards the next hop the kernel FIB gives; known unicast to a local port
//! of the same VNI is switched without encapsulation; BUM and unknown
//! unicast are copied to every other local port of the VNI and to every
//! remote VTEP in its flood list (head-end replication). Known unicast to
//! a remote is decided once per conversation and CPU, then taken from the
//! encap decision cache (`encap_cache`): `try_encap` looks there first.
//!
//! Growing the packet: IPv4 and IPv6 frames use `bpf_skb_adjust_room` with
//! the encap flags, so GSO super-packets and CHECKSUM_PARTIAL survive (the
//! kernel segments and checksums the inner packet on the way out); other
//! frames (ARP) are never GSO or partial, and `bpf_skb_change_head` pushes
//! the room in front of them (adjust_room only takes IP).

use core::ptr::null_mut;

use aya_ebpf::{
    bindings::{
        BPF_F_ADJ_ROOM_ENCAP_L2_ETH, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4, BPF_F_ADJ_ROOM_ENCAP_L3_IPV6,
        BPF_F_ADJ_ROOM_ENCAP_L4_UDP, TC_ACT_SHOT, bpf_adj_room_mode::BPF_ADJ_ROOM_MAC,
    },
    helpers::{bpf_get_prandom_u32, bpf_redirect, bpf_redirect_neigh, bpf_skb_change_head},
    programs::TcContext,
};
use aya_log_ebpf::warn;
use network_types::{
    arp::ArpHdr,
    eth::{EthHdr, EtherType},
};
use vtep_common::{
    addr::Addr,
    caches::{EncapDecision, Macs},
    consts::{ENCAP_LEN, ENCAP6_LEN, ETH_HLEN, MAX_FLOOD, MAX_VNI_PORTS, VXLAN_HLEN},
    counters::{Counter, DropReason},
    maps::{
        CONFIG_F_DF, Config, PORT_F_GBP, PORT_F_LEARN, PORT_F_POLICY, PortKey, VniInfo,
        fdb_delivery, port_tos,
    },
    policy::Sender,
    vxlan::{Outer, emit_outer, emit_outer_v6},
};

use crate::{
    arp, cache,
    encap_cache::{self, Binding},
    fib::next_hop,
    flow, identity,
    learn::{Location, known_at, learn, lookup_until},
    maps::{
        Dropped, NO_SLOT, PORTS, VNIS, config, count, count_binding_rx, count_binding_tx,
        count_drop, count_tx, outer_ds,
    },
    mtu, nd,
    parse::{is, is_group, read},
    pkt, port, storm, vlan,
};

/// Where a frame came in: the port, the VLAN (0: untagged), the
/// binding's `PORT_F_*` bits and stats slot, its VNI and the VNI's stats
/// slot.
struct Ingress {
    port: u32,
    vid: u16,
    flags: u32,
    stats: u32,
    vni: u32,
    slot: u32,
}

impl Ingress {
    /// A drop for `reason`, charged to the VNI.
    #[inline(always)]
    fn drop(&self, reason: DropReason) -> Dropped {
        (reason, self.slot)
    }
}

/// TC entry: see the module docs.
#[inline(always)]
pub fn tc(ctx: &TcContext) -> i32 {
    match try_encap(ctx) {
        Ok(action) => action,
        Err((reason, slot)) => {
            count_drop(reason, slot);
            if reason == DropReason::KernelRefused {
                warn!(ctx, "encap: the kernel refused to grow or redirect a frame");
            }
            TC_ACT_SHOT
        }
    }
}

/// The cache, then the port's binding, the source (learning), snooping,
/// the lookup, and one of: local switching, unicast to a remote, flood.
#[inline(always)]
fn try_encap(ctx: &TcContext) -> Result<i32, Dropped> {
    // SAFETY: `skb` is the __sk_buff the kernel passed to the program.
    let from = unsafe { (*ctx.skb.skb).ifindex };
    let vid = vlan::take_ingress(ctx).map_err(|r| (r, NO_SLOT))?;
    let cfg = config();
    let eth: Option<EthHdr> = read(ctx, 0);
    let macs = eth.as_ref().and_then(|eth| encap_cache::key(ctx, eth));
    if let (Some(eth), Some(macs)) = (&eth, macs)
        && let Some(d) = encap_cache::get((from, vid), macs)
    {
        count_binding_tx(d.stats, ctx.len().into());
        if d.port_flags & PORT_F_POLICY != 0 && !identity::egress_as(&d.sender, d.slot, ctx.len()) {
            // Counted by `identity`.
            return Ok(TC_ACT_SHOT);
        }
        return encapsulate(ctx, d, eth, true, cfg);
    }
    let port = PORTS
        .get_ptr(PortKey::new(from, vid))
        .ok_or((DropReason::UnboundVlan, NO_SLOT))?;
    // SAFETY: map values stay valid for the duration of the program.
    let port = unsafe { &*port };
    count_binding_tx(port.stats, ctx.len().into());
    let ing = Ingress {
        port: from,
        vid,
        flags: port.flags,
        stats: port.stats,
        vni: port.vni,
        slot: port.slot,
    };
    let eth = eth.ok_or(ing.drop(DropReason::InnerTooShort))?;
    if is_group(&eth.src_addr) {
        return Err(ing.drop(DropReason::GroupSourceMac));
    }
    if ing.flags & PORT_F_POLICY != 0
        && !identity::egress(
            packed(from, vid),
            ing.vni,
            ing.slot,
            &eth.src_addr,
            ctx.len(),
        )
    {
        // Counted by `identity`.
        return Ok(TC_ACT_SHOT);
    }
    let learning = ing.flags & PORT_F_LEARN != 0;
    if learning {
        let at = Location {
            remote: Addr::NONE,
            ifindex: from,
            vid,
            flags: fdb_delivery(ing.flags),
            peer: ing.stats,
        };
        if !known_at(ing.vni, eth.src_addr, &at, cfg) && learn(ctx, ing.vni, eth.src_addr, &at, cfg)
        {
            cache::bump(ing.vni);
        }
    }
    if is(eth.ether_type, EtherType::Ipv6) && nd::is_icmpv6(ctx) {
        if learning && nd::learn_from_port(ctx, ing.vni) {
            count(Counter::NeighLearned);
        }
        if is_group(&eth.dst_addr) && nd::answer(ctx, ing.vni, cfg) {
            // Back to the VM that asked.
            return port::to_binding(ctx, from, vid, ing.flags).map_err(|r| ing.drop(r));
        }
    }
    if is(eth.ether_type, EtherType::Arp)
        && let Some(a) = read::<ArpHdr>(ctx, ETH_HLEN)
        && arp::is_ipv4_ether(&a)
    {
        if learning {
            arp::learn(ing.vni, &a);
        }
        if is_group(&eth.dst_addr) && arp::answer(ctx, ing.vni, &a, cfg) {
            // Back to the VM that asked.
            return port::to_binding(ctx, from, vid, ing.flags).map_err(|r| ing.drop(r));
        }
    }

    // Read before the lookup: a change after this makes a decision cached
    // from it out of date at once.
    let generation = cache::generation(ing.vni);
    if !is_group(&eth.dst_addr)
        && let Some((entry, until)) = lookup_until(ing.vni, eth.dst_addr, cfg)
    {
        if entry.ifindex != 0 {
            return switch_local(ctx, &ing, (entry.ifindex, entry.vid), &eth.dst_addr);
        }
        let made = Made { generation, until };
        return unicast(ctx, &ing, &entry, &eth, (&made, cfg));
    }
    flood(ctx, &ing, &eth, cfg)
}

/// A binding (port, VID) as one word, for `identity`'s subprograms.
#[inline(always)]
fn packed(port: u32, vid: u16) -> u64 {
    u64::from(port) | (u64::from(vid) << 32)
}

/// Same host, same VNI: hand the frame for MAC `dst` to binding `to` as
/// it is (tagged with the binding's VLAN, if it has one), if group policy
/// lets it.
#[inline(always)]
fn switch_local(
    ctx: &TcContext,
    ing: &Ingress,
    to: Binding,
    dst: &[u8; 6],
) -> Result<i32, Dropped> {
    if to == (ing.port, ing.vid) {
        return Err(ing.drop(DropReason::Hairpin));
    }
    let (to, vid) = to;
    let port = PORTS
        .get_ptr(PortKey::new(to, vid))
        .ok_or(ing.drop(DropReason::VniMismatch))?;
    // SAFETY: map values stay valid for the duration of the program.
    let port = unsafe { &*port };
    if port.vni != ing.vni {
        return Err(ing.drop(DropReason::VniMismatch));
    }
    if !mtu::fits(ctx, to) {
        return Err(ing.drop(DropReason::TooBig));
    }
    if ing.flags & PORT_F_POLICY != 0
        && !identity::to_local(packed(to, vid), ing.vni, ing.slot, dst, ctx.len())
    {
        // Counted by `identity`.
        return Ok(TC_ACT_SHOT);
    }
    count(Counter::LocalSwitch);
    count_binding_rx(port.stats, ctx.len().into());
    port::to_binding(ctx, to, vid, port.flags).map_err(|r| ing.drop(r))
}

/// What a decision from the tables was made from: the VNI's generation
/// read before the tables, the time until which the destination's entry
/// holds.
struct Made {
    generation: u64,
    until: u64,
}

/// Known unicast to one remote VTEP (`to.remote`), decided from the
/// tables. The decision is written into this CPU's encap cache entry for
/// the conversation (as scratch: it is too large for the encap program's
/// stack) and marked valid when the frame may be decided from the cache
/// and the next hop is resolved.
#[inline(always)]
fn unicast(
    ctx: &TcContext,
    ing: &Ingress,
    to: &Location,
    eth: &EthHdr,
    (made, cfg): (&Made, &Config),
) -> Result<i32, Dropped> {
    let routes = cache::routes_generation();
    let hop = next_hop(ctx, cfg, ing.port, &to.remote).map_err(|r| ing.drop(r))?;
    let macs = encap_cache::macs(ctx, eth);
    let d =
        encap_cache::slot((ing.port, ing.vid), macs).ok_or(ing.drop(DropReason::KernelRefused))?;
    d.expires = 0;
    if hop.resolved && encap_cache::key(ctx, eth).is_some() {
        d.expires = cache::expiry(made.until, cfg);
        count(Counter::EncapCacheFill);
    }
    d.generation = made.generation;
    d.routes = routes;
    d.macs = macs;
    d.remote = to.remote;
    d.port = ing.port;
    d.vid = ing.vid.into();
    d.stats = ing.stats;
    d.vni = ing.vni;
    d.slot = ing.slot;
    d.peer = to.peer;
    d.ifindex = hop.ifindex;
    d.mtu = hop.mtu;
    d.eth = hop.eth;
    d.port_flags = ing.flags;
    d.sender = if ing.flags & PORT_F_POLICY != 0 {
        identity::sender()
    } else {
        Sender::default()
    };
    encapsulate(ctx, d, eth, hop.resolved, cfg)
}

/// Encapsulates the frame as decision `d` says and sends it towards its
/// next hop: redirected when the hop is `resolved`, else queued in the
/// kernel until it is (IP only). A frame too big for the underlay is
/// answered instead.
#[inline(always)]
fn encapsulate(
    ctx: &TcContext,
    d: &EncapDecision,
    eth: &EthHdr,
    resolved: bool,
    cfg: &Config,
) -> Result<i32, Dropped> {
    let drop = |reason| (reason, d.slot);
    let is_ip = is_ip(eth);
    if !resolved && !is_ip {
        // Only IP packets can wait for the neighbour in bpf_redirect_neigh.
        return Err(drop(DropReason::NoNeighbour));
    }
    let dev_mtu = if d.mtu != 0 {
        d.mtu
    } else {
        mtu::device_mtu(ctx, d.ifindex)
    };
    if mtu::too_big(ctx, eth, dev_mtu, cfg) {
        let back = ((d.port, d.vid as u16), d.port_flags, d.slot);
        return answer_too_big(ctx, back, eth, mtu::inner_mtu(dev_mtu, cfg));
    }
    let tunnel = Tunnel::new(ctx, (d.vni, d.port_flags), eth, d.macs);
    if d.port_flags & PORT_F_POLICY != 0 && !identity::to_underlay(d.slot, tunnel.inner_len) {
        // Counted by `identity`.
        return Ok(TC_ACT_SHOT);
    }
    grow(ctx, eth, is_ip, cfg).map_err(drop)?;
    write_outer(ctx, cfg, &tunnel, &d.remote, &d.eth).map_err(drop)?;
    if d.port_flags & PORT_F_GBP != 0 {
        stamp_gbp(ctx, cfg).map_err(drop)?;
    }
    count_tx(d.slot, d.peer, u64::from(tunnel.inner_len));
    count(Counter::EncapUnicast);
    if resolved {
        // SAFETY: plain helper call.
        return Ok(unsafe { bpf_redirect(d.ifindex, 0) } as i32);
    }
    count(Counter::NeighResolve);
    // SAFETY: no next-hop parameters: the kernel routes on the outer
    // destination and queues the packet until the neighbour resolves.
    Ok(unsafe { bpf_redirect_neigh(d.ifindex, null_mut(), 0, 0) } as i32)
}

/// BUM or unknown unicast: a copy to every other local port of the VNI and
/// to every remote VTEP of its flood list; the original is consumed.
///
/// The loops carry no data-dependent state from one iteration to the next
/// (each copy's fate is counted in the maps), so the verifier can prune
/// them: a counter of copies sent would double its paths per iteration.
#[inline(always)]
fn flood(ctx: &TcContext, ing: &Ingress, eth: &EthHdr, cfg: &Config) -> Result<i32, Dropped> {
    let info = VNIS
        .get_ptr(ing.vni)
        .ok_or(ing.drop(DropReason::UnknownVni))?;
    // SAFETY: map values stay valid for the duration of the program.
    let info = unsafe { &*info };
    let n_remotes = info.n_remotes as usize;
    // The ingress port is one of the VNI's ports: the others are the local
    // targets.
    if info.n_ports <= 1 && n_remotes == 0 {
        return Err(ing.drop(DropReason::NoFloodTarget));
    }
    if info.bum_pps != 0 && !storm::allow(ing.slot, info.bum_pps) {
        return Err(ing.drop(DropReason::StormControl));
    }
    copy_to_ports(ctx, info, (ing.port, ing.vid));
    if n_remotes == 0 {
        return Ok(TC_ACT_SHOT);
    }
    let dev_mtu = mtu::device_mtu(ctx, cfg.underlay_ifindex);
    if mtu::too_big(ctx, eth, dev_mtu, cfg) {
        let back = ((ing.port, ing.vid), ing.flags, ing.slot);
        return answer_too_big(ctx, back, eth, mtu::inner_mtu(dev_mtu, cfg));
    }
    let is_ip = is_ip(eth);
    let tunnel = Tunnel::new(ctx, (ing.vni, ing.flags), eth, encap_cache::macs(ctx, eth));
    if ing.flags & PORT_F_POLICY != 0 && !identity::to_underlay(ing.slot, tunnel.inner_len) {
        // Counted by `identity`.
        return Ok(TC_ACT_SHOT);
    }
    grow(ctx, eth, is_ip, cfg).map_err(|r| ing.drop(r))?;
    count(Counter::EncapFlood);
    for i in 0..MAX_FLOOD {
        if i >= n_remotes {
            break;
        }
        let (remote, peer) = (&info.remotes[i], info.peers[i]);
        match next_hop(ctx, cfg, ing.port, remote) {
            Ok(hop) if hop.resolved => {
                if write_outer(ctx, cfg, &tunnel, remote, &hop.eth).is_ok()
                    && (ing.flags & PORT_F_GBP == 0 || stamp_gbp(ctx, cfg).is_ok())
                    && ctx.clone_redirect(hop.ifindex, 0).is_ok()
                {
                    count_tx(ing.slot, peer, u64::from(tunnel.inner_len));
                } else {
                    count_drop(DropReason::KernelRefused, ing.slot);
                }
            }
            Ok(_) => count_drop(DropReason::NoNeighbour, ing.slot),
            Err(reason) => count_drop(reason, ing.slot),
        }
    }
    Ok(TC_ACT_SHOT)
}

/// Clones the frame to every local port binding of `info` except
/// `except` (port 0: none), each copy tagged with its binding's VLAN; a
/// copy the kernel refuses is counted: `too_big` if the port cannot take
/// a frame that large, else `kernel_refused`.
///
/// Precondition: the skb has no tag of its own (ingress took it off).
#[inline(always)]
pub fn copy_to_ports(ctx: &TcContext, info: &VniInfo, except: Binding) {
    let n = info.n_ports as usize;
    for i in 0..MAX_VNI_PORTS {
        if i >= n {
            break;
        }
        let (port, vid) = (info.ports[i], info.vids[i]);
        if (port, vid) == except {
            continue;
        }
        let sent = vlan::push(ctx, vid) && ctx.clone_redirect(port, 0).is_ok();
        if sent {
            count_binding_rx(info.port_stats[i], ctx.len().into());
        }
        if !vlan::pop(ctx, vid) || !sent {
            let reason = if sent || mtu::fits(ctx, port) {
                DropReason::KernelRefused
            } else {
                DropReason::TooBig
            };
            count_drop(reason, info.slot);
        }
    }
}

/// A frame too big for the underlay once encapsulated (`left`: the MTU
/// left for the inner packet): answered back out of the binding it came
/// in (`at`, with `PORT_F_*` bits `flags`) as [`mtu::answer`] says, or
/// dropped; a `too_big` drop either way, charged to the VNI in `slot`.
#[inline(always)]
fn answer_too_big(
    ctx: &TcContext,
    (at, flags, slot): (Binding, u32, u32),
    eth: &EthHdr,
    left: u16,
) -> Result<i32, Dropped> {
    let answered = mtu::answer(ctx, eth, left).ok_or((DropReason::TooBig, slot))?;
    count_drop(DropReason::TooBig, slot);
    count(answered);
    // Back to the VM that sent it.
    port::to_binding(ctx, at.0, at.1, flags).map_err(|r| (r, slot))
}

#[inline(always)]
fn is_ip(eth: &EthHdr) -> bool {
    is(eth.ether_type, EtherType::Ipv4) || is(eth.ether_type, EtherType::Ipv6)
}

/// Makes room for the outer headers (of the instance's family) in front
/// of the inner frame.
#[inline(always)]
fn grow(ctx: &TcContext, eth: &EthHdr, is_ip: bool, cfg: &Config) -> Result<(), DropReason> {
    let (l3, len) = if cfg.local_ip.is_v4() {
        (BPF_F_ADJ_ROOM_ENCAP_L3_IPV4, ENCAP_LEN)
    } else {
        (BPF_F_ADJ_ROOM_ENCAP_L3_IPV6, ENCAP6_LEN)
    };
    if is_ip {
        // Room goes after the MAC header: [eth][room][L3...]; the original
        // Ethernet header becomes the inner one at offset `len`. The
        // kernel sets skb->protocol to the outer family.
        let flags = u64::from(l3 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP | BPF_F_ADJ_ROOM_ENCAP_L2_ETH)
            | ((ETH_HLEN as u64) << 56);
        ctx.adjust_room(len as i32, BPF_ADJ_ROOM_MAC, flags)
            .map_err(|_| DropReason::KernelRefused)?;
        // Straight into the room (pushed into the headroom, so in the
        // linear data, writable): a helper call less per frame. From the
        // header still in front of the room: no copy on the stack.
        let (data, end) = (ctx.data(), ctx.data_end());
        if data + len + ETH_HLEN <= end {
            // SAFETY: [data, + 14) and [data + len, + 14) lie within the
            // linear data, checked just above, and do not overlap.
            unsafe { pkt::copy(data, data + len, ETH_HLEN) };
            return Ok(());
        }
        return ctx
            .store(len, eth, 0)
            .map_err(|_| DropReason::KernelRefused);
    }
    // SAFETY: plain helper call on our skb.
    if unsafe { bpf_skb_change_head(ctx.skb.skb, len as u32, 0) } != 0 {
        return Err(DropReason::KernelRefused);
    }
    Ok(())
}

/// What every copy of an encapsulated frame shares.
struct Tunnel {
    vni: u32,
    /// The inner flow's hash: the outer UDP source port and IPv6 flow
    /// label come from it.
    hash: u32,
    /// The inner frame's length, Ethernet header included.
    inner_len: u32,
    /// The outer dsfield (RFC 6040 §4.1: the VNI's DSCP, the inner ECN).
    tos: u8,
}

impl Tunnel {
    /// The tunnel of the frame in `ctx` (read before it grows) with
    /// Ethernet header `eth` (its MACs as `macs`), from a binding with
    /// `PORT_F_*` bits `port_flags` (its VNI's TOS setting) in `vni`.
    #[inline(always)]
    fn new(ctx: &TcContext, (vni, port_flags): (u32, u32), eth: &EthHdr, macs: Macs) -> Self {
        let tos = port_tos(port_flags);
        let hash = flow::inner_flow(ctx, eth.ether_type, tos, macs.lo, macs.hi);
        Tunnel {
            vni,
            hash,
            inner_len: ctx.len(),
            tos: outer_ds(),
        }
    }
}

/// Writes the first word of the VXLAN header `write_outer` wrote: the G
/// flag and the sender's group (`identity::stamp`), VXLAN-GBP
/// (draft-smith-vxlan-group-policy §2).
#[inline(always)]
fn stamp_gbp(ctx: &TcContext, cfg: &Config) -> Result<(), DropReason> {
    let at = if cfg.local_ip.is_v4() {
        ENCAP_LEN
    } else {
        ENCAP6_LEN
    } - VXLAN_HLEN;
    let (data, end) = (ctx.data(), ctx.data_end());
    if data + at + 4 > end {
        return Err(DropReason::KernelRefused);
    }
    // SAFETY: [data + at, + 4) lies within the linear data, checked just
    // above; the write is unaligned.
    unsafe { pkt::put_u32(data + at, identity::stamp()) };
    Ok(())
}

/// Writes the outer Ethernet/IP/UDP/VXLAN headers of `tunnel` for
/// `remote` into the room `grow` made; `macs`: the outer Ethernet
/// header's destination and source MACs (as `Outer::macs`).
///
/// Not inlined: inlined into the flood loop, LLVM hoists the parts of the
/// headers every copy shares out of the loop and keeps them spilled on
/// the stack, which took the encap program over its 512 bytes with the
/// IPv6 header (tried); a call is a barrier to that.
#[inline(never)]
fn write_outer(
    ctx: &TcContext,
    cfg: &Config,
    tunnel: &Tunnel,
    remote: &Addr,
    macs: &[u32; 3],
) -> Result<(), DropReason> {
    let df = cfg.flags & CONFIG_F_DF != 0;
    let outer = Outer {
        macs: *macs,
        src_ip: cfg.local_ip,
        dst_ip: *remote,
        dst_port: cfg.udp_port,
        vni: tunnel.vni,
        ttl: cfg.ttl,
        df,
        // RFC 6864: the ID only matters for fragmentation.
        // SAFETY: plain helper call.
        ip_id: if df {
            0
        } else {
            (unsafe { bpf_get_prandom_u32() }) as u16
        },
        hash: tunnel.hash,
        tos: tunnel.tos,
    };
    let v4 = cfg.local_ip.is_v4();
    let len = if v4 { ENCAP_LEN } else { ENCAP6_LEN };
    // Straight into packet memory, eight bytes at a time: the room `grow`
    // made is in the linear data (pushed into the headroom).
    // Built on the stack and stored by `bpf_skb_store_bytes`, the IPv6
    // block and its spills took the encap program over its 512-byte
    // stack, tried.
    let (data, end) = (ctx.data(), ctx.data_end());
    if data + len > end {
        return Err(DropReason::KernelRefused);
    }
    // SAFETY: `emit_*` write 8-byte words at offsets up to len - 8, which
    // lie within the linear data checked just above.
    let mut put = |at: usize, v: u64| unsafe { pkt::put_u64(data + at, v) };
    if v4 {
        emit_outer(&outer, tunnel.inner_len, &mut put);
    } else {
        emit_outer_v6(&outer, tunnel.inner_len, &mut put);
    }
    Ok(())
}
