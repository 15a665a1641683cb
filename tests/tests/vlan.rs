//! The VXLAN <-> VLAN gateway (issue 17), in network namespaces: trunk
//! ports of our VTEP to legacy segments, whose hosts sit on 802.1Q VLANs
//! bound to VNIs, against the kernel's vxlan on the other side: each VLAN
//! its own tenant, tags on the wire, local switching, VLAN translation,
//! ARP suppression, refused tags, MAC moves, per-binding counters.
//!
//! This kernel has no 8021q module, so a legacy host's VLAN interface is
//! emulated by two small TC programs on its `eth0` (the harness object's
//! `vlan_host_*`: tag what it sends, take only frames of its VLAN). A
//! legacy segment is a plain bridge (no VLAN filtering: it forwards
//! tagged frames as they are), as a switch's trunk would carry them.

use std::time::Duration;

mod harness;

use aya::programs::TcAttachType;
use harness::Attached;
use vtep_tests::{
    Capture, Netns, TempFile, Vtep,
    raw::send_raw,
    topo::{Kind, Overlay, VM_MTU, Vm, tcp_bytes},
    tshark_fields, veth, vtep_bin, wait_until,
};

/// Makes `dev` in `ns` a member of VLAN `vid`, as a VLAN interface would.
fn vlan_if(ns: &Netns, dev: &str, vid: u16) -> Attached {
    harness::attach(
        ns,
        dev,
        &[
            ("vlan_host_egress", TcAttachType::Egress),
            ("vlan_host_ingress", TcAttachType::Ingress),
        ],
        vid,
    )
}

/// A legacy host on a segment: its namespace and address, as a VM's.
struct Legacy {
    host: Vm,
    _vlan: Attached,
}

/// A legacy segment behind trunk `trunk` of `host`: a bridge in a switch
/// namespace, the trunk's peer `up0` on it, and one host per (VID,
/// address, MAC), each on its VLAN.
struct Segment {
    switch: Netns,
    hosts: Vec<Legacy>,
}

fn segment(host: &Netns, trunk: &str, members: &[(u16, &str, &str)]) -> Segment {
    let switch = Netns::new("sw");
    veth(host, trunk, &switch, "up0");
    host.ok(&["ip", "link", "set", trunk, "up"]);
    switch.ok(&["ip", "link", "add", "br0", "type", "bridge"]);
    switch.ok(&["ip", "link", "set", "br0", "up"]);
    switch.ok(&["ip", "link", "set", "up0", "master", "br0", "up"]);
    let hosts = members
        .iter()
        .enumerate()
        .map(|(i, (vid, cidr, mac))| {
            let ns = Netns::new("lh");
            let port = format!("h{i}");
            veth(&switch, &port, &ns, "eth0");
            switch.ok(&["ip", "link", "set", &port, "master", "br0", "up"]);
            ns.ok(&["ip", "link", "set", "eth0", "address", mac, "mtu", VM_MTU]);
            ns.addr("eth0", cidr);
            let vlan = vlan_if(&ns, "eth0", *vid);
            let ip = cidr.split('/').next().unwrap_or(cidr).to_owned();
            Legacy {
                host: Vm {
                    ns,
                    ip,
                    ip6: None,
                    mac: (*mac).to_owned(),
                },
                _vlan: vlan,
            }
        })
        .collect();
    Segment { switch, hosts }
}

fn ours(o: &Overlay) -> &Vtep {
    o.vteps[0].as_ref().expect("our VTEP on host 0")
}

const H10_MAC: &str = "02:00:00:0a:00:10";
const H20_MAC: &str = "02:00:00:14:00:10";

/// Host 0 (ours) with a trunk `tr0` to a segment where VLAN 10 (VNI 100)
/// and VLAN 20 (VNI 200) each have a host at 198.19.0.10; host 1 the
/// kernel's vxlan with a VM per VNI at 198.19.0.2.
fn trunked() -> (Overlay, Segment) {
    let o = Overlay::new(&[Kind::Ours, Kind::Kernel], &vtep_bin());
    let seg = segment(
        &o.net.hosts[0].ns,
        "tr0",
        &[
            (10, "198.19.0.10/24", H10_MAC),
            (20, "198.19.0.10/24", H20_MAC),
        ],
    );
    let v = ours(&o);
    v.ok(&["port", "add", "tr0", "--vni", "100", "--vlan", "10"]);
    v.ok(&["port", "add", "tr0", "--vni", "200", "--vlan", "20"]);
    (o, seg)
}

