//! The `vtep up --config FILE` format (TOML), validated whole into a
//! [`Plan`] before anything is loaded.
//!
//! ```toml
//! underlay = "eth1"
//! local_ip = "198.18.1.1"
//! udp_port = 4789          # optional
//! xdp_mode = "auto"        # optional: auto | native | skb | off
//! ttl = 64                 # optional
//! df = true                # optional
//! decap_cache = true       # optional: false decides every frame from the tables
//! ageing = 300             # optional: seconds a learned MAC lives unseen
//! learned_capacity = 262144  # optional: learned table size (LRU)
//! fdb_capacity = 1048576   # optional: static FDB entries, at most
//! move_limit = 5           # optional: moves per window before freezing
//! move_window = 180        # optional: seconds
//!
//! [[vni]]
//! vni = 200
//! learning = false         # optional: static FDB only
//! bum_pps = 1000           # optional: storm control, BUM frames/s
//!
//! [[vni]]
//! vni = 100
//! flood = ["198.18.2.1"]
//!
//! [[port]]
//! iface = "vm1"
//! vni = 100
//! deliver = "skb"          # optional: skb | xdp
//!
//! [[port]]                 # a trunk: one entry per VLAN
//! iface = "trunk0"
//! vni = 200
//! vlan = 20                # optional: 802.1Q VLAN (0 or none: untagged)
//!
//! [[fdb]]
//! mac = "02:00:00:00:02:01"
//! vni = 100
//! remote = "198.18.2.1"    # or: port = "vm1" (and vlan = 20 for a trunk's VLAN)
//!
//! # [[member]], [[rule]], [[rate]]: group policy and rate limits (see
//! # `identity`)
//!
//! [evpn]                   # optional: BGP EVPN through gobgpd (`vtep daemon`)
//! asn = 65000
//! router_id = "198.18.1.1" # optional: local_ip
//! gobgp = "127.0.0.1:50051"  # optional: gobgpd's gRPC API
//! [[evpn.peer]]
//! address = "198.18.2.1"
//! asn = 65000              # optional: ours (iBGP)
//! ```

mod identity;

use std::{collections::BTreeSet, net::IpAddr, path::Path};

use anyhow::{Context as _, bail};
use serde::Deserialize;
use vtep_common::consts::VNIS_CAPACITY;

