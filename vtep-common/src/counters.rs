//! Counter indices shared by the kernel programs and userspace.
//!
//! Drops and other datapath events are counted in per-CPU arrays indexed by
//! these enums (the xdp-tools pattern); userspace sums the CPUs and prints
//! each slot by its [`DropReason::name`] / [`Counter::name`]. Each enum is
//! declared once, by `counted!`: variant, index and name in one row.

/// Declares a counter enum once: each variant with its stable name; the
/// discriminants (the array indices), `ALL` (index order), `COUNT` (the
/// array's size) and `name` all come from this one list, so a variant
/// cannot be added without being counted and named.
macro_rules! counted {
    (
        $(#[$meta:meta])*
        $enum:ident, $array:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $name:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $enum {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $enum {
            #[doc = concat!("Number of slots in the `", stringify!($array), "` array.")]
            pub const COUNT: u32 = [$(stringify!($variant)),+].len() as u32;
            /// Every value, in index order.
            pub const ALL: [$enum; Self::COUNT as usize] = [$($enum::$variant),+];

            /// Stable snake_case name, as `vtep stats` and the metrics print it.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $enum::$variant => $name, )+
                }
            }
        }
    };
}

counted! {
    /// Why the datapath dropped a frame. The discriminant is the index into the
    /// `DROPS` per-CPU array.
    DropReason, DROPS {
        /// A VXLAN packet for us whose headers are cut short or inconsistent,
        /// or whose outer IPv4 header checksum is bad.
        Malformed = "malformed",
        /// VXLAN header without the I flag (RFC 7348 §5: it MUST be set).
        NoIFlag = "no_i_flag",
        /// VNI not configured on this VTEP.
        UnknownVni = "unknown_vni",
        /// Outer source is not a remote VTEP of this VNI.
        UnknownRemote = "unknown_remote",
        /// Decapsulated frame whose destination lives behind another remote VTEP
        /// (split horizon: we never relay between remote VTEPs).
        RemoteToRemote = "remote_to_remote",
        /// An FDB entry points at a port bound to another VNI (isolation guard).
        VniMismatch = "vni_mismatch",
        /// Frame from a port with no binding for its VLAN (a VID not bound
        /// on that port, or untagged on a port without an untagged binding).
        UnboundVlan = "unbound_vlan",
        /// Frame from a port with an 802.1ad (QinQ, TPID 0x88a8) outer tag:
        /// bindings are 802.1Q VLANs.
        Qinq = "qinq",
        /// Frame whose destination is the port it came from.
        Hairpin = "hairpin",
        /// No route to the remote VTEP in the kernel FIB.
        NoRoute = "no_route",
        /// The kernel refused to grow, shrink or redirect the packet.
        KernelRefused = "kernel_refused",
        /// A BUM frame with no port and no remote VTEP to flood to.
        NoFloodTarget = "no_flood_target",
        /// Frame from a port shorter than an Ethernet header.
        InnerTooShort = "inner_too_short",
        /// The next hop towards the remote VTEP is unresolved and the frame
        /// cannot wait for it (a flood copy, or a non-IP frame).
        NoNeighbour = "no_neighbour",
        /// BUM frame over the VNI's storm-control rate (`--bum-pps`).
        StormControl = "storm_control",
        /// Inner frame with a VLAN tag (RFC 7348 §6.1: SHOULD be discarded on
        /// decapsulation and not sent on encapsulation).
        InnerVlan = "inner_vlan",
        /// Source MAC is a group (multicast or broadcast) address: no station
        /// sends from one (IEEE 802.3).
        GroupSourceMac = "group_source_mac",
        /// Outer header marked CE over an inner packet that is not
        /// ECN-capable: the congestion signal cannot be passed on (RFC 6040
        /// §4.2: drop).
        CeNotEct = "ce_not_ect",
        /// Larger than the underlay MTU once encapsulated (VTEPs MUST NOT
        /// fragment, RFC 7348 §4.3); IPv4 with DF gets an ICMP answer.
        TooBig = "too_big",
        /// Group policy denied the frame (a deny rule, or no rule in a
        /// `--default-deny` VNI).
        PolicyDenied = "policy_denied",
        /// Over a VM's or a VNI's rate limit.
        RateLimited = "rate_limited",
        /// VXLAN the merge device (`--xdp-mode off`) received for another of
        /// the host's addresses: an instance decapsulates only what is sent
        /// to its own (`--local-ip`).
        NotToUs = "not_to_us",
    }
}

counted! {
    /// Datapath events that are not drops. The discriminant is the index into
    /// the `COUNTERS` per-CPU array.
    Counter, COUNTERS {
        /// Underlay frame that is not VXLAN for us, passed to the kernel.
        PassToKernel = "pass_to_kernel",
        /// Decapsulated and redirected to a port from XDP.
        DecapXdp = "decap_xdp",
        /// Decapsulated in XDP, delivered to a port from TC (skb path).
        DecapSkb = "decap_skb",
        /// Decapsulated BUM or unknown-unicast frame flooded to local ports.
        DecapFlood = "decap_flood",
        /// Known unicast encapsulated towards one remote VTEP.
        EncapUnicast = "encap_unicast",
        /// BUM or unknown unicast replicated to the VNI's flood list.
        EncapFlood = "encap_flood",
        /// Switched between two local ports of one VNI without encapsulation.
        LocalSwitch = "local_switch",
        /// Next hop unresolved: handed to the kernel neighbour layer.
        NeighResolve = "neigh_resolve",
        /// A MAC learned for the first time.
        MacLearned = "mac_learned",
        /// A learned MAC seen at another location.
        MacMoved = "mac_moved",
        /// A MAC frozen for moving too often.
        MacFrozen = "mac_frozen",
        /// A move event lost: the events ring buffer was full.
        EventLost = "event_lost",
        /// An event lost for the daemon: its ring buffer was full (no
        /// daemon runs, or it fell behind; its periodic sync catches up).
        ControlEventLost = "control_event_lost",
        /// An ARP request answered by the VTEP itself (never flooded).
        ArpSuppressed = "arp_suppressed",
        /// A tenant address binding learned from ARP or Neighbor Discovery.
        NeighLearned = "neigh_learned",
        /// A VM told "fragmentation needed" for a frame too big to carry.
        IcmpFragNeeded = "icmp_frag_needed",
        /// A decap decision made from the tables and kept in the decap cache
        /// (the frames after it of the same conversation take the cache).
        DecapCacheFill = "decap_cache_fill",
        /// A VM told "packet too big" (ICMPv6) for an IPv6 packet too big
        /// to carry.
        IcmpPacketTooBig = "icmp_packet_too_big",
        /// A Neighbor Solicitation answered by the VTEP itself (never
        /// flooded).
        NdSuppressed = "nd_suppressed",
        /// A decapsulated packet marked CE: its outer header carried a
        /// congestion mark of the underlay (RFC 6040 §4.2).
        EcnCeMarked = "ecn_ce_marked",
        /// An encap decision made from the tables and kept in the encap
        /// cache (the frames after it of the same conversation take the
        /// cache).
        EncapCacheFill = "encap_cache_fill",
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
