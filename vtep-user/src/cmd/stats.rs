//! `vtep stats`: traffic per VNI, drops by reason, datapath events.

use serde_json::{Map, Value, json};

use crate::instance::{Instance, Stats};

/// Show the datapath's counters: per VNI (rx = decapsulated and delivered,
/// tx = encapsulated and sent), drops by reason and other events.
///
/// Examples:
///   vtep stats --json
///   vtep stats --watch
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// JSON object with `vnis`, `drop_reasons` and `counters`.
    #[arg(long, conflicts_with = "watch")]
    json: bool,
    /// Refresh every second with per-VNI rates (packets and bits per
    /// second), until interrupted.
    #[arg(long)]
    watch: bool,
}

/// Per-VNI rates between two readings `secs` apart.
fn print_rates(before: &Stats, after: &Stats, secs: f64) {
    println!(
        "{:<9} {:>12} {:>14} {:>12} {:>14} {:>10}",
        "VNI", "RX_PPS", "RX_BPS", "TX_PPS", "TX_BPS", "DROP_PPS"
    );
    for v in &after.vnis {
        let old = before
            .vnis
            .iter()
            .find(|b| b.vni == v.vni)
            .map(|b| b.stats)
            .unwrap_or_default();
        let rate = |new: u64, old: u64| new.saturating_sub(old) as f64 / secs;
        let s = &v.stats;
        println!(
            "{:<9} {:>12.0} {:>14.0} {:>12.0} {:>14.0} {:>10.0}",
            v.vni,
            rate(s.rx_packets, old.rx_packets),
            rate(s.rx_bytes, old.rx_bytes) * 8.0,
            rate(s.tx_packets, old.tx_packets),
            rate(s.tx_bytes, old.tx_bytes) * 8.0,
            rate(s.drop_packets, old.drop_packets)
        );
    }
}

pub fn run(args: Args, inst: &Instance) -> anyhow::Result<()> {
    if args.watch {
        let t = inst.open()?;
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
    let s = inst.open()?.stats()?;
    if args.json {
        let vnis: Vec<Value> = s.vnis.iter().map(|v| v.to_json()).collect();
        let drops: Map<String, Value> = s
            .drops
            .iter()
            .map(|(r, n)| (r.name().to_owned(), json!(n)))
            .collect();
        let counters: Map<String, Value> = s
            .counters
            .iter()
            .map(|(c, n)| (c.name().to_owned(), json!(n)))
            .collect();
        let out = json!({ "vnis": vnis, "drop_reasons": drops, "counters": counters });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{:<9} {:>12} {:>14} {:>12} {:>14} {:>10}",
        "VNI", "RX_PKTS", "RX_BYTES", "TX_PKTS", "TX_BYTES", "DROPS"
    );
    for v in &s.vnis {
        let st = &v.stats;
        println!(
            "{:<9} {:>12} {:>14} {:>12} {:>14} {:>10}",
            v.vni, st.rx_packets, st.rx_bytes, st.tx_packets, st.tx_bytes, st.drop_packets
        );
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
