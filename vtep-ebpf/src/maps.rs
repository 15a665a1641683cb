//! Map declarations, the load-time configuration and counter helpers.
//!
//! Every map is pinned by name under the instance's pin directory, so the
//! datapath and its state outlive the `vtep` process that loaded them.

use aya_ebpf::{
    Global,
    bindings::{BPF_F_MMAPABLE, BPF_F_NO_PREALLOC},
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, PerCpuHashMap, Queue, RingBuf},
};
use vtep_common::{
    addr::Addr,
    caches::{Decision, EncapDecision, TICK_MAX_NS},
    consts::{
        DECAP_CACHE_CAPACITY, DEFAULT_LEARNED_CAPACITY, DEFAULT_TTL, ENCAP_CACHE_CAPACITY,
        EVENTS_BYTES, EVPN_EVENTS_CAPACITY, FDB_CAPACITY, GENERATION_SLOTS, MEMBERS_CAPACITY,
        NEIGHS_CAPACITY, NEXTHOPS_CAPACITY, PEERS_CAPACITY, POLICERS_CAPACITY, PORTS_CAPACITY,
        REMOTES_CAPACITY, RULES_CAPACITY, VNIS_CAPACITY, VXLAN_PORT,
    },
    counters::{Counter, DropReason},
    maps::{
        BindingStats, BumBucket, Config, DEFAULT_AGEING_S, DEFAULT_MOVE_LIMIT,
        DEFAULT_MOVE_WINDOW_S, FdbEntry, FdbKey, InstanceInfo, LearnedEntry, MacEvent, NeighEntry,
        NeighKey, NextHopKey, PeerInfo, PeerStats, PortInfo, PortKey, RemoteInfo, RemoteKey,
        VniInfo, VniStats,
    },
    policy::{Member, Policer, Rule, RuleKey},
};

/// A drop: why, and the stats slot of the VNI to charge it to once known
/// ([`NO_SLOT`] before). A plain word, not an `Option<u32>`: a `None`
/// leaves its payload unwritten, and the compiler may still pack payload
/// and tag into one register (`payload << 32 | tag`) on the way to a
/// common exit, a read of a register never written that the verifier
/// refuses (`R4 !read_ok` in `vtep_decap_merged` once the settings were
/// read in place, see [`config`]: the code's shape decided whether it
/// loaded).
pub type Dropped = (DropReason, u32);

/// No VNI to charge a drop to (not known yet); outside every stats map.
pub const NO_SLOT: u32 = u32::MAX;

/// Load-time settings (read-only), see [`Config`].
#[unsafe(no_mangle)]
pub static CONFIG: Global<Config> = Global::new(Config {
    local_ip: Addr::NONE,
    underlay_ifindex: 0,
    udp_port: VXLAN_PORT,
    ttl: DEFAULT_TTL,
    flags: 0,
    ageing_s: DEFAULT_AGEING_S,
    move_limit: DEFAULT_MOVE_LIMIT,
    move_window_s: DEFAULT_MOVE_WINDOW_S,
    tick_ns: TICK_MAX_NS,
});

/// The load-time settings, read in place: a frame loads the fields it
/// needs when it needs them. `CONFIG.load()` (a volatile read) copied all
/// 40 bytes to the stack on every run: a dozen loads and stores a frame,
/// and 40 of the 512 bytes the verifier allows a program's stack frames
/// together (with [`Dropped`]'s slot a plain word as well, `vtep_encap`'s
/// own frame went from 328 to 288 bytes, with `write_outer`'s 176 under
/// it; the slot's change alone took the two to 528).
#[inline(always)]
pub fn config() -> &'static Config {
    let mut at = core::ptr::from_ref(&CONFIG) as u64;
    // The compiler must not see where `at` points, or it would fold the
    // settings to the initial values above, which the loader replaces
    // (what `Global::load`'s volatile read prevents).
    // SAFETY: the template is empty; `at` goes through unchanged.
    unsafe { core::arch::asm!("/* {at} */", at = inout(reg) at, options(pure, nomem, nostack)) };
    // SAFETY: `Global<T>` is a transparent `MaybeUninit<T>`, always
    // initialised; the value lives in the program's read-only data as
    // long as the program.
    unsafe { &*(at as *const Config) }
}

/// The instance record: written and read by userspace only, pinned with the
/// other maps so that every `vtep` command finds the instance's settings.
#[map]
pub static INSTANCE: Array<InstanceInfo> = Array::pinned(1, 0);

#[map]
pub static FDB: HashMap<FdbKey, FdbEntry> = HashMap::pinned(FDB_CAPACITY, BPF_F_NO_PREALLOC);

/// Learned MACs; capacity set at load time (`vtep up --learned-capacity`).
#[map]
pub static LEARNED: LruHashMap<FdbKey, LearnedEntry> =
    LruHashMap::pinned(DEFAULT_LEARNED_CAPACITY, 0);

