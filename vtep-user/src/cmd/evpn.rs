//! `vtep evpn show`: the BGP EVPN control plane as gobgpd sees it.

use std::net::SocketAddr;

use crate::{
    domain::plan::DEFAULT_GOBGP,
    evpn::{EvpnView, show},
    instance::Instance,
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Peers and their sessions, and per VNI the routes advertised and
    /// received, the flood list EVPN built and every MAC route with its
    /// VTEP and MAC-mobility sequence number. Asks gobgpd directly.
    ///
    /// Example: vtep evpn show --json
    #[command(verbatim_doc_comment)]
    Show {
        /// gobgpd's gRPC API (as `gobgp` in the `[evpn]` configuration).
        #[arg(long, default_value_t = DEFAULT_GOBGP)]
        gobgp: SocketAddr,
        /// One JSON object: {gobgp, asn, router_id, peers, vnis, ignored}.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: Command, inst: &Instance) -> anyhow::Result<()> {
    let Command::Show { gobgp, json } = command;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let view = rt.block_on(show(inst, gobgp))?;
    if json {
        super::print_json(&view)?;
    } else {
        print(&view);
    }
    Ok(())
}

fn print(v: &EvpnView) {
    println!(
        "gobgpd {}: AS {}, router id {}",
        v.gobgp, v.asn, v.router_id
    );
    println!(
        "{:<18} {:<8} {:<12} {:>9} {:>9}",
        "PEER", "AS", "STATE", "RECEIVED", "SENT"
    );
    for p in &v.peers {
        let state = if p.admin_down { "disabled" } else { p.state };
        println!(
            "{:<18} {:<8} {:<12} {:>9} {:>9}",
            p.address, p.asn, state, p.received, p.advertised
        );
    }
    for n in &v.vnis {
        let flood: Vec<String> = n.flood.iter().map(ToString::to_string).collect();
        println!(
            "\nVNI {}: {} routes advertised, {} received, {} FDB entries installed; flood: {}",
            n.vni,
            n.advertised,
            n.received,
            n.installed,
            if flood.is_empty() {
                "-".into()
            } else {
                flood.join(", ")
            }
        );
        for m in &n.macs {
            let ip = m.ip.map_or(String::new(), |ip| format!(" {ip}"));
            let at = m.vtep.map_or("here".to_owned(), |v| v.to_string());
            let sticky = if m.sticky { " sticky" } else { "" };
            println!("  {}{ip} at {at} seq {}{sticky}", m.mac, m.seq);
        }
    }
    if v.ignored > 0 {
        println!(
            "\n{} routes ignored (other VNIs or route targets, not VXLAN)",
            v.ignored
        );
    }
}
