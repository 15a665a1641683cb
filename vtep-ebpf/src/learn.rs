//! Data-plane learning: where each MAC is, from the traffic itself.
//!
//! On decap the inner source MAC is learned behind the sending VTEP; on
//! encap the source MAC is learned on the ingress port. Learned entries
//! live in the LRU map `LEARNED` (capacity bounds them; the least recently
//! used go first), are stale after the ageing time, and never shadow a
//! static entry: a MAC with a static entry is not learned, and userspace
//! removes a learned entry when it adds a static one. A MAC the EVPN agent
//! installed (`FDB_F_EVPN`, not sticky) and now seen elsewhere loses its
//! FDB entry and is learned where it is: a moved VM is re-pointed by its
//! first frame, and the agent confirms (or corrects) it through BGP.
//!
//! A MAC seen at a new location moves at once (a gratuitous ARP from a
//! migrated VM redirects traffic on every VTEP that sees it). One that
//! moves more than `move_limit` times within `move_window_s` is frozen
//! where it is and flagged (RFC 7432 §15.1 duplicate detection). Learned,
//! moved and frozen MACs are reported through the `EVENTS` ring buffer.

use aya_ebpf::{EbpfContext, helpers::bpf_ktime_get_coarse_ns};
use aya_log_ebpf::warn;
use vtep_common::{
    addr::Addr,
    counters::Counter,
    maps::{
        Config, FDB_F_DELIVERY, FDB_F_EVPN, FDB_F_STICKY, FdbKey, LEARNED_F_FROZEN, LearnedEntry,
        MacEvent, MacEventKind,
    },
};

use crate::{
    maps::{CONTROL_EVENTS, EVENT_SCRATCH, EVENTS, FDB, LEARN_SCRATCH, LEARNED, count},
    parse::is_group,
};

/// A learned entry is refreshed at most this often (ns): seeing a MAC
/// again must not write its entry for every frame.
const REFRESH_NS: u64 = 1_000_000_000;

/// Where a MAC lives, as the FDB says: a remote VTEP or a local port
/// binding (ifindex and VID, 0 for untagged); one of the two is none/0.
/// `flags`: the `FDB_F_DELIVERY` bits of the port. `peer`: the location's
/// stats slot (the remote's in `PEER_STATS`, the binding's in
/// `BINDING_STATS`).
pub struct Location {
    pub remote: Addr,
    pub ifindex: u32,
    pub vid: u16,
    pub flags: u32,
    pub peer: u32,
}

/// Where a MAC was, as its move event reports it: remote, port, VID.
type Place = (Addr, u32, u16);

/// Coarse monotonic time (ns), the clock of learned entries' times.
#[inline(always)]
pub fn now() -> u64 {
    // SAFETY: plain helper call.
    unsafe { bpf_ktime_get_coarse_ns() }
}

/// When a learned entry goes stale (coarse ns).
#[inline(always)]
fn stale_at(e: &LearnedEntry, cfg: &Config) -> u64 {
    e.seen_ns
        .saturating_add(u64::from(cfg.ageing_s) * 1_000_000_000)
}

#[inline(always)]
fn stale(e: &LearnedEntry, now: u64, cfg: &Config) -> bool {
    now > stale_at(e, cfg)
}

/// Where (`vni`, `mac`) lives: its static entry, else its learned entry
/// unless stale; with the time (coarse ns) until which the answer holds
/// unless the tables change: `u64::MAX` for a static entry, the time a
/// learned entry goes stale.
#[inline(always)]
pub fn lookup_until(vni: u32, mac: [u8; 6], cfg: &Config) -> Option<(Location, u64)> {
    let key = FdbKey::new(vni, mac);
    if let Some(e) = FDB.get_ptr(key) {
        // SAFETY: map values stay valid for the duration of the program.
        let e = unsafe { &*e };
        let at = Location {
            remote: e.remote,
            ifindex: e.ifindex,
            vid: e.vid,
            flags: e.flags,
            peer: e.peer,
        };
        return Some((at, u64::MAX));
    }
    let e = LEARNED.get_ptr(key)?;
    // SAFETY: as above.
    let e = unsafe { &*e };
    if stale(e, now(), cfg) {
        return None;
    }
    let at = Location {
        remote: e.remote,
        ifindex: e.ifindex,
        vid: e.vid,
        flags: e.flags & FDB_F_DELIVERY,
        peer: e.peer,
    };
    Some((at, stale_at(e, cfg)))
}

#[inline(always)]
fn report(kind: MacEventKind, key: &FdbKey, old: &Place, new: &Location, ts_ns: u64) {
    let Some(ev) = EVENT_SCRATCH.get_ptr_mut(0) else {
        count(Counter::EventLost);
        return;
    };
    // SAFETY: a per-CPU value, valid for the program's run; only this CPU
    // uses it, never while another run of ours is on this CPU.
    let ev = unsafe { &mut *ev };
    *ev = MacEvent {
        ts_ns,
        kind: kind as u32,
        vni: key.vni,
        mac: key.mac,
        _pad: [0; 2],
        old_remote: old.0,
        new_remote: new.remote,
        old_ifindex: old.1,
        new_ifindex: new.ifindex,
        old_vid: old.2,
        new_vid: new.vid,
        _pad2: 0,
    };
    if EVENTS.output::<MacEvent>(&*ev, 0).is_err() {
        count(Counter::EventLost);
    }
    if CONTROL_EVENTS.output::<MacEvent>(&*ev, 0).is_err() {
        count(Counter::ControlEventLost);
    }
}