/// Learned, moved and frozen MACs, read by `vtep events`.
#[map]
pub static EVENTS: RingBuf = RingBuf::pinned(EVENTS_BYTES, 0);

/// MACs re-pointed by EVPN routes (see `MAP_EVPN_EVENTS`): declared here
/// so that it is created and pinned with the others; only userspace
/// pushes and pops.
#[map]
pub static EVPN_EVENTS: Queue<MacEvent> = Queue::pinned(EVPN_EVENTS_CAPACITY, 0);

/// The same records for the daemon (see `MAP_CONTROL_EVENTS`).
#[map]
pub static CONTROL_EVENTS: RingBuf = RingBuf::pinned(EVENTS_BYTES, 0);

/// The neighbour entries `vtep` created (written and read by userspace
/// only; pinned so that `down` finds them).
#[map]
pub static NEXTHOPS: HashMap<NextHopKey, u32> = HashMap::pinned(NEXTHOPS_CAPACITY, 0);

/// ARP suppression: tenant IPv4 -> MAC per VNI.
#[map]
pub static NEIGHS: HashMap<NeighKey, NeighEntry> =
    HashMap::pinned(NEIGHS_CAPACITY, BPF_F_NO_PREALLOC);

/// Storm-control token buckets, by VNI stats slot.
#[map]
pub static BUM_BUCKETS: Array<BumBucket> = Array::pinned(VNIS_CAPACITY, 0);

/// Port bindings: (port, VID) -> VNI.
#[map]
pub static PORTS: HashMap<PortKey, PortInfo> = HashMap::pinned(PORTS_CAPACITY, 0);

/// Identities: (VNI, MAC) -> group and policers (see `identity`).
#[map]
pub static MEMBERS: HashMap<FdbKey, Member> = HashMap::pinned(MEMBERS_CAPACITY, BPF_F_NO_PREALLOC);

/// Group policy rules and their per-CPU hits.
#[map]
pub static RULES: PerCpuHashMap<RuleKey, Rule> =
    PerCpuHashMap::pinned(RULES_CAPACITY, BPF_F_NO_PREALLOC);

/// Rate limits, by slot (0 unused), shared by every CPU.
#[map]
pub static POLICERS: Array<Policer> = Array::pinned(POLICERS_CAPACITY, 0);

#[map]
pub static VNIS: HashMap<u32, VniInfo> = HashMap::pinned(VNIS_CAPACITY, BPF_F_NO_PREALLOC);

#[map]
pub static REMOTES: HashMap<RemoteKey, RemoteInfo> =
    HashMap::pinned(REMOTES_CAPACITY, BPF_F_NO_PREALLOC);

/// The tables' generations, one per VNI slot, and the routes' after them:
/// see `cache` and `encap_cache`. Userspace maps it into memory to add to
/// it atomically.
#[map]
pub static GENERATION: Array<u64> = Array::pinned(GENERATION_SLOTS + 1, BPF_F_MMAPABLE);

/// Until when a daemon vouches for route, neighbour and link changes
/// (coarse ns; see `MAP_WATCHED`): written by userspace only.
#[map]
pub static WATCHED: Array<u64> = Array::pinned(1, 0);

/// The decap decision cache (see `cache`); not pinned.
#[map]
pub static DECAP_CACHE: PerCpuArray<Decision> =
    PerCpuArray::with_max_entries(DECAP_CACHE_CAPACITY, 0);

/// The encap decision cache (see `encap_cache`); not pinned.
#[map]
pub static ENCAP_CACHE: PerCpuArray<EncapDecision> =
    PerCpuArray::with_max_entries(ENCAP_CACHE_CAPACITY, 0);

/// Where a MAC event is built before it is copied into the rings (one
/// per CPU; not pinned): 64 bytes the learning path's stack frame cannot
/// spare (with its callers, 512 bytes at most).
#[map]
pub static EVENT_SCRATCH: PerCpuArray<MacEvent> = PerCpuArray::with_max_entries(1, 0);

/// Where a learned entry is built before it is inserted (one per CPU; not
/// pinned), for the same reason.
#[map]
pub static LEARN_SCRATCH: PerCpuArray<LearnedEntry> = PerCpuArray::with_max_entries(1, 0);

/// The outer dsfield of the frame being encapsulated, from
/// `flow::inner_flow` to its caller (one per CPU; not pinned).
/// A value a subprogram returns is tracked by the verifier along every
/// path through it into the caller, which kept its states from merging:
/// returned, the dsfield took the encap program's verification from
/// 0.5 M instructions to over the 1 M limit (tried); read back from a map
/// it is one unknown value on every path.
#[map]
static OUTER_DS: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

