//! The variants `cargo xtask bench` measures side by side: the kernel's
//! vxlan, this project's VTEP in its configurations, and the ceilings.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::generator::Arrival;

/// The underlay addresses of the device under test and of its peer.
const DUT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The same over the IPv6 underlay (2001:2::/64).
const DUT_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
const PEER_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);

/// One configuration measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The kernel's vxlan + bridge, GRO on the underlay (as NICs have it;
    /// the kernel then pays vxlan GRO on every frame).
    Kernel,
    /// The same with GRO off on the underlay (an XDP_PASS program lets
    /// the veth take the generator's frames).
    KernelNoGro,
    /// This project's VTEP as `vtep up` and `port add` set it up by
    /// default: native XDP on the underlay (a veth has it, as a NIC).
    Vtep,
    /// `vtep` decapsulating in TC, no XDP on the underlay (`vtep up
    /// --xdp-mode off`; TCP merged by GRO for its merge device).
    VtepTc,
    /// Delivering from XDP (`port add --deliver xdp`, native XDP), to a VM
    /// whose side of the veth has GRO on (else it cannot take XDP frames).
    VtepXdp,
    /// This project's VTEP without its decap decision cache
    /// (`vtep up --no-decap-cache`): every frame decided from the tables;
    /// delivered from XDP, as `vtep-xdp`.
    VtepUncached,
    /// This project's VTEP built from another revision (`--baseline`), set
    /// up as `vtep` is.
    Baseline,
    XdpDrop,
    /// A TC ingress drop where the generator's frames arrive: the
    /// generator's own cost for skbs (XDP on a veth copies each skb
    /// with less than 256 bytes of headroom into a page first, which
    /// `xdp-drop` then pays).
    TcDrop,
    XdpRedirect,
    /// Decap without lookups in TC alone: the frame shrunk by 50 bytes on
    /// the underlay's TC ingress and handed to the VM's side of the port
    /// with `bpf_redirect_peer` (what the default delivery would cost
    /// without XDP in front).
    TcPeer,
    /// The kernel's vxlan over an IPv6 underlay (`udp6zerocsumrx`, UDP
    /// checksums computed on transmit: its default).
    KernelIpv6,
    /// This project's VTEP over an IPv6 underlay.
    VtepIpv6,
    /// `vtep` with group policy on the VNI: VXLAN-GBP, the VMs in groups,
    /// a rule that allows their traffic (every frame's identities looked
    /// up and judged, the GBP word written on encap).
    VtepPolicy,
    /// Encap without lookups: a TC program on the port that pushes fixed
    /// outer headers and redirects to the underlay.
    EncapCeiling,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Kernel => "kernel",
            Variant::KernelNoGro => "kernel-nogro",
            Variant::Vtep => "vtep",
            Variant::VtepTc => "vtep-tc",
            Variant::VtepXdp => "vtep-xdp",
            Variant::VtepUncached => "vtep-uncached",
            Variant::Baseline => "baseline",
            Variant::XdpDrop => "xdp-drop",
            Variant::TcDrop => "tc-drop",
            Variant::XdpRedirect => "xdp-redirect",
            Variant::TcPeer => "tc-peer",
            Variant::KernelIpv6 => "kernel-ipv6",
            Variant::VtepIpv6 => "vtep-ipv6",
            Variant::VtepPolicy => "vtep-policy",
            Variant::EncapCeiling => "encap-ceiling",
        }
    }

    /// The underlay's addresses: ours and the peer's.
    pub(super) fn underlay(self) -> (IpAddr, IpAddr) {
        match self {
            Variant::KernelIpv6 | Variant::VtepIpv6 => (DUT_IP6.into(), PEER_IP6.into()),
            _ => (DUT_IP.into(), PEER_IP.into()),
        }
    }

    /// Whether this is the kernel's vxlan.
    pub(super) fn is_kernel(self) -> bool {
        matches!(
            self,
            Variant::Kernel | Variant::KernelNoGro | Variant::KernelIpv6
        )
    }

    /// The `vtep up --xdp-mode` of our VTEP in this variant with frames
    /// arriving as `arrival` says: `off` for `vtep-tc`, native XDP where
    /// it delivers from XDP; elsewhere what `auto` picks on the device the
    /// arrival stands for: native XDP on a NIC where XDP frames arrive (on
    /// the veth of the bench it would pick TC), itself on the veth
    /// underlay where skbs arrive (a build from another revision has its
    /// own).
    pub(super) fn xdp_mode(self, arrival: Arrival) -> &'static str {
        if self == Variant::VtepTc {
            "off"
        } else if self.xdp_delivery() || arrival == Arrival::Xdp {
            "native"
        } else {
            "auto"
        }
    }

    /// Whether decap delivers to the VM from XDP (the VM's side of the
    /// veth then needs GRO on to take the frames).
    pub(super) fn xdp_delivery(self) -> bool {
        matches!(
            self,
            Variant::VtepXdp | Variant::VtepUncached | Variant::XdpRedirect
        )
    }

    /// Whether this is a drop where the generator's frames arrive: what
    /// the others' costs are measured above.
    pub(super) fn is_drop_ceiling(self) -> bool {
        matches!(self, Variant::XdpDrop | Variant::TcDrop)
    }
}
