//! The values users type, validated once: a value of one of these types
//! cannot be a bad one. The command line (clap), the config file and the
//! tables all take these types, so every rule about a value lives here.
//!
//! Rules that need the instance (a remote VTEP must not be our own
//! address) are the constructors of [`PeerVtep`], reachable only through
//! [`LocalIp::peer`] and [`LocalIp::flood`].

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr},
    str::FromStr,
};

use vtep_common::{
    addr::Addr,
    consts::{MAX_FLOOD, MAX_VNI_PORTS, VID_MAX, VNI_MAX},
};

mod l2;
mod policy;

pub use self::{
    l2::{Tos, Vid},
    policy::{Action, Burst, Group, Rate},
};

/// A value that is refused, with what was expected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValueError {
    #[error("invalid VNI '{0}': expected a number from 1 to {VNI_MAX}")]
    Vni(String),
    #[error(
        "invalid TOS '{0}': expected `inherit` or a TOS byte from 0 to 255 (184 or 0xb8: DSCP 46) whose two ECN bits are zero (ECN always comes from the inner packet)"
    )]
    Tos(String),
    #[error(
        "invalid VLAN '{0}': expected an 802.1Q VLAN ID from 1 to {VID_MAX} (0: the port's untagged frames)"
    )]
    Vid(String),
    #[error("invalid group '{0}': expected a group policy ID from 1 to 65535 (0: unknown)")]
    Group(String),
    #[error(
        "group 0 is \"unknown\" (what arrives without a group): give a VM or port a group from 1 to 65535"
    )]
    UnknownGroup,
    #[error(
        "invalid rate '{0}': expected bits per second as tc writes them, from 8kbit to 10tbit (100mbit, 1gbit, 2.5gbit)"
    )]
    Rate(String),
    #[error(
        "invalid burst '{0}': expected bytes (65536, 64k, 1m) from 64k (one GSO packet: a smaller bucket would drop every TSO packet a VM sends) to 4g"
    )]
    Burst(String),
    #[error("invalid MAC address '{0}': expected six hex bytes like 02:00:00:00:00:01")]
    Mac(String),
    #[error(
        "MAC {0} is a group (multicast/broadcast) address: FDB entries and bindings are for unicast MACs"
    )]
    GroupMac(Mac),
    #[error("invalid IP address '{0}': expected IPv4 like 198.18.0.1 or IPv6 like 2001:2::1")]
    Ip(String),
    #[error("invalid address '{0}': a VTEP or tenant address must be unicast")]
    NotUnicast(String),
    #[error("{0} is an IPv4-mapped IPv6 address: write the IPv4 address ({1}) instead")]
    Mapped(IpAddr, Ipv4Addr),
    #[error(
        "{0} is this VTEP's own address: a remote VTEP is another host (local MACs take --port IFACE)"
    )]
    OwnAddress(IpAddr),
    #[error(
        "remote VTEP {peer} is {}, but this instance's local address {local} is {}: one instance carries one underlay family (bring up a second instance for the other)",
        family(*peer),
        family(*local)
    )]
    MixedFamily { peer: IpAddr, local: IpAddr },
    #[error("the flood list has {0} remote VTEPs, at most {MAX_FLOOD} are supported")]
    FloodTooLong(usize),
    #[error("VNI {0} already has {MAX_VNI_PORTS} ports, the most supported")]
    TooManyPorts(Vni),
    #[error("interface '{0}' is the underlay of this instance and cannot be a port")]
    PortIsUnderlay(String),
}

/// A VXLAN Network Identifier: 1 to 2^24-1 (0 is reserved here: the kernel
/// vxlan driver and EVPN deployments treat it as "no VNI").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vni(u32);

impl Vni {
    /// The number.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// A VNI the instance's tables hold (they only ever hold checked ones).
    pub(crate) const fn recorded(v: u32) -> Self {
        Vni(v)
    }
}

impl FromStr for Vni {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let v = s
            .trim()
            .parse::<u32>()
            .map_err(|_| ValueError::Vni(s.to_owned()))?;
        Self::try_from(v).map_err(|_| ValueError::Vni(s.to_owned()))
    }
}

