//! An instance of the datapath: its pin directory and its tables.
//!
//! Everything an instance has lives under `PIN_ROOT/INSTANCE/`: the maps
//! (pinned by name), the encap program (so later commands can attach it to
//! new ports) and one pinned link per attachment. Every command but `up`
//! opens the pins and works on the [`Tables`].

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    rc::Rc,
};

use anyhow::{Context as _, bail};
use aya::{
    Pod,
    maps::{HashMap, Map, MapData, MapError, PerCpuArray, PerCpuValues},
    util::nr_cpus,
};
use vtep_common::{
    consts::{
        MAP_BUM_BUCKETS, MAP_COUNTERS, MAP_DROPS, MAP_FDB, MAP_GENERATION, MAP_INSTANCE,
        MAP_LEARNED, MAP_NEIGHS, MAP_NEXTHOPS, MAP_PEER_STATS, MAP_PEERS, MAP_PORTS, MAP_REMOTES,
        MAP_VNI_STATS, MAP_VNIS, MAX_FLOOD, MAX_VNI_PORTS, PEERS_CAPACITY, VNIS_CAPACITY,
    },
    counters::{Counter, DropReason},
    maps::{
        BumBucket, FDB_F_STATIC, FDB_F_XDP, FdbEntry, FdbKey, InstanceInfo, LAYOUT_VERSION,
        LEARNED_F_FROZEN, LearnedEntry, NEIGH_F_STATIC, NeighEntry, NeighKey, NextHopKey,
        PORT_F_LEARN, PORT_F_XDP, PeerInfo, PeerStats, PortInfo, REMOTE_F_LEARN, RemoteInfo,
        RemoteKey, VNI_F_NO_LEARNING, VniInfo, VniStats,
    },
};

use crate::{
    generation::Generation,
    sys,
    values::{Mac, Vni, ip_from_map, ip_to_map},
};

/// Pin name of the encap program.
pub const PIN_PROG_ENCAP: &str = "prog_encap";
/// Pin name of the XDP link on the underlay.
pub const PIN_LINK_XDP: &str = "link_xdp";
/// Pin name of the TC link on the underlay.
pub const PIN_LINK_DECAP_TC: &str = "link_decap_tc";

/// Pin name of the TC link on port `ifindex`.
pub fn pin_link_port(ifindex: u32) -> String {
    format!("link_port_{ifindex}")
}

/// Where an instance lives.
pub struct Instance {
    /// The instance name.
    pub name: String,
    /// `PIN_ROOT/INSTANCE`.
    pub dir: PathBuf,
}

impl Instance {
    /// The instance `name` under `pin_root`.
    pub fn new(pin_root: &Path, name: &str) -> anyhow::Result<Self> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            bail!("invalid instance name '{name}': use 1 to 64 letters, digits, '-' or '_'");
        }
        Ok(Self {
            name: name.to_owned(),
            dir: pin_root.join(name),
        })
    }

    /// The path of pin `name`.
    pub fn pin(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Where `vtep daemon` keeps its pid for this instance.
    pub fn pidfile(&self) -> PathBuf {
        let tag: String = self
            .dir
            .to_string_lossy()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Path::new("/run/vtep").join(format!("{tag}.pid"))
    }

    /// The pid of this instance's running daemon, if one runs.
    pub fn daemon_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.pidfile())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        // SAFETY: signal 0 only checks that the process exists.
        (unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
    }

    /// Whether `vtep up` has run for this instance (its record is pinned).
    pub fn is_up(&self) -> bool {
        self.pin(MAP_INSTANCE).exists()
    }

    /// Opens the instance's tables; fails with a hint if it is not up.
    pub fn open(&self) -> anyhow::Result<Tables> {
        if !self.is_up() {
            bail!(
                "instance '{}' is not up (nothing pinned at {}): run `vtep up` first",
                self.name,
                self.dir.display()
            );
        }
        Tables::open(self)
    }
}

/// Opens pinned map `name` of `inst` as `T`.
pub fn open_map<T>(inst: &Instance, name: &str, wrap: fn(MapData) -> Map) -> anyhow::Result<T>
where
    T: TryFrom<Map, Error = aya::maps::MapError>,
{
    let path = inst.pin(name);
    let data = MapData::from_pin(&path)
        .with_context(|| format!("cannot open pinned map {}", path.display()))?;
    T::try_from(wrap(data))
        .with_context(|| format!("pinned map {} has the wrong type", path.display()))
}

/// Where a MAC lives, as users see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// Behind a remote VTEP.
    Remote(Ipv4Addr),
    /// On a local port (ifindex).
    Port(u32),
}

impl Location {
    /// From a map entry's `remote` (on-wire IPv4) and `ifindex` fields,
    /// one of which is 0.
    fn of(remote: u32, ifindex: u32) -> Self {
        if ifindex != 0 {
            Location::Port(ifindex)
        } else {
            Location::Remote(ip_from_map(remote))
        }
    }
}

/// One FDB entry, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdbRow {
    pub vni: u32,
    pub mac: Mac,
    pub location: Location,
    pub is_static: bool,
    /// Learned entries: seconds since last seen, moves, frozen.
    pub learned: Option<Learned>,
}

/// What a learned entry adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Learned {
    pub age_s: u64,
    pub moves: u32,
    pub frozen: bool,
}

/// CLOCK_MONOTONIC_COARSE in ns: the clock of the datapath's
/// `bpf_ktime_get_coarse_ns`.
pub fn coarse_now_ns() -> u64 {
    // SAFETY: timespec is plain old data; all-zero is a valid value.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is writable for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// One VNI's counters, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VniRow {
    pub vni: u32,
    pub stats: VniStats,
}

