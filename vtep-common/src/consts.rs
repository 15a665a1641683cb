//! Protocol numbers, header sizes, map names and capacities.
//!
//! Map names are the names of the pinned files under `PIN_ROOT/INSTANCE/`:
//! userspace opens them by these constants, the kernel programs declare their
//! maps with the same identifiers, so a rename is a compile error on one side.

/// IANA-assigned VXLAN UDP destination port (RFC 7348 §5).
pub const VXLAN_PORT: u16 = 4789;

/// Ethernet header length (no VLAN tag).
pub const ETH_HLEN: usize = 14;
/// An 802.1Q tag: the kernel lets a frame this much over a device's MTU
/// plus Ethernet header through its forwarding check.
pub const VLAN_HLEN: usize = 4;
/// Largest 802.1Q VLAN ID a binding may have (4095 is reserved, IEEE
/// 802.1Q §9.6; 0 means untagged here).
pub const VID_MAX: u16 = 4094;
/// The VID bits of a tag's TCI.
pub const VID_MASK: u16 = 0x0fff;
/// IPv4 header length without options.
pub const IPV4_HLEN: usize = 20;
/// UDP header length.
pub const UDP_HLEN: usize = 8;
/// VXLAN header length (RFC 7348 §5).
pub const VXLAN_HLEN: usize = 8;
/// Outer headers added by encapsulation: Ethernet, IPv4, UDP, VXLAN.
pub const ENCAP_LEN: usize = ETH_HLEN + IPV4_HLEN + UDP_HLEN + VXLAN_HLEN;
/// Bytes from the start of the outer IPv4 header to the inner Ethernet header.
pub const ENCAP_L3_LEN: usize = IPV4_HLEN + UDP_HLEN + VXLAN_HLEN;
/// IPv6 header length (no extension headers).
pub const IPV6_HLEN: usize = 40;
/// Outer headers added by encapsulation over IPv6: Ethernet, IPv6, UDP,
/// VXLAN.
pub const ENCAP6_LEN: usize = ETH_HLEN + IPV6_HLEN + UDP_HLEN + VXLAN_HLEN;
/// Bytes from the start of the outer IPv6 header to the inner Ethernet
/// header.
pub const ENCAP6_L3_LEN: usize = IPV6_HLEN + UDP_HLEN + VXLAN_HLEN;

/// EtherType IPv4 (host order).
pub const ETH_P_IP: u16 = 0x0800;
/// EtherType ARP (host order).
pub const ETH_P_ARP: u16 = 0x0806;
/// EtherType 802.1Q VLAN tag (host order).
pub const ETH_P_8021Q: u16 = 0x8100;
/// EtherType 802.1ad service VLAN tag (host order).
pub const ETH_P_8021AD: u16 = 0x88a8;
/// EtherType IPv6 (host order).
pub const ETH_P_IPV6: u16 = 0x86dd;
/// ARP operation: request (RFC 826).
pub const ARP_REQUEST: u16 = 1;
/// ARP operation: reply (RFC 826).
pub const ARP_REPLY: u16 = 2;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IPv6 next header value of ICMPv6 (RFC 4443 §1).
pub const IPPROTO_ICMPV6: u8 = 58;

/// Largest VNI: the field is 24 bits wide (RFC 7348 §5).
pub const VNI_MAX: u32 = 0x00ff_ffff;

/// Outer UDP source ports are picked from the dynamic range (RFC 7348 §5:
/// "it is recommended that the UDP source port number be calculated using a
/// hash of fields from the inner packet" and be in 49152-65535).
pub const SRC_PORT_MIN: u16 = 49152;
/// Upper end of the outer UDP source port range (inclusive).
pub const SRC_PORT_MAX: u16 = 65535;

/// Default outer TTL (the kernel vxlan driver uses the route's hop limit, 64).
pub const DEFAULT_TTL: u8 = 64;

/// Remote VTEPs one VNI can flood BUM traffic to (head-end replication).
pub const MAX_FLOOD: usize = 32;
/// Local ports one VNI can have.
pub const MAX_VNI_PORTS: usize = 32;

