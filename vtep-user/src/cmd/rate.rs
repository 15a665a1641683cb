//! `vtep rate set|del|show`: rate limits of VMs and VNIs.

use crate::{
    domain::{self, Edit},
    instance::Instance,
    tables::identity::Limited,
    values::{Burst, Rate, UnicastMac, Vni},
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Limit what a VM sends (egress) and receives (ingress), or with no
    /// MAC a VNI's aggregate: what its ports send over the underlay and
    /// what arrives for them from it. Token-bucket policers shared by all
    /// CPUs: excess frames are dropped (`rate_limited`), not queued (this
    /// kernel has no `fq` qdisc to pace with). A direction not given keeps
    /// its limit.
    ///
    /// Examples:
    ///   vtep rate set 02:00:00:00:01:01 --vni 100 --egress 100mbit
    ///   vtep rate set --vni 100 --ingress 1gbit --burst 2m
    #[command(verbatim_doc_comment)]
    Set {
        /// The VM's MAC (none: the VNI's aggregate).
        mac: Option<UnicastMac>,
        #[arg(long)]
        vni: Vni,
        /// What the VM sends (like 100mbit, 1gbit).
        #[arg(long)]
        egress: Option<Rate>,
        /// What the VM receives.
        #[arg(long)]
        ingress: Option<Rate>,
        /// Bucket depth in bytes (64k to 4g; default 250 ms of the rate,
        /// at least 64k: a policer has no queue, and TCP needs a bucket
        /// that outlasts its retransmission timeout to reach the rate).
        #[arg(long)]
        burst: Option<Burst>,
    },
    /// Remove the limits of a VM, or with no MAC the VNI's.
    ///
    /// Example: vtep rate del 02:00:00:00:01:01 --vni 100
    #[command(verbatim_doc_comment)]
    Del {
        mac: Option<UnicastMac>,
        #[arg(long)]
        vni: Vni,
    },
    /// Show the limits with what each dropped since it was set.
    ///
    /// Example: vtep rate show --json
    #[command(verbatim_doc_comment)]
    Show {
        /// JSON array of {vni, mac, direction, rate, burst,
        /// dropped_packets, dropped_bytes} (rate in bits/s; mac absent:
        /// the VNI's).
        #[arg(long)]
        json: bool,
    },
}

/// Whose limits a command names.
fn who(mac: Option<UnicastMac>, vni: Vni) -> Limited {
    match mac {
        Some(mac) => Limited::Vm(vni, mac),
        None => Limited::Vni(vni),
    }
}

pub fn run(command: Command, inst: &Instance) -> anyhow::Result<()> {
    match command {
        Command::Set {
            mac,
            vni,
            egress,
            ingress,
            burst,
        } => Edit::begin(inst)?.rate_set(who(mac, vni), (egress, ingress), burst),
        Command::Del { mac, vni } => Edit::begin(inst)?.rate_del(who(mac, vni)),
        Command::Show { json } => {
            let rows = domain::read(inst)?.rate_views()?;
            if json {
                super::print_json(&rows)?;
                return Ok(());
            }
            println!(
                "{:<9} {:<18} {:<8} {:>10} {:>10} {:>12}",
                "VNI", "MAC", "DIR", "RATE", "BURST", "DROPPED"
            );
            for r in &rows {
                let mac = r.mac.map_or("(VNI)".to_owned(), |m| m.to_string());
                println!(
                    "{:<9} {:<18} {:<8} {:>10} {:>10} {:>12}",
                    r.vni,
                    mac,
                    r.direction,
                    r.rate.to_string(),
                    r.burst,
                    r.dropped_packets
                );
            }
            Ok(())
        }
    }
}
