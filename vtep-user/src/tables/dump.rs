//! `vtep maps list` and `vtep maps dump`: which maps an instance pins,
//! their kind and use, and their entries decoded (MACs, IPs, VNIs and
//! interface names instead of raw bytes), on the views of [`super::views`].

use std::net::IpAddr;

use serde::Serialize;
use vtep_common::{
    consts::{
        MAP_BINDING_STATS, MAP_BUM_BUCKETS, MAP_CONTROL_EVENTS, MAP_COUNTERS, MAP_DROPS,
        MAP_EVENTS, MAP_EVPN_EVENTS, MAP_FDB, MAP_GENERATION, MAP_INSTANCE, MAP_LEARNED,
        MAP_MEMBERS, MAP_NEIGHS, MAP_NEXTHOPS, MAP_PEER_STATS, MAP_PEERS, MAP_POLICERS, MAP_PORTS,
        MAP_REMOTES, MAP_RULES, MAP_VNI_STATS, MAP_VNIS, MAP_WATCHED, ROUTES_GENERATION,
    },
    maps::{
        FDB_F_STATIC, FDB_F_XDP, LEARNED_F_FROZEN, REMOTE_F_LEARN, VNI_F_DEFAULT_DENY, VNI_F_GBP,
        VNI_F_NO_LEARNING, VNI_F_POLICY,
    },
};

use super::{
    Location, TableError, Tables,
    identity::{MemberView, RateView, RuleView},
    map::KvMap,
    stats::{BindingRow, PeerRow, VniRow},
    views::{
        FdbView, InstanceView, LearnedView, NeighView, PeerView, PortView, RemoteView, VniView,
        secs_ago,
    },
    vnis::{binding_name, bindings_of, flood_of},
};
use crate::{
    sys,
    values::{Mac, PeerVtep, Tos, Vni, ip_from_map},
};

/// The event rings and queue: listed by `vtep maps`, never dumped.
pub const EVENT_MAPS: &[&str] = &[MAP_EVENTS, MAP_CONTROL_EVENTS, MAP_EVPN_EVENTS];

/// Names of the maps `vtep maps dump` decodes.
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
    MAP_BINDING_STATS,
    MAP_BUM_BUCKETS,
    MAP_DROPS,
    MAP_GENERATION,
    MAP_WATCHED,
    MAP_NEXTHOPS,
    MAP_COUNTERS,
    MAP_MEMBERS,
    MAP_RULES,
    MAP_POLICERS,
];

/// Why a map cannot be dumped.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(
        "no decoder for map '{0}' (the events ring buffer is read with `vtep events`); maps: {list}",
        list = DUMPABLE.join(", ")
    )]
    Unknown(String),
    #[error(
        "this instance has no map '{0}': a build older than this one brought it up; run `vtep up` \
         with the same arguments to upgrade it in place"
    )]
    NotPinned(&'static str),
    #[error(transparent)]
    Table(#[from] TableError),
}

#[derive(Clone, Debug, Serialize)]
pub struct BucketView {
    pub vni: Vni,
    pub slot: u32,
    pub tokens: f64,
    pub refilled_s_ago: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DropView {
    pub reason: &'static str,
    pub packets: u64,
}

/// A `GENERATION` slot that moved: the VNIs whose low bits are `slot`, or
/// (slot 4096) the host's routes and neighbours.
#[derive(Clone, Debug, Serialize)]
pub struct GenerationView {
    pub slot: u32,
    pub generation: u64,
}

/// The `WATCHED` record: whether a daemon vouches that it hears the
/// host's link, route and neighbour changes (cached decisions then live
/// longer), and for how many more seconds.
#[derive(Clone, Debug, Serialize)]
pub struct WatchedView {
    pub vouched: bool,
    pub left_s: f64,
}

/// A neighbour entry `vtep` made for a remote VTEP's next hop (`NEXTHOPS`),
/// which `vtep down` removes.
#[derive(Clone, Debug, Serialize)]
pub struct NextHopView {
    pub interface: String,
    pub ip: IpAddr,
}

#[derive(Clone, Debug, Serialize)]
pub struct EventView {
    pub event: &'static str,
    pub packets: u64,
}

/// The decoded entries of one map.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Dump {
    Instance(Vec<InstanceView>),
    Vnis(Vec<VniView>),
    Ports(Vec<PortView>),
    Remotes(Vec<RemoteView>),
    Peers(Vec<PeerView>),
    Fdb(Vec<FdbView>),
    Learned(Vec<LearnedView>),
    Neighs(Vec<NeighView>),
    VniStats(Vec<VniRow>),
    PeerStats(Vec<PeerRow>),
    BindingStats(Vec<BindingRow>),
    Watched(Vec<WatchedView>),
    NextHops(Vec<NextHopView>),
    Buckets(Vec<BucketView>),
    Drops(Vec<DropView>),
    Generation(Vec<GenerationView>),
    Counters(Vec<EventView>),
    Members(Vec<MemberView>),
    Rules(Vec<RuleView>),
    Policers(Vec<RateView>),
}

impl Dump {
    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        match self {
            Dump::Instance(v) => v.len(),
            Dump::Vnis(v) => v.len(),
            Dump::Ports(v) => v.len(),
            Dump::Remotes(v) => v.len(),
            Dump::Peers(v) => v.len(),
            Dump::Fdb(v) => v.len(),
            Dump::Learned(v) => v.len(),
            Dump::Neighs(v) => v.len(),
            Dump::VniStats(v) => v.len(),
            Dump::PeerStats(v) => v.len(),
            Dump::BindingStats(v) => v.len(),
            Dump::Watched(v) => v.len(),
            Dump::NextHops(v) => v.len(),
            Dump::Buckets(v) => v.len(),
            Dump::Drops(v) => v.len(),
            Dump::Generation(v) => v.len(),
            Dump::Counters(v) => v.len(),
            Dump::Members(v) => v.len(),
            Dump::Rules(v) => v.len(),
            Dump::Policers(v) => v.len(),
        }
    }
}

