//! The demo of `cargo xtask build-and-run`: two hosts on a routed underlay,
//! two VMs per host in two tenants with the same addresses, the VTEP
//! loaded and configured, pings across the overlay, the counters printed,
//! everything removed afterwards (RAII guards, also on failure).

use std::{path::Path, time::Duration};

use anyhow::bail;
use vtep_tests::{
    BpfFs, Vtep,
    topo::{RoutedUnderlay, vm},
};

/// Tenants: (VNI, MAC prefix). Both use the same tenant addresses.
const TENANTS: [(u32, &str); 2] = [(100, "02:00:00:64:00"), (200, "02:00:00:c8:00")];

pub fn run(vtep_bin: &Path) -> anyhow::Result<()> {
    println!("demo: two hosts on a routed underlay (198.18.1.1 and 198.18.2.1 via a router),");
    println!("      VNIs 100 and 200 with the same VM addresses (198.19.0.1 and 198.19.0.2)");
    let bpffs = BpfFs::new();
    let net = RoutedUnderlay::new(2);
    let mut vteps = Vec::new();
    let mut vms = Vec::new();
    for (i, host) in net.hosts.iter().enumerate() {
        let v = Vtep::with_bin(&host.ns, &bpffs.dir, vtep_bin.to_owned());
        v.ok(&["up", "--underlay", &host.dev, "--local-ip", &host.ip]);
        let other = &net.hosts[1 - i].ip;
        for (vni, mac) in TENANTS {
            let vni_s = vni.to_string();
            v.ok(&["vni", "add", &vni_s, "--flood", other]);
            let port = format!("p{vni}");
            let guest = vm(
                &host.ns,
                &port,
                &format!("198.19.0.{}/24", i + 1),
                &format!("{mac}:{:02x}", i + 1),
            );
            v.ok(&["port", "add", &port, "--vni", &vni_s]);
            vms.push((vni, guest));
        }
        vteps.push(v);
    }
    // Static FDB: each VM's MAC on its port here, behind the other VTEP
    // there; unicast then takes the encap/decap paths, not flooding.
    for (i, v) in vteps.iter().enumerate() {
        for (vni, guest) in &vms {
            let here = guest.ip == format!("198.19.0.{}", i + 1);
            let vni_s = vni.to_string();
            let port = format!("p{vni}");
            let at: [&str; 2] = if here {
                ["--port", &port]
            } else {
                ["--remote", &net.hosts[1 - i].ip]
            };
            v.ok(&["fdb", "add", &guest.mac, "--vni", &vni_s, at[0], at[1]]);
        }
    }
    for (vni, guest) in vms.iter().filter(|(_, g)| g.ip == "198.19.0.1") {
        let ok = guest.ns.ping_until("198.19.0.2", Duration::from_secs(5))
            && guest.ns.ping("198.19.0.2", 3);
        println!(
            "demo: VNI {vni}: ping 198.19.0.1 -> 198.19.0.2 across the overlay: {}",
            if ok { "ok" } else { "FAILED" }
        );
        if !ok {
            bail!("ping across the overlay in VNI {vni} failed");
        }
    }
    for (v, host) in vteps.iter().zip(&net.hosts) {
        println!("\n== vtep stats on host {} ==", host.ip);
        print!("{}", v.ok(&["stats"]));
        println!("\n== vtep fdb show on host {} ==", host.ip);
        print!("{}", v.ok(&["fdb", "show"]));
    }
    let mut names: Vec<String> = net.hosts.iter().map(|h| h.ns.name.clone()).collect();
    names.push(net.router.name.clone());
    names.extend(vms.iter().map(|(_, g)| g.ns.name.clone()));
    drop(vteps);
    drop(vms);
    drop(net);
    drop(bpffs);
    let listed = vtep_tests::ok(&["ip", "netns", "list"]);
    let left: Vec<&String> = names
        .iter()
        .filter(|n| listed.split_whitespace().any(|l| l == n.as_str()))
        .collect();
    if !left.is_empty() {
        bail!("demo namespaces left behind: {left:?}");
    }
    println!("\ndemo: torn down, no namespaces or links left behind");
    Ok(())
}