impl TryFrom<u32> for Vni {
    type Error = ValueError;
    fn try_from(v: u32) -> Result<Self, Self::Error> {
        if (1..=VNI_MAX).contains(&v) {
            Ok(Vni(v))
        } else {
            Err(ValueError::Vni(v.to_string()))
        }
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl serde::Serialize for Vni {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

/// An Ethernet MAC address; printed lower-case, colon-separated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Whether this is a group (multicast or broadcast) address: the I/G
    /// bit, the least significant bit of the first octet (IEEE 802-2014
    /// §8.2).
    pub const fn is_group(self) -> bool {
        self.0[0] & 1 != 0
    }
}

impl FromStr for Mac {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ValueError::Mac(s.to_owned());
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut out {
            let p = parts.next().ok_or_else(err)?;
            if p.is_empty() || p.len() > 2 {
                return Err(err());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        f.pad(&format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        ))
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A unicast MAC: what an FDB entry or an ARP binding may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnicastMac(Mac);

impl UnicastMac {
    /// The address.
    pub const fn mac(self) -> Mac {
        self.0
    }
}

impl TryFrom<Mac> for UnicastMac {
    type Error = ValueError;
    fn try_from(m: Mac) -> Result<Self, Self::Error> {
        if m.is_group() {
            Err(ValueError::GroupMac(m))
        } else {
            Ok(UnicastMac(m))
        }
    }
}

impl FromStr for UnicastMac {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.parse::<Mac>()?)
    }
}

impl fmt::Display for UnicastMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// "IPv4" or "IPv6".
pub fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// An IP address typed by a user.
pub fn parse_ip(s: &str) -> Result<IpAddr, ValueError> {
    s.trim()
        .parse::<IpAddr>()
        .map_err(|_| ValueError::Ip(s.to_owned()))
}

/// A unicast address: IPv4 not 0.0.0.0, broadcast or multicast; IPv6 not
/// `::`, multicast or IPv4-mapped (RFC 4291 §2.5.5.2: those are IPv4
/// addresses, and written as such). Multicast underlays are not
/// supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnicastIp(IpAddr);

impl UnicastIp {
    /// The address.
    pub const fn ip(self) -> IpAddr {
        self.0
    }
}

impl TryFrom<IpAddr> for UnicastIp {
    type Error = ValueError;
    fn try_from(ip: IpAddr) -> Result<Self, Self::Error> {
        let unicast = match ip {
            IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast()),
            IpAddr::V6(v6) => {
                if let Some(v4) = v6.to_ipv4_mapped() {
                    return Err(ValueError::Mapped(ip, v4));
                }
                !(v6.is_unspecified() || v6.is_multicast())
            }
        };
        if !unicast {
            return Err(ValueError::NotUnicast(ip.to_string()));
        }
        Ok(UnicastIp(ip))
    }
}

impl TryFrom<Ipv4Addr> for UnicastIp {
    type Error = ValueError;
    fn try_from(ip: Ipv4Addr) -> Result<Self, Self::Error> {
        Self::try_from(IpAddr::V4(ip))
    }
}

impl FromStr for UnicastIp {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(parse_ip(s)?)
    }
}

impl fmt::Display for UnicastIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl serde::Serialize for UnicastIp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A flood list as typed: unicast addresses, duplicates removed (order
/// kept), at most [`MAX_FLOOD`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FloodList(Vec<UnicastIp>);

impl FloodList {
    /// The addresses, in order.
    pub fn ips(&self) -> &[UnicastIp] {
        &self.0
    }
}

impl TryFrom<Vec<UnicastIp>> for FloodList {
    type Error = ValueError;
    fn try_from(ips: Vec<UnicastIp>) -> Result<Self, Self::Error> {
        let mut out: Vec<UnicastIp> = Vec::with_capacity(ips.len());
        for ip in ips {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
        if out.len() > MAX_FLOOD {
            return Err(ValueError::FloodTooLong(out.len()));
        }
        Ok(FloodList(out))
    }
}

impl FromStr for FloodList {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<UnicastIp>, _>>()
            .and_then(Self::try_from)
    }
}

/// This VTEP's own underlay address (unicast); its family is the
/// instance's underlay family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalIp(IpAddr);

impl LocalIp {
    /// The address.
    pub const fn ip(self) -> IpAddr {
        self.0
    }

    /// The address an instance was brought up with (checked then).
    pub(crate) const fn recorded(ip: IpAddr) -> Self {
        LocalIp(ip)
    }

    /// `ip` as a remote VTEP of this one: refused if it is our own
    /// address or of the other family (one instance, one underlay family:
    /// the one rule that keeps families apart in every table).
    pub fn peer(self, ip: UnicastIp) -> Result<PeerVtep, ValueError> {
        if ip.0 == self.0 {
            return Err(ValueError::OwnAddress(ip.0));
        }
        if ip.0.is_ipv4() != self.0.is_ipv4() {
            return Err(ValueError::MixedFamily {
                peer: ip.0,
                local: self.0,
            });
        }
        Ok(PeerVtep(ip.0))
    }

    /// A flood list of remote VTEPs of this one.
    pub fn flood(self, list: &FloodList) -> Result<PeerFlood, ValueError> {
        Ok(PeerFlood(
            list.0
                .iter()
                .map(|ip| self.peer(*ip))
                .collect::<Result<_, _>>()?,
        ))
    }
}

impl FromStr for LocalIp {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(LocalIp(s.parse::<UnicastIp>()?.0))
    }
}

