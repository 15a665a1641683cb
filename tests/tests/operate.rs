//! Operating a running VTEP: in-place upgrades and configuration changes
//! under traffic.

use std::time::Duration;

use vtep_tests::{
    Bg, Capture, ConfigFile, http, ping_summary,
    topo::{HOST0_CONFIG, Kind, Overlay, Vm},
    vtep_bin, wait_until,
};

/// A TCP stream of `secs` seconds from `client` to `server`, reported in
/// 250 ms intervals (iperf3 -J), started in the background. Paced at
/// 200 Mbit/s: these tests check that forwarding carries on through
/// restarts and upgrades; a stream saturating this 2-CPU machine (while
/// other tests run) overflows the veth queues and drops a ping now and
/// then whatever is being restarted.
fn tcp_stream(server: &Vm, client: &Vm, secs: u32) -> (Bg, Bg) {
    let srv = server.ns.spawn(&["iperf3", "-s", "-1", "-B", &server.ip]);
    server.ns.wait_listening(5201);
    let secs = secs.to_string();
    let cli = client.ns.spawn(&[
        "iperf3", "-c", &server.ip, "-t", &secs, "-i", "0.25", "-b", "200M", "-J",
    ]);
    (srv, cli)
}

/// Bytes per interval of a finished iperf3 -J client.
fn intervals(cli: Bg) -> Vec<u64> {
    let out = cli.finish(Duration::from_secs(20));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("iperf3 JSON");
    assert!(v.get("error").is_none(), "iperf3: {}", v["error"]);
    v["intervals"]
        .as_array()
        .expect("intervals")
        .iter()
        .map(|i| i["sum"]["bytes"].as_u64().unwrap_or(0))
        .collect()
}

#[test]
fn in_place_upgrade_loses_nothing() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    o.static_fdb(0);
    let (a, b) = (o.vm(0, 0), o.vm(1, 0));
    assert!(a.ns.ping_until("198.19.0.2", Duration::from_secs(5)));
    let v0 = o.vteps[0].as_ref().unwrap();
    let fdb_before = v0.ok(&["fdb", "show", "--json"]);
    let rx_before = v0.stats()["vnis"][0]["rx_packets"].as_u64().unwrap();

    let pinger =
        a.ns.spawn(&["ping", "-i", "0.01", "-c", "300", "-W", "1", "198.19.0.2"]);
    let (_srv, cli) = tcp_stream(b, a, 3);
    std::thread::sleep(Duration::from_millis(700));
    for (h, host) in o.net.hosts.iter().enumerate() {
        let v = o.vteps[h].as_ref().unwrap();
        v.ok(&["up", "--underlay", &host.dev, "--local-ip", &host.ip]);
        std::thread::sleep(Duration::from_millis(300));
    }
    v0.ok(&[
        "up",
        "--underlay",
        "ul0",
        "--local-ip",
        "198.18.1.1",
        "--ttl",
        "32",
    ]);

    let (sent, got) = ping_summary(&pinger.finish(Duration::from_secs(10)));
    println!("upgrades under traffic: {got} of {sent} pings answered");
    assert_eq!(sent, got, "pings lost across in-place upgrades");
    let iv = intervals(cli);
    assert!(iv.len() >= 10, "{iv:?}");
    assert!(iv.iter().all(|b| *b > 0), "the TCP stream stalled: {iv:?}");

    // Every entry and counter survived.
    let fdb_after = v0.ok(&["fdb", "show", "--json"]);
    let strip_age = |s: &str| -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["origin"] == "static")
            .cloned()
            .collect()
    };
    assert_eq!(strip_age(&fdb_before), strip_age(&fdb_after));
    assert!(v0.stats()["vnis"][0]["rx_packets"].as_u64().unwrap() > rx_before);

    // The last upgrade's programs run: they put TTL 32 on the wire.
    let cap = Capture::start(
        &o.net.router,
        &[
            "-i",
            "r1",
            "src",
            "host",
            "198.18.1.1",
            "and",
            "udp",
            "port",
            "4789",
            "and",
            "ip[8]",
            "=",
            "32",
        ],
    );
    assert!(a.ns.ping("198.19.0.2", 3));
    assert!(cap.stop().matched >= 3, "no TTL-32 VXLAN after the upgrade");
}

