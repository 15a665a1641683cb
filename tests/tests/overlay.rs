//! The overlay end to end, in network namespaces: our VTEP against the
//! kernel's vxlan + bridge and against itself across a routed underlay,
//! tenant isolation, and what goes on the wire.

use std::time::Duration;

use vtep_tests::{
    Bg, Capture,
    topo::{Kind, Overlay, TENANTS, tcp_bytes},
    vtep_bin,
};

const PEER: [&str; 2] = ["198.19.0.2", "198.19.0.1"];

/// Ping both ways in both tenants (ARP resolved through flooding), each
/// VM's neighbour entry is its own tenant's peer, and TCP flows both ways.
fn check_overlay(o: &Overlay) {
    for (t, (vni, _)) in TENANTS.iter().enumerate() {
        for (h, peer) in PEER.iter().enumerate() {
            let vm = o.vm(h, t);
            assert!(
                vm.ns.ping_until(peer, Duration::from_secs(5)) && vm.ns.ping(peer, 3),
                "VNI {vni}: ping {} -> {peer} failed",
                vm.ip
            );
            let neigh = vm.ns.ok(&["ip", "neigh", "show", peer]);
            let peer_mac = &o.vm(1 - h, t).mac;
            assert!(
                neigh.contains(peer_mac.as_str()),
                "VNI {vni}: {} resolved {peer} to '{}', expected its own tenant's {peer_mac}",
                vm.ip,
                neigh.trim()
            );
        }
    }
    for (server, client) in [(1, 0), (0, 1)] {
        let bytes = tcp_bytes(o.vm(server, 0), o.vm(client, 0), 2);
        // 10 MB in 2 s is a floor far below what even a loaded machine
        // moves; a broken checksum or segmentation path moves ~nothing.
        assert!(
            bytes > 10_000_000,
            "TCP {} -> {} moved only {bytes} bytes",
            o.vm(client, 0).ip,
            o.vm(server, 0).ip
        );
    }
}

#[test]
fn interoperates_with_kernel_vxlan_across_a_router() {
    let o = Overlay::new(&[Kind::Ours, Kind::Kernel], &vtep_bin());
    check_overlay(&o);
    let v = o.vteps[0].as_ref().expect("host 0 runs our VTEP");
    let s = v.stats();
    for vni in s["vnis"].as_array().expect("vnis") {
        assert!(vni["rx_packets"].as_u64() > Some(0), "{vni}");
        assert!(vni["tx_packets"].as_u64() > Some(0), "{vni}");
    }
}

#[test]
fn two_of_ours_interoperate() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    // Tenant 100 with static FDB entries (unicast encap/decap), tenant 200
    // with flooding only.
    o.static_fdb(0);
    check_overlay(&o);
    for v in o.vteps.iter().flatten() {
        assert!(v.counter("counters", "encap_unicast") > 0);
        let (delivered, decided) = (
            v.counter("counters", "decap_skb"),
            v.counter("counters", "decap_cache_fill"),
        );
        // Pings and TCP streams are long conversations: most of their
        // frames are decided from the decap cache, and what the checks
        // above saw arrive is what the cache decided.
        assert!(
            decided > 0 && delivered > 10 * decided,
            "{delivered} frames delivered, {decided} decided from the tables"
        );
    }
    // ARP went out by flooding; with data-plane learning, the answers may
    // not have needed to, so the floods are counted over both VTEPs.
    let total = |name: &str| -> u64 {
        o.vteps
            .iter()
            .flatten()
            .map(|v| v.counter("counters", name))
            .sum()
    };
    assert!(total("encap_flood") > 0);
    assert!(total("decap_flood") > 0);
}

#[test]
fn tenant_b_sees_none_of_tenant_a() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    let caps: Vec<Capture> = (0..2)
        .map(|h| Capture::start(&o.vm(h, 1).ns, &["-i", "eth0"]))
        .collect();
    let a = o.vm(0, 0);
    assert!(a.ns.ping_until(PEER[0], Duration::from_secs(5)));
    // Broadcast (flooded) and unicast load in tenant A.
    a.ns.run(&[
        "ping",
        "-b",
        "-c",
        "50",
        "-i",
        "0.01",
        "-W",
        "1",
        "198.19.0.255",
    ]);
    a.ns.run(&["ping", "-c", "200", "-i", "0.005", "-q", PEER[0]]);
    assert!(tcp_bytes(o.vm(1, 0), a, 1) > 0);
    for (h, cap) in caps.into_iter().enumerate() {
        let seen = cap.stop();
        assert!(
            seen.matched == 0 && seen.lines.is_empty(),
            "tenant-B VM on host {h} saw {} frames of tenant A: {:?}",
            seen.matched,
            seen.lines
        );
    }
}

