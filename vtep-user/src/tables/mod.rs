//! The maps of an instance, by concern, with the rules that keep them
//! consistent: VNIs ([`vnis`]), ports ([`ports`]), the FDB ([`fdb`]),
//! remote VTEPs and their stats slots ([`remotes`]), ARP suppression
//! ([`neighs`]), counters ([`stats`]) and the decoded views every printer
//! renders ([`views`]).
//!
//! [`Tables`] reads; changing them takes a [`TablesMut`], which holds the
//! instance's lock for as long as it lives, so two commands (or a command
//! and the daemon) never interleave their read-modify-writes.

pub mod dump;
pub mod fdb;
pub mod identity;
pub mod map;
pub mod neighs;
pub mod nexthops;
pub mod ports;
pub mod remotes;
pub mod slots;
pub mod stats;
pub mod views;
pub mod vnis;

use std::{collections::BTreeMap, net::IpAddr, rc::Rc};

use anyhow::{Context as _, bail};
use aya::maps::{Array, HashMap, MapData, PerCpuArray, PerCpuHashMap};
use vtep_common::{
    addr::Addr,
    consts::{
        MAP_BINDING_STATS, MAP_BUM_BUCKETS, MAP_COUNTERS, MAP_DROPS, MAP_FDB, MAP_GENERATION,
        MAP_INSTANCE, MAP_LEARNED, MAP_MEMBERS, MAP_NEIGHS, MAP_NEXTHOPS, MAP_PEER_STATS,
        MAP_PEERS, MAP_POLICERS, MAP_PORTS, MAP_REMOTES, MAP_RULES, MAP_VNI_STATS, MAP_VNIS,
        MAP_WATCHED, MAX_FLOOD, MEMBERS_CAPACITY, PEERS_CAPACITY, POLICERS_CAPACITY,
        RULES_CAPACITY, VNIS_CAPACITY,
    },
    maps::{
        BindingStats, BumBucket, FdbEntry, FdbKey, InstanceInfo, LAYOUT_VERSION, LearnedEntry,
        NeighEntry, NeighKey, NextHopKey, PeerInfo, PeerStats, PortInfo, PortKey, RemoteInfo,
        RemoteKey, VniInfo, VniStats, XDP_MODE_OFF,
    },
    policy::{Member, Policer, Rule, RuleKey},
};

use self::{
    map::{MapFault, Watched},
    nexthops::KernelNeighbours,
    remotes::{NeighbourError, Remotes},
    slots::Slots,
};
use crate::{
    generation::Generation,
    instance::{Instance, InstanceLock},
    values::{Group, Mac, PeerVtep, ValueError, Vid, Vni, ip_from_map},
};

