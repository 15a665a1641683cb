//! `vtep policy add|del|show`: the rules between groups of a VNI.

use crate::{
    domain::{self, Edit},
    instance::Instance,
    values::{Action, Group, Vni},
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Allow or deny frames from one group to another in a VNI (or change
    /// an existing rule's action). Applied where the receiver is: on
    /// decapsulation (the sender's group from the VXLAN-GBP header, 0
    /// without one) and on local switching. Without a rule, the VNI's
    /// default decides (allow; deny with `vtep vni add --default-deny`).
    /// Broadcast, multicast and unknown unicast are not filtered.
    ///
    /// Examples:
    ///   vtep policy add --vni 100 --from 10 --to 20 deny
    ///   vtep policy add --vni 100 --from 0 --to 20 allow
    #[command(verbatim_doc_comment)]
    Add {
        #[arg(long)]
        vni: Vni,
        /// The sender's group (0: unknown).
        #[arg(long)]
        from: Group,
        /// The receiver's group (0: unknown).
        #[arg(long)]
        to: Group,
        #[arg(value_enum)]
        action: Action,
    },
    /// Remove a rule.
    ///
    /// Example: vtep policy del --vni 100 --from 10 --to 20
    #[command(verbatim_doc_comment)]
    Del {
        #[arg(long)]
        vni: Vni,
        #[arg(long)]
        from: Group,
        #[arg(long)]
        to: Group,
    },
    /// Show the rules with the frames each decided.
    ///
    /// Example: vtep policy show --vni 100 --json
    #[command(verbatim_doc_comment)]
    Show {
        /// Only this VNI.
        #[arg(long)]
        vni: Option<Vni>,
        /// JSON array of {vni, from, to, action, packets, bytes}.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: Command, inst: &Instance) -> anyhow::Result<()> {
    match command {
        Command::Add {
            vni,
            from,
            to,
            action,
        } => Edit::begin(inst)?.rule_add(vni, from, to, action),
        Command::Del { vni, from, to } => Edit::begin(inst)?.rule_del(vni, from, to),
        Command::Show { vni, json } => {
            let t = domain::read(inst)?;
            let rows = t.rule_views(vni)?;
            if json {
                super::print_json(&rows)?;
                return Ok(());
            }
            println!(
                "{:<9} {:>6} {:>6} {:<6} {:>12} {:>14}",
                "VNI", "FROM", "TO", "ACTION", "PACKETS", "BYTES"
            );
            for r in &rows {
                println!(
                    "{:<9} {:>6} {:>6} {:<6} {:>12} {:>14}",
                    r.vni, r.from, r.to, r.action, r.packets, r.bytes
                );
            }
            for (vni, default) in t.policy_defaults(vni)? {
                println!("VNI {vni}: without a rule, {default}");
            }
            Ok(())
        }
    }
}