impl VniRow {
    /// As `vtep stats --json` shows a VNI.
    pub fn to_json(&self) -> serde_json::Value {
        let s = &self.stats;
        serde_json::json!({
            "vni": self.vni,
            "rx_packets": s.rx_packets,
            "rx_bytes": s.rx_bytes,
            "tx_packets": s.tx_packets,
            "tx_bytes": s.tx_bytes,
            "drop_packets": s.drop_packets,
        })
    }
}

/// One remote VTEP's counters, summed over CPUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRow {
    pub remote: Ipv4Addr,
    pub stats: PeerStats,
}

impl PeerRow {
    /// As `vtep stats --json` shows a remote VTEP.
    pub fn to_json(&self) -> serde_json::Value {
        let s = &self.stats;
        serde_json::json!({
            "remote": self.remote.to_string(),
            "rx_packets": s.rx_packets,
            "rx_bytes": s.rx_bytes,
            "tx_packets": s.tx_packets,
            "tx_bytes": s.tx_bytes,
        })
    }
}

/// Stats slots handed out from a range, the ones in use read once per
/// invocation when first needed (a config with many VNIs or remotes must
/// not rescan a table for each), the search going on from the last slot
/// handed out (wrapping around), so many allocations cost one pass.
#[derive(Default)]
struct Slots {
    used: Option<std::collections::BTreeSet<u32>>,
    hint: u32,
}

impl Slots {
    /// A slot in `range` not in use (`in_use` lists them on first call).
    fn take(
        &mut self,
        range: std::ops::Range<u32>,
        in_use: impl FnOnce() -> std::collections::BTreeSet<u32>,
    ) -> Option<u32> {
        let used = self.used.get_or_insert_with(in_use);
        let start = self.hint.clamp(range.start, range.end);
        let slot = (start..range.end)
            .chain(range.start..start)
            .find(|s| !used.contains(s))?;
        used.insert(slot);
        self.hint = slot + 1;
        Some(slot)
    }

    /// `slot` is free again.
    fn release(&mut self, slot: u32) {
        if let Some(used) = &mut self.used {
            used.remove(&slot);
        }
    }
}

/// Counters of the whole instance, summed over CPUs.
pub struct Stats {
    pub vnis: Vec<VniRow>,
    /// Per remote VTEP, by address.
    pub remotes: Vec<PeerRow>,
    pub drops: Vec<(DropReason, u64)>,
    pub counters: Vec<(Counter, u64)>,
}

/// A table the decap decision cache reads (FDB, LEARNED, REMOTES): reads
/// go straight to the map; every change is followed by a bump of the
/// tables' generation, so that no decision cached before it is used after.
pub struct Watched<K, V> {
    map: HashMap<MapData, K, V>,
    generation: Rc<Generation>,
}

impl<K: Pod, V: Pod> Watched<K, V> {
    fn open(
        inst: &Instance,
        name: &str,
        wrap: fn(MapData) -> Map,
        generation: &Rc<Generation>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            map: open_map(inst, name, wrap)?,
            generation: generation.clone(),
        })
    }

    fn insert(&mut self, key: K, value: V, flags: u64) -> Result<(), MapError> {
        let r = self.map.insert(key, value, flags);
        self.generation.bump();
        r
    }

    fn remove(&mut self, key: &K) -> Result<(), MapError> {
        let r = self.map.remove(key);
        self.generation.bump();
        r
    }
}

impl<K, V> std::ops::Deref for Watched<K, V> {
    type Target = HashMap<MapData, K, V>;

    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

/// The maps of an instance, opened from their pins.
pub struct Tables {
    pub info: InstanceInfo,
    fdb: Watched<FdbKey, FdbEntry>,
    learned: Watched<FdbKey, LearnedEntry>,
    neighs: HashMap<MapData, NeighKey, NeighEntry>,
    nexthops: HashMap<MapData, NextHopKey, u32>,
    buckets: aya::maps::Array<MapData, BumBucket>,
    /// VNI stats slots.
    vni_slots: Slots,
    /// Remote VTEP stats slots.
    peer_slots: Slots,
    /// Remotes whose next hop this invocation already made managed.
    resolved: std::collections::BTreeSet<u32>,
    ports: HashMap<MapData, u32, PortInfo>,
    vnis: HashMap<MapData, u32, VniInfo>,
    remotes: Watched<RemoteKey, RemoteInfo>,
    peers: HashMap<MapData, u32, PeerInfo>,
    vni_stats: PerCpuArray<MapData, VniStats>,
    peer_stats: PerCpuArray<MapData, PeerStats>,
    drops: PerCpuArray<MapData, u64>,
    counters: PerCpuArray<MapData, u64>,
    generation: Rc<Generation>,
}

impl Tables {
    fn open(inst: &Instance) -> anyhow::Result<Self> {
        let record: aya::maps::Array<MapData, InstanceInfo> =
            open_map(inst, MAP_INSTANCE, Map::Array)?;
        let info = record
            .get(&0, 0)
            .context("cannot read the instance record")?;
        if info.layout_version != LAYOUT_VERSION {
            bail!(
                "instance '{}' was created by a build with map layout {}, this build reads layout \
                 {LAYOUT_VERSION}: run `vtep down` and `vtep up` with this build",
                inst.name,
                info.layout_version
            );
        }
        let generation = Rc::new(
            Generation::open(&inst.pin(MAP_GENERATION))
                .with_context(|| format!("instance '{}'", inst.name))?,
        );
        Ok(Self {
            info,
            fdb: Watched::open(inst, MAP_FDB, Map::HashMap, &generation)?,
            learned: Watched::open(inst, MAP_LEARNED, Map::LruHashMap, &generation)?,
            neighs: open_map(inst, MAP_NEIGHS, Map::HashMap)?,
            nexthops: open_map(inst, MAP_NEXTHOPS, Map::HashMap)?,
            buckets: open_map(inst, MAP_BUM_BUCKETS, Map::Array)?,
            vni_slots: Slots::default(),
            peer_slots: Slots::default(),
            resolved: Default::default(),
            ports: open_map(inst, MAP_PORTS, Map::HashMap)?,
            vnis: open_map(inst, MAP_VNIS, Map::HashMap)?,
            remotes: Watched::open(inst, MAP_REMOTES, Map::HashMap, &generation)?,
            peers: open_map(inst, MAP_PEERS, Map::HashMap)?,
            vni_stats: open_map(inst, MAP_VNI_STATS, Map::PerCpuArray)?,
            peer_stats: open_map(inst, MAP_PEER_STATS, Map::PerCpuArray)?,
            drops: open_map(inst, MAP_DROPS, Map::PerCpuArray)?,
            counters: open_map(inst, MAP_COUNTERS, Map::PerCpuArray)?,
            generation,
        })
    }

