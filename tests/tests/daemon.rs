//! The daemon's HTTP endpoint: no client can stall it, its metrics parse
//! as Prometheus text and equal `vtep stats`, its health follows the
//! instance.

use std::{
    net::TcpStream,
    time::{Duration, Instant},
};

use vtep_tests::{
    ConfigFile, http, in_netns,
    topo::{HOST0_CONFIG, Kind, Overlay},
    vtep_bin, wait_until,
};

const METRICS: &str = "127.0.0.1:9469";

/// The daemon's answer to `path`, once it answers at all.
fn get_when_up(ns: &vtep_tests::Netns, path: &str) -> http::Answer {
    let mut last = None;
    wait_until(Duration::from_secs(5), || {
        last = http::get(ns, METRICS, path).ok();
        last.is_some()
    });
    last.unwrap_or_else(|| panic!("the daemon never answered {path}"))
}

#[test]
fn no_client_stalls_the_daemon() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    let v0 = o.vteps[0].as_ref().unwrap();
    let ns = &o.net.hosts[0].ns;
    let config = ConfigFile::new(HOST0_CONFIG);
    let daemon = v0.spawn(&["daemon", "--config", config.arg()]);
    assert_eq!(get_when_up(ns, "/healthz").status, 200);

    // Clients that connect and send nothing.
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| in_netns(&ns.name, || Ok(TcpStream::connect(METRICS)?)).unwrap())
        .collect();

    // SIGHUP still applies a change.
    config.write(&format!(
        "{HOST0_CONFIG}[[fdb]]\nmac = \"02:00:00:00:77:77\"\nvni = 100\nremote = \"198.18.2.1\"\n"
    ));
    vtep_tests::ok(&["kill", "-HUP", &daemon.id().to_string()]);
    assert!(
        wait_until(Duration::from_secs(5), || v0
            .ok(&["fdb", "show", "--json"])
            .contains("02:00:00:00:77:77")),
        "SIGHUP was not applied while idle clients were connected"
    );

    // Another client is served meanwhile, and a hundred at once.
    let a = http::get(ns, METRICS, "/metrics").unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..100)
            .map(|_| {
                s.spawn(|| {
                    in_netns(&ns.name, || http::get_here(METRICS, "/metrics"))
                        .map_or(0, |a| a.status)
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    // SIGTERM stops it promptly, idle clients or not.
    let start = Instant::now();
    vtep_tests::ok(&["kill", "-TERM", &daemon.id().to_string()]);
    let out = daemon.finish(Duration::from_secs(5));
    let took = start.elapsed();
    assert!(out.status.success(), "{out:?}");
    assert!(took < Duration::from_secs(2), "SIGTERM took {took:?}");
    drop(idle);
}

#[test]
fn metrics_parse_equal_stats_and_health_follows_the_instance() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    o.static_fdb(0);
    let v0 = o.vteps[0].as_ref().unwrap();
    let ns = &o.net.hosts[0].ns;
    let _daemon = v0.spawn(&["daemon"]);
    assert_eq!(get_when_up(ns, "/healthz").status, 200);
    assert!(o.vm(0, 0).ns.ping("198.19.0.2", 5));

    // Quiet now: the counters stay as they are between the two reads.
    let a = http::get(ns, METRICS, "/metrics").unwrap();
    let stats = v0.stats();
    assert_eq!(a.status, 200);
    assert!(a.content_type.contains("openmetrics-text"), "{a:?}");
    let scrape = prometheus_parse::Scrape::parse(a.body.lines().map(|l| Ok(l.to_owned())))
        .expect("the exposition parses");
    let value = |metric: &str, label: &str, want: &str| -> f64 {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && s.labels.get(label) == Some(want))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("no {metric}{{{label}={want}}} in:\n{}", a.body))
    };
    for field in ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes"] {
        for vni in stats["vnis"].as_array().unwrap() {
            let want = vni[field].as_u64().unwrap() as f64;
            let got = value(
                &format!("vtep_vni_{field}_total"),
                "vni",
                &vni["vni"].to_string(),
            );
            assert_eq!(got, want, "vni {} {field}", vni["vni"]);
        }
        for r in stats["remotes"].as_array().unwrap() {
            let remote = r["remote"].as_str().unwrap();
            let want = r[field].as_u64().unwrap() as f64;
            assert_eq!(
                value(&format!("vtep_remote_{field}_total"), "remote", remote),
                want
            );
        }
        // Port bindings (one per port here, untagged): by port name.
        let bindings = stats["bindings"].as_array().unwrap();
        assert!(!bindings.is_empty(), "{stats}");
        for b in bindings {
            let port = b["port"].as_str().unwrap();
            let want = b[field].as_u64().unwrap() as f64;
            assert_eq!(
                value(&format!("vtep_binding_{field}_total"), "port", port),
                want,
                "binding {port} {field}"
            );
        }
    }
    for (reason, n) in stats["drop_reasons"].as_object().unwrap() {
        assert_eq!(
            value("vtep_drops_total", "reason", reason),
            n.as_u64().unwrap() as f64
        );
    }
    for (event, n) in stats["counters"].as_object().unwrap() {
        assert_eq!(
            value("vtep_events_total", "event", event),
            n.as_u64().unwrap() as f64
        );
    }
    let fdb = v0.map_row("FDB");
    assert_eq!(
        value("vtep_map_entries", "map", "FDB"),
        fdb["entries"].as_u64().unwrap() as f64
    );
    assert_eq!(
        value("vtep_map_capacity", "map", "FDB"),
        fdb["capacity"].as_u64().unwrap() as f64
    );

    // Down: unhealthy, and it says why.
    v0.ok(&["down"]);
    let h = http::get(ns, METRICS, "/healthz").unwrap();
    assert_eq!(h.status, 503, "{h:?}");
    assert!(h.body.contains("not up"), "{h:?}");
}

