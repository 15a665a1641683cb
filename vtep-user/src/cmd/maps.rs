//! `vtep maps list|dump`: the instance's BPF maps, for debugging.

use crate::{domain, instance::Instance};

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
    let t = domain::read(inst)?;
    match command {
        Command::List { json } => {
            let rows = t.map_rows()?;
            if json {
                super::print_json(&rows)?;
                return Ok(());
            }
            // As wide as the longest name.
            let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
            println!(
                "{:<w$} {:<16} {:>5} {:>6} {:>9} {:>9}",
                "MAP", "TYPE", "KEY", "VALUE", "ENTRIES", "CAPACITY"
            );
            for r in &rows {
                println!(
                    "{:<w$} {:<16} {:>5} {:>6} {:>9} {:>9}",
                    r.name,
                    r.map_type,
                    r.key_size,
                    r.value_size,
                    r.entries.map_or("-".into(), |n| n.to_string()),
                    r.capacity
                );
            }
            Ok(())
        }
        Command::Dump { name, json } => {
            let rows = serde_json::to_value(t.dump(&name)?)?;
            if json {
                super::print_json(&rows)?;
                return Ok(());
            }
            // One line per entry, `field=value` in the view's field order.
            for row in rows.as_array().into_iter().flatten() {
                let fields: Vec<String> = row
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                println!("{}", fields.join(" "));
            }
            Ok(())
        }
    }
}
