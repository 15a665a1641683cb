//! Keys and values of the BPF maps, and the load-time configuration.
//!
//! Byte order: addresses are [`Addr`]s (16 on-wire bytes, IPv4 as
//! IPv4-mapped IPv6), so the kernel programs compare them to packet fields
//! without swapping. VNIs, ifindexes, flags and counters are
//! host order. Every type is `#[repr(C)]` with explicit `_pad` fields and no
//! implicit padding, which is what makes the `aya::Pod` impls sound.

use crate::{
    addr::Addr,
    consts::{MAX_FLOOD, MAX_VNI_PORTS},
};

/// Load-time settings, written into the `CONFIG` global before the programs
/// are loaded (read-only to the kernel programs).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Our underlay address: its family is the instance's underlay family.
    pub local_ip: Addr,
    /// The underlay interface: VXLAN leaves through it.
    pub underlay_ifindex: u32,
    /// VXLAN UDP port (host order).
    pub udp_port: u16,
    /// Outer IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// `CONFIG_F_*` bits.
    pub flags: u8,
    /// Learned MACs not seen for this long are stale (seconds).
    pub ageing_s: u32,
    /// A MAC that moves more than this often within `move_window_s` is
    /// frozen where it is (RFC 7432 §15.1 duplicate detection: 5).
    pub move_limit: u32,
    /// The move-counting window (seconds; RFC 7432 §15.1: 180).
    pub move_window_s: u32,
    /// The kernel's tick (one jiffy), ns: the decision caches count their
    /// entries' lifetimes in ticks (see `caches::tick_ns`).
    pub tick_ns: u32,
}

/// Default ageing time, as the kernel bridge's (seconds).
pub const DEFAULT_AGEING_S: u32 = 300;
/// Default move limit within the window (RFC 7432 §15.1).
pub const DEFAULT_MOVE_LIMIT: u32 = 5;
/// Default move-counting window (RFC 7432 §15.1), seconds.
pub const DEFAULT_MOVE_WINDOW_S: u32 = 180;

/// Set the DF bit on outer IPv4 headers.
pub const CONFIG_F_DF: u8 = 1;
/// Decide every decapsulated frame from the tables, without the decap
/// decision cache (`vtep up --no-decap-cache`).
pub const CONFIG_F_NO_DECAP_CACHE: u8 = 2;
/// The underlay runs no XDP (`vtep up --xdp-mode off`): `vtep_decap_tc`
/// decapsulates the frames itself.
pub const CONFIG_F_DECAP_TC: u8 = 4;

/// What `vtep up` recorded about an instance, in the one-entry `INSTANCE`
/// array: later commands read it instead of asking the user again.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstanceInfo {
    /// [`LAYOUT_VERSION`] of the build that created the maps.
    pub layout_version: u32,
    /// `XDP_MODE_*`: how the XDP program is attached to the underlay.
    pub xdp_mode: u32,
    /// The configuration the programs were loaded with.
    pub config: Config,
    /// `INSTANCE_F_*` bits.
    pub flags: u32,
    /// Where the underlay runs no XDP: the ifindex of the instance's
    /// merge device, the kernel vxlan device in metadata mode whose socket
    /// lets GRO merge VXLAN packets (0: none).
    pub merge_dev: u32,
}

/// `vtep up` turned GRO on on the underlay (it was off, as on a veth):
/// `vtep down` turns it off again.
pub const INSTANCE_F_GRO_SET: u32 = 1;

/// Version of the map layouts defined in this file. Bumped on any change to
/// a key or value type, so that a build never misreads another's maps.
pub const LAYOUT_VERSION: u32 = 13;
/// XDP runs in the driver (native).
pub const XDP_MODE_NATIVE: u32 = 1;
/// XDP runs in the generic (skb) path.
pub const XDP_MODE_GENERIC: u32 = 2;
/// No XDP on the underlay: VXLAN is decapsulated in TC ingress.
pub const XDP_MODE_OFF: u32 = 3;

/// FDB key: a MAC address within one VNI.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FdbKey {
    /// VNI (host order).
    pub vni: u32,
    /// MAC address, on-wire order.
    pub mac: [u8; 6],
    /// Always zero (part of the hash key).
    pub _pad: [u8; 2],
}

impl FdbKey {
    /// The key for `mac` in `vni`.
    pub const fn new(vni: u32, mac: [u8; 6]) -> Self {
        Self {
            vni,
            mac,
            _pad: [0; 2],
        }
    }
}