impl Tables {
    /// The `WATCHED` record at `now` (coarse ns).
    fn watched_view(&self, now: u64) -> Result<WatchedView, DumpError> {
        let record = self
            .vouch
            .as_ref()
            .ok_or(DumpError::NotPinned(MAP_WATCHED))?;
        let until = record
            .get(&0, 0)
            .map_err(|e| TableError::map("read", "watched")(e.into()))?;
        Ok(WatchedView {
            vouched: until > now,
            left_s: until.saturating_sub(now) as f64 / 1e9,
        })
    }

    /// How many entries map `name` holds (the hash maps counted without
    /// decoding them).
    pub fn count(&self, name: &str) -> Result<usize, DumpError> {
        let read = |table| TableError::map("read", table);
        Ok(match name {
            MAP_FDB => self.fdb.entries().map_err(read("FDB"))?.len(),
            MAP_LEARNED => self.learned.entries().map_err(read("learned MAC"))?.len(),
            MAP_NEIGHS => self.neighs.entries().map_err(read("ARP"))?.len(),
            MAP_VNIS => self.vnis.entries().map_err(read("VNI"))?.len(),
            MAP_PORTS => self.ports.entries().map_err(read("port"))?.len(),
            MAP_REMOTES => self.remotes.entries()?.len(),
            MAP_PEERS => self.remotes.peer_entries()?.len(),
            MAP_MEMBERS => self.members.entries().map_err(read("member"))?.len(),
            MAP_RULES => self.rules.keys().count(),
            other => self.dump(other)?.len(),
        })
    }

