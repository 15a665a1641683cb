//! `vtep neigh add|del|show`: the ARP-suppression table.

use std::net::Ipv4Addr;

use serde_json::json;
use vtep_common::maps::NEIGH_F_STATIC;

use crate::{
    instance::{Instance, coarse_now_ns},
    values::{Mac, Vni, ip_from_map, parse_ipv4},
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Bind a tenant IPv4 address to a MAC: ARP requests for it from the
    /// VNI's ports are answered by the VTEP, never flooded.
    ///
    /// Example: vtep neigh add 198.19.0.2 --vni 100 --mac 02:00:00:00:02:01
    #[command(verbatim_doc_comment)]
    Add {
        /// Tenant IPv4 address.
        #[arg(value_parser = parse_ipv4)]
        ip: Ipv4Addr,
        /// VNI of the address.
        #[arg(long)]
        vni: Vni,
        /// The MAC that owns it.
        #[arg(long)]
        mac: Mac,
    },
    /// Remove a binding.
    ///
    /// Example: vtep neigh del 198.19.0.2 --vni 100
    #[command(verbatim_doc_comment)]
    Del {
        /// Tenant IPv4 address.
        #[arg(value_parser = parse_ipv4)]
        ip: Ipv4Addr,
        /// VNI of the address.
        #[arg(long)]
        vni: Vni,
    },
    /// Show the bindings (configured, and learned from ARP).
    ///
    /// Example: vtep neigh show --vni 100 --json
    #[command(verbatim_doc_comment)]
    Show {
        /// Only this VNI.
        #[arg(long)]
        vni: Option<Vni>,
        /// JSON array of {vni, ip, mac, origin, age_s}.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: Command, inst: &Instance) -> anyhow::Result<()> {
    let mut t = inst.open()?;
    match command {
        Command::Add { ip, vni, mac } => t.neigh_add(vni, ip, mac),
        Command::Del { ip, vni } => t.neigh_del(vni, ip),
        Command::Show { vni, json } => {
            let now = coarse_now_ns();
            let rows: Vec<serde_json::Value> = t
                .neighs(vni)
                .iter()
                .map(|(k, e)| {
                    let is_static = e.flags & NEIGH_F_STATIC != 0;
                    json!({
                        "vni": k.vni,
                        "ip": ip_from_map(k.ip).to_string(),
                        "mac": Mac(e.mac).to_string(),
                        "origin": if is_static { "static" } else { "learned" },
                        "age_s": (!is_static).then(|| now.saturating_sub(e.seen_ns) / 1_000_000_000),
                    })
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!("{:<9} {:<16} {:<18} ORIGIN", "VNI", "IP", "MAC");
                for r in &rows {
                    println!(
                        "{:<9} {:<16} {:<18} {}",
                        r["vni"],
                        r["ip"].as_str().unwrap_or_default(),
                        r["mac"].as_str().unwrap_or_default(),
                        r["origin"].as_str().unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
    }
}
