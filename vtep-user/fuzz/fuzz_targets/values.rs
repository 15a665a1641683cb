//! The values users type on the command line and in the config file:
//! VNIs, MACs, IPv4 addresses and remote lists. Anything either is refused
//! or parses to a value that prints back to something that parses to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vtep_common::consts::VNI_MAX;
use vtep_user::values::{Mac, RemoteList, Vni, parse_ipv4, parse_remote};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = s.parse::<Vni>() {
        assert!((1..=VNI_MAX).contains(&v.0));
        assert_eq!(v.to_string().parse::<Vni>(), Ok(v));
    }
    if let Ok(m) = s.parse::<Mac>() {
        assert_eq!(m.to_string().parse::<Mac>(), Ok(m));
    }
    if let Ok(ip) = parse_ipv4(s) {
        assert_eq!(parse_ipv4(&ip.to_string()), Ok(ip));
    }
    if let Ok(ip) = parse_remote(s) {
        assert!(!ip.is_unspecified() && !ip.is_broadcast() && !ip.is_multicast());
    }
    if let Ok(list) = s.parse::<RemoteList>() {
        let mut seen = std::collections::BTreeSet::new();
        for ip in &list.0 {
            assert!(seen.insert(*ip), "duplicate {ip} in {s:?}");
            assert!(parse_remote(&ip.to_string()).is_ok());
        }
    }
});