impl From<UnicastIp> for LocalIp {
    fn from(ip: UnicastIp) -> Self {
        LocalIp(ip.0)
    }
}

/// A remote VTEP: a unicast address that is not this VTEP's own. Made by
/// [`LocalIp::peer`], or read back from the instance's own tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerVtep(IpAddr);

impl PeerVtep {
    /// The address.
    pub const fn ip(self) -> IpAddr {
        self.0
    }

    /// A remote VTEP the tables already hold (they only ever hold checked
    /// ones).
    pub(crate) const fn recorded(ip: IpAddr) -> Self {
        PeerVtep(ip)
    }
}

impl fmt::Display for PeerVtep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl serde::Serialize for PeerVtep {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A flood list of remote VTEPs (none of them us, no duplicates, at
/// most [`MAX_FLOOD`]): what a VNI's record holds. Made by
/// [`LocalIp::flood`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerFlood(Vec<PeerVtep>);

impl PeerFlood {
    /// The remote VTEPs, in order.
    pub fn peers(&self) -> &[PeerVtep] {
        &self.0
    }
}

/// How decapsulated frames reach a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Deliver {
    /// Chosen by the device when the port is added (the default): `xdp`
    /// for a tap, `peer` for a veth whose peer is in another network
    /// namespace (a container's or a VM's), `skb` for anything else.
    Auto,
    /// As skbs from TC, out of the port's device: works with every device.
    Skb,
    /// As skbs from TC, straight into the peer of a veth whose peer is in
    /// another namespace (`bpf_redirect_peer`): no transmit through the
    /// veth, no backlog queue. Only for such veths.
    Peer,
    /// Straight from XDP (bpf_redirect): only for devices that accept XDP
    /// frames (a tap; a veth whose peer has XDP or GRO enabled — any other
    /// veth drops them silently). A veth queues them on its peer's receive
    /// queue of the sending CPU, and a veth as it comes uses one: give the
    /// peer one per CPU (`ethtool -L PEER rx N tx N`) or CPUs contend for
    /// it.
    Xdp,
}

impl Deliver {
    /// As `maps dump` and `status` show it.
    pub const fn name(self) -> &'static str {
        match self {
            Deliver::Auto => "auto",
            Deliver::Skb => "skb",
            Deliver::Peer => "peer",
            Deliver::Xdp => "xdp",
        }
    }
}

/// How to attach XDP to the underlay, or not at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpModeArg {
    /// No XDP on a veth (as `off`: it would copy every skb it is handed
    /// before XDP runs); elsewhere native XDP where the driver has it, else
    /// no XDP (with a warning).
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (skb) mode: works on any interface, slower.
    Skb,
    /// No XDP: VXLAN decapsulated in TC ingress; what GRO merged on the
    /// underlay (a VM's TCP) is decapsulated by a kernel vxlan device in
    /// metadata mode the instance makes (`vtx<N>`) and decided behind it.
    /// Cheaper per frame where frames arrive as skbs (a veth underlay: XDP
    /// copies each one first).
    Off,
}

/// Room for one more port in a VNI that has `bound` ports.
pub fn port_room(vni: Vni, bound: usize) -> Result<(), ValueError> {
    if bound >= MAX_VNI_PORTS {
        return Err(ValueError::TooManyPorts(vni));
    }
    Ok(())
}

/// An address as the BPF maps store it.
pub fn ip_to_map(ip: IpAddr) -> Addr {
    Addr::from(ip)
}