/// FDB: (VNI, MAC) -> location.
pub const MAP_FDB: &str = "FDB";
/// Capacity of the FDB.
pub const FDB_CAPACITY: u32 = 1 << 20;
/// MACs learned by the datapath: (VNI, MAC) -> `LearnedEntry`, LRU.
pub const MAP_LEARNED: &str = "LEARNED";
/// Default capacity of the learned table (`vtep up --learned-capacity`).
pub const DEFAULT_LEARNED_CAPACITY: u32 = 1 << 18;
/// Learned, moved and frozen MACs, for `vtep events` (ring buffer).
pub const MAP_EVENTS: &str = "EVENTS";
/// Size of the events ring buffer, bytes.
pub const EVENTS_BYTES: u32 = 1 << 20;
/// MACs re-pointed by EVPN routes, for `vtep events` (a queue the
/// daemon's EVPN agent pushes to; the kernel programs never touch it).
pub const MAP_EVPN_EVENTS: &str = "EVPN_EVENTS";
/// Capacity of the EVPN events queue (what `vtep events` has not read
/// when it is full is not reported).
pub const EVPN_EVENTS_CAPACITY: u32 = 4096;
/// The same events for the daemon (its EVPN agent advertises local MACs
/// from them): a ring of its own, so that `vtep events` and the daemon
/// never take records from each other.
pub const MAP_CONTROL_EVENTS: &str = "CONTROL_EVENTS";
/// ARP suppression: (VNI, IPv4) -> `NeighEntry`.
pub const MAP_NEIGHS: &str = "NEIGHS";
/// Capacity of the ARP-suppression table.
pub const NEIGHS_CAPACITY: u32 = 1 << 18;
/// Storm-control token buckets, by VNI stats slot.
pub const MAP_BUM_BUCKETS: &str = "BUM_BUCKETS";
/// Ports: ifindex -> binding.
pub const MAP_PORTS: &str = "PORTS";
/// Capacity of the port table.
pub const PORTS_CAPACITY: u32 = 4096;
/// VNIs: VNI -> configuration (flood list, local ports).
pub const MAP_VNIS: &str = "VNIS";
/// VM identities: (VNI, MAC) -> `policy::Member`.
pub const MAP_MEMBERS: &str = "MEMBERS";
/// Group policy rules (per CPU: their hits).
pub const MAP_RULES: &str = "RULES";
/// Rate limits by slot.
pub const MAP_POLICERS: &str = "POLICERS";
/// Capacity of the VNI table.
pub const VNIS_CAPACITY: u32 = 65536;
/// Capacity of `MEMBERS`: VM identities, (VNI, MAC) -> group.
pub const MEMBERS_CAPACITY: u32 = 1 << 20;
/// Capacity of `RULES`: group policy rules, all VNIs together.
pub const RULES_CAPACITY: u32 = 65536;
/// Slots of `POLICERS` (slot 0 is never handed out): rate limits of VMs
/// and VNIs together.
pub const POLICERS_CAPACITY: u32 = 65536;
/// Remote VTEPs allowed to send a VNI: (VNI, IPv4) -> `RemoteInfo`.
pub const MAP_REMOTES: &str = "REMOTES";
/// Capacity of the allowed-remotes table.
pub const REMOTES_CAPACITY: u32 = 1 << 18;
/// Remote VTEPs, whatever their VNIs: on-wire IPv4 -> `PeerInfo`
/// (userspace only: assigns each its `PEER_STATS` slot).
pub const MAP_PEERS: &str = "PEERS";
/// Remote VTEPs one instance can have, plus slot 0 (never assigned).
pub const PEERS_CAPACITY: u32 = 16384;
/// Per-remote-VTEP traffic counters: per-CPU array indexed by the remote's
/// slot (capacity `PEERS_CAPACITY`).
pub const MAP_PEER_STATS: &str = "PEER_STATS";
/// Per-port-binding traffic counters: per-CPU array indexed by the
/// binding's slot (capacity `PORTS_CAPACITY`; slot 0 is never handed out).
pub const MAP_BINDING_STATS: &str = "BINDING_STATS";
/// Per-VNI traffic counters: per-CPU array indexed by the VNI's slot
/// (capacity `VNIS_CAPACITY`).
pub const MAP_VNI_STATS: &str = "VNI_STATS";
/// Drops by reason (per CPU array indexed by [`crate::counters::DropReason`]).
pub const MAP_DROPS: &str = "DROPS";
/// Datapath events that are not drops (per CPU array indexed by
/// [`crate::counters::Counter`]).
pub const MAP_COUNTERS: &str = "COUNTERS";