#[test]
fn legacy_vlans_reach_their_own_tenant_and_nothing_else() {
    let (o, seg) = trunked();
    let (h10, h20) = (&seg.hosts[0].host, &seg.hosts[1].host);
    let pcap = TempFile::new("trunk", ".pcap");
    let cap = Capture::start(&seg.switch, &["-i", "up0", "-w", pcap.arg()]);
    for (h, tenant) in [(h10, 0), (h20, 1)] {
        let vm = o.vm(1, tenant);
        assert!(
            h.ns.ping_until(&vm.ip, Duration::from_secs(5)) && h.ns.ping(&vm.ip, 3),
            "{} ({}) cannot reach its tenant's VM {}",
            h.ip,
            h.mac,
            vm.ip
        );
        let neigh = h.ns.ok(&["ip", "neigh", "show", &vm.ip]);
        assert!(
            neigh.contains(&vm.mac),
            "{} resolved {} to '{}', expected its own tenant's {}",
            h.mac,
            vm.ip,
            neigh.trim(),
            vm.mac
        );
    }
    // Broadcasts of each VNI towards the trunk (ARP for an address nobody
    // has, from the kernel side's VMs).
    for tenant in 0..2 {
        o.vm(1, tenant)
            .ns
            .run(&["ping", "-c", "2", "-i", "0.2", "-W", "1", "198.19.0.99"]);
    }
    cap.stop();
    let rows = tshark_fields(pcap.arg(), &[], &["vlan.id", "eth.src", "eth.dst"]);
    let (vm100, vm200) = (&o.vm(1, 0).mac, &o.vm(1, 1).mac);
    let stations = [H10_MAC, H20_MAC, vm100.as_str(), vm200.as_str()];
    let mut towards_h10 = 0;
    let mut bcast = [0, 0];
    for r in &rows {
        let (vid, src, dst) = (r[0].as_str(), r[1].as_str(), r[2].as_str());
        // The switch's own frames (IGMP reports of its bridge) are not the
        // tenants'.
        if !stations.contains(&src) && !stations.contains(&dst) {
            continue;
        }
        assert!(!vid.is_empty(), "an untagged frame on the trunk: {r:?}");
        if dst == H10_MAC {
            assert_eq!(
                vid, "10",
                "a frame for the VLAN 10 host tagged {vid}: {r:?}"
            );
            towards_h10 += 1;
        }
        if src == vm200 {
            assert_eq!(vid, "20", "VNI 200's traffic on VLAN {vid}: {r:?}");
        }
        if src == vm100 {
            assert_eq!(vid, "10", "VNI 100's traffic on VLAN {vid}: {r:?}");
        }
        if dst == "ff:ff:ff:ff:ff:ff" && (src == vm100 || src == vm200) {
            bcast[usize::from(src == vm200)] += 1;
        }
    }
    assert!(
        towards_h10 > 3,
        "{towards_h10} frames towards the VLAN 10 host"
    );
    assert!(
        bcast[0] > 0 && bcast[1] > 0,
        "broadcasts of VNI 100 and 200 on the trunk: {bcast:?}"
    );
    // TCP both ways between the VLAN 10 host and the kernel side's VM.
    for (server, client) in [(h10, o.vm(1, 0)), (o.vm(1, 0), h10)] {
        let bytes = tcp_bytes(server, client, 2);
        assert!(
            bytes > 10_000_000,
            "TCP {} -> {} moved only {bytes} bytes",
            client.ip,
            server.ip
        );
    }
    // Each binding counts its own traffic: VLAN 10 carried the TCP.
    let stats = ours(&o).stats();
    let binding = |vlan: u16| {
        stats["bindings"]
            .as_array()
            .expect("bindings")
            .iter()
            .find(|b| b["port"] == "tr0" && b["vlan"] == vlan)
            .unwrap_or_else(|| panic!("no binding tr0 VLAN {vlan} in {stats}"))
            .clone()
    };
    let (b10, b20) = (binding(10), binding(20));
    let n = |b: &serde_json::Value, k: &str| b[k].as_u64().unwrap_or(0);
    assert!(
        n(&b10, "rx_bytes") > 10_000_000 && n(&b10, "tx_bytes") > 10_000_000,
        "VLAN 10: {b10}"
    );
    assert!(
        n(&b20, "rx_packets") > 0 && n(&b20, "tx_packets") > 0 && n(&b20, "rx_bytes") < 1_000_000,
        "VLAN 20: {b20}"
    );
    // Each binding is its own location.
    let fdb: serde_json::Value =
        serde_json::from_str(&ours(&o).ok(&["fdb", "show", "--json"])).expect("JSON");
    for (mac, vni, vlan) in [(H10_MAC, 100, 10), (H20_MAC, 200, 20)] {
        let e = fdb
            .as_array()
            .expect("an array")
            .iter()
            .find(|e| e["mac"] == mac)
            .unwrap_or_else(|| panic!("{mac} not learned: {fdb}"));
        assert_eq!(
            (&e["vni"], &e["port"], &e["vlan"]),
            (&vni.into(), &"tr0".into(), &vlan.into()),
            "{e}"
        );
    }
}