/// Why a table operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot {op} the {table} table: {fault}")]
    Map {
        op: &'static str,
        table: &'static str,
        fault: MapFault,
    },
    #[error(transparent)]
    Value(#[from] ValueError),
    #[error(transparent)]
    Neighbour(#[from] NeighbourError),
    #[error("VNI {0} is not configured: add it with `vtep vni add {0}`")]
    NoVni(Vni),
    #[error("VNI table full: {VNIS_CAPACITY} VNIs is the most supported")]
    VnisFull,
    #[error(
        "VNI {vni} still has ports bound ({ports}): remove them first with `vtep port del IFACE`"
    )]
    VniHasPorts { vni: Vni, ports: String },
    #[error(
        "VNI {vni}: a flood list of {len} remote VTEPs (configured and from EVPN), at most \
         {MAX_FLOOD} are supported"
    )]
    FloodFull { vni: Vni, len: usize },
    #[error("remote VTEP table full adding {ip} to VNI {vni}")]
    RemotesFull { vni: Vni, ip: PeerVtep },
    #[error(
        "remote VTEP {0}: this instance already has {max} remote VTEPs, the most supported",
        max = PEERS_CAPACITY - 1
    )]
    PeersFull(PeerVtep),
    #[error(
        "port '{name}'{} is already bound to VNI {vni}: remove it first with `vtep port del {name}{}`",
        .vid.suffix(),
        .vid.arg()
    )]
    PortBound { name: String, vid: Vid, vni: u32 },
    #[error(
        "port '{name}'{} is bound to VNI {bound}, not VNI {vni}: a MAC can only live on a port of its own VNI",
        .vid.suffix()
    )]
    PortOfOtherVni {
        name: String,
        vid: Vid,
        bound: u32,
        vni: Vni,
    },
    #[error(
        "interface '{name}'{} is not a port: bind it with `vtep port add {name} --vni {vni}{}`",
        .vid.suffix(),
        .vid.arg()
    )]
    NotAPort { name: String, vid: Vid, vni: Vni },
    #[error("port table full binding '{0}'")]
    PortsFull(String),
    #[error(
        "FDB full adding {mac} in VNI {vni}: remove entries, or bring the instance up again with \
         a larger `vtep up --fdb-capacity` (see `vtep maps list`)"
    )]
    FdbFull { vni: Vni, mac: Mac },
    #[error("no FDB entry for {mac} in VNI {vni} (see `vtep fdb show --vni {vni}`)")]
    NoFdbEntry { vni: Vni, mac: Mac },
    #[error("ARP table full adding {ip} in VNI {vni}")]
    NeighsFull { vni: Vni, ip: IpAddr },
    #[error("no binding for {ip} in VNI {vni} (see `vtep neigh show`)")]
    NoNeigh { vni: Vni, ip: IpAddr },
    #[error(
        "member table full adding {mac} in VNI {vni}: {MEMBERS_CAPACITY} VM identities (groups and rate limits) is the most supported"
    )]
    MembersFull { vni: Vni, mac: Mac },
    #[error("{mac} has no group in VNI {vni} (see `vtep group show --vni {vni}`)")]
    NoMember { vni: Vni, mac: Mac },
    #[error(
        "rule table full adding a rule to VNI {0}: {RULES_CAPACITY} rules is the most supported"
    )]
    RulesFull(Vni),
    #[error(
        "VNI {vni} has no rule from group {from} to group {to} (see `vtep policy show --vni {vni}`)"
    )]
    NoRule { vni: Vni, from: Group, to: Group },
    #[error(
        "rate-limit table full: {} limits is the most supported (remove some with `vtep rate del`)",
        POLICERS_CAPACITY - 1
    )]
    PolicersFull,
    #[error("{0} has no rate limit (see `vtep rate show`)")]
    NoRate(String),
    #[error("nothing loaded ({given} entries given, {taken} written and undone): {why}")]
    NothingLoaded {
        given: usize,
        taken: usize,
        why: Box<TableError>,
    },
}

impl TableError {
    /// A map failure of `op` on `table`, for `map_err`.
    pub fn map(op: &'static str, table: &'static str) -> impl Fn(MapFault) -> TableError {
        move |fault| TableError::Map { op, table, fault }
    }
}

/// Where a MAC lives, as users see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// Behind a remote VTEP.
    Remote(PeerVtep),
    /// On a local port binding: the port's ifindex and VLAN.
    Port(u32, Vid),
}

impl Location {
    /// From a map entry's `remote`, `ifindex` and `vid` fields (remote
    /// none, or ifindex 0).
    pub fn of(remote: Addr, ifindex: u32, vid: u16) -> Self {
        if ifindex != 0 {
            Location::Port(ifindex, Vid::recorded(vid))
        } else {
            Location::Remote(PeerVtep::recorded(ip_from_map(remote)))
        }
    }

    /// As a map entry's `remote`, `ifindex` and `vid` fields.
    pub fn raw(self) -> (Addr, u32, u16) {
        match self {
            Location::Remote(ip) => (crate::values::ip_to_map(ip.ip()), 0, 0),
            Location::Port(ifindex, vid) => (Addr::NONE, ifindex, vid.get()),
        }
    }
}

