//! The `vtep` command's contract: what each command does, its JSON, and
//! that bad input gives one line naming the problem, a non-zero exit and
//! nothing half-applied.

use vtep_tests::{Netns, UP_NATIVE, UP_TC, Vtep};

mod host;
mod link;

use host::{refused, setup};
use link::headroom_and_master;

fn xdp_attached(host: &Netns, dev: &str) -> bool {
    host.ok(&["ip", "link", "show", dev]).contains("xdp")
}

/// Whether `host` has a merge device (an instance decapsulating in TC): a
/// vxlan device in metadata mode.
fn has_merge_dev(host: &Netns) -> bool {
    host.ok(&["ip", "-d", "-o", "link", "show", "type", "vxlan"])
        .lines()
        .any(|l| l.contains(": vtx") && l.contains("external"))
}

#[test]
fn commands_before_up_are_refused() {
    let s = setup();
    for args in [
        &["vni", "add", "100"][..],
        &["port", "add", "p1", "--vni", "100"],
        &["fdb", "show"],
        &["stats"],
    ] {
        let err = s.vtep.fails(args);
        assert!(
            err.contains("is not up") && err.contains("vtep up"),
            "{err}"
        );
    }
    // `down` when down is harmless.
    s.vtep.ok(&["down"]);
    s.vtep.ok(&["down"]);
}

#[test]
fn bad_values_are_refused_with_one_line() {
    let s = setup();
    let v = &s.vtep;
    refused(
        v,
        &["up", "--underlay", "nosuch0", "--local-ip", "198.18.0.1"],
        "nosuch0",
    );
    assert!(
        !s.bpffs.dir.join(&v.instance).exists(),
        "a failed up left pins behind"
    );
    refused(
        v,
        &["up", "--underlay", "ul0", "--local-ip", "198.18.0"],
        "198.18.0",
    );
    v.ok(&["up", "--underlay", "ul0", "--local-ip", "198.18.0.1"]);
    // Up again: an in-place upgrade, which cannot move the instance.
    refused(
        v,
        &["up", "--underlay", "ul0", "--local-ip", "198.18.0.9"],
        "vtep down",
    );
    v.ok(&["up", "--underlay", "ul0", "--local-ip", "198.18.0.1"]);

    refused(v, &["vni", "add", "0"], "VNI");
    refused(v, &["vni", "add", "16777216"], "16777216");
    refused(
        v,
        &["vni", "add", "100", "--flood", "198.18.0.2,1.2.3"],
        "1.2.3",
    );
    refused(
        v,
        &["vni", "add", "100", "--flood", "239.1.1.1"],
        "239.1.1.1",
    );
    // Our own address is no remote VTEP: the same rule as in a config
    // file, and nothing is left behind.
    refused(
        v,
        &["vni", "add", "100", "--flood", "198.18.0.2,198.18.0.1"],
        "own address",
    );
    assert_eq!(v.map_row("VNIS")["entries"], 0);
    assert_eq!(v.map_row("REMOTES")["entries"], 0);
    assert_eq!(v.map_row("PEERS")["entries"], 0);
    v.ok(&["vni", "add", "100", "--flood", "198.18.0.2"]);
    v.ok(&["vni", "add", "200"]);

    refused(v, &["port", "add", "nosuch0", "--vni", "100"], "nosuch0");
    refused(v, &["port", "add", "p1", "--vni", "300"], "VNI 300");
    refused(v, &["port", "add", "ul0", "--vni", "100"], "underlay");
    v.ok(&["port", "add", "p1", "--vni", "100"]);
    refused(v, &["port", "add", "p1", "--vni", "200"], "already bound");
    v.ok(&["port", "add", "p2", "--vni", "200"]);

    refused(
        v,
        &[
            "fdb",
            "add",
            "02:00:00:00:00",
            "--vni",
            "100",
            "--remote",
            "198.18.0.2",
        ],
        "02:00:00:00:00",
    );
    refused(
        v,
        &[
            "fdb",
            "add",
            "01:00:5e:00:00:01",
            "--vni",
            "100",
            "--remote",
            "198.18.0.2",
        ],
        "group",
    );
    refused(
        v,
        &[
            "fdb",
            "add",
            "02:00:00:00:00:09",
            "--vni",
            "100",
            "--remote",
            "198.18.0.256",
        ],
        "198.18.0.256",
    );
    refused(
        v,
        &[
            "fdb",
            "add",
            "02:00:00:00:00:09",
            "--vni",
            "100",
            "--port",
            "p2",
        ],
        "VNI 200",
    );
    refused(
        v,
        &[
            "fdb",
            "add",
            "02:00:00:00:00:09",
            "--vni",
            "300",
            "--port",
            "p1",
        ],
        "VNI 300",
    );
    refused(
        v,
        &["fdb", "del", "02:00:00:00:00:09", "--vni", "100"],
        "no FDB entry",
    );

    // `vni del` with ports bound changes nothing.
    v.ok(&[
        "fdb",
        "add",
        "02:00:00:00:00:09",
        "--vni",
        "100",
        "--remote",
        "198.18.0.2",
    ]);
    refused(v, &["vni", "del", "100"], "p1");
    let fdb: serde_json::Value = serde_json::from_str(&v.ok(&["fdb", "show", "--json"])).unwrap();
    assert_eq!(fdb.as_array().map(Vec::len), Some(1), "{fdb}");
    assert!(v.ok(&["stats"]).contains("100"));
}

