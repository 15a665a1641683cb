//! The decap decision cache: what the tables decided for one conversation,
//! kept per CPU so that the frames after it skip the table lookups. Also
//! the generations (per VNI, and the routes') that both decision caches
//! check, and what they share (jiffies, expiry, the MAC pair).
//!
//! Key: the outer source address (IPv4-mapped for IPv4, so the families
//! never collide), the VNI, the inner destination and source
//! MACs. Value: the port and how it takes frames (XDP or skb), the VNI's
//! and the remote VTEP's stats slots, the largest inner frame the port
//! takes, and for group policy who the receiver is (`identity::receiver`:
//! the rules and policers themselves are read per frame, their hits and
//! tokens counted). A direct-mapped per-CPU array
//! (`DECAP_CACHE_CAPACITY` entries per CPU): a conversation hashing to a
//! taken entry replaces it.
//!
//! Only deliveries to a port are cached. Floods, drops and ARP frames (ARP
//! snooping learns from each of them) always go through the tables.
//!
//! Validity:
//! - An entry holds the generation of its VNI (its `GENERATION` slot)
//!   read before its decision was made. Every change to a table entry a
//!   decision reads (FDB, LEARNED, REMOTES, and for group policy the
//!   receiver's MEMBERS, PORTS and VNIS entries: each of a VNI) bumps its
//!   VNI's generation after the change, whether userspace made it or
//!   learning in the programs did: a decision made before a change never
//!   matches after it, and a change in one VNI (a MAC explosion) leaves
//!   the other VNIs' decisions alone (but for VNIs sharing the slot).
//! - It holds the routes' generation too (added to its VNI's: both only
//!   grow, so the sum stays only while neither moves): a link change that
//!   `vtep daemon` heard (a port's MTU, which no table tells) makes it out
//!   of date at once.
//! - An entry expires `caches::lifetime_ns` after it was made (0.5 s; up
//!   to 5 s while a daemon vouches that it hears route, neighbour and link
//!   changes, `WATCHED`, but never 0.5 s past the vouch), and no later
//!   than the learned entry of its
//!   destination goes stale. Without a daemon, the port's MTU is read
//!   again at least that often; either way the sender's learned entry is
//!   refreshed through the tables as before. Expiry is
//!   kept in jiffies: reading them is one load (the verifier inlines
//!   `bpf_jiffies64`), where the nanosecond clock is a helper call per
//!   frame. Durations become jiffies by the kernel's tick that userspace
//!   read at load (`Config::tick_ns`). It once assumed the longest tick
//!   (HZ = 100): on Debian's HZ = 250 entries then lived 200 ms, not 500,
//!   and every refill (a miss touches tables idle since the last one:
//!   2-30 µs on a quiet VM, where a hit takes under 0.3 µs, measured
//!   in-program) showed in a ping's tail 2.5 times as often.
//!
//! Concurrency: each CPU has its own entries, and XDP always runs with
//! bottom halves disabled (NAPI, generic XDP, BPF_PROG_TEST_RUN), so two
//! runs never interleave on one CPU: no entry is seen half written.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::helpers::bpf_jiffies64;
use network_types::eth::EthHdr;
use vtep_common::{
    addr::Addr,
    caches::{Decision, Macs, lifetime_ns},
    consts::{DECAP_CACHE_CAPACITY, ROUTES_GENERATION, generation_slot},
    maps::Config,
};

use crate::{
    learn,
    maps::{DECAP_CACHE, GENERATION, WATCHED},
    pkt,
};

/// The kernel's tick count.
#[inline(always)]
pub fn jiffies() -> u64 {
    // SAFETY: plain helper call (inlined by the verifier).
    unsafe { bpf_jiffies64() }
}

/// The jiffy before which a decision made now may be used, given that its
/// tables' answer holds until `until` (coarse ns). Off the fast path: a
/// helper call for the time.
#[inline(always)]
pub fn expiry(until: u64, cfg: &Config) -> u64 {
    let now = learn::now();
    // SAFETY: an array value: a u64 only userspace writes (whole).
    let vouched = WATCHED
        .get_ptr(0)
        .map_or(0, |w| unsafe { *w }.saturating_sub(now));
    let valid = until
        .saturating_sub(now)
        .min(lifetime_ns(vouched, cfg.ageing_s));
    jiffies() + valid / u64::from(cfg.tick_ns.max(1))
}

/// Whether two MAC pairs are the same.
#[inline(always)]
pub fn same(a: &Macs, b: &Macs) -> bool {
    a.lo == b.lo && a.hi == b.hi
}

