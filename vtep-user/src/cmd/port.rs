//! `vtep port add|del`: bind VM-facing interfaces, and the VLANs of
//! trunks, to VNIs.

use crate::{
    domain::{Edit, plan::PortPlan},
    instance::Instance,
    values::{Deliver, Group, Vid, Vni},
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Bind an interface (a VM's tap or a container's veth) to a VNI, or
    /// one 802.1Q VLAN of a trunk to a legacy VLAN segment.
    ///
    /// Every frame from the binding is carried in that VNI, whatever it
    /// says. A trunk has one binding per VLAN (repeat with each --vlan);
    /// its frames' tags choose the binding and are removed before
    /// encapsulation (RFC 7348 §6.1), and frames towards it get their
    /// binding's tag back. One VNI bound to different VLANs on different
    /// ports joins them (VLAN translation through the VNI).
    ///
    /// A veth or tap with no master joins the instance's headroom bridge
    /// (vth<N>, never up: it sees no frame) until its last binding goes,
    /// so that its VM leaves room for the outer headers in front of its
    /// frames (otherwise each UDP or ICMP frame is copied to make room).
    ///
    /// Examples:
    ///   vtep port add vm1 --vni 100
    ///   vtep port add trunk0 --vni 100 --vlan 10
    ///   vtep port add trunk0 --vni 200 --vlan 20
    #[command(verbatim_doc_comment)]
    Add {
        /// Interface name.
        iface: String,
        /// VNI the binding belongs to.
        #[arg(long)]
        vni: Vni,
        /// 802.1Q VLAN ID (1-4094) of a trunk binding; 0 or none: the
        /// port's untagged frames.
        #[arg(long, default_value = "0")]
        vlan: Vid,
        /// How decapsulated frames are delivered to the port (`auto`:
        /// chosen by the kind of device; `vtep status` shows the choice).
        #[arg(long, value_enum, default_value = "auto")]
        deliver: Deliver,
        /// Group policy group of what enters the binding from VMs without
        /// one of their own (`vtep group set`); default: none.
        #[arg(long, default_value = "0")]
        group: Group,
    },
    /// Unbind an interface (every binding, or one VLAN's); MACs learned
    /// or configured on what is unbound are removed.
    ///
    /// Examples:
    ///   vtep port del vm1
    ///   vtep port del trunk0 --vlan 20
    #[command(verbatim_doc_comment)]
    Del {
        /// Interface name.
        iface: String,
        /// Only this VLAN's binding (0: the untagged one).
        #[arg(long)]
        vlan: Option<Vid>,
    },
}

pub fn run(command: Command, inst: &Instance) -> anyhow::Result<()> {
    let mut e = Edit::begin(inst)?;
    match command {
        Command::Add {
            iface,
            vni,
            vlan,
            deliver,
            group,
        } => e.port_add(&PortPlan {
            iface,
            vid: vlan,
            vni,
            deliver,
            group,
        }),
        Command::Del { iface, vlan } => e.port_del(&iface, vlan),
    }
}