/// Where a MAC lives: behind a remote VTEP (`remote` not none) or on a
/// local port (`ifindex != 0`); exactly one of the two is set. Written by an
/// operator (`FDB_F_STATIC`) or by the EVPN agent (`FDB_F_EVPN`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdbEntry {
    /// Remote VTEP, or none.
    pub remote: Addr,
    /// Local port ifindex, or 0.
    pub ifindex: u32,
    /// `FDB_F_*` bits.
    pub flags: u32,
    /// The location's stats slot: the remote VTEP's in `PEER_STATS` (see
    /// [`PeerInfo::slot`]), or the port binding's in `BINDING_STATS`.
    pub peer: u32,
    /// `FDB_F_EVPN` entries: the MAC-mobility sequence number of the route
    /// (RFC 7432 §7.7); 0 otherwise.
    pub seq: u32,
    /// The port's VLAN binding the MAC is behind (802.1Q VID; 0: the
    /// port's untagged frames, and always 0 for a remote).
    pub vid: u16,
    /// Always zero.
    pub _pad: u16,
}

/// Configured by an operator (never aged, never overwritten by learning).
pub const FDB_F_STATIC: u32 = 1;
/// Installed from a BGP EVPN MAC/IP route. Data-plane learning may move
/// it (the first frame after a VM moved re-points it at once; EVPN
/// confirms) unless it is also `FDB_F_STICKY`.
pub const FDB_F_EVPN: u32 = 4;
/// The EVPN route carried the sticky (static) flag (RFC 7432 §15.2):
/// never moved by learning.
pub const FDB_F_STICKY: u32 = 8;
/// The entry's port takes decapsulated frames straight from XDP (a copy of
/// its `PORT_F_XDP`, so decap needs no port lookup). Userspace only writes
/// port entries for ports of the entry's VNI and removes them with the
/// port, which is what keeps decap within the tenant.
pub const FDB_F_XDP: u32 = 2;
/// The entry's port takes frames from TC into its veth peer (a copy of its
/// `PORT_F_PEER`).
pub const FDB_F_PEER: u32 = 16;
/// The bits of an entry (FDB or learned) that say how its port takes
/// frames: copied from the port's flags by [`fdb_delivery`].
pub const FDB_F_DELIVERY: u32 = FDB_F_XDP | FDB_F_PEER;

/// The `FDB_F_*` delivery bits of an entry on a port with `PORT_F_*` bits
/// `port_flags`.
#[inline(always)]
pub const fn fdb_delivery(port_flags: u32) -> u32 {
    let mut f = 0;
    if port_flags & PORT_F_XDP != 0 {
        f |= FDB_F_XDP;
    }
    if port_flags & PORT_F_PEER != 0 {
        f |= FDB_F_PEER;
    }
    f
}

/// A MAC the datapath learned (value of `LEARNED`, an LRU hash keyed by
/// [`FdbKey`]): behind a remote VTEP (`remote` not none) or on a local
/// port.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LearnedEntry {
    /// Remote VTEP, or none.
    pub remote: Addr,
    /// Local port ifindex, or 0.
    pub ifindex: u32,
    /// The port's VLAN binding (VID; 0: untagged, and for a remote).
    pub vid: u16,
    /// Always zero.
    pub _pad: u16,
    /// When the MAC was last seen here (CLOCK_MONOTONIC_COARSE, ns).
    pub seen_ns: u64,
    /// Start of the current move-counting window (same clock).
    pub window_ns: u64,
    /// Moves within the current window.
    pub window_moves: u32,
    /// Moves since the MAC was learned.
    pub moves: u32,
    /// `LEARNED_F_*` bits.
    pub flags: u32,
    /// The location's stats slot, as [`FdbEntry::peer`]: copied from the
    /// remote's `REMOTES` entry or the binding's `PORTS` entry when
    /// learned.
    pub peer: u32,
}

/// The MAC moved too often: frozen at its location, no longer updated.
pub const LEARNED_F_FROZEN: u32 = 1;

/// What happened to a MAC (the `kind` of a [`MacEvent`]).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacEventKind {
    /// First seen.
    Learned = 1,
    /// Seen at another location.
    Moved = 2,
    /// Not seen for the ageing time.
    Aged = 3,
    /// Moved more than the limit within the window: frozen.
    Frozen = 4,
    /// Re-pointed by a BGP EVPN route (another VTEP advertised it with a
    /// higher sequence number); written by the daemon's EVPN agent into
    /// `EVPN_EVENTS`.
    Evpn = 5,
}

