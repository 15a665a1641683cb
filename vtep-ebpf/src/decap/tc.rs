//! Decapsulation in TC ingress on the underlay.
//!
//! Where XDP runs (the default), it has decided every VXLAN frame for us
//! and passed up those it could not deliver itself, with its decision in
//! the metadata: this program only carries it out ([`finish`]). Where the
//! underlay runs no XDP (`CONFIG_F_DECAP_TC`, `vtep up --xdp-mode off`),
//! this program decapsulates everything itself ([`process`]) and hands the
//! skb to the port: no XDP means no copy of each skb into a page on a veth
//! underlay, nor an skb built again after XDP. What GRO merged on the
//! underlay (a GSO skb: a VM's TCP) is left to the kernel's vxlan and
//! decided behind it (`merged`; see README, "Decapsulating in TC").
//!
//! The outer headers go by `bpf_skb_adjust_room` (MAC mode): the inner
//! Ethernet header is saved, the bytes behind the outer one removed, the
//! inner header written over it. An IP inner frame gets `skb->protocol`
//! set to its own (`BPF_F_ADJ_ROOM_DECAP_L3_*`) and may be handed straight
//! into a veth peer; any other (ARP) keeps the outer one, so it goes out
//! of the port's device, whose receiving end reads the protocol from the
//! frame.

use aya_ebpf::{
    bindings::{
        BPF_F_ADJ_ROOM_DECAP_L3_IPV4, BPF_F_ADJ_ROOM_DECAP_L3_IPV6, TC_ACT_OK, TC_ACT_SHOT,
        bpf_adj_room_mode::BPF_ADJ_ROOM_MAC,
    },
    helpers::bpf_skb_change_tail,
    programs::TcContext,
};
use network_types::eth::EtherType;
use vtep_common::{
    caches::Decision,
    consts::{
        ETH_HLEN, ETH_P_ARP, ETH_P_IPV6, IPPROTO_ICMPV6, IPV4_HLEN, IPV6_HLEN, UDP_HLEN, VXLAN_HLEN,
    },
    counters::{Counter, DropReason},
    maps::{
        CONFIG_F_DECAP_TC, Config, DECAP_META_MAGIC, DecapMeta, FDB_F_PEER, META_ACTION_DELIVER,
        META_ACTION_DELIVER_PEER, META_ACTION_FLOOD, PORT_F_PEER,
    },
};

use super::{Exit, process};
use crate::{
    encap::copy_to_ports,
    maps::{Dropped, NO_SLOT, VNIS, config, count, count_drop},
    parse::{self, Vxlan, is},
    pkt, port,
};

/// Bytes of headers made linear for frames that snooping reads (ARP,
/// ICMPv6: outer IPv6, UDP, VXLAN, inner Ethernet and IPv6 and what ARP
/// and ND snooping read behind it).
const SNOOPED: u32 = 192;

/// TC entry: see the module docs.
#[inline(always)]
pub fn tc(ctx: &TcContext) -> i32 {
    match try_tc(ctx) {
        Ok(action) => action,
        Err((reason, slot)) => {
            count_drop(reason, slot);
            TC_ACT_SHOT
        }
    }
}

#[inline(always)]
fn try_tc(ctx: &TcContext) -> Result<i32, Dropped> {
    if let Some(m) = meta(ctx) {
        return finish(ctx, &m).map_err(|r| (r, NO_SLOT));
    }
    let cfg = config();
    // SAFETY: `skb` is the __sk_buff the kernel passed to the program.
    if cfg.flags & CONFIG_F_DECAP_TC == 0 || unsafe { (*ctx.skb.skb).gso_size } != 0 {
        // Merged by GRO (VXLAN for the merge device's socket, or anything
        // else): the kernel's.
        return Ok(TC_ACT_OK);
    }
    let len = ctx.len();
    pull_headers(ctx, len, cfg);
    let Some(pkt) = parse::vxlan(ctx.data(), ctx.data_end(), len as usize, cfg)? else {
        count(Counter::PassToKernel);
        return Ok(TC_ACT_OK);
    };
    process(ctx, &pkt, cfg)
}

/// Makes the headers the decision reads linear where part of them lie in
/// paged data (a frame off a NIC, a segment from the kernel's vxlan): the
/// outer ones, the inner Ethernet and IP headers, and for ARP and ICMPv6
/// what snooping reads. No more: pulling payload in as well costs each
/// TCP segment a new head (payload copied into it), some 15% of a VM's
/// TCP throughput, measured. Where a header cannot be read or pulled, the
/// parse finds it missing and passes the frame on.
#[inline(always)]
fn pull_headers(ctx: &TcContext, len: u32, cfg: &Config) {
    if (ctx.data_end() - ctx.data()) as u32 >= len {
        return;
    }
    // The outer IP header's length: IPv4's from its IHL.
    let ip = if cfg.local_ip.is_v4() {
        match ctx.load::<u8>(ETH_HLEN) {
            Ok(b) => usize::from(b & 0x0f) * 4,
            Err(_) => return,
        }
    } else {
        IPV6_HLEN
    };
    let inner = ETH_HLEN + ip + UDP_HLEN + VXLAN_HLEN;
    let snooped = match ctx.load::<u16>(inner + 12).map(u16::from_be) {
        Ok(ETH_P_ARP) => true,
        Ok(ETH_P_IPV6) => ctx.load::<u8>(inner + ETH_HLEN + IPV6_NEXT_HEADER) == Ok(IPPROTO_ICMPV6),
        Ok(_) => false,
        Err(_) => return,
    };
    let want = if snooped {
        SNOOPED
    } else {
        (inner + ETH_HLEN + IPV6_HLEN) as u32
    };
    let want = want.min(len);
    if ((ctx.data_end() - ctx.data()) as u32) < want {
        let _ = ctx.pull_data(want);
    }
}