#[test]
fn fdb_show_and_stats_json() {
    let s = setup();
    let v = &s.vtep;
    v.ok(&["up", "--underlay", "ul0", "--local-ip", "198.18.0.1"]);
    v.ok(&["vni", "add", "100", "--flood", "198.18.0.2"]);
    v.ok(&["vni", "add", "200"]);
    v.ok(&["port", "add", "p1", "--vni", "100"]);
    v.ok(&[
        "fdb",
        "add",
        "02:AA:00:00:00:01",
        "--vni",
        "100",
        "--remote",
        "198.18.0.2",
    ]);
    v.ok(&[
        "fdb",
        "add",
        "02:aa:00:00:00:02",
        "--vni",
        "100",
        "--port",
        "p1",
    ]);
    // Replacing an entry keeps one entry.
    v.ok(&[
        "fdb",
        "add",
        "02:aa:00:00:00:02",
        "--vni",
        "100",
        "--port",
        "p1",
    ]);

    let fdb: serde_json::Value = serde_json::from_str(&v.ok(&["fdb", "show", "--json"])).unwrap();
    let rows = fdb.as_array().expect("fdb show --json is an array");
    assert_eq!(rows.len(), 2, "{fdb}");
    assert_eq!(rows[0]["vni"], 100);
    assert_eq!(rows[0]["mac"], "02:aa:00:00:00:01");
    assert_eq!(rows[0]["remote"], "198.18.0.2");
    assert!(rows[0]["port"].is_null());
    assert_eq!(rows[0]["origin"], "static");
    assert_eq!(rows[1]["mac"], "02:aa:00:00:00:02");
    assert!(rows[1]["remote"].is_null());
    assert_eq!(rows[1]["port"], "p1");
    let only_200: serde_json::Value =
        serde_json::from_str(&v.ok(&["fdb", "show", "--vni", "200", "--json"])).unwrap();
    assert_eq!(only_200, serde_json::json!([]));

    let st = v.stats();
    let vnis = st["vnis"].as_array().expect("vnis array");
    assert_eq!(vnis.len(), 2);
    for (row, vni) in vnis.iter().zip([100, 200]) {
        assert_eq!(row["vni"], vni);
        for k in [
            "rx_packets",
            "rx_bytes",
            "tx_packets",
            "tx_bytes",
            "drop_packets",
        ] {
            assert!(row[k].is_u64(), "{k} in {row}");
        }
    }
    for reason in ["no_i_flag", "unknown_vni", "unknown_remote", "malformed"] {
        assert_eq!(st["drop_reasons"][reason], 0, "{reason}");
    }

    // Removing the port removes the MACs on it; then the VNI can go.
    v.ok(&["port", "del", "p1"]);
    let fdb: serde_json::Value = serde_json::from_str(&v.ok(&["fdb", "show", "--json"])).unwrap();
    assert_eq!(fdb.as_array().map(Vec::len), Some(1), "{fdb}");
    v.ok(&["vni", "del", "100"]);
    assert_eq!(v.ok(&["fdb", "show", "--json"]).trim(), "[]");
    v.ok(&["down"]);
    assert!(!xdp_attached(&s.host, "ul0"), "down left XDP attached");
    assert!(
        !s.bpffs.dir.join(&v.instance).exists(),
        "down left pins behind"
    );
}