/// The instance record (one-entry array of `InstanceInfo`), written by
/// `vtep up`, read by every later command.
pub const MAP_INSTANCE: &str = "INSTANCE";

/// Neighbour entries `vtep` created for remote VTEPs' next hops:
/// `NextHopKey` -> 1, so that `down` removes exactly those (userspace
/// only).
pub const MAP_NEXTHOPS: &str = "NEXTHOPS";
/// The tables' generations (one `u64` per VNI slot, see
/// [`generation_slot`]; mmapable): a VNI's slot is bumped after every
/// change to a table entry of that VNI the decap decision cache reads, by
/// the kernel programs and by userspace, atomically. A cached decision is
/// valid only at the generation of its VNI's slot it was made in, so that
/// changes in one VNI (a flood of new MACs) leave the others' decisions
/// cached.
pub const MAP_GENERATION: &str = "GENERATION";
/// VNI slots of `GENERATION` (a power of two): VNIs share a slot when
/// their low bits are equal, which only costs them each other's
/// invalidations. One more slot follows them: [`ROUTES_GENERATION`].
pub const GENERATION_SLOTS: u32 = 4096;
/// The `GENERATION` slot of the host's routes and neighbours: the daemon
/// bumps it on every change it hears of over rtnetlink, which invalidates
/// the next hops the encap decision cache holds (without a daemon, they
/// expire).
pub const ROUTES_GENERATION: u32 = GENERATION_SLOTS;
/// Until when (`CLOCK_MONOTONIC_COARSE` ns, a one-entry array) `vtep
/// daemon` vouches that it hears route, neighbour and link changes and
/// bumps [`ROUTES_GENERATION`] on each: until then, cached decisions may
/// live [`crate::caches::WATCHED_TTL_NS`]. Renewed every second while the
/// daemon hears them, 0 when it stops.
pub const MAP_WATCHED: &str = "WATCHED";

/// The `GENERATION` slot of `vni`.
#[inline(always)]
pub const fn generation_slot(vni: u32) -> u32 {
    vni & (GENERATION_SLOTS - 1)
}
/// Entries of the decap decision cache, per CPU (a power of two). The cache
/// is not pinned: each load of the programs starts with an empty one.
pub const DECAP_CACHE_CAPACITY: u32 = 4096;
/// Entries of the encap decision cache, per CPU (a power of two; not
/// pinned either).
pub const ENCAP_CACHE_CAPACITY: u32 = 4096;
/// Capacity of the next-hop record.
pub const NEXTHOPS_CAPACITY: u32 = 4096;

/// Program names, as declared in the eBPF object.
pub const PROG_DECAP_XDP: &str = "vtep_decap";
/// TC ingress on the underlay: finishes decap for frames XDP passed up.
pub const PROG_DECAP_TC: &str = "vtep_decap_tc";
/// TC ingress on the merge device: what GRO merged, decapsulated by the
/// kernel's vxlan, decided.
pub const PROG_DECAP_MERGED: &str = "vtep_decap_merged";
/// TC ingress on a port: encapsulation, local switching, flooding.
pub const PROG_ENCAP_TC: &str = "vtep_encap";

/// Name of the load-time configuration global in the eBPF object.
pub const GLOBAL_CONFIG: &str = "CONFIG";