#[test]
fn the_daemon_tells_the_encap_cache_of_route_changes() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    let v0 = o.vteps[0].as_ref().unwrap();
    let ns = &o.net.hosts[0].ns;
    // Slot 4096 of GENERATION: the routes' generation.
    let routes = || {
        v0.map_dump("GENERATION")
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["slot"] == 4096)
            .map_or(0, |g| g["generation"].as_u64().unwrap())
    };
    ns.ok(&["ip", "route", "add", "198.18.98.0/24", "dev", "ul0"]);
    assert_eq!(
        routes(),
        0,
        "without a daemon nothing tells of route changes"
    );
    let vouch = || v0.map_dump("WATCHED")[0].clone();
    assert_eq!(vouch()["vouched"], false, "{}", vouch());
    let _daemon = v0.spawn(&["daemon"]);
    assert_eq!(get_when_up(ns, "/healthz").status, 200);
    // The daemon vouches that it hears changes, a few seconds ahead.
    assert!(
        wait_until(Duration::from_secs(5), || vouch()["vouched"] == true),
        "{}",
        vouch()
    );
    let left = vouch()["left_s"].as_f64().unwrap();
    assert!(left > 0.0 && left <= 5.5, "{}", vouch());
    let before = routes();
    ns.ok(&["ip", "route", "add", "198.18.99.0/24", "dev", "ul0"]);
    assert!(
        wait_until(Duration::from_secs(5), || routes() > before),
        "a route added did not move the routes' generation"
    );
}

/// While the daemon hears route, neighbour and link changes, cached
/// decisions live up to 5 s instead of 0.5 (fewer made again from the
/// tables, decap and encap), and a link change it hears, a port's lowered
/// MTU, applies to them at once.
#[test]
fn with_the_daemon_decisions_live_longer_and_follow_link_changes() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    o.static_fdb(0);
    let v1 = o.vteps[1].as_ref().unwrap();
    let a = o.vm(0, 0);
    let peer = "198.19.0.2";
    assert!(a.ns.ping_until(peer, Duration::from_secs(5)));
    // 3 s of pings 20 ms apart: the decisions the receiving VTEP made
    // again from its tables, for the requests (decap) and the replies
    // (encap).
    let made = || ["decap_cache_fill", "encap_cache_fill"].map(|c| v1.counter("counters", c));
    let fills = |size: &str| {
        let before = made();
        let out = a.ns.run(&[
            "ping", "-c", "150", "-i", "0.02", "-W", "1", "-s", size, peer,
        ]);
        let after = made();
        ([after[0] - before[0], after[1] - before[1]], out)
    };
    let (alone, _) = fills("56");
    // Every 0.5 s, on whichever CPU: 6 or more in 3 s.
    assert!(
        alone.iter().all(|n| *n >= 5),
        "{alone:?} decisions made in 3 s without a daemon"
    );

    let ns = &o.net.hosts[1].ns;
    let daemon = v1.spawn(&["daemon"]);
    assert_eq!(get_when_up(ns, "/healthz").status, 200);
    let hears = || {
        let s: serde_json::Value = serde_json::from_str(&v1.ok(&["status", "--json"])).unwrap();
        s["daemon"]["hears_changes"].as_bool()
    };
    assert_eq!(
        hears(),
        Some(true),
        "status does not say the daemon hears changes"
    );
    assert!(a.ns.ping(peer, 2));
    let (watched, _) = fills("56");
    // Once per CPU and per bump of a change it heard (1 and 2 seen, 8
    // and 8 without).
    assert!(
        watched.iter().zip(alone).all(|(w, a)| *w <= a / 2),
        "{watched:?} decisions made in 3 s with the daemon ({alone:?} without)"
    );

    // 1378 bytes of IPv4 fit the port's 1500 bytes, not 1300.
    assert!(fills("1350").1.status.success());
    let before = v1.counter("drop_reasons", "too_big");
    ns.ok(&["ip", "link", "set", "p100", "mtu", "1300"]);
    std::thread::sleep(Duration::from_millis(300));
    let (_, out) = fills("1350");
    assert!(!out.status.success());
    let judged = v1.counter("drop_reasons", "too_big") - before;
    assert!(
        judged >= 140,
        "{judged} of 150 frames over the port's new MTU dropped as too big: the daemon's \
         bump did not reach the cached decision"
    );

    // Stopped, the daemon withdraws its vouch: decisions made after that
    // (a table change puts the earlier ones out of date) live 0.5 s again,
    // where a vouch left standing (renewed 5 s ahead) would keep them for
    // the whole 3 s.
    ns.ok(&["ip", "link", "set", "p100", "mtu", "1500"]);
    vtep_tests::ok(&["kill", "-TERM", &daemon.id().to_string()]);
    assert!(daemon.finish(Duration::from_secs(5)).status.success());
    let host0 = o.net.hosts[0].ip.as_str();
    v1.ok(&[
        "fdb",
        "add",
        "02:00:00:00:77:77",
        "--vni",
        "100",
        "--remote",
        host0,
    ]);
    let (after, _) = fills("56");
    assert!(
        after.iter().all(|n| *n >= 5),
        "{after:?} decisions made in 3 s after the daemon stopped ({alone:?} before it ran): \
         its vouch was not withdrawn"
    );
}