#[test]
fn config_is_validated_whole_and_applied() {
    let s = setup();
    let v = &s.vtep;
    let dir = s.temp_dir("cfg");
    let good = r#"
underlay = "ul0"
local_ip = "198.18.0.1"
[[vni]]
vni = 100
flood = ["198.18.0.2"]
[[port]]
iface = "p1"
vni = 100
[[fdb]]
mac = "02:00:00:00:00:01"
vni = 100
port = "p1"
[[fdb]]
mac = "02:00:00:00:00:02"
vni = 100
remote = "198.18.0.2"
"#;
    // The error is in the very last entry: nothing may be loaded.
    let bad = format!("{good}[[fdb]]\nmac = \"02:00:00:00:00:03\"\nvni = 100\nport = \"p2\"\n");
    let bad_path = dir.join("bad.toml");
    std::fs::write(&bad_path, bad).unwrap();
    refused(v, &["up", "--config", bad_path.to_str().unwrap()], "p2");
    assert!(
        !xdp_attached(&s.host, "ul0"),
        "a refused config attached XDP"
    );
    assert!(
        !has_merge_dev(&s.host),
        "a refused config left its merge device"
    );
    assert!(
        !s.bpffs.dir.join(&v.instance).exists(),
        "a refused config left pins"
    );

    let good_path = dir.join("good.toml");
    std::fs::write(&good_path, good).unwrap();
    v.ok(&["up", "--config", good_path.to_str().unwrap()]);
    // `xdp_mode = "auto"` (the default): on a veth, decap in TC, no XDP.
    let status: serde_json::Value = serde_json::from_str(&v.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["datapath"]["xdp_mode"], "off", "{status}");
    assert!(!xdp_attached(&s.host, "ul0") && has_merge_dev(&s.host));
    let fdb: serde_json::Value = serde_json::from_str(&v.ok(&["fdb", "show", "--json"])).unwrap();
    assert_eq!(fdb.as_array().map(Vec::len), Some(2), "{fdb}");
    refused(v, &["port", "add", "p1", "--vni", "100"], "already bound");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fdb_load_is_all_or_nothing() {
    let s = setup();
    let v = &s.vtep;
    v.ok(&["up", "--underlay", "ul0", "--local-ip", "198.18.0.1"]);
    v.ok(&["vni", "add", "100", "--flood", "198.18.0.2"]);
    v.ok(&["port", "add", "p1", "--vni", "100"]);
    let dir = s.temp_dir("fdb");
    let mut text = String::from("# bulk entries\n");
    for i in 0..500 {
        text.push_str(&format!(
            "02:00:00:00:{:02x}:{:02x} 100 remote 198.18.0.2\n",
            i / 256,
            i % 256
        ));
    }
    text.push_str("02:00:00:00:ff:01 100 port p1  # a local MAC\n");
    let bad = format!("{text}02:00:00:00:ff:02 100 remote 198.18.0\n");
    std::fs::write(dir.join("bad"), bad).unwrap();
    std::fs::write(dir.join("good"), &text).unwrap();
    refused(
        v,
        &["fdb", "load", dir.join("bad").to_str().unwrap()],
        "line 503",
    );
    assert_eq!(
        v.ok(&["fdb", "show", "--json"]).trim(),
        "[]",
        "a refused file wrote entries"
    );
    v.ok(&["fdb", "load", dir.join("good").to_str().unwrap()]);
    let fdb: serde_json::Value = serde_json::from_str(&v.ok(&["fdb", "show", "--json"])).unwrap();
    assert_eq!(fdb.as_array().map(Vec::len), Some(501));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_privileges_one_clear_line() {
    let bin = vtep_tests::vtep_bin();
    let out = vtep_tests::run(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        bin.to_str().unwrap(),
        "stats",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("CAP_BPF") && err.contains("root"), "{err}");
}

#[test]
fn pins_are_root_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let s = setup();
    s.vtep
        .ok(&["up", "--underlay", "ul0", "--local-ip", "198.18.0.1"]);
    let dir = s.bpffs.dir.join(&s.vtep.instance);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "pin directory");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(
            mode(&path) & 0o077,
            0,
            "{} is readable by others",
            path.display()
        );
    }
}

