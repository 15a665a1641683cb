//! `vtep stats`: traffic per VNI, drops by reason, datapath events.

use serde_json::{Map, Value, json};

use crate::instance::Instance;

/// Show the datapath's counters: per VNI (rx = decapsulated and delivered,
/// tx = encapsulated and sent), drops by reason and other events.
///
/// Example: vtep stats --json
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// JSON object with `vnis`, `drop_reasons` and `counters`.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, inst: &Instance) -> anyhow::Result<()> {
    let s = inst.open()?.stats()?;
    if args.json {
        let vnis: Vec<Value> = s
            .vnis
            .iter()
            .map(|v| {
                json!({
                    "vni": v.vni,
                    "rx_packets": v.stats.rx_packets,
                    "rx_bytes": v.stats.rx_bytes,
                    "tx_packets": v.stats.tx_packets,
                    "tx_bytes": v.stats.tx_bytes,
                    "drop_packets": v.stats.drop_packets,
                })
            })
            .collect();
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
