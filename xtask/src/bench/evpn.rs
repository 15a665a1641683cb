//! EVPN scale: many MACs on many VNIs advertised by one of our hosts
//! (static port entries, advertised by its daemon through its gobgpd),
//! installed from BGP by another (its daemon, through its gobgpd): routes
//! installed per second, and the time from the last advertisement (the
//! advertiser's gobgpd holds every route) to the last FDB entry.

use std::{
    io::Write as _,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use vtep_tests::{
    BpfFs, ConfigFile, Netns, Vtep,
    evpn::Gobgpd,
    topo::{Host, RoutedUnderlay},
};

use super::report::EvpnScale;

/// How long a run may take before it is called stuck.
const LIMIT: Duration = Duration::from_secs(120);
const FIRST_VNI: u32 = 1000;

fn config(host: &Host, vnis: u32, ports: bool, peer: &str) -> String {
    let mut c = format!("underlay = \"{}\"\nlocal_ip = \"{}\"\n", host.dev, host.ip);
    for i in 0..vnis {
        c.push_str(&format!("[[vni]]\nvni = {}\n", FIRST_VNI + i));
    }
    if ports {
        for i in 0..vnis {
            c.push_str(&format!(
                "[[port]]\niface = \"p{i}\"\nvni = {}\n",
                FIRST_VNI + i
            ));
        }
    }
    c.push_str(&format!(
        "[evpn]\nasn = 65000\n[[evpn.peer]]\naddress = \"{peer}\"\n"
    ));
    c
}

/// Entries in map `name` of `v` (`vtep maps list --json`).
fn entries(v: &Vtep, name: &str) -> anyhow::Result<u64> {
    let out = v.ok(&["maps", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&out)?;
    rows.as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == name))
        .and_then(|r| r["entries"].as_u64())
        .with_context(|| format!("no {name} in `vtep maps list`"))
}

/// Paths in the EVPN table of the gobgpd in `ns`.
fn gobgp_paths(ns: &Netns) -> u64 {
    let out = ns.run(&[
        "gobgp",
        "-u",
        "127.0.0.1",
        "global",
        "rib",
        "summary",
        "-a",
        "evpn",
    ]);
    String::from_utf8_lossy(&out.stdout)
        .split("Path:")
        .nth(1)
        .and_then(|s| s.trim().split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Polls `f` until it is true; the time it became so.
fn until(what: &str, mut f: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<Instant> {
    let start = Instant::now();
    while start.elapsed() < LIMIT {
        if f()? {
            return Ok(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("EVPN scale: {what} did not happen within {LIMIT:?}")
}

pub fn evpn_scale(vtep_bin: &Path, smoke: bool) -> anyhow::Result<EvpnScale> {
    let (vnis, per_vni) = if smoke { (10, 100) } else { (100, 100) };
    let macs = vnis * per_vni;
    let bpffs = BpfFs::new();
    let net = RoutedUnderlay::new(2);
    let (a, b) = (&net.hosts[0], &net.hosts[1]);
    for i in 0..vnis {
        let (p, q) = (format!("p{i}"), format!("q{i}"));
        a.ns.ok(&["ip", "link", "add", &p, "type", "veth", "peer", "name", &q]);
        a.ns.ok(&["ip", "link", "set", &p, "up"]);
        a.ns.ok(&["ip", "link", "set", &q, "up"]);
    }
    let config_a = ConfigFile::new(&config(a, vnis, true, &b.ip));
    let config_b = ConfigFile::new(&config(b, vnis, false, &a.ip));
    let _gobgp_a = Gobgpd::start(&a.ns);
    let _gobgp_b = Gobgpd::start(&b.ns);
    let va = Vtep::with_bin(&a.ns, &bpffs.dir, vtep_bin.to_owned());
    let vb = Vtep::with_bin(&b.ns, &bpffs.dir, vtep_bin.to_owned());
    let _da = va.spawn(&["daemon", "--config", config_a.arg()]);
    let _db = vb.spawn(&["daemon", "--config", config_b.arg()]);
    // Both up and each other's type-3 routes in: the session is up.
    until("the BGP session", || {
        Ok(gobgp_paths(&a.ns) >= 2 * u64::from(vnis) && gobgp_paths(&b.ns) >= 2 * u64::from(vnis))
    })?;
    let path = std::env::temp_dir().join(vtep_tests::unique("evpn-fdb"));
    let mut file = std::fs::File::create(&path)?;
    for i in 0..vnis {
        for j in 0..per_vni {
            writeln!(
                file,
                "02:01:{:02x}:{:02x}:{:02x}:{:02x} {} port p{i}",
                i >> 8,
                i & 0xff,
                j >> 8,
                j & 0xff,
                FIRST_VNI + i
            )?;
        }
    }
    drop(file);
    let load = Instant::now();
    va.ok(&["fdb", "load", path.to_str().context("path")?]);
    let _ = std::fs::remove_file(&path);
    let all = u64::from(2 * vnis + macs);
    let mut first = None;
    let mut advertised = None;
    let mut received = None;
    let last = until("installing every MAC", || {
        let n = entries(&vb, "FDB")?;
        if n > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if advertised.is_none() && gobgp_paths(&a.ns) >= all {
            advertised = Some(Instant::now());
        }
        if received.is_none() && gobgp_paths(&b.ns) >= all {
            received = Some(Instant::now());
        }
        Ok(n >= u64::from(macs))
    })?;
    let first = first.unwrap_or(last);
    let advertised = advertised.unwrap_or(last);
    let received = received.unwrap_or(last);
    let installing = last.duration_since(first).as_secs_f64().max(1e-3);
    Ok(EvpnScale {
        macs,
        vnis,
        installed_per_second: f64::from(macs) / installing,
        last_advertisement_to_last_entry_s: last.duration_since(advertised).as_secs_f64(),
        received_to_last_entry_s: last.duration_since(received).as_secs_f64(),
        load_to_last_entry_s: last.duration_since(load).as_secs_f64(),
    })
}
