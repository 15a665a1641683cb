//! What an instance should be: the underlay settings and, optionally, its
//! VNIs, ports and static FDB. A config file is parsed into one; `vtep up`
//! without a file makes one with no VNIs.

use std::net::{IpAddr, SocketAddr};

use vtep_common::{
    consts::{DEFAULT_LEARNED_CAPACITY, DEFAULT_TTL, FDB_CAPACITY, VXLAN_PORT},
    maps::{
        CONFIG_F_DF, CONFIG_F_NO_DECAP_CACHE, Config, DEFAULT_AGEING_S, DEFAULT_MOVE_LIMIT,
        DEFAULT_MOVE_WINDOW_S,
    },
};

use crate::{
    tables::identity::{Limit, Limited},
    values::{
        Action, Deliver, FloodList, Group, LocalIp, Tos, UnicastIp, UnicastMac, Vid, Vni,
        XdpModeArg, ip_to_map,
    },
};

/// Why settings are refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("ageing must be at least 1 second")]
    Ageing,
    #[error("learned capacity must be at least 1")]
    LearnedCapacity,
    #[error("move window must be at least 1 second")]
    MoveWindow,
    #[error("fdb_capacity must be at least 1")]
    FdbCapacity,
    #[error("udp_port must not be 0")]
    UdpPort,
    #[error("ttl must be 1 to 255")]
    Ttl,
}

/// Underlay settings of `vtep up`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Underlay {
    pub iface: String,
    pub local_ip: LocalIp,
    pub udp_port: u16,
    pub xdp_mode: XdpModeArg,
    pub ttl: u8,
    pub df: bool,
    /// Keep decap decisions in the per-CPU decision cache.
    pub decap_cache: bool,
    pub learning: Learning,
    /// Capacity of the static FDB.
    pub fdb_capacity: u32,
}

impl Underlay {
    /// The defaults, on `iface` with address `local_ip`.
    pub fn new(iface: String, local_ip: LocalIp) -> Self {
        Self {
            iface,
            local_ip,
            udp_port: VXLAN_PORT,
            xdp_mode: XdpModeArg::Auto,
            ttl: DEFAULT_TTL,
            df: true,
            decap_cache: true,
            learning: Learning::default(),
            fdb_capacity: FDB_CAPACITY,
        }
    }

    /// Checks the values make sense together.
    pub fn check(&self) -> Result<(), SettingsError> {
        self.learning.check()?;
        if self.fdb_capacity == 0 {
            return Err(SettingsError::FdbCapacity);
        }
        if self.udp_port == 0 {
            return Err(SettingsError::UdpPort);
        }
        if self.ttl == 0 {
            return Err(SettingsError::Ttl);
        }
        Ok(())
    }

    /// The kernel programs' load-time settings, with the underlay at
    /// `underlay_ifindex` on a kernel ticking every `tick_ns`.
    pub fn config(&self, underlay_ifindex: u32, tick_ns: u32) -> Config {
        Config {
            local_ip: ip_to_map(self.local_ip.ip()),
            underlay_ifindex,
            udp_port: self.udp_port,
            ttl: self.ttl,
            flags: if self.df { CONFIG_F_DF } else { 0 }
                | if self.decap_cache {
                    0
                } else {
                    CONFIG_F_NO_DECAP_CACHE
                },
            ageing_s: self.learning.ageing_s,
            move_limit: self.learning.move_limit,
            move_window_s: self.learning.move_window_s,
            tick_ns,
        }
    }
}

/// Data-plane learning settings of `vtep up`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Learning {
    /// Seconds a learned MAC stays without being seen.
    pub ageing_s: u32,
    /// Capacity of the learned table (LRU).
    pub capacity: u32,
    /// Moves allowed within `move_window_s` before a MAC is frozen.
    pub move_limit: u32,
    pub move_window_s: u32,
}

