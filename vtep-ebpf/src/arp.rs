//! ARP suppression (RFC 826 packets): tenant IPv4 bindings learned from
//! ARP seen in the data plane, and ARP requests for a known binding
//! answered by the VTEP itself instead of being flooded across the
//! overlay (the bindings: `neigh`).

use aya_ebpf::programs::TcContext;
use network_types::{arp::ArpHdr, eth::EtherType};
use vtep_common::{
    addr::Addr,
    consts::{ARP_REPLY, ARP_REQUEST, ETH_HLEN},
    counters::Counter,
    maps::Config,
};

use crate::{maps::count, neigh};

/// Whether `arp` is ARP for IPv4 over Ethernet (RFC 826: hardware type
/// 1, protocol type 0x0800, address lengths 6 and 4).
#[inline(always)]
pub fn is_ipv4_ether(arp: &ArpHdr) -> bool {
    arp.htype == [0, 1]
        && arp.ptype == (EtherType::Ipv4 as u16).to_ne_bytes()
        && arp.hlen == 6
        && arp.plen == 4
}

/// Learns from an ARP packet's sender that `spa` belongs to `sha` in
/// `vni` (see [`neigh::learn`]).
#[inline(always)]
pub fn learn(vni: u32, arp: &ArpHdr) {
    if neigh::learn(vni, &Addr::v4(u32::from_ne_bytes(arp.spa)), &arp.sha) {
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
    let Some(mac) = neigh::owner(vni, &Addr::v4(u32::from_ne_bytes(arp.tpa)), cfg) else {
        return false;
    };
    // Never tell a host its own address is taken (a re-probing VM).
    if mac == arp.sha {
        return false;
    }
    let mut eth = [0u8; ETH_HLEN];
    eth[..6].copy_from_slice(&arp.sha);
    eth[6..12].copy_from_slice(&mac);
    eth[12..].copy_from_slice(&(EtherType::Arp as u16).to_ne_bytes());
    let reply = ArpHdr {
        oper: ARP_REPLY.to_be_bytes(),
        sha: mac,
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
