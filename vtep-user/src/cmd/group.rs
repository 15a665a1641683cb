//! `vtep group set|del|show`: which group policy group a VM is in.

use crate::{
    domain::{self, Edit},
    instance::Instance,
    values::{Group, UnicastMac, Vni},
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Put a VM (its MAC in a VNI) in a group: its frames carry the group
    /// on the wire (VNIs with --gbp) and are judged by the VNI's rules
    /// (`vtep policy`), wherever the VM is, on every host that has this
    /// membership.
    ///
    /// Example: vtep group set 02:00:00:00:01:01 --vni 100 --group 10
    #[command(verbatim_doc_comment)]
    Set {
        /// The VM's MAC.
        mac: UnicastMac,
        #[arg(long)]
        vni: Vni,
        /// Group policy ID, 1 to 65535.
        #[arg(long)]
        group: Group,
    },
    /// Take a VM out of its group (its port's default group, if any,
    /// applies again).
    ///
    /// Example: vtep group del 02:00:00:00:01:01 --vni 100
    #[command(verbatim_doc_comment)]
    Del {
        mac: UnicastMac,
        #[arg(long)]
        vni: Vni,
    },
    /// Show the memberships: configured ("static"), or from the VM's EVPN
    /// route ("evpn": a VM's group travels with it; a configured one
    /// wins).
    ///
    /// Example: vtep group show --vni 100 --json
    #[command(verbatim_doc_comment)]
    Show {
        /// Only this VNI.
        #[arg(long)]
        vni: Option<Vni>,
        /// JSON array of {vni, mac, group, origin}.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: Command, inst: &Instance) -> anyhow::Result<()> {
    match command {
        Command::Set { mac, vni, group } => Edit::begin(inst)?.group_set(vni, mac, group),
        Command::Del { mac, vni } => Edit::begin(inst)?.group_del(vni, mac),
        Command::Show { vni, json } => {
            let rows = domain::read(inst)?.member_views(vni)?;
            if json {
                super::print_json(&rows)?;
            } else {
                println!("{:<9} {:<18} {:<6} ORIGIN", "VNI", "MAC", "GROUP");
                for r in &rows {
                    println!("{:<9} {:<18} {:<6} {}", r.vni, r.mac, r.group, r.origin);
                }
            }
            Ok(())
        }
    }
}
