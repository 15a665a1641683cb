//! The values users type on the command line and in the config file:
//! VNIs, MACs, IPv4 addresses and flood lists. Anything either is refused
//! or parses to a value that keeps its type's promise and prints back to
//! something that parses to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vtep_common::consts::{MAX_FLOOD, VNI_MAX};
use vtep_user::values::{FloodList, Mac, UnicastIp, UnicastMac, Vni, parse_ipv4};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = s.parse::<Vni>() {
        assert!((1..=VNI_MAX).contains(&v.get()));
        assert_eq!(v.to_string().parse::<Vni>(), Ok(v));
    }
    if let Ok(m) = s.parse::<Mac>() {
        assert_eq!(m.to_string().parse::<Mac>(), Ok(m));
    }
    if let Ok(m) = s.parse::<UnicastMac>() {
        assert!(!m.mac().is_group());
        assert_eq!(m.to_string().parse::<UnicastMac>(), Ok(m));
    }
    if let Ok(ip) = parse_ipv4(s) {
        assert_eq!(parse_ipv4(&ip.to_string()), Ok(ip));
    }
    if let Ok(ip) = s.parse::<UnicastIp>() {
        let ip = ip.ip();
        assert!(!ip.is_unspecified() && !ip.is_broadcast() && !ip.is_multicast());
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