/// Whether `mac` of `vni` is already learned at `at` and was seen
/// recently enough that [`learn`] would change nothing: the test on every
/// frame, inlined, so that the call is made only when it has work to do.
#[inline(always)]
pub fn known_at(vni: u32, mac: [u8; 6], at: &Location, cfg: &Config) -> bool {
    let Some(e) = LEARNED.get_ptr(FdbKey::new(vni, mac)) else {
        return false;
    };
    // SAFETY: map values stay valid for the duration of the program.
    let e = unsafe { &*e };
    let ts = now();
    is_at(e, at) && !stale(e, ts, cfg) && !refresh_due(e, ts)
}

/// Whether learned entry `e` says the MAC is `at`.
#[inline(always)]
fn is_at(e: &LearnedEntry, at: &Location) -> bool {
    e.remote == at.remote && e.ifindex == at.ifindex && e.vid == at.vid
}

/// Whether a fresh entry seen at its location again is due a new seen
/// time at `ts` ([`REFRESH_NS`] since the last).
#[inline(always)]
fn refresh_due(e: &LearnedEntry, ts: u64) -> bool {
    ts.saturating_sub(e.seen_ns) > REFRESH_NS
}

/// Learns that `mac` of `vni` is `at` (only the `FDB_F_DELIVERY` bits of
/// its flags are kept). `ctx` is for the log record of a freeze (rare: never per packet).
///
/// Returns whether the tables changed (the MAC learned or moved): the
/// caller then bumps the tables' generation (a refresh changes no
/// decision, and bumps nothing).
///
/// Not inlined: its entries and event records get a stack frame of their
/// own, outside the 512 bytes the encap and decap paths need (with
/// 16-byte addresses, inlined, the encap program went over, tried). Its
/// result must be used: LLVM turns an unused result into none, and a
/// subprogram returning nothing may exit with a stack pointer left in
/// R0, which the verifier refuses ("cannot return stack pointer to the
/// caller", seen).
#[inline(never)]
pub fn learn<C: EbpfContext>(ctx: &C, vni: u32, mac: [u8; 6], at: &Location, cfg: &Config) -> bool {
    let delivery = at.flags & FDB_F_DELIVERY;
    if is_group(&mac) {
        return false;
    }
    let key = FdbKey::new(vni, mac);
    let ts = now();
    if let Some(e) = LEARNED.get_ptr_mut(key) {
        // SAFETY: map values stay valid for the duration of the program;
        // concurrent writers on other CPUs can only race on refresh times
        // and counts, which stay plausible.
        let e = unsafe { &mut *e };
        if !stale(e, ts, cfg) {
            if is_at(e, at) {
                if refresh_due(e, ts) {
                    e.seen_ns = ts;
                }
                return false;
            }
            if e.flags & LEARNED_F_FROZEN != 0 {
                return false;
            }
            if ts.saturating_sub(e.window_ns) > u64::from(cfg.move_window_s) * 1_000_000_000 {
                e.window_ns = ts;
                e.window_moves = 0;
            }
            let old = (e.remote, e.ifindex, e.vid);
            e.remote = at.remote;
            e.ifindex = at.ifindex;
            e.vid = at.vid;
            e.flags = (e.flags & !FDB_F_DELIVERY) | delivery;
            e.peer = at.peer;
            e.seen_ns = ts;
            e.window_moves += 1;
            e.moves += 1;
            if e.window_moves > cfg.move_limit {
                e.flags |= LEARNED_F_FROZEN;
                count(Counter::MacFrozen);
                warn!(
                    ctx,
                    "VNI {} MAC {:mac} frozen: {} moves within {} s",
                    vni,
                    mac,
                    e.window_moves,
                    cfg.move_window_s
                );
                report(MacEventKind::Frozen, &key, &old, at, ts);
            } else {
                count(Counter::MacMoved);
                report(MacEventKind::Moved, &key, &old, at, ts);
            }
            return true;
        }
        // Stale: learned afresh below.
    }
    let mut old = (Addr::NONE, 0, 0);
    let mut kind = MacEventKind::Learned;
    if let Some(f) = FDB.get_ptr(key) {
        // SAFETY: map values stay valid for the duration of the program.
        let f = unsafe { &*f };
        if f.flags & (FDB_F_EVPN | FDB_F_STICKY) != FDB_F_EVPN
            || (f.remote == at.remote && f.ifindex == at.ifindex && f.vid == at.vid)
        {
            return false;
        }
        old = (f.remote, f.ifindex, f.vid);
        kind = MacEventKind::Moved;
        // Another CPU may have removed it first: either way it is gone.
        let _ = FDB.remove(key);
    }
    // Built in this CPU's scratch entry, not on the stack: 56 bytes the
    // frames of the encap and decap paths cannot spare (with group policy
    // each was 16 bytes over the 512, measured).
    let Some(e) = LEARN_SCRATCH.get_ptr_mut(0) else {
        return kind == MacEventKind::Moved;
    };
    // SAFETY: a per-CPU value, valid for the program's run; only this CPU
    // uses it, never while another run of ours is on this CPU.
    let e = unsafe { &mut *e };
    *e = LearnedEntry {
        remote: at.remote,
        ifindex: at.ifindex,
        vid: at.vid,
        _pad: 0,
        seen_ns: ts,
        window_ns: ts,
        window_moves: 0,
        moves: 0,
        flags: delivery,
        peer: at.peer,
    };
    // By reference: the map update reads the scratch entry in place.
    let e: &LearnedEntry = e;
    if LEARNED.insert(key, e, 0).is_ok() {
        count(match kind {
            MacEventKind::Moved => Counter::MacMoved,
            _ => Counter::MacLearned,
        });
        report(kind, &key, &old, at, ts);
        return true;
    }
    // The FDB entry is gone even if the MAC could not be learned: the
    // decisions made from it too.
    kind == MacEventKind::Moved
}
