//! Counter indices shared by the kernel programs and userspace.
//!
//! Drops and other datapath events are counted in per-CPU arrays indexed by
//! these enums (the xdp-tools pattern); userspace sums the CPUs and prints
//! each slot by its [`DropReason::name`] / [`Counter::name`].

/// Why the datapath dropped a frame. The discriminant is the index into the
/// `DROPS` per-CPU array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// A VXLAN packet for us whose headers are cut short or inconsistent.
    Malformed = 0,
    /// VXLAN header without the I flag (RFC 7348 §5: it MUST be set).
    NoIFlag = 1,
    /// VNI not configured on this VTEP.
    UnknownVni = 2,
    /// Outer source is not a remote VTEP of this VNI.
    UnknownRemote = 3,
    /// Decapsulated frame whose destination lives behind another remote VTEP
    /// (split horizon: we never relay between remote VTEPs).
    RemoteToRemote = 4,
    /// An FDB entry points at a port bound to another VNI (isolation guard).
    VniMismatch = 5,
    /// Frame from a port that has no VNI binding.
    UnboundPort = 6,
    /// Frame whose destination is the port it came from.
    Hairpin = 7,
    /// No route to the remote VTEP in the kernel FIB.
    NoRoute = 8,
    /// The kernel refused to grow, shrink or redirect the packet.
    KernelRefused = 9,
    /// A BUM frame with no port and no remote VTEP to flood to.
    NoFloodTarget = 10,
    /// Frame from a port shorter than an Ethernet header.
    InnerTooShort = 11,
    /// The next hop towards the remote VTEP is unresolved and the frame
    /// cannot wait for it (a flood copy, or a non-IP frame).
    NoNeighbour = 12,
    /// BUM frame over the VNI's storm-control rate (`--bum-pps`).
    StormControl = 13,
    /// Inner frame with a VLAN tag (RFC 7348 §6.1: SHOULD be discarded on
    /// decapsulation and not sent on encapsulation).
    InnerVlan = 14,
    /// Source MAC is a group (multicast or broadcast) address: no station
    /// sends from one (IEEE 802.3).
    GroupSourceMac = 15,
    /// Larger than the underlay MTU once encapsulated (VTEPs MUST NOT
    /// fragment, RFC 7348 §4.3); IPv4 with DF gets an ICMP answer.
    TooBig = 16,
}

impl DropReason {
    /// Every reason, in index order.
    pub const ALL: [DropReason; 17] = [
        DropReason::Malformed,
        DropReason::NoIFlag,
        DropReason::UnknownVni,
        DropReason::UnknownRemote,
        DropReason::RemoteToRemote,
        DropReason::VniMismatch,
        DropReason::UnboundPort,
        DropReason::Hairpin,
        DropReason::NoRoute,
        DropReason::KernelRefused,
        DropReason::NoFloodTarget,
        DropReason::InnerTooShort,
        DropReason::NoNeighbour,
        DropReason::StormControl,
        DropReason::InnerVlan,
        DropReason::GroupSourceMac,
        DropReason::TooBig,
    ];
    /// Number of slots in the `DROPS` array.
    pub const COUNT: u32 = Self::ALL.len() as u32;

    /// Stable snake_case name, as printed by `vtep stats`.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::NoIFlag => "no_i_flag",
            DropReason::UnknownVni => "unknown_vni",
            DropReason::UnknownRemote => "unknown_remote",
            DropReason::RemoteToRemote => "remote_to_remote",
            DropReason::VniMismatch => "vni_mismatch",
            DropReason::UnboundPort => "unbound_port",
            DropReason::Hairpin => "hairpin",
            DropReason::NoRoute => "no_route",
            DropReason::KernelRefused => "kernel_refused",
            DropReason::NoFloodTarget => "no_flood_target",
            DropReason::InnerTooShort => "inner_too_short",
            DropReason::NoNeighbour => "no_neighbour",
            DropReason::StormControl => "storm_control",
            DropReason::InnerVlan => "inner_vlan",
            DropReason::GroupSourceMac => "group_source_mac",
            DropReason::TooBig => "too_big",
        }
    }
}

/// Datapath events that are not drops. The discriminant is the index into
/// the `COUNTERS` per-CPU array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Underlay frame that is not VXLAN for us, passed to the kernel.
    PassToKernel = 0,
    /// Decapsulated and redirected to a port from XDP.
    DecapXdp = 1,
    /// Decapsulated in XDP, delivered to a port from TC (skb path).
    DecapSkb = 2,
    /// Decapsulated BUM or unknown-unicast frame flooded to local ports.
    DecapFlood = 3,
    /// Known unicast encapsulated towards one remote VTEP.
    EncapUnicast = 4,
    /// BUM or unknown unicast replicated to the VNI's flood list.
    EncapFlood = 5,
    /// Switched between two local ports of one VNI without encapsulation.
    LocalSwitch = 6,
    /// Next hop unresolved: handed to the kernel neighbour layer.
    NeighResolve = 7,
    /// A MAC learned for the first time.
    MacLearned = 8,
    /// A learned MAC seen at another location.
    MacMoved = 9,
    /// A MAC frozen for moving too often.
    MacFrozen = 10,
    /// A move event lost: the events ring buffer was full.
    EventLost = 11,
    /// An ARP request answered by the VTEP itself (never flooded).
    ArpSuppressed = 12,
    /// An IPv4-to-MAC binding learned from ARP.
    NeighLearned = 13,
    /// A VM told "fragmentation needed" for a frame too big to carry.
    IcmpFragNeeded = 14,
    /// A decap decision made from the tables and kept in the decap cache
    /// (the frames after it of the same conversation take the cache).
    DecapCacheFill = 15,
}

impl Counter {
    /// Every counter, in index order.
    pub const ALL: [Counter; 16] = [
        Counter::PassToKernel,
        Counter::DecapXdp,
        Counter::DecapSkb,
        Counter::DecapFlood,
        Counter::EncapUnicast,
        Counter::EncapFlood,
        Counter::LocalSwitch,
        Counter::NeighResolve,
        Counter::MacLearned,
        Counter::MacMoved,
        Counter::MacFrozen,
        Counter::EventLost,
        Counter::ArpSuppressed,
        Counter::NeighLearned,
        Counter::IcmpFragNeeded,
        Counter::DecapCacheFill,
    ];
    /// Number of slots in the `COUNTERS` array.
    pub const COUNT: u32 = Self::ALL.len() as u32;

    /// Stable snake_case name, as printed by `vtep stats`.
    pub const fn name(self) -> &'static str {
        match self {
            Counter::PassToKernel => "pass_to_kernel",
            Counter::DecapXdp => "decap_xdp",
            Counter::DecapSkb => "decap_skb",
            Counter::DecapFlood => "decap_flood",
            Counter::EncapUnicast => "encap_unicast",
            Counter::EncapFlood => "encap_flood",
            Counter::LocalSwitch => "local_switch",
            Counter::NeighResolve => "neigh_resolve",
            Counter::MacLearned => "mac_learned",
            Counter::MacMoved => "mac_moved",
            Counter::MacFrozen => "mac_frozen",
            Counter::EventLost => "event_lost",
            Counter::ArpSuppressed => "arp_suppressed",
            Counter::NeighLearned => "neigh_learned",
            Counter::IcmpFragNeeded => "icmp_frag_needed",
            Counter::DecapCacheFill => "decap_cache_fill",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_match_positions() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{}", r.name());
        }
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i, "{}", c.name());
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: std::vec::Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.extend(Counter::ALL.iter().map(|c| c.name()));
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
