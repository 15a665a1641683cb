//! The demo of `cargo xtask build-and-run`: two hosts on a routed underlay,
//! two VMs per host in two tenants with the same addresses, the VTEP
//! loaded and configured, pings across the overlay, the counters printed,
//! everything removed afterwards (RAII guards, also on failure).

use std::{path::Path, time::Duration};

use anyhow::bail;
use vtep_tests::topo::{Kind, Overlay, TENANTS};

pub fn run(vtep_bin: &Path) -> anyhow::Result<()> {
    println!("demo: two hosts on a routed underlay (198.18.1.1 and 198.18.2.1 via a router),");
    println!("      VNIs 100 and 200 with the same VM addresses (198.19.0.1 and 198.19.0.2)");
    let overlay = Overlay::new(&[Kind::Ours, Kind::Ours], vtep_bin);
    // Tenant 100 gets static FDB entries (unicast takes the encap/decap
    // paths); tenant 200 relies on flooding.
    overlay.static_fdb(0);
    for (t, (vni, _)) in TENANTS.iter().enumerate() {
        let guest = overlay.vm(0, t);
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
    for (v, host) in overlay.vteps.iter().zip(&overlay.net.hosts) {
        let Some(v) = v else { continue };
        println!("\n== vtep stats on host {} ==", host.ip);
        print!("{}", v.ok(&["stats"]));
        println!("\n== vtep fdb show on host {} ==", host.ip);
        print!("{}", v.ok(&["fdb", "show"]));
    }
    let names = overlay.namespaces();
    drop(overlay);
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
