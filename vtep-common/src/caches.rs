//! Entries of the decision caches: per-CPU arrays, not pinned (each load
//! of the programs starts empty), that let the frames of a conversation
//! after its first skip the table lookups. Each entry holds the
//! generation(s) it was made in and an expiry; the programs' `cache` and
//! `encap_cache` modules say when one may be used.

use core::mem::size_of;

use crate::{
    addr::Addr,
    policy::{Receiver, Sender},
};

/// Inner destination and source MACs (12 bytes, as on the wire) as two
/// words, for comparing: part of each cache's key.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Macs {
    /// Bytes 0..8 of the Ethernet header.
    pub lo: u64,
    /// Bytes 8..12.
    pub hi: u32,
    /// Always zero.
    pub _pad: u32,
}

/// One decision of the decap decision cache (value of `DECAP_CACHE`):
/// what the tables decided for one conversation, keyed by outer source,
/// VNI and inner MACs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// The jiffy from which the entry is not used; 0: empty.
    pub expires: u64,
    /// The VNI's `GENERATION` plus the routes' when the decision was made
    /// (both only grow: the sum stays only while neither moves). A link
    /// change the daemon heard (a port's MTU) makes it out of date.
    pub generation: u64,
    /// Key: inner destination and source MACs.
    pub macs: Macs,
    /// Key: outer source.
    pub saddr: Addr,
    /// Key: VNI.
    pub vni: u32,
    /// The port.
    pub ifindex: u32,
    /// Largest inner frame (Ethernet header included) the port takes.
    pub max_len: u32,
    /// The VNI's stats slot.
    pub slot: u32,
    /// The remote VTEP's stats slot.
    pub peer: u32,
    /// The entry's `FDB_F_DELIVERY` bits: how the port takes frames.
    pub flags: u32,
    /// The port's VLAN binding: the tag to push (0: none).
    pub vid: u32,
    /// The binding's `BINDING_STATS` slot.
    pub stats: u32,
    /// Who group policy judges the frames by, for a sender whose frames
    /// are judged (its `REMOTE_F_POLICY` in `flags`); else zeros.
    pub receiver: Receiver,
}

/// One decision of the encap decision cache (value of `ENCAP_CACHE`):
/// known unicast from a port to a remote VTEP whose next hop is resolved,
/// keyed by the ingress port and the frame's MACs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncapDecision {
    /// The jiffy from which the entry is not used; 0: empty.
    pub expires: u64,
    /// The VNI's `GENERATION` when the decision was made.
    pub generation: u64,
    /// `GENERATION`'s routes slot when the next hop was looked up.
    pub routes: u64,
    /// Key: inner destination and source MACs.
    pub macs: Macs,
    /// The remote VTEP.
    pub remote: Addr,
    /// Key: the ingress port.
    pub port: u32,
    /// Key: the VLAN the frame came in with (0: untagged).
    pub vid: u32,
    /// The ingress binding's `BINDING_STATS` slot.
    pub stats: u32,
    /// The port's VNI.
    pub vni: u32,
    /// The VNI's stats slot.
    pub slot: u32,
    /// The remote VTEP's stats slot.
    pub peer: u32,
    /// The next hop: egress device and its MTU.
    pub ifindex: u32,
    pub mtu: u32,
    /// The outer Ethernet header's destination (the next hop's) and source
    /// (ours) MACs, as [`crate::vxlan::Outer::macs`] holds them.
    pub eth: [u32; 3],
    /// The ingress port's `PORT_F_*` bits.
    pub port_flags: u32,
    /// Who the frames' sender is to group policy, for a port whose frames
    /// are judged (`PORT_F_POLICY` in `port_flags`); else zeros.
    pub sender: Sender,
}

const _: () = assert!(size_of::<Macs>() == 16);
const _: () = assert!(size_of::<Decision>() == 96);
const _: () = assert!(size_of::<EncapDecision>() == 120);

/// How long a cached decision lives at most (ns) when no daemon vouches
/// for route, neighbour and link changes: what no table tells (a next
/// hop's MAC, a port's MTU) is read again this often.
pub const TTL_NS: u64 = 500_000_000;
/// How long it lives at most (ns) while `vtep daemon` vouches for them
/// (`MAP_WATCHED`): such a change bumps the routes' generation, and the
/// expiry is left only to refresh the senders' learned entries.
pub const WATCHED_TTL_NS: u64 = 5_000_000_000;

/// How long a decision made now may live (ns), given that a daemon
/// vouches for route, neighbour and link changes for `vouched_ns` more
/// (0: none does): [`TTL_NS`] beyond the vouch, so that a change nobody
/// hears reaches every cached decision within [`TTL_NS`] of the vouch
/// running out (a daemon killed), but never more than [`WATCHED_TTL_NS`]
/// nor a quarter of the ageing time `ageing_s` (the learned entries of
/// the senders of cached conversations, refreshed only when a decision is
/// made again, stay fresh); never less than [`TTL_NS`].
pub fn lifetime_ns(vouched_ns: u64, ageing_s: u32) -> u64 {
    let most = (u64::from(ageing_s) * 250_000_000).clamp(TTL_NS, WATCHED_TTL_NS);
    TTL_NS.saturating_add(vouched_ns).min(most)
}

/// The longest tick of the kernels we run on (HZ = 100), ns.
pub const TICK_MAX_NS: u32 = 10_000_000;

/// The tick (ns) the programs count cached decisions' lifetimes in, given
/// the one the kernel `reported`: the longest ([`TICK_MAX_NS`]) where it
/// said none or something out of range. A tick taken too long only makes
/// cached decisions expire sooner, never later.
pub fn tick_ns(reported: Option<u64>) -> u32 {
    reported
        .and_then(|ns| u32::try_from(ns).ok())
        .filter(|ns| (1..=TICK_MAX_NS).contains(ns))
        .unwrap_or(TICK_MAX_NS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_outlive_a_daemons_vouch_by_ttl_at_most() {
        const S: u64 = 1_000_000_000;
        for (vouched_ns, ageing_s, want) in [
            (0, 300, TTL_NS),
            (5 * S, 300, WATCHED_TTL_NS),
            (4 * S, 300, 4 * S + TTL_NS),
            (S / 10, 300, S / 10 + TTL_NS),
            (u64::MAX, 300, WATCHED_TTL_NS),
            (5 * S, 8, 2 * S),
            (5 * S, 1, TTL_NS),
            (0, 1, TTL_NS),
            (5 * S, u32::MAX, WATCHED_TTL_NS),
        ] {
            assert_eq!(
                lifetime_ns(vouched_ns, ageing_s),
                want,
                "{vouched_ns} {ageing_s}"
            );
        }
    }

    #[test]
    fn the_tick_is_the_kernels_or_the_longest() {
        for (reported, want) in [
            (Some(4_000_000), 4_000_000), // HZ = 250
            (Some(1_000_000), 1_000_000), // HZ = 1000
            (Some(TICK_MAX_NS.into()), TICK_MAX_NS),
            (Some(0), TICK_MAX_NS),
            (Some(20_000_000), TICK_MAX_NS),
            (Some(u64::MAX), TICK_MAX_NS),
            (None, TICK_MAX_NS),
        ] {
            assert_eq!(tick_ns(reported), want, "{reported:?}");
        }
    }
}
