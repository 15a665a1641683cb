//! `vtep port add|del`: bind VM-facing interfaces to VNIs.

use crate::{
    domain::Edit,
    instance::Instance,
    values::{Deliver, Vni},
};

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
        /// How decapsulated frames are delivered to the port (`auto`:
        /// chosen by the kind of device; `vtep status` shows the choice).
        #[arg(long, value_enum, default_value = "auto")]
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
    let mut e = Edit::begin(inst)?;
    match command {
        Command::Add {
            iface,
            vni,
            deliver,
        } => e.port_add(&iface, vni, deliver),
        Command::Del { iface } => e.port_del(&iface),
    }
}
