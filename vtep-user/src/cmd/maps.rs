//! `vtep maps list|dump`: the instance's BPF maps, for debugging.

use aya::maps::MapData;
use serde_json::json;

use crate::instance::{DUMPABLE, Instance};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Each map: name, type, key and value size, entries used / capacity.
    ///
    /// Example: vtep maps list
    #[command(verbatim_doc_comment)]
    List {
        /// JSON array.
        #[arg(long)]
        json: bool,
    },
    /// A map's entries decoded into fields (MACs, IPs, VNIs, interfaces).
    ///
    /// Example: vtep maps dump FDB --json
    #[command(verbatim_doc_comment)]
    Dump {
        /// Map name, as `vtep maps list` shows it.
        name: String,
        /// JSON array.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: Command, inst: &Instance) -> anyhow::Result<()> {
    let t = inst.open()?;
    match command {
        Command::List { json } => {
            let mut rows = Vec::new();
            for name in DUMPABLE.iter().chain(&[vtep_common::consts::MAP_EVENTS]) {
                let info = MapData::from_pin(inst.pin(name))?.info()?;
                let used = if *name == vtep_common::consts::MAP_EVENTS {
                    None
                } else {
                    Some(t.dump(name)?.len())
                };
                rows.push(json!({
                    "name": name,
                    "type": format!("{:?}", info.map_type()?),
                    "key_size": info.key_size(),
                    "value_size": info.value_size(),
                    "entries": used,
                    "capacity": info.max_entries(),
                }));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<12} {:<16} {:>5} {:>6} {:>9} {:>9}",
                    "MAP", "TYPE", "KEY", "VALUE", "ENTRIES", "CAPACITY"
                );
                for r in &rows {
                    println!(
                        "{:<12} {:<16} {:>5} {:>6} {:>9} {:>9}",
                        r["name"].as_str().unwrap_or_default(),
                        r["type"].as_str().unwrap_or_default(),
                        r["key_size"],
                        r["value_size"],
                        r["entries"].as_u64().map_or("-".into(), |n| n.to_string()),
                        r["capacity"]
                    );
                }
            }
            Ok(())
        }
        Command::Dump { name, json } => {
            let rows = t.dump(&name)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in &rows {
                    let fields: Vec<String> = r
                        .as_object()
                        .map(|o| o.iter().map(|(k, v)| format!("{k}={v}")).collect())
                        .unwrap_or_default();
                    println!("{}", fields.join(" "));
                }
            }
            Ok(())
        }
    }
}