impl MacEventKind {
    /// From the raw `kind` field.
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Learned),
            2 => Some(Self::Moved),
            3 => Some(Self::Aged),
            4 => Some(Self::Frozen),
            5 => Some(Self::Evpn),
            _ => None,
        }
    }

    /// Stable name, as `vtep events` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Learned => "learned",
            Self::Moved => "moved",
            Self::Aged => "aged",
            Self::Frozen => "frozen",
            Self::Evpn => "evpn-moved",
        }
    }
}

/// One record of the `EVENTS` ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MacEvent {
    /// CLOCK_MONOTONIC_COARSE, ns.
    pub ts_ns: u64,
    /// [`MacEventKind`] as u32.
    pub kind: u32,
    /// The MAC's VNI.
    pub vni: u32,
    /// The MAC.
    pub mac: [u8; 6],
    /// Always zero.
    pub _pad: [u8; 2],
    /// Where it was (none and 0: nowhere).
    pub old_remote: Addr,
    /// Where it is now (none and 0: gone).
    pub new_remote: Addr,
    pub old_ifindex: u32,
    pub new_ifindex: u32,
    /// The VLAN bindings of the two ports (0: untagged).
    pub old_vid: u16,
    pub new_vid: u16,
    /// Always zero.
    pub _pad2: u32,
}

/// Key of `PORTS`: a port and one 802.1Q VLAN on it, a binding (as a
/// `vlan_bindings` entry of OVSDB's `hardware_vtep` port). VID 0 stands for
/// the port's untagged frames.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortKey {
    pub ifindex: u32,
    /// 1-4094, or 0: untagged.
    pub vid: u16,
    /// Always zero (part of the hash key).
    pub _pad: u16,
}

impl PortKey {
    /// The key of VLAN `vid` (0: untagged) on port `ifindex`.
    pub const fn new(ifindex: u32, vid: u16) -> Self {
        Self {
            ifindex,
            vid,
            _pad: 0,
        }
    }
}

/// A binding of a port (untagged, or one VLAN of a trunk) to a VNI.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortInfo {
    /// The VNI every frame of this binding is carried in.
    pub vni: u32,
    /// `PORT_F_*` bits.
    pub flags: u32,
    /// The VNI's slot in `VNI_STATS` (see [`VniInfo::slot`]).
    pub slot: u32,
    /// The binding's slot in `BINDING_STATS` (never 0).
    pub stats: u32,
    /// The group of what enters the binding from a VM with no membership
    /// of its own (0: none, "unknown").
    pub group: u16,
    pub _pad: u16,
}

/// Deliver decapsulated frames to this port straight from XDP
/// (`bpf_redirect`); without it they go up to TC and are redirected as skbs.
/// Only devices that accept XDP frames may have it: a veth whose peer has
/// neither an XDP program nor GRO drops redirected frames silently.
pub const PORT_F_XDP: u32 = 1;
/// `vtep port add` turned forwarding (of the underlay family) on for this port (the encap
/// program's FIB lookup needs it); `vtep port del` turns it off again.
pub const PORT_F_FWD_SET: u32 = 2;
/// Learn source MACs of frames from this port (its VNI learns).
pub const PORT_F_LEARN: u32 = 4;
/// Where a binding's `flags` hold its VNI's outer TOS setting
/// (`VniInfo::tos`, 9 bits), copied there as the learning flag is: the
/// encap program (and its decision cache, which keeps the flags) has it
/// with the binding, at no extra lookup.
pub const PORT_TOS_SHIFT: u32 = 16;

/// The VNI's outer TOS setting in binding flags `flags`.
#[inline(always)]
pub const fn port_tos(flags: u32) -> u32 {
    flags >> PORT_TOS_SHIFT
}