#[test]
fn wire_format_follows_rfc7348() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    o.static_fdb(0);
    let pcap = vtep_tests::TempFile::new("wire", ".pcap");
    let pcap_s = pcap.arg().to_owned();
    let router = &o.net.router;
    let cap = Capture::start(
        router,
        &["-i", "r1", "-U", "-w", &pcap_s, "udp", "port", "4789"],
    );
    let a = o.vm(0, 0);
    assert!(a.ns.ping_until(PEER[0], Duration::from_secs(5)));
    // Many inner flows: 8 parallel TCP connections.
    let _srv: Bg = o.vm(1, 0).ns.spawn(&["iperf3", "-s", "-1", "-B", PEER[0]]);
    o.vm(1, 0).ns.wait_listening(5201);
    a.ns.ok(&["iperf3", "-c", PEER[0], "-t", "1", "-P", "8", "-l", "1000"]);
    cap.stop();
    let rows = vtep_tests::tshark_fields(
        &pcap_s,
        &["ip.check_checksum:TRUE"],
        &[
            "ip.src",
            "ip.flags.df",
            "ip.checksum.status",
            "udp.srcport",
            "udp.checksum",
            "vxlan.vni",
            "udp.payload",
        ],
    );
    let ours = &o.net.hosts[0].ip;
    let mut ports = std::collections::BTreeSet::new();
    let mut n = 0;
    for f in &rows {
        let line = f.join(",");
        assert_eq!(f.len(), 7, "{line}");
        assert_eq!(f[5], "100", "tshark decodes VXLAN with VNI 100: {line}");
        // The raw VXLAN header (RFC 7348 §5): flags 0x08 (I set, R bits
        // zero), 24 reserved bits zero, VNI 100, 8 reserved bits zero.
        let payload = f[6].replace(':', "");
        assert_eq!(&payload[..16], "0800000000006400", "VXLAN header: {line}");
        assert_eq!(f[4], "0x0000", "UDP checksum zero: {line}");
        assert_eq!(f[2], "1", "IPv4 header checksum good: {line}");
        let port: u16 = f[3].parse().expect("UDP source port");
        assert!(port >= 49152, "source port {port} below 49152: {line}");
        if f[0] == *ours {
            assert_eq!(f[1], "1", "DF set by default: {line}");
            ports.insert(port);
            n += 1;
        }
    }
    assert!(n > 100, "only {n} VXLAN packets from our VTEP captured");
    // 8 TCP flows and ICMP: inner flows spread over outer source ports.
    assert!(
        ports.len() >= 5,
        "only {} distinct source ports: {ports:?}",
        ports.len()
    );
}

#[test]
fn xdp_delivery_to_a_port_that_accepts_xdp_frames() {
    // XDP delivery needs XDP on the underlay: native (a veth has it).
    let o = Overlay::with_up_args(
        &[Kind::Ours, Kind::Ours],
        &vtep_bin(),
        &["--xdp-mode", "native"],
    );
    // A veth accepts XDP-redirected frames once its peer (the VM side) has
    // GRO on: rebind host 1's tenant-100 port with --deliver xdp.
    let vm = o.vm(1, 0);
    vm.ns.ok(&["ethtool", "-K", "eth0", "gro", "on"]);
    let v = o.vteps[1].as_ref().expect("our VTEP");
    v.ok(&["port", "del", "p100"]);
    v.ok(&["port", "add", "p100", "--vni", "100", "--deliver", "xdp"]);
    o.static_fdb(0);
    let a = o.vm(0, 0);
    assert!(a.ns.ping_until(PEER[0], Duration::from_secs(5)) && a.ns.ping(PEER[0], 5));
    assert!(v.counter("counters", "decap_xdp") >= 5);
    let bytes = tcp_bytes(vm, a, 2);
    assert!(
        bytes > 10_000_000,
        "TCP over XDP delivery moved only {bytes} bytes"
    );
}

