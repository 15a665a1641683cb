//! Decoded views of the tables: one `Serialize` row type per map (MACs,
//! IPs, VNIs and interface names instead of raw bytes). `maps dump`,
//! `status`, `stats`, `fdb show`, `neigh show` and the daemon's metrics all
//! render these; none of them reads back what another printed. Which
//! maps `maps list` and `maps dump` show, and how: [`super::dump`].

use std::{fmt, net::IpAddr};

use serde::Serialize;
use vtep_common::maps::{
    CONFIG_F_DF, CONFIG_F_NO_DECAP_CACHE, NEIGH_F_EVPN, NEIGH_F_STATIC, PORT_F_LEARN,
    XDP_MODE_NATIVE, XDP_MODE_OFF,
};

use super::{Location, TableError, Tables, fdb::FdbRow, ports::deliver_of};
use crate::{
    headroom, sys,
    values::{Group, Mac, PeerVtep, Tos, Vid, Vni, ip_from_map},
};

/// Where a MAC lives, as the views show it: `{"remote": IP}`,
/// `{"port": NAME}`, or `{"port": NAME, "vlan": VID}` behind a trunk's
/// VLAN; in text "remote IP", "port NAME", "port NAME vlan VID".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum At {
    Remote(PeerVtep),
    Port(String, Vid),
}

impl From<Location> for At {
    fn from(l: Location) -> Self {
        match l {
            Location::Remote(ip) => At::Remote(ip),
            Location::Port(i, vid) => At::Port(sys::ifname(i), vid),
        }
    }
}

impl Serialize for At {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut m = s.serialize_map(None)?;
        match self {
            At::Remote(ip) => m.serialize_entry("remote", ip)?,
            At::Port(name, vid) => {
                m.serialize_entry("port", name)?;
                if *vid != Vid::UNTAGGED {
                    m.serialize_entry("vlan", vid)?;
                }
            }
        }
        m.end()
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Remote(ip) => write!(f, "remote {ip}"),
            At::Port(name, vid) if *vid == Vid::UNTAGGED => write!(f, "port {name}"),
            At::Port(name, vid) => write!(f, "port {name} vlan {vid}"),
        }
    }
}