impl Default for Learning {
    fn default() -> Self {
        Self {
            ageing_s: DEFAULT_AGEING_S,
            capacity: DEFAULT_LEARNED_CAPACITY,
            move_limit: DEFAULT_MOVE_LIMIT,
            move_window_s: DEFAULT_MOVE_WINDOW_S,
        }
    }
}

impl Learning {
    /// Checks the values make sense.
    pub fn check(&self) -> Result<(), SettingsError> {
        if self.ageing_s == 0 {
            return Err(SettingsError::Ageing);
        }
        if self.capacity == 0 {
            return Err(SettingsError::LearnedCapacity);
        }
        if self.move_window_s == 0 {
            return Err(SettingsError::MoveWindow);
        }
        Ok(())
    }
}

/// Where a MAC of the plan lives: behind a remote VTEP (checked against
/// our own address when applied, by [`LocalIp::peer`]) or on a port
/// binding (the port, and its VLAN: 0 for untagged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Remote(UnicastIp),
    Port(String, Vid),
}

/// One VNI of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VniPlan {
    pub vni: Vni,
    pub flood: FloodList,
    pub learning: bool,
    pub bum_pps: u32,
    /// The outer DSCP (RFC 6040: ECN is always the inner packet's).
    pub tos: Tos,
    /// Group IDs carried in the VXLAN header (VXLAN-GBP).
    pub gbp: bool,
    /// Frames no rule allows are dropped.
    pub default_deny: bool,
}

/// One port binding of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortPlan {
    pub iface: String,
    /// The VLAN of the binding (0: the port's untagged frames).
    pub vid: Vid,
    pub vni: Vni,
    pub deliver: Deliver,
    /// The group of what enters the binding from VMs without one of their
    /// own (`Group::UNKNOWN`: none).
    pub group: Group,
}

/// One static FDB entry of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdbPlan {
    pub mac: UnicastMac,
    pub vni: Vni,
    pub at: Target,
}

/// The BGP EVPN control plane of a plan (RFC 7432, RFC 8365), run by the
/// daemon through gobgpd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvpnPlan {
    /// Our autonomous system; route targets are `asn:VNI`.
    pub asn: u32,
    /// BGP router id, and the address in our route distinguishers.
    pub router_id: std::net::Ipv4Addr,
    /// gobgpd's gRPC API.
    pub gobgp: SocketAddr,
    /// BGP neighbours (route reflectors are just peers).
    pub peers: Vec<EvpnPeer>,
}

/// gobgpd's default gRPC address (keep it on loopback: the API has no
/// authentication).
pub const DEFAULT_GOBGP: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 50051);

/// One BGP neighbour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EvpnPeer {
    pub address: UnicastIp,
    /// Its AS (ours for iBGP).
    pub asn: u32,
}

/// A VM's group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberPlan {
    pub vni: Vni,
    pub mac: UnicastMac,
    pub group: Group,
}

/// A rule between groups of a VNI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RulePlan {
    pub vni: Vni,
    pub from: Group,
    pub to: Group,
    pub action: Action,
}

/// The limits of a VM or a VNI (a direction absent: no limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RatePlan {
    pub who: Limited,
    pub egress: Option<Limit>,
    pub ingress: Option<Limit>,
}

/// Group policy and rate limits of a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentityPlan {
    pub members: Vec<MemberPlan>,
    pub rules: Vec<RulePlan>,
    pub rates: Vec<RatePlan>,
}

/// A whole configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub underlay: Underlay,
    pub vnis: Vec<VniPlan>,
    pub ports: Vec<PortPlan>,
    pub fdb: Vec<FdbPlan>,
    pub identity: IdentityPlan,
    pub evpn: Option<EvpnPlan>,
}

impl Plan {
    /// Only the underlay: no VNIs, ports or FDB entries.
    pub fn bare(underlay: Underlay) -> Self {
        Self {
            underlay,
            vnis: Vec::new(),
            ports: Vec::new(),
            fdb: Vec::new(),
            identity: IdentityPlan::default(),
            evpn: None,
        }
    }
}