/// GETs http://127.0.0.1:9469/metrics inside the namespace, once the
/// daemon answers.
fn scrape(ns: &vtep_tests::Netns) -> String {
    let mut last = None;
    let answered = wait_until(Duration::from_secs(5), || {
        last = Some(http::get(ns, "127.0.0.1:9469", "/metrics"));
        matches!(&last, Some(Ok(a)) if a.status == 200)
    });
    assert!(answered, "the metrics endpoint never answered: {last:?}");
    last.and_then(Result::ok)
        .map(|a| a.body)
        .unwrap_or_default()
}

fn metric(text: &str, name: &str, label: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name}{{{label}}} in:\n{text}"))
}

#[test]
fn killing_the_daemon_never_touches_the_data_plane() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    o.static_fdb(0);
    let (a, b) = (o.vm(0, 0), o.vm(1, 0));
    assert!(a.ns.ping_until("198.19.0.2", Duration::from_secs(5)));
    let v0 = o.vteps[0].as_ref().unwrap();
    let daemon = v0.spawn(&["daemon"]);
    scrape(&o.net.hosts[0].ns);
    let pinger =
        a.ns.spawn(&["ping", "-i", "0.01", "-c", "300", "-W", "1", "198.19.0.2"]);
    let (_srv, cli) = tcp_stream(b, a, 3);
    std::thread::sleep(Duration::from_millis(700));
    vtep_tests::ok(&["kill", "-9", &daemon.id().to_string()]);
    drop(daemon);
    std::thread::sleep(Duration::from_millis(500));
    let daemon = v0.spawn(&["daemon"]);
    scrape(&o.net.hosts[0].ns);
    vtep_tests::ok(&["kill", "-9", &daemon.id().to_string()]);
    let (sent, got) = ping_summary(&pinger.finish(Duration::from_secs(10)));
    assert_eq!(sent, got, "pings lost while the daemon died and restarted");
    let iv = intervals(cli);
    assert!(iv.iter().all(|b| *b > 0), "the TCP stream stalled: {iv:?}");
}

#[test]
fn metrics_match_stats_and_grow_with_traffic() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    o.static_fdb(0);
    let v0 = o.vteps[0].as_ref().unwrap();
    let _daemon = v0.spawn(&["daemon"]);
    let host = &o.net.hosts[0].ns;
    assert!(o.vm(0, 0).ns.ping("198.19.0.2", 5));
    let text = scrape(host);
    let stats = v0.stats();
    let vni100 = &stats["vnis"][0];
    assert_eq!(vni100["vni"], 100);
    for (metric_name, field) in [
        ("vtep_vni_rx_packets_total", "rx_packets"),
        ("vtep_vni_tx_packets_total", "tx_packets"),
        ("vtep_vni_rx_bytes_total", "rx_bytes"),
    ] {
        let m = metric(&text, metric_name, "vni=\"100\"");
        assert_eq!(m, vni100[field].as_u64().unwrap(), "{metric_name}");
        assert!(m > 0, "{metric_name}");
    }
    assert_eq!(
        metric(&text, "vtep_fdb_entries", "origin=\"static\""),
        2,
        "the local VM on its port, the remote VM behind host 1"
    );
    assert!(o.vm(0, 0).ns.ping("198.19.0.2", 5));
    let again = scrape(host);
    assert!(
        metric(&again, "vtep_vni_rx_packets_total", "vni=\"100\"")
            >= metric(&text, "vtep_vni_rx_packets_total", "vni=\"100\"") + 5
    );
    let remote = &stats["remotes"][0];
    assert_eq!(remote["remote"], "198.18.2.1");
    for (metric_name, field) in [
        ("vtep_remote_rx_packets_total", "rx_packets"),
        ("vtep_remote_tx_packets_total", "tx_packets"),
        ("vtep_remote_tx_bytes_total", "tx_bytes"),
    ] {
        let m = metric(&text, metric_name, "remote=\"198.18.2.1\"");
        assert_eq!(m, remote[field].as_u64().unwrap(), "{metric_name}");
        assert!(m > 0, "{metric_name}");
    }
    // Loopback only by default.
    let listening = host.ok(&["ss", "-ltnH"]);
    assert!(listening.contains("127.0.0.1:9469"), "{listening}");
}

