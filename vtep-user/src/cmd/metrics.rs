//! The daemon's Prometheus text exposition, rendered from the tables'
//! typed views.

use std::fmt::Write as _;

use vtep_common::consts::{MAP_FDB, MAP_LEARNED, MAP_NEIGHS, MAP_PORTS, MAP_REMOTES, MAP_VNIS};

use crate::{
    instance::Instance,
    tables::{Tables, stats::Traffic},
};

/// A traffic series: name suffix, what it counts, and the counter.
type Series = (&'static str, &'static str, fn(&Traffic) -> u64);

/// The traffic series of VNIs and remote VTEPs.
const TRAFFIC: [Series; 4] = [
    (
        "rx_packets_total",
        "Frames decapsulated and delivered",
        |t| t.rx_packets,
    ),
    (
        "rx_bytes_total",
        "Inner bytes decapsulated and delivered",
        |t| t.rx_bytes,
    ),
    ("tx_packets_total", "Frames encapsulated and sent", |t| {
        t.tx_packets
    }),
    ("tx_bytes_total", "Inner bytes encapsulated and sent", |t| {
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

/// Writes the HELP and TYPE lines of `metric`.
fn header(s: &mut String, metric: &str, help: &str, kind: &str) -> std::fmt::Result {
    writeln!(s, "# HELP {metric} {help}\n# TYPE {metric} {kind}")
}

/// The Prometheus text exposition of the instance's counters and tables.
pub fn metrics(inst: &Instance, t: &Tables) -> anyhow::Result<String> {
    let mut s = String::new();
    let name = &inst.name;
    let stats = t.stats()?;
    for (suffix, help, get) in TRAFFIC {
        let metric = format!("vtep_vni_{suffix}");
        header(&mut s, &metric, &format!("{help}."), "counter")?;
        for v in &stats.vnis {
            let n = get(&v.traffic);
            writeln!(s, "{metric}{{instance=\"{name}\",vni=\"{}\"}} {n}", v.vni)?;
        }
    }
    let metric = "vtep_vni_drop_packets_total";
    header(&mut s, metric, "Frames of the VNI dropped.", "counter")?;
    for v in &stats.vnis {
        let n = v.drop_packets;
        writeln!(s, "{metric}{{instance=\"{name}\",vni=\"{}\"}} {n}", v.vni)?;
    }
    for (suffix, help, get) in TRAFFIC {
        let metric = format!("vtep_remote_{suffix}");
        header(
            &mut s,
            &metric,
            &format!("{help}, with the remote VTEP."),
            "counter",
        )?;
        for r in &stats.remotes {
            let n = get(&r.traffic);
            writeln!(
                s,
                "{metric}{{instance=\"{name}\",remote=\"{}\"}} {n}",
                r.remote
            )?;
        }
    }
    let drops: Vec<(&str, u64)> = stats.drops.iter().map(|(r, n)| (r.name(), *n)).collect();
    let events: Vec<(&str, u64)> = stats.counters.iter().map(|(c, n)| (c.name(), *n)).collect();
    for (metric, help, label, rows) in [
        (
            "vtep_drops_total",
            "Frames dropped, by reason.",
            "reason",
            drops,
        ),
        (
            "vtep_events_total",
            "Datapath events (learning, moves, flooding, ...).",
            "event",
            events,
        ),
    ] {
        header(&mut s, metric, help, "counter")?;
        for (what, n) in rows {
            writeln!(s, "{metric}{{instance=\"{name}\",{label}=\"{what}\"}} {n}")?;
        }
    }
    let rows = t.fdb_rows(None)?;
    let learned = rows.iter().filter(|r| r.learned.is_some()).count();
    header(
        &mut s,
        "vtep_fdb_entries",
        "FDB entries, by origin.",
        "gauge",
    )?;
    for (origin, n) in [("static", rows.len() - learned), ("learned", learned)] {
        writeln!(
            s,
            "vtep_fdb_entries{{instance=\"{name}\",origin=\"{origin}\"}} {n}"
        )?;
    }
    header(&mut s, "vtep_map_entries", "Entries used per map.", "gauge")?;
    header(&mut s, "vtep_map_capacity", "Capacity per map.", "gauge")?;
    for m in t.map_rows(inst)?.iter().filter(|m| SIZED.contains(&m.name)) {
        let map = m.name;
        let used = m.entries.unwrap_or(0);
        writeln!(
            s,
            "vtep_map_entries{{instance=\"{name}\",map=\"{map}\"}} {used}"
        )?;
        writeln!(
            s,
            "vtep_map_capacity{{instance=\"{name}\",map=\"{map}\"}} {}",
            m.capacity
        )?;
    }
    Ok(s)
}
