//! The values users type on the command line and in the config file:
//! VNIs, VLANs, TOS settings, MACs, IPv4 and IPv6 addresses, flood
//! lists, policy groups, rates and bursts. Anything either is refused
//! or parses to a value that keeps its type's promise and prints back to
//! something that parses to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;
use vtep_common::{
    consts::{MAX_FLOOD, VID_MAX, VNI_MAX},
    ecn::ECN_MASK,
};

use vtep_user::values::{
    Burst, FloodList, Group, Mac, Rate, Tos, UnicastIp, UnicastMac, Vid, Vni, parse_ip,
};

/// The unicast promise, per family.
fn unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast()),
        IpAddr::V6(v6) => {
            !(v6.is_unspecified() || v6.is_multicast() || v6.to_ipv4_mapped().is_some())
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = s.parse::<Vni>() {
        assert!((1..=VNI_MAX).contains(&v.get()));
        assert_eq!(v.to_string().parse::<Vni>(), Ok(v));
    }
    if let Ok(v) = s.parse::<Vid>() {
        assert!(v.get() <= VID_MAX);
        assert_eq!(v.to_string().parse::<Vid>(), Ok(v));
    }
    if let Ok(t) = s.parse::<Tos>() {
        if let Tos::Fixed(b) = t {
            assert_eq!(b & ECN_MASK, 0, "a fixed TOS with ECN bits");
        }
        assert_eq!(t.to_string().parse::<Tos>(), Ok(t));
    }
    if let Ok(g) = s.parse::<Group>() {
        assert_eq!(g.to_string().parse::<Group>(), Ok(g));
        assert_eq!(g.member().is_ok(), g.get() != 0);
    }
    if let Ok(r) = s.parse::<Rate>() {
        assert!((8_000..=10_000_000_000_000).contains(&r.bits()), "{r:?}");
        assert_eq!(r.to_string().parse::<Rate>(), Ok(r));
    }
    if let Ok(b) = s.parse::<Burst>() {
        assert!((65_536..=1 << 32).contains(&b.bytes()), "{b:?}");
        assert_eq!(b.to_string().parse::<Burst>(), Ok(b));
    }
    if let Ok(m) = s.parse::<Mac>() {
        assert_eq!(m.to_string().parse::<Mac>(), Ok(m));
    }
    if let Ok(m) = s.parse::<UnicastMac>() {
        assert!(!m.mac().is_group());
        assert_eq!(m.to_string().parse::<UnicastMac>(), Ok(m));
    }
    if let Ok(ip) = parse_ip(s) {
        assert_eq!(parse_ip(&ip.to_string()), Ok(ip));
    }
    if let Ok(ip) = s.parse::<UnicastIp>() {
        assert!(unicast(ip.ip()), "{ip} is not unicast");
        assert_eq!(ip.to_string().parse::<UnicastIp>(), Ok(ip));
    }
    if let Ok(list) = s.parse::<FloodList>() {
        assert!(list.ips().len() <= MAX_FLOOD);
        let mut seen = std::collections::BTreeSet::new();
        for ip in list.ips() {
            assert!(seen.insert(*ip), "duplicate {ip} in {s:?}");
            assert!(ip.to_string().parse::<UnicastIp>().is_ok());
        }
    }
});