#[test]
fn ports_get_the_delivery_their_device_takes() {
    let s = setup();
    let v = &s.vtep;
    v.ok(UP_NATIVE);
    v.ok(&["vni", "add", "100", "--flood", "198.18.0.2"]);
    // A veth in the host namespace at both ends, and a tap.
    s.host.ok(&[
        "ip", "link", "add", "p3", "type", "veth", "peer", "name", "p3b",
    ]);
    s.host
        .ok(&["ip", "tuntap", "add", "dev", "t0", "mode", "tap"]);
    for dev in ["p3", "p3b", "t0"] {
        s.host.ok(&["ip", "link", "set", dev, "up"]);
    }
    let deliver = |port: &str| {
        v.map_dump("PORTS")
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == port)
            .map(|p| p["deliver"].as_str().unwrap().to_owned())
    };
    // auto: into the peer for a veth whose peer is in another namespace,
    // from XDP for a tap, out of the device otherwise.
    for p in ["p1", "p3", "t0"] {
        v.ok(&["port", "add", p, "--vni", "100"]);
    }
    assert_eq!(deliver("p1").as_deref(), Some("peer"));
    assert_eq!(deliver("p3").as_deref(), Some("skb"));
    assert_eq!(deliver("t0").as_deref(), Some("xdp"));
    v.ok(&["port", "del", "p3"]);
    refused(
        v,
        &["port", "add", "p3", "--vni", "100", "--deliver", "peer"],
        "port 'p3' cannot take frames into its peer",
    );
    assert_eq!(deliver("p3"), None, "a refused port add left a port");
    // An explicit choice stands.
    v.ok(&["port", "add", "p2", "--vni", "100", "--deliver", "skb"]);
    assert_eq!(deliver("p2").as_deref(), Some("skb"));
    v.ok(&["port", "del", "p2"]);
    v.ok(&["port", "add", "p2", "--vni", "100", "--deliver", "peer"]);
    assert_eq!(deliver("p2").as_deref(), Some("peer"));
    // Without XDP on the underlay, a tap gets skbs, and XDP delivery is
    // refused.
    v.ok(&["down"]);
    v.ok(UP_TC);
    v.ok(&["vni", "add", "100", "--flood", "198.18.0.2"]);
    v.ok(&["port", "add", "t0", "--vni", "100"]);
    assert_eq!(deliver("t0").as_deref(), Some("skb"));
    refused(
        v,
        &["port", "add", "p2", "--vni", "100", "--deliver", "xdp"],
        "--xdp-mode native",
    );
}

#[test]
fn up_turns_gro_on_on_the_underlay_and_down_turns_it_back_off() {
    let s = setup();
    let gro = || {
        s.host
            .ok(&["ethtool", "-k", "ul0"])
            .lines()
            .any(|l| l == "generic-receive-offload: on")
    };
    assert!(!gro(), "a veth comes with GRO off");
    s.vtep.ok(UP_NATIVE);
    assert!(gro(), "up left GRO off on the underlay");
    s.vtep.ok(&["down"]);
    assert!(!gro(), "down left GRO on, which up had turned on");
    // GRO the host had on stays on.
    s.host.ok(&["ethtool", "-K", "ul0", "gro", "on"]);
    s.vtep.ok(UP_NATIVE);
    s.vtep.ok(&["down"]);
    assert!(gro(), "down turned off GRO that was on before up");
    // Decapsulating in TC, GRO merges VXLAN packets for the merge device,
    // which comes and goes with the instance.
    s.host.ok(&["ethtool", "-K", "ul0", "gro", "off"]);
    s.vtep.ok(UP_TC);
    assert!(
        gro() && has_merge_dev(&s.host),
        "GRO left off, or no merge device"
    );
    s.vtep.ok(&["down"]);
    assert!(
        !gro() && !has_merge_dev(&s.host),
        "down left GRO on or the merge device"
    );
}

#[test]
fn auto_on_a_veth_decapsulates_in_xdp_where_no_merge_device_can_be_made() {
    // Two instances on two veth underlays of one namespace, on one UDP
    // port: one vxlan device in metadata mode fits a port and namespace,
    // so the second takes native XDP instead of failing.
    let s = setup();
    s.host.ok(&[
        "ip", "link", "add", "ul1", "type", "veth", "peer", "name", "ul1p",
    ]);
    for dev in ["ul1", "ul1p"] {
        s.host.ok(&["ip", "link", "set", dev, "up"]);
    }
    s.host
        .ok(&["ip", "addr", "add", "198.18.1.1/24", "dev", "ul1"]);
    let mut b = Vtep::new(&s.host, &s.bpffs);
    b.instance.push('b');
    s.vtep
        .ok(&["up", "--underlay", "ul0", "--local-ip", "198.18.0.1"]);
    b.ok(&["up", "--underlay", "ul1", "--local-ip", "198.18.1.1"]);
    let mode = |v: &Vtep| -> serde_json::Value {
        let s: serde_json::Value = serde_json::from_str(&v.ok(&["status", "--json"])).unwrap();
        s["datapath"]["xdp_mode"].clone()
    };
    assert_eq!((mode(&s.vtep), mode(&b)), ("off".into(), "native".into()));
    assert!(has_merge_dev(&s.host) && xdp_attached(&s.host, "ul1"));
    b.ok(&["down"]);
    s.vtep.ok(&["down"]);
    assert!(!has_merge_dev(&s.host) && !xdp_attached(&s.host, "ul1"));
}