#[test]
fn trunks_switch_locally_translate_vlans_and_refuse_what_they_do_not_carry() {
    let (o, seg) = trunked();
    let v = ours(&o);
    let host0 = &o.net.hosts[0].ns;
    // A second trunk whose VLAN 30 is VNI 100 too.
    let seg30 = segment(host0, "tr1", &[(30, "198.19.0.30/24", "02:00:00:1e:00:30")]);
    v.ok(&["port", "add", "tr1", "--vni", "100", "--vlan", "30"]);
    let (h10, h30) = (&seg.hosts[0].host, &seg30.hosts[0].host);

    // The access port's VM and the VLAN 10 host: switched on host 0.
    let pcap = TempFile::new("underlay", ".pcap");
    let cap = Capture::start(host0, &["-i", "ul0", "-w", pcap.arg(), "udp port 4789"]);
    let switched = v.counter("counters", "local_switch");
    let vm = o.vm(0, 0);
    assert!(
        vm.ns.ping_until(&h10.ip, Duration::from_secs(5)) && vm.ns.ping(&h10.ip, 3),
        "the access port's VM cannot reach the VLAN 10 host"
    );
    // VLAN translation: VLAN 10 and VLAN 30 are one segment through VNI 100.
    assert!(
        h10.ns.ping_until(&h30.ip, Duration::from_secs(5)) && h10.ns.ping(&h30.ip, 3),
        "VLAN 10's host cannot reach VLAN 30's"
    );
    cap.stop();
    // ARP may be flooded to the other host; no echo may cross.
    let crossed: Vec<Vec<String>> = tshark_fields(pcap.arg(), &[], &["vxlan.vni", "icmp.type"])
        .into_iter()
        .filter(|r| matches!(r.get(1).map(String::as_str), Some("8" | "0")))
        .collect();
    assert!(
        crossed.is_empty(),
        "echoes between local bindings crossed the underlay: {crossed:?}"
    );
    assert!(
        v.counter("counters", "local_switch") >= switched + 12,
        "local switching not counted"
    );

    // ARP suppression answers a VLAN host, tagged: a bound address nobody
    // has resolves to its binding's MAC.
    let suppressed = v.counter("counters", "arp_suppressed");
    v.ok(&[
        "neigh",
        "add",
        "198.19.0.77",
        "--vni",
        "100",
        "--mac",
        "02:00:00:00:77:77",
    ]);
    h10.ns.run(&["ping", "-c", "1", "-W", "1", "198.19.0.77"]);
    let neigh = h10.ns.ok(&["ip", "neigh", "show", "198.19.0.77"]);
    assert!(
        neigh.contains("02:00:00:00:77:77"),
        "the VLAN 10 host resolved the bound address to '{}'",
        neigh.trim()
    );
    assert!(v.counter("counters", "arp_suppressed") > suppressed);

    // What no binding carries is dropped and counted: a VLAN tr0 does not
    // carry, untagged frames (tr0 has no untagged binding), 802.1ad.
    let unbound = v.counter("drop_reasons", "unbound_vlan");
    let qinq = v.counter("drop_reasons", "qinq");
    let frame = |tag: &[u8]| {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0xee, 1]);
        f.extend_from_slice(tag);
        f.extend_from_slice(&[0x88, 0xb5]);
        f.extend_from_slice(&[0u8; 46]);
        f
    };
    send_raw(&seg.switch, "up0", &frame(&[0x81, 0x00, 0x00, 40]), 3);
    send_raw(&seg.switch, "up0", &frame(&[]), 2);
    send_raw(&seg.switch, "up0", &frame(&[0x88, 0xa8, 0x00, 10]), 4);
    assert!(
        wait_until(Duration::from_secs(3), || {
            v.counter("drop_reasons", "unbound_vlan") >= unbound + 5
                && v.counter("drop_reasons", "qinq") >= qinq + 4
        }),
        "unbound_vlan {} (was {unbound}), qinq {} (was {qinq})",
        v.counter("drop_reasons", "unbound_vlan"),
        v.counter("drop_reasons", "qinq")
    );
}