/// What no table tells, a port's MTU, is read again once a cached
/// decision expires: with no daemon, a lowered MTU is felt within the
/// decap cache's life (at most 500 ms, counted in the kernel's real
/// ticks), though the conversation keeps its entry warm.
#[test]
fn a_ports_lowered_mtu_is_felt_within_a_cached_decisions_life() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    o.static_fdb(0);
    let a = o.vm(0, 0);
    assert!(a.ns.ping_until(PEER[0], Duration::from_secs(5)));
    // 1378 bytes of IPv4: a 1392-byte frame, within the underlay's 1450
    // for an inner frame and the port's 1500 before the change.
    let big = |count: &str| {
        a.ns.run(&[
            "ping", "-c", count, "-i", "0.05", "-W", "1", "-M", "do", "-s", "1350", PEER[0],
        ])
    };
    assert!(big("10").status.success(), "1392-byte frames did not pass");
    o.net.hosts[1]
        .ns
        .ok(&["ip", "link", "set", "p100", "mtu", "1300"]);
    let v = o.vteps[1].as_ref().unwrap();
    let before = v.counter("drop_reasons", "too_big");
    big("30");
    // 30 frames 50 ms apart: those after the entry made before the change
    // expired (at most 500 ms, some 11 frames) are judged by the new MTU.
    let judged = v.counter("drop_reasons", "too_big") - before;
    assert!(
        judged >= 15,
        "only {judged} of 30 frames over the lowered MTU were dropped as too big"
    );
}

#[test]
fn frames_too_big_for_the_underlay_get_icmp_frag_needed() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    o.static_fdb(0);
    let a = o.vm(0, 0);
    // 1500 bytes of IPv4 + 14 + 50 exceed the 1500-byte underlay.
    a.ns.ok(&["ip", "link", "set", "eth0", "mtu", "1500"]);
    assert!(a.ns.ping_until(PEER[0], Duration::from_secs(5)));
    let v = o.vteps[0].as_ref().unwrap();
    let big = a.ns.run(&[
        "ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1472", PEER[0],
    ]);
    let text = String::from_utf8_lossy(&big.stdout);
    assert!(!big.status.success());
    assert!(
        text.contains("mtu = 1450"),
        "no fragmentation-needed answer: {text}"
    );
    assert!(v.counter("counters", "icmp_frag_needed") >= 1);
    assert!(v.counter("drop_reasons", "too_big") >= 1);
    // The VM learned the path MTU: what fits goes through.
    let route = a.ns.ok(&["ip", "route", "get", PEER[0]]);
    assert!(route.contains("mtu 1450"), "{route}");
    assert!(
        a.ns.ping(PEER[0], 2)
            && a.ns
                .run(&[
                    "ping", "-c", "2", "-i", "0.2", "-M", "do", "-s", "1422", PEER[0]
                ])
                .status
                .success()
    );
    // A jumbo VM: the frame exceeds the underlay before encapsulation.
    let j = o.vm(0, 1);
    j.ns.ok(&["ip", "link", "set", "eth0", "mtu", "9000"]);
    o.net.hosts[0]
        .ns
        .ok(&["ip", "link", "set", "p200", "mtu", "9000"]);
    assert!(j.ns.ping_until(PEER[0], Duration::from_secs(5)));
    let jumbo = j.ns.run(&[
        "ping", "-c", "1", "-W", "1", "-M", "do", "-s", "3000", PEER[0],
    ]);
    let text = String::from_utf8_lossy(&jumbo.stdout);
    assert!(
        text.contains("mtu = 1450"),
        "jumbo frame not answered: {text}"
    );
    assert_eq!(v.counter("drop_reasons", "no_route"), 0);
    // TCP from the VM (TSO super-packets whose segments are too big) finds
    // the path MTU too instead of black-holing.
    let bytes = tcp_bytes(o.vm(1, 0), a, 2);
    assert!(
        bytes > 10_000_000,
        "TCP over a too-small path moved only {bytes} bytes"
    );
}