    /// The entries of map `name`, decoded.
    pub fn dump(&self, name: &str) -> Result<Dump, DumpError> {
        let now = sys::coarse_now_ns();
        Ok(match name {
            MAP_INSTANCE => Dump::Instance(vec![self.instance_view()]),
            MAP_VNIS => Dump::Vnis(
                self.vnis()?
                    .into_iter()
                    .map(|(vni, i)| VniView {
                        vni,
                        slot: i.slot,
                        learning: i.flags & VNI_F_NO_LEARNING == 0,
                        bum_pps: i.bum_pps,
                        tos: Tos::recorded(i.tos),
                        gbp: i.flags & VNI_F_GBP != 0,
                        default_deny: i.flags & VNI_F_DEFAULT_DENY != 0,
                        policy: i.flags & VNI_F_POLICY != 0,
                        members: i.members,
                        rules: i.rules,
                        flood: flood_of(&i).collect(),
                        ports: bindings_of(&i).map(binding_name).collect(),
                    })
                    .collect(),
            ),
            MAP_PORTS => Dump::Ports(self.port_views()?),
            MAP_REMOTES => Dump::Remotes(
                self.remotes
                    .entries()?
                    .into_iter()
                    .map(|(k, r)| RemoteView {
                        vni: k.vni,
                        remote: PeerVtep::recorded(ip_from_map(k.ip)),
                        refs: r.refs,
                        slot: r.slot,
                        peer_slot: r.peer,
                        learning: r.flags & REMOTE_F_LEARN != 0,
                    })
                    .collect(),
            ),
            MAP_PEERS => Dump::Peers(
                self.remotes
                    .peer_entries()?
                    .into_iter()
                    .map(|(ip, p)| PeerView {
                        remote: PeerVtep::recorded(ip_from_map(ip)),
                        slot: p.slot,
                        vnis: p.refs,
                    })
                    .collect(),
            ),
            MAP_FDB => Dump::Fdb(
                self.fdb_entries()?
                    .into_iter()
                    .map(|(k, e)| FdbView {
                        vni: k.vni,
                        mac: Mac(k.mac),
                        at: Location::of(e.remote, e.ifindex, e.vid).into(),
                        is_static: e.flags & FDB_F_STATIC != 0,
                        xdp: e.flags & FDB_F_XDP != 0,
                    })
                    .collect(),
            ),
            MAP_LEARNED => Dump::Learned(
                self.learned_entries()?
                    .into_iter()
                    .map(|(k, e)| LearnedView {
                        vni: k.vni,
                        mac: Mac(k.mac),
                        at: Location::of(e.remote, e.ifindex, e.vid).into(),
                        seen_s_ago: secs_ago(now, e.seen_ns),
                        moves: e.moves,
                        moves_in_window: e.window_moves,
                        frozen: e.flags & LEARNED_F_FROZEN != 0,
                    })
                    .collect(),
            ),
            MAP_NEIGHS => Dump::Neighs(self.neigh_views(None)?),
            MAP_VNI_STATS => Dump::VniStats(self.stats()?.vnis),
            MAP_PEER_STATS => Dump::PeerStats(self.stats()?.remotes),
            MAP_BINDING_STATS => Dump::BindingStats(self.stats()?.bindings),
            MAP_WATCHED => Dump::Watched(vec![self.watched_view(now)?]),
            MAP_NEXTHOPS => Dump::NextHops(
                self.nexthops
                    .keys()
                    .map(|k| {
                        let k = k.map_err(|e| TableError::map("read", "next hop")(e.into()))?;
                        Ok(NextHopView {
                            interface: sys::ifname(k.ifindex),
                            ip: ip_from_map(k.ip),
                        })
                    })
                    .collect::<Result<_, TableError>>()?,
            ),
            MAP_BUM_BUCKETS => {
                let mut rows = Vec::new();
                for (vni, i) in self.vnis()? {
                    let b = self
                        .buckets
                        .get(&i.slot, 0)
                        .map_err(|e| TableError::map("read", "storm control")(e.into()))?;
                    rows.push(BucketView {
                        vni,
                        slot: i.slot,
                        tokens: b.tokens_milli as f64 / 1000.0,
                        refilled_s_ago: secs_ago(now, b.last_ns),
                    });
                }
                rows.sort_by_key(|r| r.slot);
                Dump::Buckets(rows)
            }
            MAP_DROPS => Dump::Drops(
                self.stats()?
                    .drops
                    .into_iter()
                    .map(|(r, packets)| DropView {
                        reason: r.name(),
                        packets,
                    })
                    .collect(),
            ),
            MAP_GENERATION => Dump::Generation(
                (0..=ROUTES_GENERATION)
                    .map(|slot| GenerationView {
                        slot,
                        generation: self.generation.slot_value(slot),
                    })
                    .filter(|g| g.generation != 0)
                    .collect(),
            ),
            MAP_COUNTERS => Dump::Counters(
                self.stats()?
                    .counters
                    .into_iter()
                    .map(|(c, packets)| EventView {
                        event: c.name(),
                        packets,
                    })
                    .collect(),
            ),
            MAP_MEMBERS => Dump::Members(self.member_views(None)?),
            MAP_RULES => Dump::Rules(self.rule_views(None)?),
            MAP_POLICERS => Dump::Policers(self.rate_views()?),
            other => return Err(DumpError::Unknown(other.to_owned())),
        })
    }
}

/// One map of the instance, as `maps list` and the metrics show it.
#[derive(Clone, Debug, Serialize)]
pub struct MapRow {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub map_type: String,
    pub key_size: u32,
    pub value_size: u32,
    /// Entries in use (`None` for the event rings and queue).
    pub entries: Option<usize>,
    pub capacity: u32,
}

impl Tables {
    /// Every map: kind, sizes, use.
    pub fn map_rows(&self) -> Result<Vec<MapRow>, DumpError> {
        let mut rows = Vec::new();
        for name in DUMPABLE.iter().chain(EVENT_MAPS) {
            let Some(shape) = self.shape(name) else {
                continue;
            };
            let entries = if EVENT_MAPS.contains(name) {
                None
            } else {
                Some(self.count(name)?)
            };
            rows.push(MapRow {
                name,
                map_type: shape.map_type.clone(),
                key_size: shape.key_size,
                value_size: shape.value_size,
                entries,
                capacity: shape.capacity,
            });
        }
        Ok(rows)
    }
}
