//! `vtep stats`: traffic per VNI and per remote VTEP, drops by reason,
//! datapath events.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    domain,
    instance::Instance,
    tables::stats::{BindingRow, PeerRow, Stats, Traffic, VniRow},
};

/// Show the datapath's counters: per VNI and per remote VTEP (rx =
/// decapsulated and delivered, tx = encapsulated and sent; a flooded frame
/// counts once per remote it is sent to), per port binding (rx = delivered
/// to its hosts, tx = from them), drops by reason and other events.
///
/// Examples:
///   vtep stats
///   vtep stats --json
///   vtep stats --watch
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// JSON object with `vnis`, `remotes`, `bindings` (per port and VLAN:
    /// rx delivered to its hosts, tx from them), `drop_reasons` and
    /// `counters`.
    #[arg(long, conflicts_with = "watch")]
    json: bool,
    /// Refresh every second with per-VNI, per-remote and per-binding
    /// rates (packets and bits per second), until interrupted.
    #[arg(long)]
    watch: bool,
}

/// One row of a traffic table: a VNI, a remote VTEP or a binding, its rx packets,
/// rx bytes, tx packets and tx bytes, and its drops (VNIs only).
struct Row {
    name: String,
    counts: [u64; 4],
    drops: Option<u64>,
}

/// What `vtep stats --json` prints.
#[derive(Serialize)]
struct StatsJson<'a> {
    vnis: &'a [VniRow],
    remotes: &'a [PeerRow],
    bindings: &'a [BindingRow],
    drop_reasons: BTreeMap<&'static str, u64>,
    counters: BTreeMap<&'static str, u64>,
}

fn counts(t: &Traffic) -> [u64; 4] {
    [t.rx_packets, t.rx_bytes, t.tx_packets, t.tx_bytes]
}

/// The traffic tables: (first column's title, rows).
fn tables(s: &Stats) -> [(&'static str, Vec<Row>); 3] {
    let vnis = s
        .vnis
        .iter()
        .map(|v| Row {
            name: v.vni.to_string(),
            counts: counts(&v.traffic),
            drops: Some(v.drop_packets),
        })
        .collect();
    let remotes = s
        .remotes
        .iter()
        .map(|r| Row {
            name: r.remote.to_string(),
            counts: counts(&r.traffic),
            drops: None,
        })
        .collect();
    let bindings = s
        .bindings
        .iter()
        .map(|b| Row {
            name: b.vlan.binding(&b.port),
            counts: counts(&b.traffic),
            drops: None,
        })
        .collect();
    [("VNI", vnis), ("REMOTE", remotes), ("PORT", bindings)]
}

fn header(first: &str, cols: [&str; 5]) {
    println!(
        "{first:<16} {:>12} {:>14} {:>12} {:>14} {:>10}",
        cols[0], cols[1], cols[2], cols[3], cols[4]
    );
}

fn line(first: &str, v: [f64; 4], drops: Option<f64>) {
    let drops = drops.map_or_else(|| "-".to_owned(), |d| format!("{d:.0}"));
    println!(
        "{first:<16} {:>12.0} {:>14.0} {:>12.0} {:>14.0} {drops:>10}",
        v[0], v[1], v[2], v[3]
    );
}

/// Per-VNI, per-remote and per-binding rates between two readings `secs`
/// apart.
fn print_rates(before: &Stats, after: &Stats, secs: f64) {
    let cols = ["RX_PPS", "RX_BPS", "TX_PPS", "TX_BPS", "DROP_PPS"];
    for ((title, rows), (_, old_rows)) in tables(after).into_iter().zip(tables(before)) {
        header(title, cols);
        for row in &rows {
            let old = old_rows.iter().find(|o| o.name == row.name);
            let r = |new: u64, old: u64| new.saturating_sub(old) as f64 / secs;
            let c = old.map_or([0; 4], |o| o.counts);
            let n = &row.counts;
            let rates = [
                r(n[0], c[0]),
                r(n[1], c[1]) * 8.0,
                r(n[2], c[2]),
                r(n[3], c[3]) * 8.0,
            ];
            let drops = row
                .drops
                .map(|d| r(d, old.and_then(|o| o.drops).unwrap_or(0)));
            line(&row.name, rates, drops);
        }
    }
}

pub fn run(args: Args, inst: &Instance) -> anyhow::Result<()> {
    let t = domain::read(inst)?;
    if args.watch {
        let mut before = t.stats()?;
        let mut at = std::time::Instant::now();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            let after = t.stats()?;
            let secs = at.elapsed().as_secs_f64();
            at = std::time::Instant::now();
            print_rates(&before, &after, secs);
            println!();
            before = after;
        }
    }
    let s = t.stats()?;
    if args.json {
        let out = StatsJson {
            vnis: &s.vnis,
            remotes: &s.remotes,
            bindings: &s.bindings,
            drop_reasons: s.drops.iter().map(|(r, n)| (r.name(), *n)).collect(),
            counters: s.counters.iter().map(|(c, n)| (c.name(), *n)).collect(),
        };
        super::print_json(&out)?;
        return Ok(());
    }
    let cols = ["RX_PKTS", "RX_BYTES", "TX_PKTS", "TX_BYTES", "DROPS"];
    for (i, (title, rows)) in tables(&s).into_iter().enumerate() {
        if i > 0 {
            println!();
        }
        header(title, cols);
        for row in &rows {
            line(
                &row.name,
                row.counts.map(|v| v as f64),
                row.drops.map(|d| d as f64),
            );
        }
    }
    println!("\nDROP REASON          PACKETS");
    for (r, n) in &s.drops {
        println!("{:<20} {n:>8}", r.name());
    }
    println!("\nEVENT                PACKETS");
    for (c, n) in &s.counters {
        println!("{:<20} {n:>8}", c.name());
    }
    Ok(())
}
