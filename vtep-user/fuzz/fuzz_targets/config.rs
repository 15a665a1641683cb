//! The config file parser (`vtep up --config`, `vtep daemon --config`):
//! any text either is refused with an error or gives a plan that holds
//! every promise `config::parse` makes.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use vtep_common::consts::{MAX_FLOOD, MAX_VNI_PORTS, VNI_MAX};
use vtep_user::config::{PlanLocation, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(plan) = parse(text) else {
        return;
    };
    let u = &plan.underlay;
    assert!(!u.local_ip.is_unspecified() && !u.local_ip.is_multicast());
    assert!(u.udp_port != 0 && u.ttl != 0);
    assert!(u.learning.check().is_ok());
    let vnis: BTreeSet<u32> = plan.vnis.iter().map(|v| v.vni.0).collect();
    assert_eq!(vnis.len(), plan.vnis.len(), "a VNI configured twice");
    for v in &plan.vnis {
        assert!((1..=VNI_MAX).contains(&v.vni.0));
        assert!(v.flood.len() <= MAX_FLOOD);
        let unique: BTreeSet<_> = v.flood.iter().collect();
        assert_eq!(unique.len(), v.flood.len(), "a flood list with duplicates");
        for ip in &v.flood {
            assert!(!ip.is_unspecified() && !ip.is_broadcast() && !ip.is_multicast());
            assert_ne!(*ip, u.local_ip);
        }
    }
    let mut names = BTreeSet::new();
    for (iface, vni, _) in &plan.ports {
        assert!(vnis.contains(&vni.0), "a port of an unconfigured VNI");
        assert!(names.insert(iface.as_str()), "a port configured twice");
        assert_ne!(iface, &u.iface, "the underlay as a port");
        let n = plan.ports.iter().filter(|(_, v, _)| v == vni).count();
        assert!(n <= MAX_VNI_PORTS);
    }
    for (mac, vni, at) in &plan.fdb {
        assert!(vnis.contains(&vni.0), "an FDB entry of an unconfigured VNI");
        assert_eq!(mac.0[0] & 1, 0, "a group MAC in the FDB");
        match at {
            PlanLocation::Remote(ip) => assert_ne!(*ip, u.local_ip),
            PlanLocation::Port(p) => assert!(
                plan.ports.iter().any(|(i, v, _)| i == p && v == vni),
                "an FDB entry on a port not bound to its VNI"
            ),
        }
    }
});
