//! `vtep neigh add|del|show`: the ARP-suppression table.

use std::net::IpAddr;

use crate::{
    domain::{self, Edit},
    instance::Instance,
    tables::views::NeighShowRow,
    values::{UnicastIp, UnicastMac, Vni, parse_ip},
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
        ip: UnicastIp,
        /// VNI of the address.
        #[arg(long)]
        vni: Vni,
        /// The MAC that owns it.
        #[arg(long)]
        mac: UnicastMac,
    },
    /// Remove a binding.
    ///
    /// Example: vtep neigh del 198.19.0.2 --vni 100
    #[command(verbatim_doc_comment)]
    Del {
        /// Tenant IPv4 address.
        #[arg(value_parser = parse_ip)]
        ip: IpAddr,
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
    match command {
        Command::Add { ip, vni, mac } => Edit::begin(inst)?.neigh_add(vni, ip, mac),
        Command::Del { ip, vni } => Edit::begin(inst)?.neigh_del(vni, ip),
        Command::Show { vni, json } => {
            let rows: Vec<NeighShowRow> = domain::read(inst)?
                .neigh_views(vni)?
                .iter()
                .map(NeighShowRow::from)
                .collect();
            if json {
                super::print_json(&rows)?;
            } else {
                println!("{:<9} {:<16} {:<18} ORIGIN", "VNI", "IP", "MAC");
                for r in &rows {
                    println!("{:<9} {:<16} {:<18} {}", r.vni, r.ip, r.mac, r.origin);
                }
            }
            Ok(())
        }
    }
}