    /// Removes learned entries not seen for the ageing time; returns what
    /// they were, for an `aged` report.
    pub fn reap_stale(&mut self) -> Vec<(FdbKey, LearnedEntry)> {
        let now = coarse_now_ns();
        let ageing_ns = self.ageing_ns();
        let stale: Vec<(FdbKey, LearnedEntry)> = self
            .learned
            .iter()
            .filter_map(Result::ok)
            .filter(|(_, e)| now.saturating_sub(e.seen_ns) > ageing_ns)
            .collect();
        for (k, _) in &stale {
            let _ = self.learned.remove(k);
        }
        stale
    }

    /// Removes the neighbour entries `vtep` created (for `down`).
    pub fn forget_nexthops(&mut self) {
        let keys: Vec<NextHopKey> = self.nexthops.keys().filter_map(Result::ok).collect();
        for k in keys {
            let dev = sys::ifname(k.ifindex);
            if let Err(e) = crate::neigh::forget(ip_from_map(k.ip), &dev) {
                log::warn!("{e:#}");
            }
            let _ = self.nexthops.remove(&k);
        }
    }

    /// The ageing time, ns.
    fn ageing_ns(&self) -> u64 {
        u64::from(self.info.config.ageing_s) * 1_000_000_000
    }

    /// The configuration of `vni`, if it is configured.
    pub fn vni(&self, vni: Vni) -> Option<VniInfo> {
        self.vnis.get(&vni.0, 0).ok()
    }

    fn require_vni(&self, vni: Vni) -> anyhow::Result<VniInfo> {
        self.vni(vni).with_context(|| {
            format!("VNI {vni} is not configured: add it with `vtep vni add {vni}`")
        })
    }

    /// The binding of port `ifindex`, if it is bound.
    pub fn port(&self, ifindex: u32) -> Option<PortInfo> {
        self.ports.get(&ifindex, 0).ok()
    }

    /// Every configured VNI with its configuration.
    pub fn vnis(&self) -> Vec<(u32, VniInfo)> {
        let mut v: Vec<_> = self.vnis.iter().filter_map(Result::ok).collect();
        v.sort_by_key(|(vni, _)| *vni);
        v
    }

    /// Every bound port.
    pub fn ports(&self) -> Vec<(u32, PortInfo)> {
        let mut v: Vec<_> = self.ports.iter().filter_map(Result::ok).collect();
        v.sort_by_key(|(i, _)| *i);
        v
    }

    /// Counts one more reason for `ip` to send `vni` (described by `info`);
    /// the first makes its next hop a managed neighbour and gives it a
    /// `PEER_STATS` slot. Returns that slot.
    fn ref_remote(&mut self, vni: Vni, info: &VniInfo, ip: u32) -> anyhow::Result<u32> {
        let key = RemoteKey { vni: vni.0, ip };
        let old = self.remotes.get(&key, 0).ok();
        let refs = old.map_or(0, |r| r.refs);
        if refs == 0 && self.resolved.insert(ip) {
            let (remote, local) = (ip_from_map(ip), ip_from_map(self.info.config.local_ip));
            match crate::neigh::keep_resolved(remote, local) {
                Ok((hop, dev, true)) => {
                    let key = NextHopKey {
                        ifindex: sys::ifindex(&dev)?,
                        ip: ip_to_map(hop),
                    };
                    self.nexthops
                        .insert(key, 1, 0)
                        .context("next-hop record full")?;
                }
                Ok(_) => {}
                Err(e) => {
                    log::warn!(
                        "remote VTEP {remote}: {e:#}; its traffic is dropped (no_route) until the underlay routes it"
                    );
                }
            }
        }
        let peer = match old {
            Some(r) => r.peer,
            None => self.ref_peer(ip)?,
        };
        let value = RemoteInfo {
            refs: refs + 1,
            slot: info.slot,
            flags: learn_flag(info, REMOTE_F_LEARN),
            peer,
        };
        self.remotes.insert(key, value, 0).with_context(|| {
            format!(
                "remote VTEP table full adding {} to VNI {vni}",
                ip_from_map(ip)
            )
        })?;
        Ok(peer)
    }

    /// Takes back one reason for `ip` to send `vni`; at the last, `ip` may
    /// no longer send it, and the MACs learned behind it in `vni` go.
    fn unref_remote(&mut self, vni: Vni, ip: u32) -> anyhow::Result<()> {
        let key = RemoteKey { vni: vni.0, ip };
        match self.remotes.get(&key, 0) {
            Ok(r) if r.refs > 1 => self.remotes.insert(
                key,
                RemoteInfo {
                    refs: r.refs - 1,
                    ..r
                },
                0,
            )?,
            Ok(_) => {
                self.remotes.remove(&key)?;
                self.forget(Some(vni), |e| e.remote == ip)?;
                self.unref_peer(ip)?;
            }
            Err(_) => {}
        }
        Ok(())
    }