/// Offset of the IPv6 next header field.
const IPV6_NEXT_HEADER: usize = 6;

/// The decision XDP left in front of the frame, if any.
#[inline(always)]
fn meta(ctx: &TcContext) -> Option<DecapMeta> {
    // SAFETY: `skb` is the __sk_buff the kernel passed to the program.
    let meta = unsafe { (*ctx.skb.skb).data_meta } as usize;
    if meta + size_of::<DecapMeta>() > ctx.data() {
        return None;
    }
    // SAFETY: [meta, meta + 20) lies before `data`, checked just above.
    let m = unsafe { pkt::read::<DecapMeta>(meta) };
    (m.magic == DECAP_META_MAGIC).then_some(m)
}

/// Carries out what XDP decided for a frame it passed up.
#[inline(always)]
fn finish(ctx: &TcContext, m: &DecapMeta) -> Result<i32, DropReason> {
    let to = match m.action {
        META_ACTION_DELIVER => 0,
        META_ACTION_DELIVER_PEER => PORT_F_PEER,
        META_ACTION_FLOOD => {
            if let Some(info) = VNIS.get_ptr(m.vni) {
                // SAFETY: map values stay valid for the duration of the
                // program.
                copy_to_ports(ctx, unsafe { &*info }, (0, 0));
            }
            return Ok(TC_ACT_SHOT);
        }
        _ => return Ok(TC_ACT_OK),
    };
    port::to_binding(ctx, m.ifindex, m.vid as u16, to)
}

impl Exit for TcContext {
    type Action = i32;
    const DROPPED: i32 = TC_ACT_SHOT;

    /// A tag pushed in TC is the skb's, outside the frame.
    #[inline(always)]
    fn fits(&self, d: &Decision, pkt: &Vxlan) -> bool {
        pkt.inner_len <= d.max_len
    }

    #[inline(always)]
    fn deliver(&self, d: &Decision, pkt: &Vxlan) -> Result<i32, Dropped> {
        let ip = strip(self, pkt, d.slot)?;
        count(Counter::DecapSkb);
        let to = if ip && d.flags & FDB_F_PEER != 0 {
            PORT_F_PEER
        } else {
            0
        };
        port::to_binding(self, d.ifindex, d.vid as u16, to).map_err(|r| (r, d.slot))
    }

    #[inline(always)]
    fn flood(&self, pkt: &Vxlan, slot: u32) -> Result<i32, Dropped> {
        strip(self, pkt, slot)?;
        if let Some(info) = VNIS.get_ptr(pkt.vni) {
            // SAFETY: map values stay valid for the duration of the program.
            copy_to_ports(self, unsafe { &*info }, (0, 0));
        }
        Ok(TC_ACT_SHOT)
    }
}

/// Removes `pkt`'s outer headers from the skb (see the module docs):
/// whether the inner frame is IP (its `skb->protocol` then right); a
/// refusal is charged to the VNI in `slot`.
#[inline(always)]
fn strip(ctx: &TcContext, pkt: &Vxlan, slot: u32) -> Result<bool, Dropped> {
    let refused = (DropReason::KernelRefused, slot);
    // SAFETY: the inner Ethernet header lies within the packet (checked by
    // the parse).
    let eth = unsafe { pkt::read::<[u8; ETH_HLEN]>(pkt.eth as usize) };
    let l3 = if is(pkt.inner_type, EtherType::Ipv4) {
        BPF_F_ADJ_ROOM_DECAP_L3_IPV4
    } else if is(pkt.inner_type, EtherType::Ipv6) {
        BPF_F_ADJ_ROOM_DECAP_L3_IPV6
    } else {
        0
    };
    // The kernel keeps an IP header's worth (of the outer family) behind
    // the Ethernet header: a shorter inner frame (an ARP over IPv6, a
    // runt) is padded for the shrink, and trimmed back after it.
    let base = if pkt.saddr.is_v4() {
        IPV4_HLEN
    } else {
        IPV6_HLEN
    } as u32;
    let short = (ETH_HLEN as u32 + base).saturating_sub(pkt.inner_len);
    if short != 0 && change_tail(ctx, ctx.len() + short) != 0 {
        return Err(refused);
    }
    ctx.adjust_room(-(pkt.strip as i32), BPF_ADJ_ROOM_MAC, l3.into())
        .map_err(|_| refused)?;
    if short != 0 && change_tail(ctx, ctx.len() - short) != 0 {
        return Err(refused);
    }
    // Pointers are re-derived after the adjustment.
    let at = ctx.data();
    if at + ETH_HLEN > ctx.data_end() {
        return Err(refused);
    }
    // SAFETY: [at, at + 14) lies within the frame, checked just above.
    unsafe { pkt::write(at, eth) };
    Ok(l3 != 0)
}

/// `bpf_skb_change_tail` to `len` bytes: 0, or the kernel's error.
#[inline(always)]
fn change_tail(ctx: &TcContext, len: u32) -> i64 {
    // SAFETY: `skb` is the __sk_buff the kernel passed to the program; the
    // kernel checks the length.
    unsafe { bpf_skb_change_tail(ctx.skb.skb, len, 0) }
}