/// The two MACs at the start of an Ethernet header.
///
/// # Safety
/// `eth` points at 12 readable bytes of packet memory.
#[inline(always)]
pub unsafe fn macs_at(eth: usize) -> Macs {
    // SAFETY: the caller guarantees 12 readable bytes at `eth`.
    unsafe {
        Macs {
            lo: pkt::u64_at(eth),
            hi: pkt::u32_off::<8>(eth),
            _pad: 0,
        }
    }
}

/// The two MACs of an Ethernet header read out of the packet.
#[inline(always)]
pub fn macs_of(eth: &EthHdr) -> Macs {
    let (d, s) = (eth.dst_addr, eth.src_addr);
    Macs {
        lo: u64::from_ne_bytes([d[0], d[1], d[2], d[3], d[4], d[5], s[0], s[1]]),
        hi: u32::from_ne_bytes([s[2], s[3], s[4], s[5]]),
        _pad: 0,
    }
}

/// `GENERATION` slot `slot` now.
#[inline(always)]
fn slot_generation(slot: u32) -> u64 {
    // SAFETY: an array value; a plain u64 that other CPUs and userspace
    // only add to atomically.
    GENERATION.get_ptr(slot).map_or(0, |g| unsafe { *g })
}

/// The generation of `vni`'s tables now. Read it before reading the
/// tables for a decision that will be cached.
#[inline(always)]
pub fn generation(vni: u32) -> u64 {
    slot_generation(generation_slot(vni))
}

/// The generation of the host's routes and neighbours now. Read it before
/// a FIB lookup whose answer will be cached.
#[inline(always)]
pub fn routes_generation() -> u64 {
    slot_generation(ROUTES_GENERATION)
}

/// What a decap decision holds: `vni`'s generation plus the routes' (the
/// daemon bumps theirs on link changes too: a port's MTU). Read it before
/// the tables for a decision that will be cached.
#[inline(always)]
pub fn decap_generation(vni: u32) -> u64 {
    generation(vni).wrapping_add(routes_generation())
}

/// Marks every cached decision of `vni` out of date. Call after changing
/// a table entry of `vni`.
#[inline(always)]
pub fn bump(vni: u32) {
    if let Some(g) = GENERATION.get_ptr_mut(generation_slot(vni)) {
        // SAFETY: the map value is an 8-byte aligned u64 that lives as long
        // as the map; every writer adds atomically (BPF_ATOMIC | BPF_ADD:
        // core's AtomicU64 has no read-modify-write on this target).
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(g, 1) };
    }
}

/// The entry (saddr, vni, macs) hashes to (Fibonacci hashing of the key
/// folded into one word; an IPv4 sender's mapped prefix folds to a
/// constant).
#[inline(always)]
fn index(saddr: &Addr, vni: u32, macs: Macs) -> u32 {
    let a = saddr.w[0] ^ saddr.w[1] ^ saddr.w[2] ^ saddr.w[3];
    entry_index(
        macs,
        (u64::from(a) << 32) ^ u64::from(vni),
        DECAP_CACHE_CAPACITY,
    )
}

/// The entry of a direct-mapped cache of `capacity` entries (a power of
/// two) that a key of `macs` and the rest of the key folded into `rest`
/// hashes to: Fibonacci hashing of the key folded into one word. Both
/// decision caches index with it.
#[inline(always)]
pub fn entry_index(macs: Macs, rest: u64, capacity: u32) -> u32 {
    let k = macs.lo ^ (u64::from(macs.hi) << 21) ^ rest;
    (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32 & (capacity - 1)
}

/// The cached decision for (saddr, vni, macs), if there is a valid one.
/// The reference is into this CPU's entry: use it before the program
/// writes the cache.
#[inline(always)]
pub fn get<'a>(saddr: &Addr, vni: u32, macs: Macs) -> Option<&'a Decision> {
    let e = DECAP_CACHE.get_ptr(index(saddr, vni, macs))?;
    // SAFETY: a per-CPU value, valid for the program's run; only this CPU
    // writes it, never while we run.
    let e = unsafe { &*e };
    (e.saddr == *saddr
        && e.vni == vni
        && same(&e.macs, &macs)
        && e.generation == decap_generation(vni)
        && jiffies() < e.expires)
        .then_some(e)
}

/// Caches `d` (its key fields name the conversation).
#[inline(always)]
pub fn put(d: &Decision) {
    if let Some(e) = DECAP_CACHE.get_ptr_mut(index(&d.saddr, d.vni, d.macs)) {
        // SAFETY: as in `get`.
        unsafe { *e = *d };
    }
}
