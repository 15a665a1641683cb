//! `vtep port add|del`: bind VM-facing interfaces to VNIs.

use vtep_common::maps::{PORT_F_FWD_SET, PORT_F_XDP};

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

/// Validates, then turns on forwarding, attaches the encap program and
/// records the binding; a failing step undoes the ones before it.
pub fn add(inst: &Instance, iface: &str, vni: Vni, deliver: Deliver) -> anyhow::Result<()> {
    let mut t = inst.open()?;
    let ifindex = sys::ifindex(iface)?;
    t.port_check(iface, ifindex, vni)?;
    // The encap program's FIB lookup is a forwarding lookup from the port
    // (see vtep-ebpf/src/encap.rs, `next_hop`).
    let fwd_was_on = sys::set_forwarding(iface, true)?;
    let mut flags = if deliver == Deliver::Xdp {
        PORT_F_XDP
    } else {
        0
    };
    if !fwd_was_on {
        flags |= PORT_F_FWD_SET;
    }
    let result = datapath::attach_port(inst, iface, ifindex).and_then(|()| {
        t.port_add(ifindex, vni, flags).inspect_err(|_| {
            let _ = datapath::detach_port(inst, ifindex);
        })
    });
    if result.is_err() && !fwd_was_on {
        sys::set_forwarding(iface, false)?;
    }
    result
}

/// Unbinds `iface`: tables first, then the attachment, then the
/// forwarding flag `add` set.
pub fn del(inst: &Instance, iface: &str) -> anyhow::Result<()> {
    let mut t = inst.open()?;
    let ifindex = sys::ifindex(iface)?;
    let Some(port) = t.port(ifindex) else {
        anyhow::bail!(
            "interface '{iface}' is not a port of instance '{}'",
            inst.name
        );
    };
    t.port_del(ifindex)?;
    datapath::detach_port(inst, ifindex)?;
    if port.flags & PORT_F_FWD_SET != 0 {
        sys::set_forwarding(iface, false)?;
    }
    Ok(())
}