#[test]
fn a_bound_veth_leaves_room_for_outer_headers_until_unbound() {
    let s = setup();
    let v = &s.vtep;
    v.ok(&["up", "--underlay", "ul0", "--local-ip", "198.18.0.1"]);
    v.ok(&["vni", "add", "100"]);
    // p2 is a member of a bridge of the operator's: left alone, said so.
    s.host.ok(&["ip", "link", "add", "opbr", "type", "bridge"]);
    s.host.ok(&["ip", "link", "set", "p2", "master", "opbr"]);
    // A veth asks the same of both its ends: the VM's side (p1v, p2v)
    // leaves what the host's side is read to ask.
    let raised = |dev| headroom_and_master(&s.host, dev).0;
    assert_eq!((raised("p1"), raised("p2")), (0, 0));
    v.ok(&["port", "add", "p1", "--vni", "100"]);
    let p2 = v.run(&["port", "add", "p2", "--vni", "100"]);
    assert!(p2.status.success());
    let warned = String::from_utf8_lossy(&p2.stderr);
    assert!(warned.contains("member of 'opbr'"), "{warned}");
    // Room for 50 bytes of outer headers (IPv4) and the VM's own
    // Ethernet header: what the kernel's vxlan behind a bridge gets.
    assert!(raised("p1") >= 64, "{}", raised("p1"));
    assert_eq!(raised("p2"), 0);
    assert_eq!(headroom_and_master(&s.host, "p2").1, "opbr");
    let status: serde_json::Value = serde_json::from_str(&v.ok(&["status", "--json"])).unwrap();
    let by_port: Vec<(String, bool)> = status["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["port"].as_str().unwrap().to_owned(),
                p["headroom"] == true,
            )
        })
        .collect();
    assert_eq!(by_port, [("p1".to_owned(), true), ("p2".to_owned(), false)]);
    // A tap (a VM's port under QEMU) joins too: tun passes the room on to
    // the frames it builds from what the VM writes (it does not show it
    // as its own headroom).
    s.host.ok(&["ip", "tuntap", "add", "t1", "mode", "tap"]);
    v.ok(&["port", "add", "t1", "--vni", "100"]);
    let bridge = headroom_and_master(&s.host, "p1").1;
    assert_eq!(headroom_and_master(&s.host, "t1").1, bridge);
    v.ok(&["port", "del", "t1"]);
    assert_eq!(headroom_and_master(&s.host, "t1").1, "");
    s.host.ok(&["ip", "tuntap", "del", "t1", "mode", "tap"]);
    v.ok(&["port", "del", "p1"]);
    assert_eq!(headroom_and_master(&s.host, "p1"), (0, String::new()));
    assert_eq!(raised("p1"), 0);
    v.ok(&["port", "add", "p1", "--vni", "100"]);
    assert!(raised("p1") >= 64);
    let bridge = headroom_and_master(&s.host, "p1").1;
    assert!(bridge.starts_with("vth"), "{bridge}");
    let v6 = format!("/proc/sys/net/ipv6/conf/{bridge}/disable_ipv6");
    assert_eq!(s.host.ok(&["cat", &v6]).trim(), "1");
    // A port bound by a version before this (no room) gets it at the
    // upgrade in place.
    s.host.ok(&["ip", "link", "set", "p1", "nomaster"]);
    assert_eq!(raised("p1"), 0);
    v.ok(&["up", "--underlay", "ul0", "--local-ip", "198.18.0.1"]);
    assert_eq!(headroom_and_master(&s.host, "p1").1, bridge);
    v.ok(&["down"]);
    assert_eq!(raised("p1"), 0);
    let vxlan = format!("vthx{}", &bridge[3..]);
    for dev in [bridge.as_str(), &vxlan] {
        assert!(!s.host.run(&["ip", "link", "show", dev]).status.success());
    }
    assert_eq!(headroom_and_master(&s.host, "p2").1, "opbr");
}
