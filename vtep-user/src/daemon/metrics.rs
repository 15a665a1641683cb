//! The Prometheus metrics, as typed `prometheus-client` families filled
//! from the tables' views at each scrape; the crate writes the exposition
//! (OpenMetrics text).

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use vtep_common::consts::{
    MAP_FDB, MAP_LEARNED, MAP_MEMBERS, MAP_NEIGHS, MAP_PORTS, MAP_REMOTES, MAP_RULES, MAP_VNIS,
};

use crate::{
    evpn::{self, routes::Rejected},
    tables::{Tables, stats::Traffic},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VniLabels {
    instance: String,
    vni: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RemoteLabels {
    instance: String,
    remote: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BindingLabels {
    instance: String,
    port: String,
    /// 802.1Q VLAN; 0: the port's untagged frames.
    vlan: u16,
    vni: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    instance: String,
    vni: u32,
    from: u16,
    to: u16,
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    instance: String,
    vni: u32,
    /// The VM's MAC; empty: the VNI's aggregate limit.
    mac: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    instance: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    instance: String,
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OriginLabels {
    instance: String,
    origin: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MapLabels {
    instance: String,
    map: &'static str,
}

/// A traffic counter: name (the crate adds `_total`), help, the field.
type Series = (&'static str, &'static str, fn(&Traffic) -> u64);

/// The traffic counters of VNIs and remote VTEPs.
const TRAFFIC: [Series; 4] = [
    ("rx_packets", "Frames decapsulated and delivered", |t| {
        t.rx_packets
    }),
    ("rx_bytes", "Inner bytes decapsulated and delivered", |t| {
        t.rx_bytes
    }),
    ("tx_packets", "Frames encapsulated and sent", |t| {
        t.tx_packets
    }),
    ("tx_bytes", "Inner bytes encapsulated and sent", |t| {
        t.tx_bytes
    }),
];

/// The traffic counters of port bindings (the VNI's directions: rx
/// towards the binding's hosts, tx from them).
const BINDING_TRAFFIC: [Series; 4] = [
    (
        "rx_packets",
        "Frames delivered to the binding's hosts",
        |t| t.rx_packets,
    ),
    ("rx_bytes", "Bytes delivered to the binding's hosts", |t| {
        t.rx_bytes
    }),
    ("tx_packets", "Frames from the binding's hosts", |t| {
        t.tx_packets
    }),
    ("tx_bytes", "Bytes from the binding's hosts", |t| t.tx_bytes),
];

/// The maps whose use and capacity are exported.
const SIZED: [&str; 8] = [
    MAP_FDB,
    MAP_LEARNED,
    MAP_NEIGHS,
    MAP_VNIS,
    MAP_PORTS,
    MAP_REMOTES,
    MAP_MEMBERS,
    MAP_RULES,
];

/// A counter family registered as `name`.
fn counters<L>(r: &mut Registry, name: &str, help: &str) -> Family<L, Counter>
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
{
    let f = Family::<L, Counter>::default();
    // The crate ends the help text with a full stop itself.
    r.register(name, help.trim_end_matches('.'), f.clone());
    f
}

/// A gauge family registered as `name`.
fn gauges<L>(r: &mut Registry, name: &str, help: &str) -> Family<L, Gauge>
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
{
    let f = Family::<L, Gauge>::default();
    r.register(name, help.trim_end_matches('.'), f.clone());
    f
}

/// The exposition of instance `name`'s counters and tables.
pub fn render(name: &str, t: &Tables, evpn: &evpn::Status) -> anyhow::Result<String> {
    let mut r = Registry::default();
    let stats = t.stats()?;
    let instance = || name.to_owned();
    for (suffix, help, get) in TRAFFIC {
        let vni = counters::<VniLabels>(&mut r, &format!("vtep_vni_{suffix}"), &format!("{help}."));
        for v in &stats.vnis {
            let labels = VniLabels {
                instance: instance(),
                vni: v.vni.get(),
            };
            vni.get_or_create(&labels).inc_by(get(&v.traffic));
        }
        let remote = counters::<RemoteLabels>(
            &mut r,
            &format!("vtep_remote_{suffix}"),
            &format!("{help}, with the remote VTEP."),
        );
        for p in &stats.remotes {
            let labels = RemoteLabels {
                instance: instance(),
                remote: p.remote.to_string(),
            };
            remote.get_or_create(&labels).inc_by(get(&p.traffic));
        }
    }
    for (suffix, help, get) in BINDING_TRAFFIC {
        let binding = counters::<BindingLabels>(
            &mut r,
            &format!("vtep_binding_{suffix}"),
            &format!("{help}, per port binding (port and VLAN)."),
        );
        for b in &stats.bindings {
            let labels = BindingLabels {
                instance: instance(),
                port: b.port.clone(),
                vlan: b.vlan.get(),
                vni: b.vni.get(),
            };
            binding.get_or_create(&labels).inc_by(get(&b.traffic));
        }
    }
    let drops = counters::<VniLabels>(
        &mut r,
        "vtep_vni_drop_packets",
        "Frames of the VNI dropped.",
    );
    for v in &stats.vnis {
        let labels = VniLabels {
            instance: instance(),
            vni: v.vni.get(),
        };
        drops.get_or_create(&labels).inc_by(v.drop_packets);
    }
    let reasons = counters::<ReasonLabels>(&mut r, "vtep_drops", "Frames dropped, by reason.");
    for (reason, n) in &stats.drops {
        let labels = ReasonLabels {
            instance: instance(),
            reason: reason.name(),
        };
        reasons.get_or_create(&labels).inc_by(*n);
    }
    let events = counters::<EventLabels>(
        &mut r,
        "vtep_events",
        "Datapath events (learning, moves, flooding, ...).",
    );
    for (event, n) in &stats.counters {
        let labels = EventLabels {
            instance: instance(),
            event: event.name(),
        };
        events.get_or_create(&labels).inc_by(*n);
    }
    policy_metrics(&mut r, name, t)?;
    let fdb = gauges::<OriginLabels>(&mut r, "vtep_fdb_entries", "FDB entries, by origin.");
    for origin in ["static", "evpn", "learned"] {
        fdb.get_or_create(&OriginLabels {
            instance: instance(),
            origin,
        })
        .set(0);
    }
    for row in t.fdb_rows(None)? {
        let labels = OriginLabels {
            instance: instance(),
            origin: row.origin(),
        };
        fdb.get_or_create(&labels).inc();
    }
    let used = gauges::<MapLabels>(&mut r, "vtep_map_entries", "Entries used per map.");
    let capacity = gauges::<MapLabels>(&mut r, "vtep_map_capacity", "Capacity per map.");
    for map in SIZED {
        let labels = MapLabels {
            instance: instance(),
            map,
        };
        used.get_or_create(&labels).set(t.count(map)? as i64);
        let cap = t.shape(map).map_or(0, |s| s.capacity);
        capacity.get_or_create(&labels).set(i64::from(cap));
    }
    if evpn.enabled {
        evpn_metrics(&mut r, name, evpn);
    }
    let mut out = String::new();
    encode(&mut out, &r)?;
    Ok(out)
}

/// Group policy rules' hits and rate limits' drops.
fn policy_metrics(r: &mut Registry, name: &str, t: &Tables) -> anyhow::Result<()> {
    let (packets, bytes) = (
        counters::<RuleLabels>(r, "vtep_policy_rule_packets", "Frames a rule decided."),
        counters::<RuleLabels>(
            r,
            "vtep_policy_rule_bytes",
            "Bytes of the frames a rule decided.",
        ),
    );
    for rule in t.rule_views(None)? {
        let labels = RuleLabels {
            instance: name.to_owned(),
            vni: rule.vni.get(),
            from: rule.from.get(),
            to: rule.to.get(),
            action: rule.action.name(),
        };
        packets.get_or_create(&labels).inc_by(rule.packets);
        bytes.get_or_create(&labels).inc_by(rule.bytes);
    }
    let (packets, bytes) = (
        counters::<LimitLabels>(
            r,
            "vtep_rate_limit_dropped_packets",
            "Frames a rate limit dropped since it was set.",
        ),
        counters::<LimitLabels>(
            r,
            "vtep_rate_limit_dropped_bytes",
            "Bytes a rate limit dropped since it was set.",
        ),
    );
    for limit in t.rate_views()? {
        let labels = LimitLabels {
            instance: name.to_owned(),
            vni: limit.vni.get(),
            mac: limit.mac.map(|m| m.to_string()).unwrap_or_default(),
            direction: limit.direction,
        };
        packets.get_or_create(&labels).inc_by(limit.dropped_packets);
        bytes.get_or_create(&labels).inc_by(limit.dropped_bytes);
    }
    Ok(())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    instance: String,
    peer: String,
    state: &'static str,
}

/// What the EVPN agent reports.
fn evpn_metrics(r: &mut Registry, name: &str, s: &evpn::Status) {
    let instance = || name.to_owned();
    let one = |r: &mut Registry, metric: &str, help: &str, v: usize| {
        gauges::<MapLabels>(r, metric, help)
            .get_or_create(&MapLabels {
                instance: instance(),
                map: "evpn",
            })
            .set(v as i64);
    };
    one(
        r,
        "vtep_evpn_connected",
        "1 while a session with gobgpd is up.",
        usize::from(s.connected),
    );
    let up = s.peers.iter().filter(|p| p.is_up()).count();
    one(r, "vtep_evpn_peers_up", "BGP peers established.", up);
    one(
        r,
        "vtep_evpn_routes_received",
        "Routes of other VTEPs held.",
        s.received,
    );
    one(
        r,
        "vtep_evpn_fdb_installed",
        "FDB entries installed from EVPN routes.",
        s.installed,
    );
    one(
        r,
        "vtep_evpn_local_macs",
        "MACs local here (advertised unless frozen).",
        s.local,
    );
    one(
        r,
        "vtep_evpn_frozen_macs",
        "MACs frozen by duplicate detection.",
        s.frozen,
    );
    let peers = gauges::<PeerLabels>(
        r,
        "vtep_evpn_peer_up",
        "1 if the BGP session with the peer is established.",
    );
    for p in &s.peers {
        let labels = PeerLabels {
            instance: instance(),
            peer: p.address.clone(),
            state: p.state,
        };
        peers.get_or_create(&labels).set(i64::from(p.is_up()));
    }
    let updates = counters::<MapLabels>(
        r,
        "vtep_evpn_updates_in",
        "Route updates (adds and withdrawals) received.",
    );
    updates
        .get_or_create(&MapLabels {
            instance: instance(),
            map: "evpn",
        })
        .inc_by(s.updates_in);
    let updates = counters::<MapLabels>(
        r,
        "vtep_evpn_updates_out",
        "Route updates (adds and withdrawals) sent.",
    );
    updates
        .get_or_create(&MapLabels {
            instance: instance(),
            map: "evpn",
        })
        .inc_by(s.updates_out);
    let rejected = counters::<ReasonLabels>(r, "vtep_evpn_rejected", "Routes not used, by reason.");
    for why in Rejected::ALL {
        let labels = ReasonLabels {
            instance: instance(),
            reason: why.name(),
        };
        rejected
            .get_or_create(&labels)
            .inc_by(s.rejected.get(&why).copied().unwrap_or(0));
    }
}
