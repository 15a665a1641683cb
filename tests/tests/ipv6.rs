//! An IPv6 underlay end to end (issue 15), in network namespaces: our VTEP
//! against the kernel's vxlan (with `udp6zerocsumrx`) and against itself
//! across an IPv6 router, tenants speaking IPv4 and IPv6, what goes on
//! the wire, and one underlay family per instance.

mod link;

use std::time::Duration;

use vtep_tests::{
    Bg, Capture, ConfigFile, Vtep,
    evpn::Gobgpd,
    topo::{Family, Kind, Overlay, RoutedUnderlay, TENANTS, tcp_bytes_to, vm_on},
    vtep_bin,
};

/// Pings both ways in both tenants over IPv4 (each VM resolving its own
/// tenant's peer) and in tenant 100 over IPv6 (neighbour discovery through
/// flooding), and TCP both ways over both.
fn check_overlay(o: &Overlay) {
    for (t, (vni, _)) in TENANTS.iter().enumerate() {
        for h in 0..2 {
            let (vm, peer) = (o.vm(h, t), o.vm(1 - h, t));
            let mut targets = vec![peer.ip.as_str()];
            if t == 0 {
                targets.push(
                    peer.ip6
                        .as_deref()
                        .expect("VMs of an IPv6 overlay have IPv6"),
                );
            }
            for dst in targets {
                assert!(
                    vm.ns.ping_until(dst, Duration::from_secs(5)) && vm.ns.ping(dst, 3),
                    "VNI {vni}: ping {} -> {dst} failed",
                    vm.ip
                );
            }
            let neigh = vm.ns.ok(&["ip", "neigh", "show", &peer.ip]);
            assert!(
                neigh.contains(peer.mac.as_str()),
                "VNI {vni}: {} resolved {} to '{}', expected its own tenant's {}",
                vm.ip,
                peer.ip,
                neigh.trim(),
                peer.mac
            );
        }
    }
    for (server, client) in [(1, 0), (0, 1)] {
        let (s, c) = (o.vm(server, 0), o.vm(client, 0));
        for addr in [s.ip.as_str(), s.ip6.as_deref().expect("IPv6")] {
            let bytes = tcp_bytes_to(s, addr, c, 2);
            // As over IPv4: a broken checksum or segmentation path moves
            // next to nothing, a working one far more than 10 MB.
            assert!(
                bytes > 10_000_000,
                "TCP {} -> {addr} moved only {bytes} bytes",
                c.ip
            );
        }
    }
}

#[test]
fn ipv6_underlay_interoperates_with_kernel_vxlan_across_a_router() {
    let o = Overlay::over(Family::V6, &[Kind::Ours, Kind::Kernel], &vtep_bin(), &[]);
    let pcap = vtep_tests::TempFile::new("wire6", ".pcap");
    let pcap_s = pcap.arg().to_owned();
    check_overlay(&o);
    // Many inner flows: 8 parallel TCP connections over IPv6, at a rate
    // that keeps the capture small (headers only).
    let (a, b) = (o.vm(0, 0), o.vm(1, 0));
    let b6 = b.ip6.as_deref().expect("IPv6");
    let _srv: Bg = b.ns.spawn(&["iperf3", "-s", "-1", "-B", b6]);
    b.ns.wait_listening(5201);
    let cap = Capture::start(
        &o.net.router,
        &[
            "-i", "r1", "-U", "-s", "128", "-w", &pcap_s, "udp", "port", "4789",
        ],
    );
    a.ns.ok(&[
        "iperf3", "-c", b6, "-t", "1", "-P", "8", "-l", "1000", "-b", "4M",
    ]);
    cap.stop();
    // IPv6 source, flow label, hop limit, UDP source and destination port,
    // UDP checksum, VNI, UDP payload.
    let rows = vtep_tests::tshark_fields(
        &pcap_s,
        &[],
        &[
            "ipv6.src",
            "ipv6.flow",
            "ipv6.hlim",
            "udp.srcport",
            "udp.dstport",
            "udp.checksum",
            "vxlan.vni",
            "udp.payload",
        ],
    );
    let ours = &o.net.hosts[0].ip;
    let (mut ports, mut labels, mut n) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
        0,
    );
    for f in rows.iter().filter(|f| f[0] == *ours) {
        let line = f.join(",");
        assert_eq!(f.len(), 8, "{line}");
        assert_eq!(f[4], "4789", "to the VXLAN port: {line}");
        assert_eq!(f[2], "64", "hop limit = --ttl's default: {line}");
        assert_eq!(f[5], "0x0000", "UDP checksum zero (RFC 6935): {line}");
        assert!(f[6] == "100" || f[6] == "200", "VNI: {line}");
        // The raw VXLAN header (RFC 7348 §5): I flag only, reserved zero.
        let payload = f[7].replace(':', "");
        assert_eq!(&payload[..8], "08000000", "VXLAN flags: {line}");
        let port: u16 = f[3].parse().expect("UDP source port");
        assert!(port >= 49152, "source port {port} below 49152: {line}");
        ports.insert(port);
        labels.insert(f[1].clone());
        n += 1;
    }
    assert!(
        n > 100,
        "only {n} VXLAN packets over IPv6 from our VTEP captured"
    );
    assert!(
        ports.len() >= 5,
        "only {} source ports: {ports:?}",
        ports.len()
    );
    assert!(
        labels.len() >= 5,
        "flow labels follow the inner flows: only {labels:?}"
    );
    let v = o.vteps[0].as_ref().expect("host 0 runs our VTEP");
    let s = v.stats();
    for vni in s["vnis"].as_array().expect("vnis") {
        assert!(vni["rx_packets"].as_u64() > Some(0), "{vni}");
        assert!(vni["tx_packets"].as_u64() > Some(0), "{vni}");
    }
    let remotes = s["remotes"].as_array().expect("stats per remote VTEP");
    assert!(
        remotes.iter().any(
            |r| r["remote"] == o.net.hosts[1].ip.as_str() && r["rx_packets"].as_u64() > Some(0)
        ),
        "stats name the IPv6 remote: {remotes:?}"
    );
}