/// Counter `name` of the `prefix` lines of `file` (`/proc/net/snmp`
/// style: a line of names, then one of values) in namespace `ns`.
fn snmp(ns: &vtep_tests::Netns, file: &str, prefix: &str, name: &str) -> u64 {
    let text = ns.ok(&["cat", file]);
    let mut rows = text.lines().filter(|l| l.starts_with(prefix));
    let (names, values) = (rows.next().unwrap(), rows.next().unwrap());
    let at = names
        .split_whitespace()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("no {name} in {file}"));
    values.split_whitespace().nth(at).unwrap().parse().unwrap()
}

/// That host 0's VM took its TCP merged: its IP layer took fewer packets
/// (skbs) than segments.
fn assert_tcp_merged(o: &Overlay) {
    let vm = &o.vm(0, 0).ns;
    let (packets, segments) = (
        snmp(vm, "/proc/net/snmp", "Ip:", "InReceives"),
        snmp(vm, "/proc/net/netstat", "IpExt:", "InNoECTPkts"),
    );
    assert!(
        packets * 2 < segments,
        "VM {}: {packets} IP packets for {segments} segments: GRO merged little",
        o.vm(0, 0).ip
    );
}

#[test]
fn decap_in_xdp_on_a_veth_underlay_when_asked() {
    // `auto` decapsulates in TC on a veth; native XDP where asked for,
    // against the kernel's vxlan: GRO merges the inner frames XDP passes
    // up, no merge device.
    let o = Overlay::with_up_args(
        &[Kind::Ours, Kind::Kernel],
        &vtep_bin(),
        &["--xdp-mode", "native"],
    );
    check_overlay(&o);
    let v = o.vteps[0].as_ref().expect("host 0 runs our VTEP");
    let s: serde_json::Value = serde_json::from_str(&v.ok(&["status", "--json"])).unwrap();
    assert_eq!(s["datapath"]["xdp_mode"], "native", "{s}");
    assert!(
        s["attachments"]["link_decap_merged"].is_null(),
        "no merge device with XDP: {s}"
    );
    assert_tcp_merged(&o);
    assert!(v.counter("counters", "decap_skb") > 0 && v.counter("counters", "decap_flood") > 0);
}

#[test]
fn decap_in_tc_on_an_underlay_without_xdp() {
    // Host 0 decapsulates in TC (no XDP on its underlay) against the
    // kernel's vxlan: flooding, ARP, unicast both ways, TCP.
    let o = Overlay::with_up_args(
        &[Kind::Ours, Kind::Kernel],
        &vtep_bin(),
        &["--xdp-mode", "off"],
    );
    check_overlay(&o);
    let v = o.vteps[0].as_ref().expect("host 0 runs our VTEP");
    let status = |v: &vtep_tests::Vtep| -> serde_json::Value {
        serde_json::from_str(&v.ok(&["status", "--json"])).unwrap()
    };
    let s = status(v);
    assert_eq!(s["datapath"]["xdp_mode"], "off", "{s}");
    assert!(
        s["attachments"]["link_xdp"].is_null(),
        "no XDP attached: {s}"
    );
    let host = &o.net.hosts[0];
    let xdp = host.ns.ok(&["ip", "-d", "link", "show", &host.dev]);
    assert!(!xdp.contains("xdp"), "XDP on the underlay: {xdp}");
    // GRO merged TCP segments on the underlay for the merge device, whose
    // frames the VM's IP layer took as fewer packets (skbs) than segments.
    let merged = host.merged_packets();
    assert!(merged > 100, "{merged} merged packets");
    assert_tcp_merged(&o);
    let (delivered, flooded) = (
        v.counter("counters", "decap_skb"),
        v.counter("counters", "decap_flood"),
    );
    assert!(
        delivered > 0 && flooded > 0,
        "{delivered} delivered, {flooded} flooded"
    );
    // An upgrade in place keeps the mode (no --xdp-mode given).
    v.ok(&["up", "--underlay", &host.dev, "--local-ip", &host.ip]);
    assert_eq!(status(v)["datapath"]["xdp_mode"], "off");
    check_overlay(&o);
    assert!(v.counter("counters", "decap_skb") > delivered);
    // Segments the kernel's vxlan sent in paged skbs are judged by their
    // whole length, not the linear part's; the merge device takes nothing
    // for another address.
    for reason in ["not_to_us", "malformed"] {
        assert_eq!(v.counter("drop_reasons", reason), 0, "{reason}");
    }
}
