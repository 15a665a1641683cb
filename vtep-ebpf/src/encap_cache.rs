//! The encap decision cache: known unicast from a port to a remote VTEP,
//! kept per CPU so that the frames of a conversation after its first skip
//! the source check (learning), the FDB lookup and the FIB lookup.
//!
//! Key: the ingress port binding (port and VLAN) and the inner destination
//! and source MACs.
//! Value: the VNI and its stats slot, the remote VTEP and its stats slot,
//! the resolved next hop (egress device, MTU, MACs), the port's flags,
//! and for group policy who the sender is (`identity::egress`: its
//! limits' buckets are read per frame).
//! A direct-mapped per-CPU array (`ENCAP_CACHE_CAPACITY` entries per
//! CPU): a conversation hashing to a taken entry replaces it.
//!
//! Only IPv4 and IPv6 frames other than ICMPv6 are decided from it (ARP
//! and Neighbor Discovery are snooped from each frame; a second VLAN tag
//! is dropped by the tables), and only decisions with a resolved next hop
//! are cached.
//!
//! Validity (as for the decap cache, `cache`):
//! - The VNI's generation read before the tables: any change to an FDB,
//!   LEARNED, REMOTES, MEMBERS or VNIS entry of the VNI, and any port
//!   bound or unbound in it, makes the decision out of date. A source MAC
//!   seen at another port is another key, decided (and learned) from the
//!   tables.
//! - The routes' generation (`ROUTES_GENERATION`), which the daemon bumps
//!   on every route, neighbour or link change rtnetlink tells it of.
//! - An expiry: the decap cache's (`caches::lifetime_ns`: 0.5 s, what
//!   the routes' generation does not cover without a daemon is picked up
//!   that often; up to 5 s while a daemon vouches that it hears the
//!   changes; the source's learned entry is refreshed through the tables
//!   at least that often), and no later than the destination's learned
//!   entry goes stale.

use aya_ebpf::programs::TcContext;
use network_types::{
    eth::{EthHdr, EtherType},
    ip::IpProto,
};
use vtep_common::{
    caches::{EncapDecision, Macs},
    consts::{ENCAP_CACHE_CAPACITY, ETH_HLEN},
};

use crate::{
    cache,
    maps::ENCAP_CACHE,
    parse::{is, read},
};

/// The frame's MACs, if the frame may be decided from the cache: IPv4, or
/// IPv6 but not ICMPv6.
#[inline(always)]
pub fn key(ctx: &TcContext, eth: &EthHdr) -> Option<Macs> {
    let ok = is(eth.ether_type, EtherType::Ipv4)
        || (is(eth.ether_type, EtherType::Ipv6)
            && read::<u8>(ctx, ETH_HLEN + 6).is_some_and(|next| next != IpProto::Ipv6Icmp as u8));
    ok.then(|| macs(ctx, eth))
}

/// The MACs of the frame in `ctx`, whose Ethernet header is `eth`: read
/// from the packet as two words where its linear data holds them, else
/// put together from `eth`.
#[inline(always)]
pub fn macs(ctx: &TcContext, eth: &EthHdr) -> Macs {
    let data = ctx.data();
    if data + 12 <= ctx.data_end() {
        // SAFETY: the 12 bytes at `data` lie within the linear data,
        // checked just above.
        return unsafe { cache::macs_at(data) };
    }
    cache::macs_of(eth)
}

/// A port binding: ifindex and VID (0: untagged).
pub type Binding = (u32, u16);

/// Entry index of (binding, macs).
#[inline(always)]
fn index((port, vid): Binding, macs: Macs) -> u32 {
    let rest = (u64::from(port) << 40) | (u64::from(vid) << 24);
    cache::entry_index(macs, rest, ENCAP_CACHE_CAPACITY)
}

/// The cached decision for (binding, macs), if there is a valid one. The
/// reference is into this CPU's entry: use it before the program writes
/// the cache.
#[inline(always)]
pub fn get<'a>(at: Binding, macs: Macs) -> Option<&'a EncapDecision> {
    let e = ENCAP_CACHE.get_ptr(index(at, macs))?;
    // SAFETY: a per-CPU value, valid for the program's run; only this CPU
    // writes it, never while we run (TC runs with bottom halves off).
    let e = unsafe { &*e };
    (e.port == at.0
        && e.vid == u32::from(at.1)
        && cache::same(&e.macs, &macs)
        && e.generation == cache::generation(e.vni)
        && e.routes == cache::routes_generation()
        && cache::jiffies() < e.expires)
        .then_some(e)
}

/// This CPU's entry for (binding, macs), to be written in place (a
/// decision is too large for the encap program's stack); valid once its
/// `expires` is set.
#[inline(always)]
pub fn slot<'a>(at: Binding, macs: Macs) -> Option<&'a mut EncapDecision> {
    let e = ENCAP_CACHE.get_ptr_mut(index(at, macs))?;
    // SAFETY: as in `get`.
    Some(unsafe { &mut *e })
}