#[test]
fn two_of_ours_interoperate_over_ipv6() {
    let o = Overlay::over(Family::V6, &[Kind::Ours, Kind::Ours], &vtep_bin(), &[]);
    // Tenant 100 with static FDB entries (unicast encap/decap, IPv6
    // remotes), tenant 200 with flooding only.
    o.static_fdb(0);
    check_overlay(&o);
    for v in o.vteps.iter().flatten() {
        assert!(v.counter("counters", "encap_unicast") > 0);
        assert!(v.counter("counters", "decap_cache_fill") > 0);
        let fdb = v.ok(&["fdb", "show", "--vni", "100"]);
        assert!(fdb.contains("2001:2:0:"), "IPv6 remotes in the FDB: {fdb}");
    }
    // The VMs leave room for 70 bytes of outer headers and their own
    // Ethernet header in front of their frames.
    let room = link::headroom_and_master(&o.vm(0, 0).ns, "eth0").0;
    assert!(room >= 84, "{room}");
}

#[test]
fn two_of_ours_decapsulating_in_tc_merge_tcp_over_ipv6() {
    // No XDP on either underlay: what GRO merges (the VMs' TCP, sent with
    // zero UDP checksums) is decapsulated by each host's merge device and
    // decided behind it; the rest in TC.
    let o = Overlay::over(
        Family::V6,
        &[Kind::Ours, Kind::Ours],
        &vtep_bin(),
        &["--xdp-mode", "off"],
    );
    o.static_fdb(0);
    check_overlay(&o);
    let (a, b) = (o.vm(0, 0), o.vm(1, 0));
    let bytes = tcp_bytes_to(b, b.ip6.as_deref().expect("IPv6"), a, 2);
    assert!(bytes > 10_000_000, "TCP over IPv6 moved only {bytes} bytes");
    for (h, v) in o.vteps.iter().flatten().enumerate() {
        let rx = o.net.hosts[h].merged_packets();
        assert!(rx > 100, "host {h}: {rx} packets merged");
        for reason in ["not_to_us", "malformed", "unknown_remote"] {
            assert_eq!(v.counter("drop_reasons", reason), 0, "host {h}: {reason}");
        }
    }
}