    /// The `PEER_STATS` slot of remote VTEP `ip` in `vni` (0 if it has no
    /// `REMOTES` entry there).
    fn remote_peer(&self, vni: Vni, ip: u32) -> u32 {
        self.remotes
            .get(&RemoteKey { vni: vni.0, ip }, 0)
            .map_or(0, |r| r.peer)
    }

    /// One more VNI names remote VTEP `ip`; the first gives it a
    /// `PEER_STATS` slot (counters zeroed). Returns the slot.
    fn ref_peer(&mut self, ip: u32) -> anyhow::Result<u32> {
        let (slot, refs) = match self.peers.get(&ip, 0) {
            Ok(p) => (p.slot, p.refs),
            Err(_) => {
                let peers = &self.peers;
                let slot = self
                    .peer_slots
                    .take(1..PEERS_CAPACITY, || {
                        peers.iter().filter_map(Result::ok).map(|(_, p)| p.slot).collect()
                    })
                    .with_context(|| {
                        format!(
                            "remote VTEP {}: this instance already has {} remote VTEPs, the most supported",
                            ip_from_map(ip),
                            PEERS_CAPACITY - 1
                        )
                    })?;
                zero_slot(&mut self.peer_stats, slot)?;
                (slot, 0)
            }
        };
        self.peers
            .insert(
                ip,
                PeerInfo {
                    slot,
                    refs: refs + 1,
                },
                0,
            )
            .context("cannot update the remote VTEP table")?;
        Ok(slot)
    }

    /// One VNI fewer names remote VTEP `ip`; at the last its slot is free.
    fn unref_peer(&mut self, ip: u32) -> anyhow::Result<()> {
        match self.peers.get(&ip, 0) {
            Ok(p) if p.refs > 1 => self.peers.insert(
                ip,
                PeerInfo {
                    refs: p.refs - 1,
                    ..p
                },
                0,
            )?,
            Ok(p) => {
                self.peers.remove(&ip)?;
                self.peer_slots.release(p.slot);
            }
            Err(_) => {}
        }
        Ok(())
    }

    /// A stats slot no VNI uses, with its counters zeroed.
    fn free_slot(&mut self) -> anyhow::Result<u32> {
        let vnis = &self.vnis;
        let slot = self
            .vni_slots
            .take(0..VNIS_CAPACITY, || {
                vnis.iter()
                    .filter_map(Result::ok)
                    .map(|(_, i)| i.slot)
                    .collect()
            })
            .with_context(|| {
                format!("VNI table full: {VNIS_CAPACITY} VNIs is the most supported")
            })?;
        zero_slot(&mut self.vni_stats, slot)?;
        Ok(slot)
    }

    /// Adds `vni` with flood list `flood`, data-plane learning on or off and
    /// a BUM rate limit (`bum_pps`, 0: none), or replaces them on an
    /// existing VNI.
    pub fn vni_add(
        &mut self,
        vni: Vni,
        flood: &[Ipv4Addr],
        learning: bool,
        bum_pps: u32,
    ) -> anyhow::Result<()> {
        if flood.len() > MAX_FLOOD {
            bail!(
                "VNI {vni}: the flood list has {} remote VTEPs, at most {MAX_FLOOD} are supported",
                flood.len()
            );
        }
        let existing = self.vni(vni);
        let mut info = match existing {
            Some(info) => info,
            None => VniInfo {
                slot: self.free_slot()?,
                ..VniInfo::default()
            },
        };
        let old: Vec<u32> = info.remotes[..info.n_remotes as usize].to_vec();
        let new: Vec<u32> = flood.iter().map(|ip| ip_to_map(*ip)).collect();
        let learning_changed = (info.flags & VNI_F_NO_LEARNING == 0) != learning;
        if info.bum_pps != bum_pps {
            // A new rate starts with a full bucket's worth of nothing.
            self.buckets.set(info.slot, BumBucket::default(), 0)?;
            info.bum_pps = bum_pps;
        }
        if learning {
            info.flags &= !VNI_F_NO_LEARNING;
        } else {
            info.flags |= VNI_F_NO_LEARNING;
        }
        for ip in new.iter().filter(|ip| !old.contains(ip)) {
            self.ref_remote(vni, &info, *ip)?;
        }
        info.remotes = [0; MAX_FLOOD];
        info.remotes[..new.len()].copy_from_slice(&new);
        info.peers = [0; MAX_FLOOD];
        for (i, ip) in new.iter().enumerate() {
            info.peers[i] = self.remote_peer(vni, *ip);
        }
        info.n_remotes = new.len() as u32;
        self.vnis
            .insert(vni.0, info, 0)
            .with_context(|| format!("VNI table full adding VNI {vni}"))?;
        for ip in old.iter().filter(|ip| !new.contains(ip)) {
            self.unref_remote(vni, *ip)?;
        }
        if existing.is_some() && learning_changed {
            self.set_learning(vni, &info)?;
        }
        Ok(())
    }

    /// Copies the VNI's learning setting onto its remotes and ports, where
    /// the datapath reads it.
    fn set_learning(&mut self, vni: Vni, info: &VniInfo) -> anyhow::Result<()> {
        let remotes: Vec<(RemoteKey, RemoteInfo)> = self
            .remotes
            .iter()
            .filter_map(Result::ok)
            .filter(|(k, _)| k.vni == vni.0)
            .collect();
        for (k, mut r) in remotes {
            r.flags = (r.flags & !REMOTE_F_LEARN) | learn_flag(info, REMOTE_F_LEARN);
            self.remotes.insert(k, r, 0)?;
        }
        for port in &info.ports[..info.n_ports as usize] {
            if let Some(mut p) = self.port(*port) {
                p.flags = (p.flags & !PORT_F_LEARN) | learn_flag(info, PORT_F_LEARN);
                self.ports.insert(*port, p, 0)?;
            }
        }
        Ok(())
    }

