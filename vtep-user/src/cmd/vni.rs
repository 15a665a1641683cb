//! `vtep vni add|del`: the VNIs (tenants) this VTEP carries.

use crate::{
    domain::{Edit, plan::VniPlan},
    instance::Instance,
    values::{FloodList, Tos, Vni},
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Add a VNI, or replace the flood list of an existing one.
    ///
    /// The flood list names the remote VTEPs that receive this VNI's
    /// broadcast, unknown-unicast and multicast frames (head-end
    /// replication); only VTEPs in it (or named by a static FDB entry) may
    /// send this VNI to us.
    ///
    /// Example: vtep vni add 100 --flood 198.18.2.1,198.18.3.1
    #[command(verbatim_doc_comment)]
    Add {
        /// VNI, 1 to 16777215.
        vni: Vni,
        /// Remote VTEP addresses, comma-separated (at most 32).
        #[arg(long, default_value = "")]
        flood: FloodList,
        /// Do not learn MACs from this VNI's traffic (static FDB only).
        #[arg(long)]
        no_learning: bool,
        /// Storm control: at most this many broadcast, unknown-unicast and
        /// multicast frames per second from the VNI's ports (0: no limit).
        #[arg(long, default_value_t = 0)]
        bum_pps: u32,
        /// The outer IPv4 TOS / IPv6 traffic class: `inherit` (the inner
        /// packet's DSCP) or a TOS byte (184 or 0xb8: DSCP 46) with its
        /// two ECN bits zero. ECN is always the inner packet's (RFC 6040).
        #[arg(long, default_value = "0")]
        tos: Tos,
        /// Carry the sending VM's group in the VXLAN header (VXLAN-GBP,
        /// as the kernel vxlan's `gbp` option; every VTEP of the VNI must
        /// have it: one without drops these packets).
        #[arg(long)]
        gbp: bool,
        /// Drop frames between groups no `vtep policy` rule allows
        /// (default: allow them).
        #[arg(long)]
        default_deny: bool,
    },
    /// Remove a VNI with its FDB entries (refused while ports are bound).
    ///
    /// Example: vtep vni del 100
    #[command(verbatim_doc_comment)]
    Del {
        /// VNI, 1 to 16777215.
        vni: Vni,
    },
}

pub fn run(command: Command, inst: &Instance) -> anyhow::Result<()> {
    let mut e = Edit::begin(inst)?;
    match command {
        Command::Add {
            vni,
            flood,
            no_learning,
            bum_pps,
            tos,
            gbp,
            default_deny,
        } => e.vni_add(&VniPlan {
            vni,
            flood,
            learning: !no_learning,
            bum_pps,
            tos,
            gbp,
            default_deny,
        }),
        Command::Del { vni } => e.vni_del(vni),
    }
}