/// The inverse of [`ip_to_map`] (`::` for "no address", which the
/// callers tell apart first).
pub fn ip_from_map(a: Addr) -> IpAddr {
    a.ip()
        .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vni_range() {
        assert_eq!("1".parse::<Vni>(), Ok(Vni(1)));
        assert_eq!("16777215".parse::<Vni>(), Ok(Vni(VNI_MAX)));
        for bad in ["0", "16777216", "-1", "", "abc", "1.5", "99999999999"] {
            assert!(bad.parse::<Vni>().is_err(), "{bad}");
        }
        assert!(Vni::try_from(0).is_err());
        assert!(Vni::try_from(1 << 24).is_err());
    }

    #[test]
    fn mac_round_trip_and_rejects() {
        let m: Mac = "02:AB:cd:00:0f:ff".parse().unwrap();
        assert_eq!(m.0, [0x02, 0xab, 0xcd, 0x00, 0x0f, 0xff]);
        assert_eq!(m.to_string(), "02:ab:cd:00:0f:ff");
        assert_eq!("2-0-0-0-0-1".parse::<Mac>().unwrap().0, [2, 0, 0, 0, 0, 1]);
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "02:00:00:00:00:0g",
            "002:00:00:00:00:00",
            "02::00:00:00:00",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
        assert!(matches!(
            "01:00:5e:00:00:01".parse::<UnicastMac>(),
            Err(ValueError::GroupMac(_))
        ));
        assert!("ff:ff:ff:ff:ff:ff".parse::<UnicastMac>().is_err());
        assert!("02:00:00:00:00:01".parse::<UnicastMac>().is_ok());
    }

    #[test]
    fn flood_lists() {
        let ip = |s: &str| s.parse::<UnicastIp>().unwrap();
        assert_eq!(
            "198.18.0.1, 198.18.0.2,198.18.0.1"
                .parse::<FloodList>()
                .unwrap()
                .ips(),
            &[ip("198.18.0.1"), ip("198.18.0.2")]
        );
        assert!("198.18.0.1,nope".parse::<FloodList>().is_err());
        for bad in ["0.0.0.0", "255.255.255.255", "239.1.1.1", "1.2.3"] {
            assert!(bad.parse::<UnicastIp>().is_err(), "{bad}");
        }
        let long: Vec<String> = (1..=MAX_FLOOD + 1)
            .map(|i| format!("198.18.1.{i}"))
            .collect();
        assert_eq!(
            long.join(",").parse::<FloodList>(),
            Err(ValueError::FloodTooLong(MAX_FLOOD + 1))
        );
        let local: LocalIp = "198.18.0.1".parse().unwrap();
        let list: FloodList = "198.18.0.2,198.18.0.1".parse().unwrap();
        assert_eq!(
            local.flood(&list),
            Err(ValueError::OwnAddress(IpAddr::V4(Ipv4Addr::new(
                198, 18, 0, 1
            ))))
        );
        let ok: FloodList = "198.18.0.2,198.18.0.3".parse().unwrap();
        assert_eq!(local.flood(&ok).unwrap().peers().len(), 2);
        assert_eq!(
            local.peer(ip("198.18.0.2")).unwrap().ip(),
            ip("198.18.0.2").ip()
        );
    }

    #[test]
    fn map_byte_order() {
        let ip = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
        assert_eq!(ip_from_map(ip_to_map(ip)), ip);
        assert_eq!(ip_to_map(ip).v4_word().to_ne_bytes(), [198, 18, 1, 2]);
        let v6: IpAddr = "2001:2::1".parse().unwrap();
        assert_eq!(ip_from_map(ip_to_map(v6)), v6);
    }

    #[test]
    fn ipv6_addresses_and_one_family_per_instance() {
        let ip = |s: &str| s.parse::<UnicastIp>();
        assert!(ip("2001:2:0:1::1").is_ok());
        assert!(ip("fe80::1").is_ok());
        for bad in ["::", "ff02::1", "2001:2::1::2"] {
            assert!(ip(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            ip("::ffff:198.18.0.1"),
            Err(ValueError::Mapped(_, v4)) if v4 == Ipv4Addr::new(198, 18, 0, 1)
        ));
        let local6: LocalIp = "2001:2:0:1::1".parse().unwrap();
        let local4: LocalIp = "198.18.0.1".parse().unwrap();
        assert!(local6.peer(ip("2001:2:0:2::1").unwrap()).is_ok());
        let mixed = local6.peer(ip("198.18.0.2").unwrap()).unwrap_err();
        assert!(matches!(mixed, ValueError::MixedFamily { .. }));
        assert_eq!(
            mixed.to_string(),
            "remote VTEP 198.18.0.2 is IPv4, but this instance's local address 2001:2:0:1::1 is IPv6: one instance carries one underlay family (bring up a second instance for the other)"
        );
        assert!(local4.peer(ip("2001:2::2").unwrap()).is_err());
        assert!(matches!(
            local6.peer(ip("2001:2:0:1::1").unwrap()),
            Err(ValueError::OwnAddress(_))
        ));
    }

    #[test]
    fn ports_per_vni() {
        assert!(port_room(Vni(1), MAX_VNI_PORTS - 1).is_ok());
        assert_eq!(
            port_room(Vni(1), MAX_VNI_PORTS),
            Err(ValueError::TooManyPorts(Vni(1)))
        );
    }
}