use crate::{
    domain::plan::{
        DEFAULT_GOBGP, EvpnPeer, EvpnPlan, FdbPlan, Learning, Plan, PortPlan, Target, Underlay,
        VniPlan,
    },
    values::{
        Deliver, FloodList, Group, LocalIp, Tos, UnicastIp, UnicastMac, ValueError, Vid, Vni,
        XdpModeArg, port_room,
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    underlay: String,
    local_ip: String,
    udp_port: Option<u16>,
    xdp_mode: Option<XdpModeArg>,
    ttl: Option<u8>,
    df: Option<bool>,
    decap_cache: Option<bool>,
    ageing: Option<u32>,
    learned_capacity: Option<u32>,
    fdb_capacity: Option<u32>,
    move_limit: Option<u32>,
    move_window: Option<u32>,
    #[serde(default)]
    vni: Vec<VniEntry>,
    #[serde(default)]
    port: Vec<PortEntry>,
    #[serde(default)]
    fdb: Vec<FdbEntry>,
    #[serde(default)]
    member: Vec<identity::MemberEntry>,
    #[serde(default)]
    rule: Vec<identity::RuleEntry>,
    #[serde(default)]
    rate: Vec<identity::RateEntry>,
    evpn: Option<EvpnSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvpnSection {
    asn: u32,
    router_id: Option<String>,
    gobgp: Option<String>,
    #[serde(default)]
    peer: Vec<EvpnPeerEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvpnPeerEntry {
    address: String,
    asn: Option<u32>,
}

/// The `[evpn]` section, checked: a non-zero AS, unicast addresses, no
/// peer twice, none of them ourselves.
fn evpn_plan(e: EvpnSection, local_ip: LocalIp) -> anyhow::Result<EvpnPlan> {
    if e.asn == 0 {
        bail!("evpn: asn must not be 0");
    }
    // A BGP identifier is 32 bits (RFC 6286 §2.1): an IPv4 address.
    let router_id = match (e.router_id, local_ip.ip()) {
        (Some(r), _) => match r.parse::<UnicastIp>().context("evpn router_id")?.ip() {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(_) => {
                bail!("evpn router_id {r}: a BGP identifier is an IPv4 address (RFC 6286)")
            }
        },
        (None, IpAddr::V4(v4)) => v4,
        (None, IpAddr::V6(_)) => bail!(
            "evpn: router_id is required with an IPv6 local_ip (a BGP identifier is an IPv4 address, RFC 6286): add router_id = \"198.18.x.y\" to [evpn]"
        ),
    };
    let gobgp = match e.gobgp {
        Some(g) => g.parse().map_err(|_| {
            anyhow::anyhow!("evpn gobgp: expected ADDRESS:PORT (like 127.0.0.1:50051), got '{g}'")
        })?,
        None => DEFAULT_GOBGP,
    };
    let mut peers: Vec<EvpnPeer> = Vec::new();
    for p in e.peer {
        let address: UnicastIp = p.address.parse().context("evpn peer")?;
        local_ip.peer(address).context("evpn peer")?;
        if peers.iter().any(|q| q.address == address) {
            bail!("evpn peer {address} is configured twice");
        }
        peers.push(EvpnPeer {
            address,
            asn: p.asn.unwrap_or(e.asn),
        });
    }
    Ok(EvpnPlan {
        asn: e.asn,
        router_id,
        gobgp,
        peers,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VniEntry {
    vni: u32,
    #[serde(default)]
    flood: Vec<String>,
    #[serde(default = "yes")]
    learning: bool,
    #[serde(default)]
    bum_pps: u32,
    /// "inherit" or a TOS byte, as `vni add --tos`.
    tos: Option<TosEntry>,
    #[serde(default)]
    gbp: bool,
    #[serde(default)]
    default_deny: bool,
}

/// A `tos` as a file writes it: a number, or a string ("inherit", "0xb8").
#[derive(Deserialize)]
#[serde(untagged)]
enum TosEntry {
    Number(i64),
    Text(String),
}

impl TosEntry {
    fn value(&self) -> Result<Tos, ValueError> {
        match self {
            TosEntry::Number(n) => n.to_string().parse(),
            TosEntry::Text(s) => s.parse(),
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortEntry {
    iface: String,
    vni: u32,
    /// The 802.1Q VLAN of a trunk binding (absent or 0: untagged).
    vlan: Option<u16>,
    deliver: Option<Deliver>,
    /// The binding's default policy group.
    group: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FdbEntry {
    mac: String,
    vni: u32,
    remote: Option<String>,
    port: Option<String>,
    /// With `port`: the VLAN binding the MAC is behind.
    vlan: Option<u16>,
}

/// Reads and validates `path`.
pub fn load(path: &Path) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    parse(&text).with_context(|| format!("config file {}", path.display()))
}

/// Parses and validates a configuration: every value (by the types of
/// [`crate::values`], as on the command line), and every reference
/// between entries (ports and FDB entries name configured VNIs, an FDB
/// port is bound to the entry's VNI, no duplicates, capacities).
pub fn parse(text: &str) -> anyhow::Result<Plan> {
    let f: File = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    let local_ip: LocalIp = f.local_ip.parse().context("local_ip")?;
    let defaults = Underlay::new(f.underlay, local_ip);
    let learning = Learning::default();
    let underlay = Underlay {
        udp_port: f.udp_port.unwrap_or(defaults.udp_port),
        xdp_mode: f.xdp_mode.unwrap_or(defaults.xdp_mode),
        ttl: f.ttl.unwrap_or(defaults.ttl),
        df: f.df.unwrap_or(defaults.df),
        decap_cache: f.decap_cache.unwrap_or(defaults.decap_cache),
        learning: Learning {
            ageing_s: f.ageing.unwrap_or(learning.ageing_s),
            capacity: f.learned_capacity.unwrap_or(learning.capacity),
            move_limit: f.move_limit.unwrap_or(learning.move_limit),
            move_window_s: f.move_window.unwrap_or(learning.move_window_s),
        },
        fdb_capacity: f.fdb_capacity.unwrap_or(defaults.fdb_capacity),
        ..defaults
    };
    underlay.check()?;

    let mut vnis = Vec::new();
    let mut seen = BTreeSet::new();
    for v in f.vni {
        let vni = Vni::try_from(v.vni)?;
        if !seen.insert(vni) {
            bail!("VNI {vni} is configured twice");
        }
        let flood = v
            .flood
            .iter()
            .map(|s| s.parse::<UnicastIp>())
            .collect::<Result<Vec<_>, _>>()
            .and_then(FloodList::try_from)
            .and_then(|list| local_ip.flood(&list).map(|_| list))
            .with_context(|| format!("VNI {vni}"))?;
        let tos = v
            .tos
            .as_ref()
            .map(TosEntry::value)
            .transpose()
            .with_context(|| format!("VNI {vni}"))?
            .unwrap_or_default();
        vnis.push(VniPlan {
            vni,
            flood,
            learning: v.learning,
            bum_pps: v.bum_pps,
            tos,
            gbp: v.gbp,
            default_deny: v.default_deny,
        });
    }
    if vnis.len() > VNIS_CAPACITY as usize {
        bail!(
            "{} VNIs configured: at most {VNIS_CAPACITY} are supported",
            vnis.len()
        );
    }

    let mut ports: Vec<PortPlan> = Vec::new();
    let mut bindings = BTreeSet::new();
    for p in f.port {
        let vni = Vni::try_from(p.vni)?;
        let vid = Vid::try_from(p.vlan.unwrap_or(0))?;
        if !seen.contains(&vni) {
            bail!(
                "port '{}'{} names VNI {vni}, which has no [[vni]] entry",
                p.iface,
                vid.suffix()
            );
        }
        if p.iface == underlay.iface {
            return Err(ValueError::PortIsUnderlay(p.iface).into());
        }
        if !bindings.insert((p.iface.clone(), vid)) {
            bail!("port '{}'{} is configured twice", p.iface, vid.suffix());
        }
        port_room(vni, ports.iter().filter(|q| q.vni == vni).count())?;
        ports.push(PortPlan {
            iface: p.iface,
            vid,
            vni,
            deliver: p.deliver.unwrap_or(Deliver::Auto),
            group: match p.group {
                Some(g) => Group::from(g).member()?,
                None => Group::UNKNOWN,
            },
        });
    }

    let mut fdb = Vec::new();
    let mut fdb_keys = BTreeSet::new();
    for e in f.fdb {
        let mac: UnicastMac = e.mac.parse().context("FDB entry")?;
        let vni = Vni::try_from(e.vni)?;
        if !seen.contains(&vni) {
            bail!("FDB entry {mac} names VNI {vni}, which has no [[vni]] entry");
        }
        if !fdb_keys.insert((vni, mac)) {
            bail!("FDB entry {mac} in VNI {vni} is configured twice");
        }
        let at = match (e.remote, e.port) {
            (Some(r), None) if e.vlan.is_none() => {
                let ip: UnicastIp = r.parse()?;
                local_ip
                    .peer(ip)
                    .with_context(|| format!("FDB entry {mac} in VNI {vni}"))?;
                Target::Remote(ip)
            }
            (None, Some(p)) => {
                let vid = Vid::try_from(e.vlan.unwrap_or(0))?;
                if !ports
                    .iter()
                    .any(|q| q.iface == p && q.vid == vid && q.vni == vni)
                {
                    bail!(
                        "FDB entry {mac}: port '{p}'{} is not a [[port]] of VNI {vni}",
                        vid.suffix()
                    );
                }
                Target::Port(p, vid)
            }
            _ => bail!(
                "FDB entry {mac} in VNI {vni}: give exactly one of remote or port (vlan goes with port)"
            ),
        };
        fdb.push(FdbPlan { mac, vni, at });
    }
    let identity = identity::plan(f.member, f.rule, f.rate, &seen)?;
    let evpn = f.evpn.map(|e| evpn_plan(e, local_ip)).transpose()?;
    Ok(Plan {
        underlay,
        vnis,
        ports,
        fdb,
        identity,
        evpn,
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const GOOD: &str = r#"
        underlay = "eth1"
        local_ip = "198.18.1.1"
        [[vni]]
        vni = 100
        flood = ["198.18.2.1", "198.18.2.1"]
        [[port]]
        iface = "vm1"
        vni = 100
        [[fdb]]
        mac = "02:00:00:00:02:01"
        vni = 100
        remote = "198.18.2.1"
        [[fdb]]
        mac = "02:00:00:00:01:01"
        vni = 100
        port = "vm1"
    "#;

    #[test]
    fn good_config() {
        let p = parse(GOOD).unwrap();
        assert_eq!(p.underlay.udp_port, 4789);
        assert_eq!(p.underlay.xdp_mode, XdpModeArg::Auto);
        assert!(p.underlay.df);
        assert!(p.underlay.decap_cache);
        let vni = Vni::try_from(100).unwrap();
        assert_eq!(
            p.vnis,
            vec![VniPlan {
                vni,
                flood: "198.18.2.1".parse().unwrap(),
                learning: true,
                bum_pps: 0,
                tos: Tos::default(),
                gbp: false,
                default_deny: false,
            }]
        );
        assert_eq!(p.underlay.learning.ageing_s, 300);
        assert_eq!(
            p.ports,
            vec![PortPlan {
                iface: "vm1".into(),
                vid: Vid::UNTAGGED,
                vni,
                deliver: Deliver::Auto,
                group: Group::UNKNOWN,
            }]
        );
        assert_eq!(p.fdb.len(), 2);
        let off = parse(&GOOD.replace("local_ip", "decap_cache = false\nlocal_ip")).unwrap();
        assert!(!off.underlay.decap_cache);
    }

    #[test]
    fn evpn_section() {
        let text = format!(
            "{GOOD}\n[evpn]\nasn = 65000\n[[evpn.peer]]\naddress = \"198.18.2.1\"\n\
             [[evpn.peer]]\naddress = \"198.18.3.1\"\nasn = 65001\n"
        );
        let e = parse(&text).unwrap().evpn.unwrap();
        assert_eq!(e.asn, 65000);
        assert_eq!(e.router_id, Ipv4Addr::new(198, 18, 1, 1));
        assert_eq!(e.gobgp, DEFAULT_GOBGP);
        assert_eq!(e.peers.len(), 2);
        assert_eq!((e.peers[0].asn, e.peers[1].asn), (65000, 65001));
        assert!(parse(GOOD).unwrap().evpn.is_none());
        for (bad, needle) in [
            ("asn = 0", "asn"),
            ("asn = 1\ngobgp = \"localhost\"", "ADDRESS:PORT"),
            (
                "asn = 1\n[[evpn.peer]]\naddress = \"198.18.1.1\"",
                "own address",
            ),
            (
                "asn = 1\n[[evpn.peer]]\naddress = \"198.18.2.1\"\n[[evpn.peer]]\naddress = \"198.18.2.1\"",
                "twice",
            ),
        ] {
            let err = format!(
                "{:#}",
                parse(&format!("{GOOD}\n[evpn]\n{bad}\n")).unwrap_err()
            );
            assert!(err.contains(needle), "expected '{needle}' in: {err}");
        }
    }

    #[test]
    fn the_example_in_dist_is_valid() {
        let p = parse(include_str!("../../../dist/vtep.toml")).unwrap();
        assert_eq!(p.underlay.iface, "eth1");
        assert_eq!(p.vnis.len(), 1);
        assert_eq!(p.vnis[0].flood.ips().len(), 2);
        assert_eq!(p.ports.len(), 1);
        assert_eq!(p.fdb.len(), 1);
    }

    /// A trunk: VLAN 10 of `tr0` in VNI 100, VLAN 20 of it in VNI 100
    /// too (translation on one port), a MAC behind VLAN 20.
    const TRUNK: &str = r#"
        underlay = "eth1"
        local_ip = "198.18.1.1"
        [[vni]]
        vni = 100
        flood = ["198.18.2.1"]
        [[port]]
        iface = "tr0"
        vni = 100
        vlan = 10
        [[port]]
        iface = "tr0"
        vni = 100
        vlan = 20
        [[fdb]]
        mac = "02:00:00:00:01:01"
        vni = 100
        port = "tr0"
        vlan = 20
    "#;

    #[test]
    fn trunk_bindings_are_one_port_entry_per_vlan() {
        let p = parse(TRUNK).unwrap();
        let bindings: Vec<(&str, u16)> = p
            .ports
            .iter()
            .map(|q| (q.iface.as_str(), q.vid.get()))
            .collect();
        assert_eq!(bindings, [("tr0", 10), ("tr0", 20)]);
        assert_eq!(
            p.fdb[0].at,
            Target::Port("tr0".into(), Vid::try_from(20).unwrap())
        );
    }

    #[test]
    fn bad_configs_name_the_problem() {
        let cases = [
            (
                GOOD.replace("vni = 100\n        flood", "vni = 0\n        flood"),
                "VNI",
            ),
            (GOOD.replace("198.18.1.1", "198.18.1"), "198.18.1"),
            (
                GOOD.replace("02:00:00:00:02:01", "02:00:00:00:02"),
                "02:00:00:00:02",
            ),
            (
                GOOD.replace(
                    "iface = \"vm1\"\n        vni = 100",
                    "iface = \"vm1\"\n        vni = 200",
                ),
                "VNI 200",
            ),
            (GOOD.replace("port = \"vm1\"", "port = \"vm9\""), "vm9"),
            (
                GOOD.replace(
                    "remote = \"198.18.2.1\"",
                    "remote = \"198.18.2.1\"\n        port = \"vm1\"",
                ),
                "exactly one",
            ),
            (GOOD.replace("underlay =", "underlai ="), "underlai"),
            (
                GOOD.replace("flood = [\"198.18.2.1\"", "flood = [\"198.18.1.1\""),
                "own address",
            ),
            (
                GOOD.replace("02:00:00:00:01:01", "01:00:5e:00:00:01"),
                "group",
            ),
            (
                GOOD.replace("iface = \"vm1\"", "iface = \"eth1\""),
                "underlay",
            ),
            // Found by the `config` fuzz target: an FDB entry behind this
            // VTEP's own address used to pass the file check.
            (
                GOOD.replace("remote = \"198.18.2.1\"", "remote = \"198.18.1.1\""),
                "own address",
            ),
            (
                format!("{GOOD}\n[[port]]\niface = \"vm1\"\nvni = 100\n"),
                "twice",
            ),
            (
                format!("{TRUNK}\n[[port]]\niface = \"tr0\"\nvni = 100\nvlan = 10\n"),
                "port 'tr0' VLAN 10 is configured twice",
            ),
            (
                TRUNK.replace("vlan = 20", "vlan = 4095"),
                "invalid VLAN '4095'",
            ),
            (
                TRUNK.replace("port = \"tr0\"\n        vlan = 20", "port = \"tr0\""),
                "port 'tr0' is not a [[port]] of VNI 100",
            ),
            (
                TRUNK.replace(
                    "port = \"tr0\"\n        vlan = 20",
                    "remote = \"198.18.2.1\"\n        vlan = 20",
                ),
                "vlan goes with port",
            ),
        ];
        for (text, needle) in cases {
            let err = format!("{:#}", parse(&text).unwrap_err());
            assert!(err.contains(needle), "expected '{needle}' in: {err}");
        }
    }
}