    /// Removes learned entries of `vni` (all VNIs if `None`) that `pick`
    /// selects; returns how many.
    pub fn forget(
        &mut self,
        vni: Option<Vni>,
        pick: impl Fn(&LearnedEntry) -> bool,
    ) -> anyhow::Result<usize> {
        let keys: Vec<FdbKey> = self
            .learned
            .iter()
            .filter_map(Result::ok)
            .filter(|(k, e)| vni.is_none_or(|v| v.0 == k.vni) && pick(e))
            .map(|(k, _)| k)
            .collect();
        for k in &keys {
            let _ = self.learned.remove(k);
        }
        Ok(keys.len())
    }

    /// Removes `vni`, its FDB entries and its counters. Refused while ports
    /// are bound to it.
    pub fn vni_del(&mut self, vni: Vni) -> anyhow::Result<()> {
        let info = self.require_vni(vni)?;
        if info.n_ports > 0 {
            let names: Vec<String> = info.ports[..info.n_ports as usize]
                .iter()
                .map(|i| sys::ifname(*i))
                .collect();
            bail!(
                "VNI {vni} still has ports bound ({}): remove them first with `vtep port del IFACE`",
                names.join(", ")
            );
        }
        self.forget(Some(vni), |_| true)?;
        for (k, _) in self.neighs(Some(vni)) {
            let _ = self.neighs.remove(&k);
        }
        for row in self.fdb_rows(Some(vni))? {
            self.fdb_del(vni, row.mac)?;
        }
        for ip in &info.remotes[..info.n_remotes as usize] {
            self.unref_remote(vni, *ip)?;
        }
        self.vnis.remove(&vni.0)?;
        self.vni_slots.release(info.slot);
        Ok(())
    }

    /// Checks that `ifindex` can be bound to `vni` (without changing
    /// anything), so the attach step can run before the tables change.
    pub fn port_check(&self, name: &str, ifindex: u32, vni: Vni) -> anyhow::Result<()> {
        if ifindex == self.info.config.underlay_ifindex {
            bail!("interface '{name}' is the underlay of this instance and cannot be a port");
        }
        if let Some(p) = self.port(ifindex) {
            bail!(
                "port '{name}' is already bound to VNI {}: remove it first with `vtep port del {name}`",
                p.vni
            );
        }
        let info = self.require_vni(vni)?;
        if info.n_ports as usize >= MAX_VNI_PORTS {
            bail!("VNI {vni} already has {MAX_VNI_PORTS} ports, the most supported");
        }
        Ok(())
    }

    /// Binds port `ifindex` to `vni` (after [`Tables::port_check`]).
    pub fn port_add(&mut self, ifindex: u32, vni: Vni, flags: u32) -> anyhow::Result<()> {
        let mut info = self.require_vni(vni)?;
        let port = PortInfo {
            vni: vni.0,
            flags: flags | learn_flag(&info, PORT_F_LEARN),
            slot: info.slot,
            _pad: 0,
        };
        self.ports
            .insert(ifindex, port, 0)
            .context("port table full")?;
        info.ports[info.n_ports as usize] = ifindex;
        info.n_ports += 1;
        if let Err(e) = self.vnis.insert(vni.0, info, 0) {
            let _ = self.ports.remove(&ifindex);
            return Err(e).context("cannot update the VNI table");
        }
        Ok(())
    }

    /// Unbinds port `ifindex` and forgets the MACs that pointed at it.
    pub fn port_del(&mut self, ifindex: u32) -> anyhow::Result<()> {
        let Some(port) = self.port(ifindex) else {
            return Ok(());
        };
        let vni = Vni(port.vni);
        if let Some(mut info) = self.vni(vni) {
            let n = info.n_ports as usize;
            let kept: Vec<u32> = info.ports[..n]
                .iter()
                .copied()
                .filter(|p| *p != ifindex)
                .collect();
            info.ports = [0; MAX_VNI_PORTS];
            info.ports[..kept.len()].copy_from_slice(&kept);
            info.n_ports = kept.len() as u32;
            self.vnis.insert(vni.0, info, 0)?;
        }
        for row in self.fdb_rows(Some(vni))? {
            if row.is_static && row.location == Location::Port(ifindex) {
                self.fdb_del(vni, row.mac)?;
            }
        }
        self.forget(Some(vni), |e| e.ifindex == ifindex)?;
        self.ports.remove(&ifindex)?;
        Ok(())
    }