type Hash<K, V> = HashMap<MapData, K, V>;
/// The remote-VTEP tables as pinned.
type PinnedRemotes = Remotes<
    Watched<Hash<RemoteKey, RemoteInfo>>,
    Hash<Addr, PeerInfo>,
    PerCpuArray<MapData, PeerStats>,
>;

/// The maps of an instance, opened from their pins.
pub struct Tables {
    pub info: InstanceInfo,
    fdb: Watched<Hash<FdbKey, FdbEntry>>,
    learned: Watched<Hash<FdbKey, LearnedEntry>>,
    neighs: Hash<NeighKey, NeighEntry>,
    buckets: Array<MapData, BumBucket>,
    ports: Hash<PortKey, PortInfo>,
    vnis: Watched<Hash<u32, VniInfo>>,
    members: Watched<Hash<FdbKey, Member>>,
    rules: PerCpuHashMap<MapData, RuleKey, Rule>,
    policers: Array<MapData, Policer>,
    /// Policer slots.
    policer_slots: Slots,
    /// VNI stats slots.
    vni_slots: Slots,
    vni_stats: PerCpuArray<MapData, VniStats>,
    /// Port binding stats slots.
    binding_slots: Slots,
    binding_stats: PerCpuArray<MapData, BindingStats>,
    remotes: PinnedRemotes,
    drops: PerCpuArray<MapData, u64>,
    counters: PerCpuArray<MapData, u64>,
    /// The neighbour entries we made (read here; `remotes` keeps them).
    nexthops: Hash<NextHopKey, u32>,
    /// Until when a daemon vouches that it hears the host's changes;
    /// `None` for an instance up from a build without the record.
    vouch: Option<Array<MapData, u64>>,
    generation: Rc<Generation>,
    /// Every map's kind and sizes, by name, as the kernel has them.
    shapes: BTreeMap<&'static str, MapShape>,
}

/// A map's kind and sizes (fixed when the instance comes up).
#[derive(Clone, Debug)]
pub struct MapShape {
    /// The kernel's id of the map.
    pub id: u32,
    pub map_type: String,
    pub key_size: u32,
    pub value_size: u32,
    pub capacity: u32,
}

impl Tables {
    /// Opens the tables of `inst`, which must be up.
    pub fn open(inst: &Instance) -> anyhow::Result<Self> {
        inst.require_up()?;
        let record: Array<MapData, InstanceInfo> = inst.map(MAP_INSTANCE)?;
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
            fdb: watched(inst, MAP_FDB, &generation)?,
            learned: watched(inst, MAP_LEARNED, &generation)?,
            neighs: inst.map(MAP_NEIGHS)?,
            buckets: inst.map(MAP_BUM_BUCKETS)?,
            ports: inst.map(MAP_PORTS)?,
            vnis: watched(inst, MAP_VNIS, &generation)?,
            members: watched(inst, MAP_MEMBERS, &generation)?,
            rules: inst.map(MAP_RULES)?,
            policers: inst.map(MAP_POLICERS)?,
            policer_slots: Slots::default(),
            vni_slots: Slots::default(),
            vni_stats: inst.map(MAP_VNI_STATS)?,
            binding_slots: Slots::default(),
            binding_stats: inst.map(MAP_BINDING_STATS)?,
            remotes: Remotes::new(
                watched(inst, MAP_REMOTES, &generation)?,
                inst.map(MAP_PEERS)?,
                inst.map(MAP_PEER_STATS)?,
                Box::new(KernelNeighbours::new(inst.map(MAP_NEXTHOPS)?)),
                ip_from_map(info.config.local_ip),
            ),
            drops: inst.map(MAP_DROPS)?,
            counters: inst.map(MAP_COUNTERS)?,
            nexthops: inst.map(MAP_NEXTHOPS)?,
            vouch: inst
                .pin(MAP_WATCHED)
                .exists()
                .then(|| inst.map(MAP_WATCHED))
                .transpose()?,
            generation,
            shapes: shapes(inst)?,
        })
    }

    /// Whether these are still the tables of `inst` (it was not taken down
    /// and brought up anew since they were opened).
    pub fn is_current(&self, inst: &Instance) -> bool {
        let pinned = MapData::from_pin(inst.pin(MAP_INSTANCE)).and_then(|m| m.info());
        match (pinned, self.shape(MAP_INSTANCE)) {
            (Ok(info), Some(shape)) => info.id() == shape.id,
            _ => false,
        }
    }

    /// The kind and sizes of map `name`, if the instance has it.
    pub fn shape(&self, name: &str) -> Option<&MapShape> {
        self.shapes.get(name)
    }

    /// The ageing time, ns.
    fn ageing_ns(&self) -> u64 {
        u64::from(self.info.config.ageing_s) * 1_000_000_000
    }

    /// Whether XDP decapsulates on the underlay (else TC does).
    pub fn has_xdp(&self) -> bool {
        self.info.xdp_mode != XDP_MODE_OFF
    }

    /// The underlay's ifindex.
    pub fn underlay_ifindex(&self) -> u32 {
        self.info.config.underlay_ifindex
    }

    /// This VTEP's own underlay address.
    pub fn local_ip(&self) -> crate::values::LocalIp {
        crate::values::LocalIp::recorded(ip_from_map(self.info.config.local_ip))
    }

    /// Tells the datapath the host's routes, neighbours or links changed:
    /// the next hops its encap decision cache holds are out of date.
    pub fn routes_changed(&self) {
        self.generation.bump_routes();
    }
}