#[test]
fn sighup_applies_only_the_differences() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    let v0 = o.vteps[0].as_ref().unwrap();
    let base = HOST0_CONFIG;
    let with_200 = format!(
        "{base}[[vni]]\nvni = 200\nflood = [\"198.18.2.1\"]\n[[port]]\niface = \"p200\"\nvni = 200\n"
    );
    let config = ConfigFile::new(&with_200);
    let daemon = v0.spawn(&["daemon", "--config", config.arg()]);
    scrape(&o.net.hosts[0].ns);
    assert!(
        o.vm(0, 0)
            .ns
            .ping_until("198.19.0.2", Duration::from_secs(5))
    );
    assert!(
        o.vm(0, 1)
            .ns
            .ping_until("198.19.0.2", Duration::from_secs(5))
    );

    // Drop VNI 200 and its port, add a static entry in 100.
    let edited =
        format!("{base}[[fdb]]\nmac = \"02:00:00:00:77:77\"\nvni = 100\nremote = \"198.18.2.1\"\n");
    config.write(&edited);
    let pinger = o
        .vm(0, 0)
        .ns
        .spawn(&["ping", "-i", "0.01", "-c", "200", "-W", "1", "198.19.0.2"]);
    std::thread::sleep(Duration::from_millis(500));
    vtep_tests::ok(&["kill", "-HUP", &daemon.id().to_string()]);
    let (sent, got) = ping_summary(&pinger.finish(Duration::from_secs(10)));
    assert_eq!(
        sent, got,
        "the untouched tenant lost traffic during the reload"
    );

    let vnis = v0.map_dump("VNIS");
    assert_eq!(vnis.as_array().map(Vec::len), Some(1), "{vnis}");
    assert_eq!(vnis[0]["vni"], 100);
    let ports = v0.map_dump("PORTS");
    assert_eq!(ports.as_array().map(Vec::len), Some(1), "{ports}");
    assert_eq!(ports[0]["port"], "p100");
    let fdb = v0.ok(&["fdb", "show", "--json"]);
    assert!(fdb.contains("02:00:00:00:77:77"), "{fdb}");
    assert!(
        !o.vm(0, 1).ns.ping("198.19.0.2", 1),
        "VNI 200 still carries traffic"
    );
}

#[test]
fn maps_and_status_decode_what_was_put_in() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    o.static_fdb(0);
    let v0 = o.vteps[0].as_ref().unwrap();
    v0.ok(&[
        "neigh",
        "add",
        "198.19.0.2",
        "--vni",
        "100",
        "--mac",
        &o.vm(1, 0).mac,
    ]);
    v0.ok(&[
        "vni",
        "add",
        "200",
        "--flood",
        "198.18.2.1",
        "--bum-pps",
        "500",
    ]);
    let dump = |name: &str| v0.map_dump(name);
    let fdb = dump("FDB");
    let remote_vm = fdb
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["mac"] == o.vm(1, 0).mac)
        .expect("the remote VM's static entry");
    assert_eq!(remote_vm["at"]["remote"], "198.18.2.1");
    assert_eq!(remote_vm["vni"], 100);
    let vnis = dump("VNIS");
    assert_eq!(vnis[1]["vni"], 200);
    assert_eq!(vnis[1]["bum_pps"], 500);
    assert_eq!(vnis[1]["flood"][0], "198.18.2.1");
    assert_eq!(vnis[0]["ports"][0], "p100");
    let neighs = dump("NEIGHS");
    assert_eq!(neighs[0]["ip"], "198.19.0.2");
    assert_eq!(neighs[0]["mac"], o.vm(1, 0).mac);
    let remotes = dump("REMOTES");
    assert!(
        remotes
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["remote"] == "198.18.2.1" && r["vni"] == 100)
    );
    let peers = dump("PEERS");
    assert_eq!(peers[0]["remote"], "198.18.2.1");
    assert_eq!(peers[0]["vnis"], 2, "named by VNIs 100 and 200");
    assert!(peers[0]["slot"].as_u64() > Some(0), "slot 0 is never given");
    let peer_stats = dump("PEER_STATS");
    assert_eq!(peer_stats[0]["remote"], "198.18.2.1");
    let inst = dump("INSTANCE");
    assert_eq!(inst[0]["local_ip"], "198.18.1.1");
    assert_eq!(inst[0]["underlay"], "ul0");
    assert_eq!(inst[0]["decap_cache"], true);
    // Every table change moves the decap cache's generation of its VNI on.
    let generation = || {
        dump("GENERATION")
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["slot"] == 100)
            .map_or(0, |g| g["generation"].as_u64().unwrap())
    };
    let before = generation();
    assert!(before > 0, "the VNIs and FDB entries added bumped it");
    v0.ok(&[
        "fdb",
        "add",
        "02:00:00:00:77:01",
        "--vni",
        "100",
        "--remote",
        "198.18.2.1",
    ]);
    assert!(generation() > before);
    v0.ok(&["fdb", "del", "02:00:00:00:77:01", "--vni", "100"]);

    let fdb_row = v0.map_row("FDB");
    assert_eq!(fdb_row["entries"], 2);
    assert_eq!(fdb_row["capacity"], 1 << 20);
    assert_eq!(fdb_row["key_size"], 12);
    assert!(v0.fails(&["maps", "dump", "NOPE"]).contains("FDB"));
    // Every pinned map is listed and decoded: per-binding counters, the
    // neighbour entries made for next hops, the daemon's vouch.
    let bindings = dump("BINDING_STATS");
    assert!(
        bindings
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["port"] == "p100" && b["vni"] == 100),
        "{bindings}"
    );
    assert_eq!(
        v0.map_row("BINDING_STATS")["entries"],
        bindings.as_array().unwrap().len()
    );
    // The remote's next hop (the underlay's router) had no neighbour
    // entry when its VNI was added: `vtep` made one.
    let hops = dump("NEXTHOPS");
    assert_eq!(hops.as_array().unwrap().len(), 1, "{hops}");
    assert_eq!(hops[0]["interface"], "ul0", "{hops}");
    assert_eq!(v0.map_row("NEXTHOPS")["entries"], 1);
    assert_eq!(dump("WATCHED")[0]["vouched"], false, "no daemon runs");
    assert_eq!(v0.map_row("WATCHED")["entries"], 1);
    // Maps are pinned by their names (links and programs in lower case).
    let pins = std::fs::read_dir(v0.pin_root.join(&v0.instance)).unwrap();
    let maps: Vec<String> = pins
        .map(|p| p.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.chars().any(|c| c.is_ascii_lowercase()))
        .collect();
    assert!(maps.len() > 20, "{maps:?}");
    for name in &maps {
        v0.map_row(name);
    }

    let status: serde_json::Value = serde_json::from_str(&v0.ok(&["status", "--json"])).unwrap();
    // A veth underlay: decap in TC, the merge device beside it.
    assert_eq!(status["datapath"]["xdp_mode"], "off");
    for link in ["link_decap_tc", "link_decap_merged"] {
        assert!(
            status["attachments"][link]["program_id"].as_u64() > Some(0),
            "{link}: {status}"
        );
    }
    assert!(status["daemon"].is_null());
}