/// Binding flags `flags` with the VNI's outer TOS setting `tos`.
#[inline(always)]
pub const fn with_port_tos(flags: u32, tos: u32) -> u32 {
    (flags & ((1 << PORT_TOS_SHIFT) - 1)) | (tos << PORT_TOS_SHIFT)
}
/// The port is a veth whose peer is in another network namespace: frames
/// for it are handed from TC straight to the peer's ingress
/// (`bpf_redirect_peer`: no transmit through the veth, no backlog queue)
/// instead of being redirected out of the port. The kernel drops them
/// instead if the peer is moved into the port's own namespace (it refuses
/// a peer redirect within one namespace).
pub const PORT_F_PEER: u32 = 8;
/// The VNI has group policy or rate limits (`VNI_F_POLICY`): the encap
/// program looks up the sender's identity.
pub const PORT_F_POLICY: u32 = 16;
/// The VNI carries group IDs on the wire (`VNI_F_GBP`).
pub const PORT_F_GBP: u32 = 32;

/// A VNI's configuration: its flood list and its local ports.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VniInfo {
    /// This VNI's index in the per-CPU `VNI_STATS` array, assigned by
    /// userspace: the datapath finds it in the REMOTES value and the port
    /// binding, so counting costs an array access, not a hash lookup.
    pub slot: u32,
    /// `VNI_F_*` bits.
    pub flags: u32,
    /// Storm control: BUM frames per second from this VNI's ports, at most
    /// (0: no limit).
    pub bum_pps: u32,
    /// Bit `i`: `remotes[i]` is configured (flood list of the VNI).
    pub configured: u32,
    /// Bit `i`: `remotes[i]` was learned from an EVPN inclusive-multicast
    /// route (RFC 7432 §7.3). An entry stays while either bit is set.
    pub evpn: u32,
    /// The outer TOS setting (`ecn::TOS_INHERIT`, or a fixed TOS byte
    /// whose ECN bits are zero); copied into the VNI's port bindings
    /// (`port_tos`).
    pub tos: u32,
    /// `POLICERS` slots of the VNI's aggregate limits: what its ports send
    /// over the underlay, what arrives for them from it (0: no limit).
    pub egress: u32,
    pub ingress: u32,
    /// Its `MEMBERS` and `RULES` entries (kept by userspace: whether the
    /// VNI has policy is decided from them).
    pub members: u32,
    pub rules: u32,
    /// Number of valid entries in `remotes`.
    pub n_remotes: u32,
    /// Number of valid entries in `ports`.
    pub n_ports: u32,
    /// Remote VTEPs that receive this VNI's BUM traffic.
    pub remotes: [Addr; MAX_FLOOD],
    /// Local port ifindexes bound to this VNI.
    pub ports: [u32; MAX_VNI_PORTS],
    /// `PEER_STATS` slot of each entry of `remotes` (same index).
    pub peers: [u32; MAX_FLOOD],
    /// The VLAN each entry of `ports` is bound with (same index; 0:
    /// untagged). One port may appear more than once, with other VLANs.
    pub vids: [u16; MAX_VNI_PORTS],
    /// The `BINDING_STATS` slot of each entry of `ports` (same index).
    pub port_stats: [u32; MAX_VNI_PORTS],
}

impl Default for VniInfo {
    fn default() -> Self {
        Self {
            slot: 0,
            flags: 0,
            bum_pps: 0,
            configured: 0,
            evpn: 0,
            tos: 0,
            egress: 0,
            ingress: 0,
            members: 0,
            rules: 0,
            n_remotes: 0,
            n_ports: 0,
            remotes: [Addr::NONE; MAX_FLOOD],
            ports: [0; MAX_VNI_PORTS],
            peers: [0; MAX_FLOOD],
            vids: [0; MAX_VNI_PORTS],
            port_stats: [0; MAX_VNI_PORTS],
        }
    }
}

/// Token-bucket state of one VNI's storm control (value of `BUM_BUCKETS`,
/// indexed by the VNI's stats slot; shared by all CPUs).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BumBucket {
    /// Tokens, in thousandths of a frame.
    pub tokens_milli: u64,
    /// When tokens were last added (CLOCK_MONOTONIC_COARSE, ns).
    pub last_ns: u64,
}

/// Key of the ARP/ND-suppression table: a tenant address within one VNI.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NeighKey {
    /// VNI (host order).
    pub vni: u32,
    /// Tenant address.
    pub ip: Addr,
}

/// The MAC that owns a tenant IPv4 address (value of `NEIGHS`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighEntry {
    /// The MAC, on-wire order.
    pub mac: [u8; 6],
    /// Always zero.
    pub _pad: [u8; 2],
    /// `NEIGH_F_*` bits.
    pub flags: u32,
    /// Always zero.
    pub _pad2: u32,
    /// Learned entries: when last seen (CLOCK_MONOTONIC_COARSE, ns).
    pub seen_ns: u64,
}