/// The kind and sizes of every map `inst` pins (read once: they are set
/// when the instance comes up). A map it does not pin is left out: one a
/// build newer than the instance's added (`WATCHED`), until `vtep up`
/// upgrades it in place; the maps the tables need were opened already.
fn shapes(inst: &Instance) -> anyhow::Result<BTreeMap<&'static str, MapShape>> {
    let mut out = BTreeMap::new();
    for name in dump::DUMPABLE.iter().chain(dump::EVENT_MAPS) {
        let path = inst.pin(name);
        if !path.exists() {
            continue;
        }
        let info = MapData::from_pin(&path)
            .and_then(|m| m.info())
            .with_context(|| format!("cannot read map {}", path.display()))?;
        let shape = MapShape {
            id: info.id(),
            map_type: format!("{:?}", info.map_type()?),
            key_size: info.key_size(),
            value_size: info.value_size(),
            capacity: info.max_entries(),
        };
        out.insert(*name, shape);
    }
    Ok(out)
}

/// Opens pinned map `name` of `inst`, its changes bumping `generation`.
fn watched<K: aya::Pod, V: aya::Pod>(
    inst: &Instance,
    name: &str,
    generation: &Rc<Generation>,
) -> anyhow::Result<Watched<Hash<K, V>>> {
    Ok(Watched::new(inst.map(name)?, generation.clone()))
}

/// The tables of an instance, to change: holds the instance's lock.
pub struct TablesMut {
    tables: Tables,
    _lock: InstanceLock,
}

impl TablesMut {
    /// Opens the tables of `inst` under `lock`.
    pub fn open(inst: &Instance, lock: InstanceLock) -> anyhow::Result<Self> {
        Ok(Self::new(Tables::open(inst)?, lock))
    }

    /// `tables`, open already, to change under `lock`. What they learned
    /// of the maps before the lock was taken (slots in use, next hops
    /// looked up) is forgotten: another process may have changed them.
    pub fn new(mut tables: Tables, lock: InstanceLock) -> Self {
        tables.vni_slots = Slots::default();
        tables.binding_slots = Slots::default();
        tables.policer_slots = Slots::default();
        tables.remotes.forget_cached();
        Self {
            tables,
            _lock: lock,
        }
    }

    /// The tables, the lock let go.
    pub fn into_tables(self) -> Tables {
        self.tables
    }
}

impl std::ops::Deref for TablesMut {
    type Target = Tables;
    fn deref(&self) -> &Tables {
        &self.tables
    }
}

impl std::ops::DerefMut for TablesMut {
    fn deref_mut(&mut self) -> &mut Tables {
        &mut self.tables
    }
}