#[test]
fn a_mac_moving_between_a_vlan_host_and_a_vm_is_re_pointed() {
    let (o, seg) = trunked();
    let v = ours(&o);
    let events = v.spawn(&["events", "--json"]);
    std::thread::sleep(Duration::from_millis(300));
    let mover = "02:00:00:00:4d:01";
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&[2, 0, 0, 0, 0x4d, 1, 0x88, 0xb5]);
    frame.extend_from_slice(&[0u8; 46]);
    let at = || -> Option<serde_json::Value> {
        let fdb: serde_json::Value =
            serde_json::from_str(&v.ok(&["fdb", "show", "--vni", "100", "--json"])).ok()?;
        fdb.as_array()?.iter().find(|e| e["mac"] == mover).cloned()
    };
    let place = |e: &serde_json::Value| (e["port"].clone(), e["vlan"].clone());
    let h10 = &seg.hosts[0].host;
    let vm = o.vm(0, 0);
    let trunk = ("tr0".into(), 10.into());
    let access = ("p100".into(), serde_json::Value::Null);
    for (from, want) in [(&h10.ns, &trunk), (&vm.ns, &access), (&h10.ns, &trunk)] {
        send_raw(from, "eth0", &frame, 1);
        assert!(
            wait_until(Duration::from_secs(3), || at()
                .is_some_and(|e| place(&e) == *want)),
            "{mover} not at {want:?}: {:?}",
            at()
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let out = events.interrupt();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &serde_json::Value| e["mac"] == mover)
        .collect();
    let kinds: Vec<&str> = lines.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds, ["learned", "moved", "moved"], "{lines:?}");
    assert_eq!(
        lines[1]["old"],
        serde_json::json!({"port": "tr0", "vlan": 10})
    );
    assert_eq!(lines[1]["new"], serde_json::json!({"port": "p100"}));
    assert_eq!(
        lines[2]["new"],
        serde_json::json!({"port": "tr0", "vlan": 10})
    );
}

#[test]
fn bindings_refused_in_one_line_with_nothing_applied() {
    let (o, seg) = trunked();
    let v = ours(&o);
    let before = v.map_dump("PORTS");
    for (args, says) in [
        (
            &["port", "add", "tr0", "--vni", "100", "--vlan", "10"][..],
            "port 'tr0' VLAN 10 is already bound to VNI 100",
        ),
        (
            &["port", "add", "tr0", "--vni", "100", "--vlan", "4095"][..],
            "invalid VLAN '4095'",
        ),
        (
            &["port", "add", "tr0", "--vni", "999", "--vlan", "30"][..],
            "VNI 999 is not configured",
        ),
        (
            &["port", "del", "tr0", "--vlan", "30"][..],
            "interface 'tr0' VLAN 30 is not a port",
        ),
    ] {
        let err = v.fails(args);
        assert!(err.contains(says), "`{}`: {err}", args.join(" "));
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    assert_eq!(
        v.map_dump("PORTS"),
        before,
        "a refused command changed the bindings"
    );
    // One binding goes, the other stays and keeps the port attached.
    v.ok(&["port", "del", "tr0", "--vlan", "20"]);
    let ports = v.map_dump("PORTS");
    let left: Vec<_> = ports
        .as_array()
        .expect("an array")
        .iter()
        .filter(|p| p["port"] == "tr0")
        .map(|p| p["vlan"].clone())
        .collect();
    assert_eq!(left, [serde_json::json!(10)], "{ports}");
    // The trunk keeps its program for VLAN 10; VLAN 20 is unbound.
    let (h10, h20) = (&seg.hosts[0].host, &seg.hosts[1].host);
    let vm = &o.vm(1, 0).ip;
    assert!(
        h10.ns.ping_until(vm, Duration::from_secs(5)),
        "VLAN 10 lost its way out with VLAN 20's binding"
    );
    let unbound = v.counter("drop_reasons", "unbound_vlan");
    assert!(!h20.ns.ping(vm, 2), "VLAN 20 still carried once unbound");
    assert!(v.counter("drop_reasons", "unbound_vlan") > unbound);
}