    /// Adds or replaces many static FDB entries, all or none: every entry
    /// is checked before the first is written, and if one cannot be
    /// written (the FDB is full), those written before it are undone.
    pub fn fdb_load(&mut self, entries: &[(Vni, Mac, Location)]) -> anyhow::Result<()> {
        let mut vnis: BTreeMap<Vni, VniInfo> = BTreeMap::new();
        let mut checked = Vec::with_capacity(entries.len());
        for (vni, mac, at) in entries {
            let info = match vnis.get(vni) {
                Some(info) => *info,
                None => {
                    let info = self.require_vni(*vni)?;
                    vnis.insert(*vni, info);
                    info
                }
            };
            checked.push((*vni, *mac, self.fdb_entry(*vni, *mac, *at)?, info));
        }
        let mut done: Vec<(Vni, Mac, Option<FdbEntry>)> = Vec::new();
        for (vni, mac, entry, info) in checked {
            match self.fdb_put(vni, mac, entry, &info) {
                Ok(old) => done.push((vni, mac, old)),
                Err(e) => {
                    let taken = done.len();
                    for (vni, mac, old) in done.into_iter().rev() {
                        let undone = match old {
                            Some(o) => self.fdb_add(vni, mac, Location::of(o.remote, o.ifindex)),
                            None => self.fdb_del(vni, mac),
                        };
                        if let Err(u) = undone {
                            log::warn!("cannot undo the FDB entry of {mac} in VNI {vni}: {u:#}");
                        }
                    }
                    return Err(e.context(format!(
                        "nothing loaded ({} entries given, {taken} written and undone)",
                        entries.len()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Adds or replaces a static FDB entry.
    pub fn fdb_add(&mut self, vni: Vni, mac: Mac, at: Location) -> anyhow::Result<()> {
        let (entry, info) = self.fdb_check(vni, mac, at)?;
        self.fdb_put(vni, mac, entry, &info).map(|_| ())
    }

    /// Writes a checked static entry of `vni` (described by `info`),
    /// keeping the remote VTEPs' references right; returns the entry it
    /// replaced.
    fn fdb_put(
        &mut self,
        vni: Vni,
        mac: Mac,
        mut entry: FdbEntry,
        info: &VniInfo,
    ) -> anyhow::Result<Option<FdbEntry>> {
        let key = FdbKey::new(vni.0, mac.0);
        let old = self.fdb.get(&key, 0).ok();
        let same_remote = old.is_some_and(|o| o.remote == entry.remote);
        if entry.remote != 0 {
            entry.peer = match old {
                Some(o) if same_remote => o.peer,
                _ => self.ref_remote(vni, info, entry.remote)?,
            };
        }
        if let Err(e) = self.fdb.insert(key, entry, 0) {
            if entry.remote != 0 && !same_remote {
                self.unref_remote(vni, entry.remote)?;
            }
            return Err(e).with_context(|| {
                format!(
                    "FDB full adding {mac} in VNI {vni}: remove entries, or bring the instance \
                     up again with a larger `vtep up --fdb-capacity` (see `vtep maps list`)"
                )
            });
        }
        if let Some(o) = old
            && o.remote != 0
            && !same_remote
        {
            self.unref_remote(vni, o.remote)?;
        }
        // A static entry takes the MAC over from learning.
        let _ = self.learned.remove(&key);
        Ok(old)
    }

    /// Checks a static FDB entry; returns its map value and the VNI's
    /// configuration.
    fn fdb_check(&self, vni: Vni, mac: Mac, at: Location) -> anyhow::Result<(FdbEntry, VniInfo)> {
        let info = self.require_vni(vni)?;
        Ok((self.fdb_entry(vni, mac, at)?, info))
    }

    /// Checks a static FDB entry of `vni` (a configured VNI); returns its
    /// map value.
    fn fdb_entry(&self, vni: Vni, mac: Mac, at: Location) -> anyhow::Result<FdbEntry> {
        if mac.0[0] & 1 != 0 {
            bail!(
                "MAC {mac} is a group (multicast/broadcast) address: FDB entries are for unicast MACs"
            );
        }
        let entry = match at {
            Location::Remote(ip) => {
                if ip_to_map(ip) == self.info.config.local_ip {
                    bail!(
                        "remote {ip} is this VTEP's own address: use --port IFACE for local MACs"
                    );
                }
                FdbEntry {
                    remote: ip_to_map(ip),
                    flags: FDB_F_STATIC,
                    ..FdbEntry::default()
                }
            }
            Location::Port(ifindex) => {
                let name = sys::ifname(ifindex);
                let port_flags = match self.port(ifindex) {
                    Some(p) if p.vni == vni.0 => p.flags,
                    Some(p) => bail!(
                        "port '{name}' is bound to VNI {}, not VNI {vni}: a MAC can only live on a port of its own VNI",
                        p.vni
                    ),
                    None => bail!(
                        "interface '{name}' is not a port: bind it with `vtep port add {name} --vni {vni}`"
                    ),
                };
                let xdp = if port_flags & PORT_F_XDP != 0 {
                    FDB_F_XDP
                } else {
                    0
                };
                FdbEntry {
                    ifindex,
                    flags: FDB_F_STATIC | xdp,
                    ..FdbEntry::default()
                }
            }
        };
        Ok(entry)
    }

    /// Removes an FDB entry; fails if there is none.
    pub fn fdb_del(&mut self, vni: Vni, mac: Mac) -> anyhow::Result<()> {
        let key = FdbKey::new(vni.0, mac.0);
        let old = self.fdb.get(&key, 0).map_err(|_| {
            anyhow::anyhow!("no FDB entry for {mac} in VNI {vni} (see `vtep fdb show --vni {vni}`)")
        })?;
        self.fdb.remove(&key)?;
        if old.remote != 0 {
            self.unref_remote(vni, old.remote)?;
        }
        Ok(())
    }

    /// FDB entries, sorted by VNI then MAC, optionally of one VNI.
    pub fn fdb_rows(&self, vni: Option<Vni>) -> anyhow::Result<Vec<FdbRow>> {
        let mut rows = Vec::new();
        for item in self.fdb.iter() {
            let (k, v) = item.context("cannot read the FDB")?;
            if vni.is_some_and(|f| f.0 != k.vni) {
                continue;
            }
            rows.push(FdbRow {
                vni: k.vni,
                mac: Mac(k.mac),
                location: Location::of(v.remote, v.ifindex),
                is_static: v.flags & FDB_F_STATIC != 0,
                learned: None,
            });
        }
        let now = coarse_now_ns();
        let ageing_ns = self.ageing_ns();
        for item in self.learned.iter() {
            let Ok((k, e)) = item else { continue };
            let age = now.saturating_sub(e.seen_ns);
            if vni.is_some_and(|f| f.0 != k.vni) || age > ageing_ns {
                continue;
            }
            rows.push(FdbRow {
                vni: k.vni,
                mac: Mac(k.mac),
                location: Location::of(e.remote, e.ifindex),
                is_static: false,
                learned: Some(Learned {
                    age_s: age / 1_000_000_000,
                    moves: e.moves,
                    frozen: e.flags & LEARNED_F_FROZEN != 0,
                }),
            });
        }
        rows.sort_by_key(|r| (r.vni, r.mac));
        Ok(rows)
    }

    /// ARP-suppression bindings, of one VNI or all, sorted.
    pub fn neighs(&self, vni: Option<Vni>) -> Vec<(NeighKey, NeighEntry)> {
        let mut v: Vec<_> = self
            .neighs
            .iter()
            .filter_map(Result::ok)
            .filter(|(k, _)| vni.is_none_or(|f| f.0 == k.vni))
            .collect();
        v.sort_by_key(|(k, _)| (k.vni, u32::from_be(k.ip)));
        v
    }

    /// Adds or replaces a static binding of `ip` to `mac` in `vni`.
    pub fn neigh_add(&mut self, vni: Vni, ip: Ipv4Addr, mac: Mac) -> anyhow::Result<()> {
        self.require_vni(vni)?;
        if mac.0[0] & 1 != 0 {
            bail!("MAC {mac} is a group address: a binding needs a unicast MAC");
        }
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
            bail!("{ip} is not a unicast address");
        }
        let e = NeighEntry {
            mac: mac.0,
            flags: NEIGH_F_STATIC,
            ..NeighEntry::default()
        };
        self.neighs
            .insert(
                NeighKey {
                    vni: vni.0,
                    ip: ip_to_map(ip),
                },
                e,
                0,
            )
            .with_context(|| format!("ARP table full adding {ip} in VNI {vni}"))
    }

    /// Removes the binding of `ip` in `vni`; fails if there is none.
    pub fn neigh_del(&mut self, vni: Vni, ip: Ipv4Addr) -> anyhow::Result<()> {
        self.neighs
            .remove(&NeighKey {
                vni: vni.0,
                ip: ip_to_map(ip),
            })
            .map_err(|_| {
                anyhow::anyhow!("no binding for {ip} in VNI {vni} (see `vtep neigh show`)")
            })
    }

    /// All counters, summed over CPUs.
    pub fn stats(&self) -> anyhow::Result<Stats> {
        let mut vnis = Vec::new();
        for (vni, info) in self.vnis() {
            let mut s = VniStats::default();
            if let Ok(per_cpu) = self.vni_stats.get(&info.slot, 0) {
                for c in per_cpu.iter() {
                    s.rx_packets += c.rx_packets;
                    s.rx_bytes += c.rx_bytes;
                    s.tx_packets += c.tx_packets;
                    s.tx_bytes += c.tx_bytes;
                    s.drop_packets += c.drop_packets;
                }
            }
            vnis.push(VniRow { vni, stats: s });
        }
        let mut remotes = Vec::new();
        for (ip, p) in self.peers.iter().filter_map(Result::ok) {
            let mut s = PeerStats::default();
            if let Ok(per_cpu) = self.peer_stats.get(&p.slot, 0) {
                for c in per_cpu.iter() {
                    s.rx_packets += c.rx_packets;
                    s.rx_bytes += c.rx_bytes;
                    s.tx_packets += c.tx_packets;
                    s.tx_bytes += c.tx_bytes;
                }
            }
            remotes.push(PeerRow {
                remote: ip_from_map(ip),
                stats: s,
            });
        }
        remotes.sort_by_key(|r| r.remote);
        let drops = DropReason::ALL
            .iter()
            .map(|r| Ok((*r, sum(&self.drops, *r as u32)?)))
            .collect::<anyhow::Result<_>>()?;
        let counters = Counter::ALL
            .iter()
            .map(|c| Ok((*c, sum(&self.counters, *c as u32)?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Stats {
            vnis,
            remotes,
            drops,
            counters,
        })
    }
}

/// `flag` unless the VNI has learning off.
fn learn_flag(info: &VniInfo, flag: u32) -> u32 {
    if info.flags & VNI_F_NO_LEARNING == 0 {
        flag
    } else {
        0
    }
}

/// Zeroes slot `slot` of a per-CPU stats array on every CPU.
fn zero_slot<V: Pod + Default>(map: &mut PerCpuArray<MapData, V>, slot: u32) -> anyhow::Result<()> {
    let zero = PerCpuValues::try_from(vec![V::default(); nr_cpus().map_err(|(_, e)| e)?])?;
    map.set(slot, zero, 0)
        .with_context(|| format!("cannot reset stats slot {slot}"))
}

fn sum<V: Pod + Into<u64>>(map: &PerCpuArray<MapData, V>, index: u32) -> anyhow::Result<u64> {
    let values = map
        .get(&index, 0)
        .with_context(|| format!("cannot read counter {index}"))?;
    Ok(values.iter().map(|v| (*v).into()).sum())
}

/// Names of the maps `vtep maps` knows how to decode.
pub const DUMPABLE: &[&str] = &[
    MAP_INSTANCE,
    MAP_VNIS,
    MAP_PORTS,
    MAP_REMOTES,
    MAP_PEERS,
    MAP_FDB,
    MAP_LEARNED,
    MAP_NEIGHS,
    MAP_VNI_STATS,
    MAP_PEER_STATS,
    MAP_BUM_BUCKETS,
    MAP_DROPS,
    MAP_GENERATION,
    MAP_COUNTERS,
];

fn location_json(remote: u32, ifindex: u32) -> serde_json::Value {
    match Location::of(remote, ifindex) {
        Location::Remote(ip) => serde_json::json!({ "remote": ip.to_string() }),
        Location::Port(i) => serde_json::json!({ "port": sys::ifname(i) }),
    }
}

impl Tables {
    /// The entries of map `name`, decoded (one JSON object each).
    pub fn dump(&self, name: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        use serde_json::json;
        let now = coarse_now_ns();
        let secs = |ns: u64| now.saturating_sub(ns) / 1_000_000_000;
        let vni_of_slot: BTreeMap<u32, u32> =
            self.vnis().iter().map(|(v, i)| (i.slot, *v)).collect();
        Ok(match name {
            MAP_INSTANCE => {
                let c = &self.info.config;
                vec![json!({
                    "layout_version": self.info.layout_version,
                    "xdp_mode": if self.info.xdp_mode == vtep_common::maps::XDP_MODE_NATIVE { "native" } else { "generic" },
                    "underlay": sys::ifname(c.underlay_ifindex),
                    "local_ip": ip_from_map(c.local_ip).to_string(),
                    "udp_port": c.udp_port,
                    "ttl": c.ttl,
                    "df": c.flags & vtep_common::maps::CONFIG_F_DF != 0,
                    "decap_cache": c.flags & vtep_common::maps::CONFIG_F_NO_DECAP_CACHE == 0,
                    "ageing_s": c.ageing_s,
                    "move_limit": c.move_limit,
                    "move_window_s": c.move_window_s,
                })]
            }
            MAP_VNIS => self
                .vnis()
                .iter()
                .map(|(vni, i)| {
                    json!({
                        "vni": vni,
                        "slot": i.slot,
                        "learning": i.flags & VNI_F_NO_LEARNING == 0,
                        "bum_pps": i.bum_pps,
                        "flood": i.remotes[..i.n_remotes as usize].iter().map(|r| ip_from_map(*r).to_string()).collect::<Vec<_>>(),
                        "ports": i.ports[..i.n_ports as usize].iter().map(|p| sys::ifname(*p)).collect::<Vec<_>>(),
                    })
                })
                .collect(),
            MAP_PORTS => self
                .ports()
                .iter()
                .map(|(i, p)| {
                    json!({
                        "port": sys::ifname(*i),
                        "ifindex": i,
                        "vni": p.vni,
                        "slot": p.slot,
                        "deliver": if p.flags & PORT_F_XDP != 0 { "xdp" } else { "skb" },
                        "learning": p.flags & PORT_F_LEARN != 0,
                    })
                })
                .collect(),
            MAP_REMOTES => self
                .remotes
                .iter()
                .filter_map(Result::ok)
                .map(|(k, r)| {
                    json!({
                        "vni": k.vni,
                        "remote": ip_from_map(k.ip).to_string(),
                        "refs": r.refs,
                        "slot": r.slot,
                        "peer_slot": r.peer,
                        "learning": r.flags & REMOTE_F_LEARN != 0,
                    })
                })
                .collect(),
            MAP_PEERS => self
                .peers
                .iter()
                .filter_map(Result::ok)
                .map(|(ip, p)| {
                    json!({
                        "remote": ip_from_map(ip).to_string(),
                        "slot": p.slot,
                        "vnis": p.refs,
                    })
                })
                .collect(),
            MAP_FDB => self
                .fdb
                .iter()
                .filter_map(Result::ok)
                .map(|(k, e)| {
                    json!({
                        "vni": k.vni,
                        "mac": Mac(k.mac).to_string(),
                        "at": location_json(e.remote, e.ifindex),
                        "static": e.flags & FDB_F_STATIC != 0,
                        "xdp": e.flags & FDB_F_XDP != 0,
                    })
                })
                .collect(),
            MAP_LEARNED => self
                .learned
                .iter()
                .filter_map(Result::ok)
                .map(|(k, e)| {
                    json!({
                        "vni": k.vni,
                        "mac": Mac(k.mac).to_string(),
                        "at": location_json(e.remote, e.ifindex),
                        "seen_s_ago": secs(e.seen_ns),
                        "moves": e.moves,
                        "moves_in_window": e.window_moves,
                        "frozen": e.flags & LEARNED_F_FROZEN != 0,
                    })
                })
                .collect(),
            MAP_NEIGHS => self
                .neighs(None)
                .iter()
                .map(|(k, e)| {
                    json!({
                        "vni": k.vni,
                        "ip": ip_from_map(k.ip).to_string(),
                        "mac": Mac(e.mac).to_string(),
                        "static": e.flags & NEIGH_F_STATIC != 0,
                        "seen_s_ago": (e.flags & NEIGH_F_STATIC == 0).then(|| secs(e.seen_ns)),
                    })
                })
                .collect(),
            MAP_VNI_STATS => self.stats()?.vnis.iter().map(VniRow::to_json).collect(),
            MAP_PEER_STATS => self.stats()?.remotes.iter().map(PeerRow::to_json).collect(),
            MAP_BUM_BUCKETS => vni_of_slot
                .iter()
                .filter_map(|(slot, vni)| {
                    let b = self.buckets.get(slot, 0).ok()?;
                    Some(json!({ "vni": vni, "slot": slot, "tokens": b.tokens_milli as f64 / 1000.0,
                        "refilled_s_ago": secs(b.last_ns) }))
                })
                .collect(),
            MAP_DROPS => self
                .stats()?
                .drops
                .iter()
                .map(|(r, n)| json!({ "reason": r.name(), "packets": n }))
                .collect(),
            MAP_GENERATION => vec![json!({ "generation": self.generation.get() })],
            MAP_COUNTERS => self
                .stats()?
                .counters
                .iter()
                .map(|(c, n)| json!({ "event": c.name(), "packets": n }))
                .collect(),
            other => bail!(
                "no decoder for map '{other}' (the events ring buffer is read with `vtep events`); \
                 maps: {}",
                DUMPABLE.join(", ")
            ),
        })
    }
}
