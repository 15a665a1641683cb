//! The config file parser (`vtep up --config`, `vtep daemon --config`):
//! any text either is refused with an error or gives a plan that holds
//! every promise `config::parse` makes.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use vtep_common::consts::{MAX_FLOOD, MAX_VNI_PORTS, VID_MAX, VNI_MAX};
use vtep_user::{config::parse, domain::plan::Target};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(plan) = parse(text) else {
        return;
    };
    let u = &plan.underlay;
    let local = u.local_ip.ip();
    assert!(!local.is_unspecified() && !local.is_multicast());
    assert!(u.check().is_ok());
    let vnis: BTreeSet<u32> = plan.vnis.iter().map(|v| v.vni.get()).collect();
    assert_eq!(vnis.len(), plan.vnis.len(), "a VNI configured twice");
    for v in &plan.vnis {
        assert!((1..=VNI_MAX).contains(&v.vni.get()));
        let flood = v.flood.ips();
        assert!(flood.len() <= MAX_FLOOD);
        let unique: BTreeSet<_> = flood.iter().collect();
        assert_eq!(unique.len(), flood.len(), "a flood list with duplicates");
        assert!(
            u.local_ip.flood(&v.flood).is_ok(),
            "our own address in a flood list"
        );
        for ip in flood {
            let ip = ip.ip();
            assert!(!ip.is_unspecified() && !ip.is_multicast());
            assert_ne!(ip, local);
            assert_eq!(
                ip.is_ipv4(),
                local.is_ipv4(),
                "a remote of the other family"
            );
        }
    }
    let mut names = BTreeSet::new();
    for p in &plan.ports {
        assert!(vnis.contains(&p.vni.get()), "a port of an unconfigured VNI");
        assert!(
            names.insert((p.iface.as_str(), p.vid)),
            "a port binding configured twice"
        );
        assert!(p.vid.get() <= VID_MAX, "a VLAN out of range");
        assert_ne!(p.iface, u.iface, "the underlay as a port");
        let n = plan.ports.iter().filter(|q| q.vni == p.vni).count();
        assert!(n <= MAX_VNI_PORTS);
    }
    for f in &plan.fdb {
        assert!(
            vnis.contains(&f.vni.get()),
            "an FDB entry of an unconfigured VNI"
        );
        assert!(!f.mac.mac().is_group(), "a group MAC in the FDB");
        match &f.at {
            Target::Remote(ip) => {
                assert_ne!(ip.ip(), local);
                assert_eq!(
                    ip.ip().is_ipv4(),
                    local.is_ipv4(),
                    "a remote of the other family"
                );
            }
            Target::Port(p, vid) => assert!(
                plan.ports
                    .iter()
                    .any(|q| q.iface == *p && q.vid == *vid && q.vni == f.vni),
                "an FDB entry on a port binding not bound to its VNI"
            ),
        }
    }
    if let Some(e) = &plan.evpn {
        assert_ne!(e.asn, 0, "EVPN with AS 0");
        assert!(!e.router_id.is_unspecified() && !e.router_id.is_multicast());
        let peers: BTreeSet<_> = e.peers.iter().map(|p| p.address).collect();
        assert_eq!(peers.len(), e.peers.len(), "a BGP peer configured twice");
        for p in &e.peers {
            assert_ne!(p.address.ip(), local, "ourselves as a BGP peer");
            assert_eq!(
                p.address.ip().is_ipv4(),
                local.is_ipv4(),
                "a BGP peer of the other family"
            );
        }
    }
});