/// The instance record (`INSTANCE`).
#[derive(Clone, Debug, Serialize)]
pub struct InstanceView {
    pub layout_version: u32,
    pub xdp_mode: &'static str,
    pub underlay: String,
    pub local_ip: IpAddr,
    pub udp_port: u16,
    pub ttl: u8,
    pub df: bool,
    pub decap_cache: bool,
    pub ageing_s: u32,
    pub move_limit: u32,
    pub move_window_s: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct VniView {
    pub vni: Vni,
    pub slot: u32,
    pub learning: bool,
    pub bum_pps: u32,
    /// The outer TOS setting: "inherit" or the TOS byte.
    pub tos: Tos,
    /// VXLAN-GBP on the wire.
    pub gbp: bool,
    pub default_deny: bool,
    /// Whether the programs look identities up for it (it has GBP, rules,
    /// a default deny, members, rate limits or port groups).
    pub policy: bool,
    pub members: u32,
    pub rules: u32,
    pub flood: Vec<PeerVtep>,
    pub ports: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PortView {
    pub port: String,
    pub ifindex: u32,
    /// The binding's 802.1Q VLAN (0: the port's untagged frames).
    pub vlan: Vid,
    pub vni: u32,
    pub slot: u32,
    pub deliver: &'static str,
    pub learning: bool,
    /// The binding's default policy group (0: none).
    pub group: Group,
    /// Whether the port's VM leaves room for the outer headers in front
    /// of its frames (the port is in the instance's headroom bridge).
    pub headroom: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct RemoteView {
    pub vni: u32,
    pub remote: PeerVtep,
    pub refs: u32,
    pub slot: u32,
    pub peer_slot: u32,
    pub learning: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct PeerView {
    pub remote: PeerVtep,
    pub slot: u32,
    pub vnis: u32,
}

/// A raw static FDB entry (`FDB`).
#[derive(Clone, Debug, Serialize)]
pub struct FdbView {
    pub vni: u32,
    pub mac: Mac,
    pub at: At,
    #[serde(rename = "static")]
    pub is_static: bool,
    pub xdp: bool,
}

/// A raw learned entry (`LEARNED`), aged or not.
#[derive(Clone, Debug, Serialize)]
pub struct LearnedView {
    pub vni: u32,
    pub mac: Mac,
    pub at: At,
    pub seen_s_ago: u64,
    pub moves: u32,
    pub moves_in_window: u32,
    pub frozen: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct NeighView {
    pub vni: u32,
    pub ip: IpAddr,
    pub mac: Mac,
    #[serde(rename = "static")]
    pub is_static: bool,
    /// `NEIGH_F_*` bits.
    #[serde(skip)]
    pub flags: u32,
    pub seen_s_ago: Option<u64>,
}

/// How an XDP attach mode (`XDP_MODE_*`) is shown.
pub const fn xdp_mode_name(mode: u32) -> &'static str {
    match mode {
        XDP_MODE_NATIVE => "native",
        XDP_MODE_OFF => "off",
        _ => "generic",
    }
}

/// Seconds from CLOCK_MONOTONIC_COARSE time `ns` to `now`.
pub(super) fn secs_ago(now: u64, ns: u64) -> u64 {
    now.saturating_sub(ns) / 1_000_000_000
}

impl Tables {
    /// The instance record.
    pub fn instance_view(&self) -> InstanceView {
        let c = &self.info.config;
        InstanceView {
            layout_version: self.info.layout_version,
            xdp_mode: xdp_mode_name(self.info.xdp_mode),
            underlay: sys::ifname(c.underlay_ifindex),
            local_ip: ip_from_map(c.local_ip),
            udp_port: c.udp_port,
            ttl: c.ttl,
            df: c.flags & CONFIG_F_DF != 0,
            decap_cache: c.flags & CONFIG_F_NO_DECAP_CACHE == 0,
            ageing_s: c.ageing_s,
            move_limit: c.move_limit,
            move_window_s: c.move_window_s,
        }
    }

    /// The bound ports.
    pub fn port_views(&self) -> Result<Vec<PortView>, TableError> {
        Ok(self
            .ports()?
            .into_iter()
            .map(|(k, p)| PortView {
                port: sys::ifname(k.ifindex),
                ifindex: k.ifindex,
                vlan: Vid::recorded(k.vid),
                vni: p.vni,
                slot: p.slot,
                deliver: deliver_of(&p).name(),
                learning: p.flags & PORT_F_LEARN != 0,
                group: Group::recorded(p.group),
                headroom: headroom::raised(self.info.config.underlay_ifindex, k.ifindex),
            })
            .collect())
    }

    /// The ARP-suppression bindings, of one VNI or all.
    pub fn neigh_views(&self, vni: Option<Vni>) -> Result<Vec<NeighView>, TableError> {
        let now = sys::coarse_now_ns();
        Ok(self
            .neighs(vni)?
            .into_iter()
            .map(|(k, e)| {
                let is_static = e.flags & NEIGH_F_STATIC != 0;
                let ages = e.flags & (NEIGH_F_STATIC | NEIGH_F_EVPN) == 0;
                NeighView {
                    vni: k.vni,
                    ip: ip_from_map(k.ip),
                    mac: Mac(e.mac),
                    is_static,
                    flags: e.flags,
                    seen_s_ago: ages.then(|| secs_ago(now, e.seen_ns)),
                }
            })
            .collect())
    }
}

/// Where a binding came from, as `neigh show` says it.
const fn neigh_origin(flags: u32) -> &'static str {
    if flags & NEIGH_F_STATIC != 0 {
        "static"
    } else if flags & NEIGH_F_EVPN != 0 {
        "evpn"
    } else {
        "learned"
    }
}

/// An FDB row as `fdb show --json` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct FdbShowRow {
    pub vni: Vni,
    pub mac: Mac,
    pub remote: Option<PeerVtep>,
    pub port: Option<String>,
    /// With `port`: the trunk VLAN the MAC is behind (absent: untagged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<Vid>,
    /// Where, as text shows it.
    #[serde(skip)]
    pub at: At,
    pub origin: &'static str,
    /// EVPN entries: the MAC-mobility sequence number.
    pub seq: Option<u32>,
    pub age_s: Option<u64>,
    pub moves: u32,
    pub frozen: bool,
}

impl From<&FdbRow> for FdbShowRow {
    fn from(r: &FdbRow) -> Self {
        let at = At::from(r.location);
        let (remote, port, vlan) = match &at {
            At::Remote(ip) => (Some(*ip), None, None),
            At::Port(name, vid) => (
                None,
                Some(name.clone()),
                (*vid != Vid::UNTAGGED).then_some(*vid),
            ),
        };
        FdbShowRow {
            vni: r.vni,
            mac: r.mac,
            remote,
            port,
            vlan,
            at,
            origin: r.origin(),
            seq: r.evpn.map(|e| e.seq),
            age_s: r.learned.map(|l| l.age_s),
            moves: r.learned.map_or(0, |l| l.moves),
            frozen: r.learned.is_some_and(|l| l.frozen),
        }
    }
}

/// An ARP-suppression binding as `neigh show` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct NeighShowRow {
    pub vni: u32,
    pub ip: IpAddr,
    pub mac: Mac,
    pub origin: &'static str,
    pub age_s: Option<u64>,
}

impl From<&NeighView> for NeighShowRow {
    fn from(n: &NeighView) -> Self {
        NeighShowRow {
            vni: n.vni,
            ip: n.ip,
            mac: n.mac,
            origin: neigh_origin(n.flags),
            age_s: n.seen_s_ago,
        }
    }
}
