//! `vtep port add|del`: bind VM-facing interfaces to VNIs.

use vtep_common::maps::PORT_F_XDP;

use crate::{datapath, instance::Instance, sys, values::Vni};

/// How decapsulated frames reach a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Deliver {
    /// As skbs, from TC: works with every device (the default).
    Skb,
    /// Straight from XDP (bpf_redirect): fastest, but only for devices that
    /// accept XDP frames (tap; a veth whose peer has XDP or GRO enabled).
    Xdp,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Bind an interface (a VM's tap or a container's veth) to a VNI.
    ///
    /// Every frame from the port is carried in that VNI, whatever it says.
    ///
    /// Example: vtep port add vm1 --vni 100
    #[command(verbatim_doc_comment)]
    Add {
        /// Interface name.
        iface: String,
        /// VNI the port belongs to.
        #[arg(long)]
        vni: Vni,
        /// How decapsulated frames are delivered to the port.
        #[arg(long, value_enum, default_value = "skb")]
        deliver: Deliver,
    },
    /// Unbind an interface; MACs learned or configured on it are removed.
    ///
    /// Example: vtep port del vm1
    #[command(verbatim_doc_comment)]
    Del {
        /// Interface name.
        iface: String,
    },
}

pub fn run(command: Command, inst: &Instance) -> anyhow::Result<()> {
    match command {
        Command::Add {
            iface,
            vni,
            deliver,
        } => add(inst, &iface, vni, deliver),
        Command::Del { iface } => del(inst, &iface),
    }
}

/// Validates, attaches the encap program, then records the binding; if the
/// binding cannot be recorded the attachment is undone.
pub fn add(inst: &Instance, iface: &str, vni: Vni, deliver: Deliver) -> anyhow::Result<()> {
    let mut t = inst.open()?;
    let ifindex = sys::ifindex(iface)?;
    t.port_check(iface, ifindex, vni)?;
    datapath::attach_port(inst, iface, ifindex)?;
    let flags = if deliver == Deliver::Xdp {
        PORT_F_XDP
    } else {
        0
    };
    if let Err(e) = t.port_add(ifindex, vni, flags) {
        datapath::detach_port(inst, ifindex)?;
        return Err(e);
    }
    Ok(())
}

fn del(inst: &Instance, iface: &str) -> anyhow::Result<()> {
    let mut t = inst.open()?;
    let ifindex = sys::ifindex(iface)?;
    if t.port(ifindex).is_none() {
        anyhow::bail!(
            "interface '{iface}' is not a port of instance '{}'",
            inst.name
        );
    }
    t.port_del(ifindex)?;
    datapath::detach_port(inst, ifindex)
}