#[test]
fn stats_watch_shows_rates() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    o.static_fdb(0);
    let v0 = o.vteps[0].as_ref().unwrap();
    assert!(
        o.vm(0, 0)
            .ns
            .ping_until("198.19.0.2", Duration::from_secs(5))
    );
    // Outlasts the watch (1000 pings, some 10 s; killed after it).
    let pinger = o
        .vm(0, 0)
        .ns
        .spawn(&["ping", "-i", "0.01", "-c", "1000", "-q", "198.19.0.2"]);
    let watch = v0.spawn(&["stats", "--watch"]);
    std::thread::sleep(Duration::from_millis(2300));
    let out = watch.interrupt();
    drop(pinger);
    let text = String::from_utf8_lossy(&out.stdout);
    // Lines "100 RX_PPS RX_BPS TX_PPS TX_BPS DROP_PPS": ~100 pings/s each way.
    let rows: Vec<Vec<f64>> = text
        .lines()
        .filter(|l| l.starts_with("100 "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .collect();
    assert!(rows.len() >= 2, "{text}");
    // The busiest second (the watch may outlive the pings where the
    // interrupt is slow to land: a parent that ignores SIGINT, as a
    // shell's background job does, leaves the watch to be killed).
    let busiest = rows
        .iter()
        .max_by(|a, b| a[0].total_cmp(&b[0]))
        .expect("rows");
    assert!(
        busiest[0] > 50.0 && busiest[2] > 50.0,
        "rates: {busiest:?}\n{text}"
    );
    assert!(
        busiest[1] > busiest[0] * 8.0 * 50.0,
        "bits per second: {busiest:?}"
    );
}

#[test]
fn the_daemon_logs_the_kernel_programs_records() {
    let o = Overlay::with_up_args(
        &[Kind::Ours, Kind::Ours, Kind::Ours],
        &vtep_bin(),
        &["--move-limit", "1", "--move-window", "60"],
    );
    let observer = o.vteps[2].as_ref().unwrap();
    let daemon = observer.spawn(&["daemon"]);
    scrape(&o.net.hosts[2].ns);
    // A MAC sent from two hosts in turn is frozen on the observer; the
    // kernel program logs it, the daemon reads the record.
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&[2, 0, 0, 0, 0xf1, 0xa8, 0x88, 0xb5]);
    frame.extend_from_slice(&[0u8; 46]);
    let floods = || observer.counter("counters", "decap_flood");
    for round in 0..4 {
        let before = floods();
        vtep_tests::topo::send_raw(&o.vm(round % 2, 0).ns, "eth0", &frame, 1);
        assert!(
            wait_until(Duration::from_secs(5), || floods() > before),
            "the observer never saw frame {round}"
        );
    }
    assert!(observer.counter("counters", "mac_frozen") >= 1);
    // The daemon reads the kernel programs' log every 200 ms.
    std::thread::sleep(Duration::from_millis(600));
    let out = daemon.interrupt();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("MAC 02:00:00:00:f1:a8 frozen"),
        "no kernel log record in the daemon's log:\n{log}"
    );
}

