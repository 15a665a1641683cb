//! Operating a running VTEP: in-place upgrades and configuration changes
//! under traffic.

use std::time::Duration;

use vtep_tests::{
    Bg, Capture,
    topo::{Kind, Overlay, Vm},
    vtep_bin,
};

/// A TCP stream of `secs` seconds from `client` to `server`, reported in
/// 250 ms intervals (iperf3 -J), started in the background.
fn tcp_stream(server: &Vm, client: &Vm, secs: u32) -> (Bg, Bg) {
    let srv = server.ns.spawn(&["iperf3", "-s", "-1", "-B", &server.ip]);
    std::thread::sleep(Duration::from_millis(300));
    let secs = secs.to_string();
    let cli = client
        .ns
        .spawn(&["iperf3", "-c", &server.ip, "-t", &secs, "-i", "0.25", "-J"]);
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

/// (transmitted, received) from ping's summary.
fn ping_summary(out: &std::process::Output) -> (u64, u64) {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping summary in: {text}"));
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (n[0], n[1])
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