/// A neighbour entry `vtep` created for a remote VTEP's next hop (key of
/// `NEXTHOPS`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NextHopKey {
    /// The interface the neighbour is on.
    pub ifindex: u32,
    /// The next hop's address.
    pub ip: Addr,
}

/// Configured by an operator: never replaced by what ARP says.
pub const NEIGH_F_STATIC: u32 = 1;
/// Installed from a BGP EVPN MAC/IP route: never replaced by what ARP
/// says; removed when the route is withdrawn.
pub const NEIGH_F_EVPN: u32 = 2;

/// Data-plane learning is off for this VNI (`vni add --no-learning`).
pub const VNI_F_NO_LEARNING: u32 = 1;
/// `vni add --gbp`: group IDs carried in the VXLAN header (VXLAN-GBP).
pub const VNI_F_GBP: u32 = 2;
/// `vni add --default-deny`: frames no rule allows are dropped.
pub const VNI_F_DEFAULT_DENY: u32 = 4;
/// The VNI has something the programs must look a VM's identity up for
/// (GBP, rules, a default deny, members, rate limits, port groups): kept
/// by userspace, copied into its bindings and remotes (`PORT_F_POLICY`,
/// `REMOTE_F_POLICY`); without it the programs skip every lookup of
/// this module's tables.
pub const VNI_F_POLICY: u32 = 8;

/// Key of the allowed-remotes table: a remote VTEP within one VNI.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemoteKey {
    /// VNI (host order).
    pub vni: u32,
    /// Remote VTEP.
    pub ip: Addr,
}

/// A remote VTEP allowed to send one VNI (value of `REMOTES`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemoteInfo {
    /// How many configuration items name this remote for this VNI (its
    /// flood-list membership, static FDB entries); the entry goes at 0.
    pub refs: u32,
    /// The VNI's slot in `VNI_STATS`.
    pub slot: u32,
    /// `REMOTE_F_*` bits.
    pub flags: u32,
    /// The remote VTEP's slot in `PEER_STATS` (see [`PeerInfo::slot`]).
    pub peer: u32,
}

/// A remote VTEP, whatever its VNIs (value of `PEERS`, keyed by its
/// [`Addr`]; written and read by userspace only).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its index in the per-CPU `PEER_STATS` array, assigned by userspace
    /// and copied into every `REMOTES`, FDB and learned entry and flood
    /// list naming it, so the datapath counts per remote VTEP with an array
    /// access. Slot 0 is never assigned: it takes counts of entries that
    /// name no remote.
    pub slot: u32,
    /// How many `REMOTES` entries name it (one per VNI); the entry and its
    /// slot go at 0.
    pub refs: u32,
}

/// Traffic exchanged with one remote VTEP, all VNIs together (one copy per
/// CPU, value of `PEER_STATS`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Frames from it, decapsulated and delivered to local ports.
    pub rx_packets: u64,
    /// Inner bytes of those frames.
    pub rx_bytes: u64,
    /// Frames encapsulated and sent to it (one per flooded copy).
    pub tx_packets: u64,
    /// Inner bytes of those frames.
    pub tx_bytes: u64,
}

/// A port binding's traffic counters (one copy per CPU, value of
/// `BINDING_STATS`), as the VNI's are counted: rx = frames delivered to
/// the binding's hosts (decapsulated, or switched from another binding),
/// tx = frames from them (encapsulated, switched or flooded on).
pub type BindingStats = PeerStats;

/// Learn inner source MACs of frames from this remote (its VNI learns).
pub const REMOTE_F_LEARN: u32 = 1;
/// The VNI has policy (`VNI_F_POLICY`): decap looks identities up.
pub const REMOTE_F_POLICY: u32 = 2;
/// The VNI reads group IDs from the VXLAN header (`VNI_F_GBP`).
pub const REMOTE_F_GBP: u32 = 4;
/// Where a decap decision's `flags` keep the sender's `REMOTE_F_POLICY`
/// and `REMOTE_F_GBP` (above the FDB delivery bits).
pub const DECISION_REMOTE_SHIFT: u32 = 24;