/// Leaves `ds` in [`OUTER_DS`].
#[inline(always)]
pub fn set_outer_ds(ds: u8) {
    if let Some(p) = OUTER_DS.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, only this CPU uses it while we run.
        unsafe { *p = u32::from(ds) };
    }
}

/// What [`set_outer_ds`] left.
#[inline(always)]
pub fn outer_ds() -> u8 {
    OUTER_DS.get(0).map_or(0, |v| *v as u8)
}

#[map]
pub static VNI_STATS: PerCpuArray<VniStats> = PerCpuArray::pinned(VNIS_CAPACITY, 0);

/// Remote VTEPs and their `PEER_STATS` slots (written and read by
/// userspace only; pinned so that every command finds them).
#[map]
pub static PEERS: HashMap<Addr, PeerInfo> = HashMap::pinned(PEERS_CAPACITY, BPF_F_NO_PREALLOC);

#[map]
pub static PEER_STATS: PerCpuArray<PeerStats> = PerCpuArray::pinned(PEERS_CAPACITY, 0);

#[map]
pub static BINDING_STATS: PerCpuArray<BindingStats> = PerCpuArray::pinned(PORTS_CAPACITY, 0);

#[map]
pub static DROPS: PerCpuArray<u64> = PerCpuArray::pinned(DropReason::COUNT, 0);

#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::pinned(Counter::COUNT, 0);

/// Adds one to a datapath event counter.
#[inline(always)]
pub fn count(c: Counter) {
    if let Some(p) = COUNTERS.get_ptr_mut(c as u32) {
        // SAFETY: per-CPU slot, only this CPU writes it while we run.
        unsafe { *p += 1 };
    }
}

/// Counts a drop by reason, and against the VNI in stats slot `slot` when
/// the frame's VNI is known (not [`NO_SLOT`]).
#[inline(always)]
pub fn count_drop(reason: DropReason, slot: u32) {
    if let Some(p) = DROPS.get_ptr_mut(reason as u32) {
        // SAFETY: per-CPU slot, only this CPU writes it while we run.
        unsafe { *p += 1 };
    }
    // `NO_SLOT` is past the map's end: the lookup finds nothing.
    if let Some(s) = VNI_STATS.get_ptr_mut(slot) {
        // SAFETY: per-CPU value, only this CPU writes it while we run.
        unsafe { (*s).drop_packets += 1 };
    }
}

/// Counts a frame decapsulated and delivered (`rx`) for the VNI in `slot`
/// and the remote VTEP in `peer` (their stats slots).
#[inline(always)]
pub fn count_rx(slot: u32, peer: u32, bytes: u64) {
    if let Some(s) = VNI_STATS.get_ptr_mut(slot) {
        // SAFETY: per-CPU value, only this CPU writes it while we run.
        unsafe {
            (*s).rx_packets += 1;
            (*s).rx_bytes += bytes;
        }
    }
    if let Some(p) = PEER_STATS.get_ptr_mut(peer) {
        // SAFETY: as above.
        unsafe {
            (*p).rx_packets += 1;
            (*p).rx_bytes += bytes;
        }
    }
}

/// Counts a frame of `bytes` delivered to the hosts of the port binding
/// whose stats slot is `slot` (`rx`, as for a VNI).
#[inline(always)]
pub fn count_binding_rx(slot: u32, bytes: u64) {
    if let Some(s) = BINDING_STATS.get_ptr_mut(slot) {
        // SAFETY: per-CPU value, only this CPU writes it while we run.
        unsafe {
            (*s).rx_packets += 1;
            (*s).rx_bytes += bytes;
        }
    }
}

/// Counts a frame of `bytes` from the hosts of the port binding whose
/// stats slot is `slot` (`tx`, as for a VNI).
#[inline(always)]
pub fn count_binding_tx(slot: u32, bytes: u64) {
    if let Some(s) = BINDING_STATS.get_ptr_mut(slot) {
        // SAFETY: per-CPU value, only this CPU writes it while we run.
        unsafe {
            (*s).tx_packets += 1;
            (*s).tx_bytes += bytes;
        }
    }
}

/// Counts a frame encapsulated and sent (`tx`) for the VNI in `slot` to the
/// remote VTEP in `peer` (their stats slots).
#[inline(always)]
pub fn count_tx(slot: u32, peer: u32, bytes: u64) {
    if let Some(s) = VNI_STATS.get_ptr_mut(slot) {
        // SAFETY: per-CPU value, only this CPU writes it while we run.
        unsafe {
            (*s).tx_packets += 1;
            (*s).tx_bytes += bytes;
        }
    }
    if let Some(p) = PEER_STATS.get_ptr_mut(peer) {
        // SAFETY: as above.
        unsafe {
            (*p).tx_packets += 1;
            (*p).tx_bytes += bytes;
        }
    }
}