#[test]
fn one_instance_carries_one_underlay_family() {
    let o = Overlay::over(Family::V6, &[Kind::Ours], &vtep_bin(), &[]);
    let v = o.vteps[0].as_ref().expect("ours");
    let local = &o.net.hosts[0].ip;
    let want = format!(
        "remote VTEP 198.18.2.1 is IPv4, but this instance's local address {local} is IPv6: one instance carries one underlay family (bring up a second instance for the other)"
    );
    for args in [
        &["vni", "add", "300", "--flood", "2001:2:0:2::1,198.18.2.1"][..],
        &[
            "fdb",
            "add",
            "02:00:00:00:00:99",
            "--vni",
            "100",
            "--remote",
            "198.18.2.1",
        ][..],
    ] {
        let err = v.fails(args);
        assert!(err.contains(&want), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    let vnis = v.stats()["vnis"].clone();
    assert!(
        vnis.as_array()
            .expect("vnis")
            .iter()
            .all(|n| n["vni"] != 300),
        "nothing half-applied: {vnis}"
    );
}

#[test]
fn vms_find_the_path_mtu_over_an_ipv6_underlay() {
    let o = Overlay::over(Family::V6, &[Kind::Ours, Kind::Ours], &vtep_bin(), &[]);
    o.static_fdb(0);
    let (a, b) = (o.vm(0, 0), o.vm(1, 0));
    let b6 = b.ip6.as_deref().expect("IPv6");
    // 1500-byte packets + 14 + 70 exceed the 1500-byte underlay.
    a.ns.ok(&["ip", "link", "set", "eth0", "mtu", "1500"]);
    assert!(a.ns.ping_until(b6, Duration::from_secs(5)));
    let v = o.vteps[0].as_ref().expect("ours");
    // IPv6: Packet Too Big, and the VM's route cache holds the MTU.
    let big = a.ns.run(&["ping", "-c", "1", "-W", "1", "-s", "1452", b6]);
    let text = String::from_utf8_lossy(&big.stdout);
    assert!(!big.status.success(), "{text}");
    assert!(
        text.contains("Packet too big: mtu=1430"),
        "no Packet Too Big answer: {text}"
    );
    assert!(v.counter("counters", "icmp_packet_too_big") >= 1);
    let route = a.ns.ok(&["ip", "-6", "route", "get", b6]);
    assert!(route.contains("mtu 1430"), "{route}");
    // What fits goes through (the kernel fragments a larger ping now).
    assert!(a.ns.ping(b6, 2));
    let fits =
        a.ns.run(&["ping", "-c", "2", "-i", "0.2", "-M", "do", "-s", "1382", b6]);
    assert!(
        fits.status.success(),
        "{}",
        String::from_utf8_lossy(&fits.stdout)
    );
    // IPv4 with DF over the IPv6 underlay: fragmentation needed, MTU 1430.
    let big4 = a.ns.run(&[
        "ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1472", &b.ip,
    ]);
    let text = String::from_utf8_lossy(&big4.stdout);
    assert!(
        text.contains("mtu = 1430"),
        "no fragmentation needed: {text}"
    );
    let route = a.ns.ok(&["ip", "route", "get", &b.ip]);
    assert!(route.contains("mtu 1430"), "{route}");
    // TCP from a VM of MTU 1500 (TSO super-packets whose segments are too
    // big) finds the path MTU over both families instead of black-holing.
    for addr in [b6, b.ip.as_str()] {
        let bytes = tcp_bytes_to(b, addr, a, 2);
        assert!(
            bytes > 10_000_000,
            "TCP to {addr} over a too-small path moved only {bytes} bytes"
        );
    }
}

/// Neighbor Solicitations in VXLAN over IPv6 that our VTEP on host 0 sends:
/// a capture on its underlay for inner EtherType IPv6 (offsets from the
/// outer IPv6 header: UDP at 40, VXLAN at 48, inner Ethernet at 56),
/// next header ICMPv6 and ICMPv6 type 135.
fn ns_capture(o: &Overlay) -> Capture {
    Capture::start(
        &o.net.hosts[0].ns,
        &[
            "-i",
            "ul0",
            "src",
            "host",
            &o.net.hosts[0].ip,
            "and",
            "udp",
            "port",
            "4789",
            "and",
            "ip6[68:2]",
            "=",
            "0x86dd",
            "and",
            "ip6[76]",
            "=",
            "58",
            "and",
            "ip6[110]",
            "=",
            "135",
        ],
    )
}

/// Tenant 100's VM on host 0 forgets its IPv6 neighbours and pings host
/// 1's VM over IPv6 (the kernel solicits its MAC).
fn solicit(o: &Overlay) -> bool {
    let vm = &o.vm(0, 0).ns;
    vm.ok(&["ip", "-6", "neigh", "flush", "dev", "eth0"]);
    let peer = o.vm(1, 0).ip6.as_deref().expect("IPv6");
    vm.ping_until(peer, Duration::from_secs(5))
}

#[test]
fn neighbor_solicitations_for_a_known_binding_are_answered_locally() {
    let o = Overlay::over(Family::V6, &[Kind::Ours, Kind::Ours], &vtep_bin(), &[]);
    let v = o.vteps[0].as_ref().expect("ours");
    let peer = o.vm(1, 0);
    let peer6 = peer.ip6.as_deref().expect("IPv6");
    let flood = o.net.hosts[1].ip.clone();

    // Control: no binding, learning off: the solicitation crosses the
    // overlay (the capture's filter matches it).
    v.ok(&["vni", "add", "100", "--flood", &flood, "--no-learning"]);
    let cap = ns_capture(&o);
    assert!(solicit(&o));
    assert!(
        cap.stop().matched >= 1,
        "the capture saw no solicitation leave without a binding"
    );

    // A static binding: answered by the VTEP, nothing leaves for it.
    v.ok(&["neigh", "add", peer6, "--vni", "100", "--mac", &peer.mac]);
    let before = v.counter("counters", "nd_suppressed");
    let cap = ns_capture(&o);
    assert!(solicit(&o));
    let seen = cap.stop();
    assert_eq!(
        seen.matched, 0,
        "solicitations crossed the overlay despite the binding: {:?}",
        seen.lines
    );
    assert!(v.counter("counters", "nd_suppressed") > before);
    let neigh = o.vm(0, 0).ns.ok(&["ip", "-6", "neigh", "show", peer6]);
    assert!(neigh.contains(&peer.mac), "wrong answer: {neigh}");
    let shown: serde_json::Value =
        serde_json::from_str(&v.ok(&["neigh", "show", "--json"])).expect("JSON");
    assert!(
        shown
            .as_array()
            .expect("bindings")
            .iter()
            .any(|b| b["ip"] == peer6 && b["origin"] == "static"),
        "{shown}"
    );

    // A duplicate address detection probe for a bound address is never
    // answered: the VM that probes keeps the address.
    let probe = "2001:2:0:100::99";
    v.ok(&[
        "neigh",
        "add",
        probe,
        "--vni",
        "100",
        "--mac",
        "02:00:00:00:00:99",
    ]);
    let before = v.counter("counters", "nd_suppressed");
    let vm = &o.vm(0, 0).ns;
    vm.ok(&["sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=1"]);
    vm.ok(&["ip", "addr", "add", &format!("{probe}/64"), "dev", "eth0"]);
    // Probing (a second, RFC 4862 §5.1's RetransTimer): the check below
    // is not vacuous.
    let probing = vm.ok(&["ip", "-6", "addr", "show", "dev", "eth0"]);
    assert!(probing.contains("tentative"), "no DAD under way: {probing}");
    let settled = vtep_tests::wait_until(Duration::from_secs(5), || {
        !vm.ok(&["ip", "-6", "addr", "show", "dev", "eth0"])
            .contains("tentative")
    });
    let addrs = vm.ok(&["ip", "-6", "addr", "show", "dev", "eth0"]);
    assert!(settled && !addrs.contains("dadfailed"), "{addrs}");
    assert_eq!(v.counter("counters", "nd_suppressed"), before);
}

#[test]
fn evpn_routes_alone_build_an_ipv6_overlay() {
    let bpffs = vtep_tests::BpfFs::new();
    let net = RoutedUnderlay::of(Family::V6, 2);
    let vms: Vec<_> = (0..2)
        .map(|i| {
            vm_on(
                Family::V6,
                &net.hosts[i].ns,
                "p100",
                &format!("198.19.0.{}/24", i + 1),
                &format!("02:00:00:64:00:{:02x}", i + 1),
            )
        })
        .collect();
    let mut ours = Vec::new();
    for (i, host) in net.hosts.iter().enumerate() {
        // No flood list, no FDB entry: only routes. An IPv6 local address
        // needs an explicit (IPv4) router id.
        let config = ConfigFile::new(&format!(
            "underlay = \"ul0\"\nlocal_ip = \"{}\"\n[[vni]]\nvni = 100\n\
             [[port]]\niface = \"p100\"\nvni = 100\n\
             [evpn]\nasn = 65000\nrouter_id = \"198.18.{}.1\"\n\
             [[evpn.peer]]\naddress = \"{}\"\n",
            host.ip,
            i + 1,
            net.hosts[1 - i].ip
        ));
        let gobgpd = Gobgpd::start(&host.ns);
        let vtep = Vtep::new(&host.ns, &bpffs);
        let daemon = vtep.spawn(&["daemon", "--config", config.arg()]);
        ours.push((vtep, gobgpd, daemon, config));
    }
    for (a, b) in [(0, 1), (1, 0)] {
        let peer = &vms[b];
        for dst in [peer.ip.as_str(), peer.ip6.as_deref().expect("IPv6")] {
            assert!(
                vms[a].ns.ping_until(dst, Duration::from_secs(60)),
                "VM {} never reached {dst} from routes alone",
                vms[a].ip
            );
        }
    }
    let fdb: serde_json::Value =
        serde_json::from_str(&ours[0].0.ok(&["fdb", "show", "--json"])).expect("JSON");
    let entry = fdb
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["mac"] == vms[1].mac.as_str())
        .unwrap_or_else(|| panic!("no entry for B's VM: {fdb}"));
    assert_eq!(entry["origin"], "evpn", "{entry}");
    assert_eq!(entry["remote"], net.hosts[1].ip.as_str(), "{entry}");
    let show: serde_json::Value =
        serde_json::from_str(&ours[0].0.ok(&["evpn", "show", "--json"])).expect("JSON");
    assert!(
        show.to_string().contains(&net.hosts[1].ip),
        "evpn show names the IPv6 peer: {show}"
    );
}