/// Sums `field` over the rows of `rows` (a JSON array).
fn total(rows: &serde_json::Value, field: &str) -> u64 {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r[field].as_u64().unwrap())
        .sum()
}

/// The row of remote `ip` in `vtep stats --json`.
fn remote_row<'a>(stats: &'a serde_json::Value, ip: &str) -> &'a serde_json::Value {
    stats["remotes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["remote"] == ip)
        .unwrap_or_else(|| panic!("no remote {ip} in {stats}"))
}

#[test]
fn stats_count_traffic_per_remote_vtep() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours, Kind::Kernel], &vtep_bin());
    o.static_fdb(0);
    let v0 = o.vteps[0].as_ref().unwrap();
    let (ip1, ip2) = (&o.net.hosts[1].ip, &o.net.hosts[2].ip);
    let a = &o.vm(0, 0).ns;
    assert!(a.ping_until("198.19.0.2", Duration::from_secs(5)));
    assert!(a.ping_until("198.19.0.3", Duration::from_secs(5)));
    let before = v0.stats();
    let (sent, got) = ping_summary(&a.run(&["ping", "-i", "0.01", "-c", "40", "-q", "198.19.0.3"]));
    assert_eq!((sent, got), (40, 40));
    let after = v0.stats();
    let delta = |ip: &str, field: &str| {
        remote_row(&after, ip)[field].as_u64().unwrap()
            - remote_row(&before, ip)[field].as_u64().unwrap()
    };
    assert!(delta(ip2, "tx_packets") >= 40, "{after}");
    assert!(delta(ip2, "rx_packets") >= 40, "{after}");
    assert!(
        delta(ip1, "tx_packets") + delta(ip1, "rx_packets") < 4,
        "pings to the kernel host counted against the other remote: {after}"
    );
    assert!(delta(ip2, "tx_bytes") >= 40 * 98, "{after}");

    let (sent, _) = ping_summary(&a.run(&["ping", "-i", "0.01", "-c", "25", "-q", "198.19.0.2"]));
    assert_eq!(sent, 25);
    // A broadcast goes to both remotes: one copy each.
    let b = v0.stats();
    let mut frame = vec![0xff; 6];
    frame.extend(vtep_tests::frames::mac(&o.vm(0, 0).mac));
    frame.extend_from_slice(&[0x88, 0xb5]);
    frame.extend_from_slice(&[0u8; 46]);
    vtep_tests::topo::send_raw(a, "eth0", &frame, 3);
    let sent_to = |ip: &str| {
        let c = v0.stats();
        remote_row(&c, ip)["tx_packets"].as_u64().unwrap()
            - remote_row(&b, ip)["tx_packets"].as_u64().unwrap()
    };
    wait_until(Duration::from_secs(5), || {
        [ip1, ip2].iter().all(|ip| sent_to(ip) >= 3)
    });
    let c = v0.stats();
    for ip in [ip1, ip2] {
        let sent = remote_row(&c, ip)["tx_packets"].as_u64().unwrap()
            - remote_row(&b, ip)["tx_packets"].as_u64().unwrap();
        assert!(sent >= 3, "broadcast copies to {ip}: {sent}");
    }
    let stats = v0.stats();
    assert!(remote_row(&stats, ip1)["rx_packets"].as_u64() >= Some(25));
    // Every frame sent or delivered is counted once per VNI and once per
    // remote VTEP: the two views add up.
    for field in ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes"] {
        assert_eq!(
            total(&stats["remotes"], field),
            total(&stats["vnis"], field),
            "{field}: {stats}"
        );
    }
    // The table shows them too.
    let table = v0.ok(&["stats"]);
    assert!(
        table.lines().any(|l| l.starts_with(ip1.as_str())),
        "{table}"
    );
    assert!(
        table.lines().any(|l| l.starts_with(ip2.as_str())),
        "{table}"
    );
}
