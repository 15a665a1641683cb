//! The Prometheus metrics, as typed `prometheus-client` families filled
//! from the tables' views at each scrape; the crate writes the exposition
//! (OpenMetrics text).

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use vtep_common::consts::{MAP_FDB, MAP_LEARNED, MAP_NEIGHS, MAP_PORTS, MAP_REMOTES, MAP_VNIS};

use crate::tables::{Tables, stats::Traffic};

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

/// The maps whose use and capacity are exported.
const SIZED: [&str; 6] = [
    MAP_FDB,
    MAP_LEARNED,
    MAP_NEIGHS,
    MAP_VNIS,
    MAP_PORTS,
    MAP_REMOTES,
];

/// A counter family registered as `name`.
fn counters<L>(r: &mut Registry, name: &str, help: &str) -> Family<L, Counter>
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
{
    let f = Family::<L, Counter>::default();
    r.register(name, help, f.clone());
    f
}

/// A gauge family registered as `name`.
fn gauges<L>(r: &mut Registry, name: &str, help: &str) -> Family<L, Gauge>
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
{
    let f = Family::<L, Gauge>::default();
    r.register(name, help, f.clone());
    f
}

/// The exposition of instance `name`'s counters and tables.
pub fn render(name: &str, t: &Tables) -> anyhow::Result<String> {
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
    let fdb = gauges::<OriginLabels>(&mut r, "vtep_fdb_entries", "FDB entries, by origin.");
    let rows = t.fdb_rows(None)?;
    let learned = rows.iter().filter(|r| r.learned.is_some()).count();
    for (origin, n) in [("static", rows.len() - learned), ("learned", learned)] {
        let labels = OriginLabels {
            instance: instance(),
            origin,
        };
        fdb.get_or_create(&labels).set(n as i64);
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
    let mut out = String::new();
    encode(&mut out, &r)?;
    Ok(out)
}
