//! ARP suppression (RFC 826 packets): bindings of tenant IPv4 addresses to
//! MACs, learned from ARP seen in the data plane or configured, and ARP
//! requests for a known binding answered by the VTEP itself instead of
//! being flooded across the overlay.

use aya_ebpf::{helpers::bpf_ktime_get_coarse_ns, programs::TcContext};
use network_types::{arp::ArpHdr, eth::EtherType};
use vtep_common::{
    addr::Addr,
    consts::{ARP_REPLY, ARP_REQUEST, ETH_HLEN},
    counters::Counter,
    maps::{Config, NEIGH_F_EVPN, NEIGH_F_STATIC, NeighEntry, NeighKey},
};

use crate::{
    maps::{NEIGHS, count},
    parse::is_group,
};

/// Whether `arp` is ARP for IPv4 over Ethernet (RFC 826: hardware type
/// 1, protocol type 0x0800, address lengths 6 and 4).
#[inline(always)]
pub fn is_ipv4_ether(arp: &ArpHdr) -> bool {
    arp.htype == [0, 1]
        && arp.ptype == (EtherType::Ipv4 as u16).to_ne_bytes()
        && arp.hlen == 6
        && arp.plen == 4
}

const REFRESH_NS: u64 = 1_000_000_000;

/// Learns from an ARP packet's sender that `spa` belongs to `sha` in `vni`;
/// static bindings are never replaced. Not inlined, for the reason
/// [`answer`] is not.
#[inline(never)]
pub fn learn(vni: u32, arp: &ArpHdr) {
    let ip = u32::from_ne_bytes(arp.spa);
    if ip == 0 || is_group(&arp.sha) {
        return;
    }
    let key = NeighKey {
        vni,
        ip: Addr::v4(ip),
    };
    // SAFETY: plain helper call.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    if let Some(e) = NEIGHS.get_ptr_mut(key) {
        // SAFETY: map values stay valid for the duration of the program.
        let e = unsafe { &mut *e };
        // Configured and EVPN bindings are owned by userspace.
        if e.flags & (NEIGH_F_STATIC | NEIGH_F_EVPN) != 0 {
            return;
        }
        if e.mac != arp.sha {
            e.mac = arp.sha;
            e.seen_ns = now;
        } else if now.saturating_sub(e.seen_ns) > REFRESH_NS {
            e.seen_ns = now;
        }
        return;
    }
    let e = NeighEntry {
        mac: arp.sha,
        _pad: [0; 2],
        flags: 0,
        _pad2: 0,
        seen_ns: now,
    };
    if NEIGHS.insert(key, e, 0).is_ok() {
        count(Counter::NeighLearned);
    }
}

/// Answers an ARP request from port `from` if the binding is known (static,
/// or learned and seen within the ageing time): the frame is rewritten into
/// the reply, for the caller to send back out of the port it came in
/// through. `false` when the request must go on (flooded) as it is.
///
/// Not inlined: the reply it builds gets a stack frame of its own (the
/// encap program's is tight).
#[inline(never)]
pub fn answer(ctx: &TcContext, vni: u32, arp: &ArpHdr, cfg: &Config) -> bool {
    // Gratuitous ARP (sender = target) announces; it is not a question.
    if u16::from_be_bytes(arp.oper) != ARP_REQUEST || arp.spa == arp.tpa {
        return false;
    }
    let key = NeighKey {
        vni,
        ip: Addr::v4(u32::from_ne_bytes(arp.tpa)),
    };
    let Some(e) = NEIGHS.get_ptr(key) else {
        return false;
    };
    // SAFETY: map values stay valid for the duration of the program.
    let e = unsafe { &*e };
    if e.flags & (NEIGH_F_STATIC | NEIGH_F_EVPN) == 0 {
        // SAFETY: plain helper call.
        let age = unsafe { bpf_ktime_get_coarse_ns() }.saturating_sub(e.seen_ns);
        if age > u64::from(cfg.ageing_s) * 1_000_000_000 {
            return false;
        }
    }
    // Never tell a host its own address is taken (a re-probing VM).
    if e.mac == arp.sha {
        return false;
    }
    let mut eth = [0u8; ETH_HLEN];
    eth[..6].copy_from_slice(&arp.sha);
    eth[6..12].copy_from_slice(&e.mac);
    eth[12..].copy_from_slice(&(EtherType::Arp as u16).to_ne_bytes());
    let reply = ArpHdr {
        oper: ARP_REPLY.to_be_bytes(),
        sha: e.mac,
        spa: arp.tpa,
        tha: arp.sha,
        tpa: arp.spa,
        ..*arp
    };
    if ctx.store(0, &eth, 0).is_err() || ctx.store(ETH_HLEN, &reply, 0).is_err() {
        return false;
    }
    count(Counter::ArpSuppressed);
    true
}