/// Per-VNI traffic counters (one copy per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VniStats {
    /// Frames decapsulated and delivered to a local port.
    pub rx_packets: u64,
    /// Inner bytes of those frames.
    pub rx_bytes: u64,
    /// Frames encapsulated and sent to a remote VTEP (one per copy).
    pub tx_packets: u64,
    /// Inner bytes of those frames.
    pub tx_bytes: u64,
    /// Frames of this VNI dropped (any reason).
    pub drop_packets: u64,
}

/// What XDP asks the TC ingress program on the underlay to do with a frame
/// it has already decapsulated; carried in the XDP metadata area in front of
/// the packet (`bpf_xdp_adjust_meta`), read by TC through `data_meta`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecapMeta {
    /// [`DECAP_META_MAGIC`]: tells our metadata from anyone else's.
    pub magic: u32,
    /// `META_ACTION_*`.
    pub action: u32,
    /// The frame's VNI.
    pub vni: u32,
    /// Target port for [`META_ACTION_DELIVER`].
    pub ifindex: u32,
    /// The VLAN tag to push towards it (0: none).
    pub vid: u32,
}

/// Marks metadata written by our XDP program ("VTEP" in ASCII).
pub const DECAP_META_MAGIC: u32 = 0x5654_4550;
/// Deliver to `DecapMeta::ifindex`.
pub const META_ACTION_DELIVER: u32 = 1;
/// Flood to every local port of `DecapMeta::vni`.
pub const META_ACTION_FLOOD: u32 = 2;
/// Deliver into the veth peer of port `DecapMeta::ifindex`
/// ([`PORT_F_PEER`]).
pub const META_ACTION_DELIVER_PEER: u32 = 3;

/// The `META_ACTION_*` that delivers a frame to the port of an entry with
/// `FDB_F_*` bits `fdb_flags`.
#[inline(always)]
pub const fn deliver_action(fdb_flags: u32) -> u32 {
    if fdb_flags & FDB_F_PEER != 0 {
        META_ACTION_DELIVER_PEER
    } else {
        META_ACTION_DELIVER
    }
}

const _: () = assert!(size_of::<Addr>() == 16);
const _: () = assert!(size_of::<Config>() == 40);
const _: () = assert!(size_of::<InstanceInfo>() == 56);
const _: () = assert!(size_of::<LearnedEntry>() == 56);
const _: () = assert!(size_of::<MacEvent>() == 72);
const _: () = assert!(size_of::<FdbKey>() == 12);
const _: () = assert!(size_of::<FdbEntry>() == 36);
const _: () = assert!(size_of::<PortInfo>() == 20);
const _: () = assert!(size_of::<PortKey>() == 8);
const _: () = assert!(size_of::<DecapMeta>() == 20);
const _: () = assert!(
    size_of::<VniInfo>()
        == 48 + 16 * MAX_FLOOD + 4 * (MAX_FLOOD + 2 * MAX_VNI_PORTS) + 2 * MAX_VNI_PORTS
);
const _: () = assert!(size_of::<PeerInfo>() == 8);
const _: () = assert!(size_of::<PeerStats>() == 32);
const _: () = assert!(size_of::<BumBucket>() == 16);
const _: () = assert!(size_of::<NeighKey>() == 20);
const _: () = assert!(size_of::<NextHopKey>() == 20);
const _: () = assert!(size_of::<NeighEntry>() == 24);
const _: () = assert!(size_of::<RemoteInfo>() == 16);
const _: () = assert!(size_of::<RemoteKey>() == 20);
const _: () = assert!(size_of::<VniStats>() == 40);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: each type is #[repr(C)], made only of integers and integer
    // arrays, with every gap filled by an explicit `_pad` field (the size
    // assertions above pin the layouts), so any bit pattern is valid.
    unsafe impl aya::Pod for Addr {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Config {}
    // SAFETY: as above.
    unsafe impl aya::Pod for InstanceInfo {}
    // SAFETY: as above.
    unsafe impl aya::Pod for FdbKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for FdbEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for PortInfo {}
    // SAFETY: as above.
    unsafe impl aya::Pod for PortKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for VniInfo {}
    // SAFETY: as above.
    unsafe impl aya::Pod for RemoteKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for RemoteInfo {}
    // SAFETY: as above.
    unsafe impl aya::Pod for LearnedEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for BumBucket {}
    // SAFETY: as above.
    unsafe impl aya::Pod for NeighKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for NextHopKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for NeighEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for MacEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for VniStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for PeerInfo {}
    // SAFETY: as above.
    unsafe impl aya::Pod for PeerStats {}
}
