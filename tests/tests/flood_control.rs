//! Flood control: ARP suppression and per-VNI storm control.

use std::time::Duration;

use vtep_tests::{
    Capture, Netns,
    topo::{Kind, Overlay, flood_raw},
    vtep_bin,
};

/// ARP requests in VXLAN that our VTEP on host 0 sends: a capture on its
/// underlay for inner EtherType ARP (UDP bytes 28-29) with operation 1,
/// request (UDP bytes 36-37). Replies to the peer's requests cross, as
/// they must.
fn arp_capture(host: &Netns) -> Capture {
    Capture::start(
        host,
        &[
            "-i",
            "ul0",
            "src",
            "host",
            "198.18.1.1",
            "and",
            "udp",
            "port",
            "4789",
            "and",
            "udp[28:2]",
            "=",
            "0x0806",
            "and",
            "udp[36:2]",
            "=",
            "1",
        ],
    )
}

fn captured(c: Capture) -> u64 {
    c.stop().matched
}

/// VM of tenant 0 on host 0 forgets its neighbours and pings host 1's VM
/// (the kernel asks for its MAC with an ARP request).
fn ask(o: &Overlay) -> bool {
    let vm = &o.vm(0, 0).ns;
    vm.ok(&["ip", "neigh", "flush", "dev", "eth0"]);
    vm.ping_until("198.19.0.2", Duration::from_secs(5))
}

#[test]
fn arp_for_a_known_binding_is_answered_locally() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    let v = o.vteps[0].as_ref().expect("ours");
    let host = &o.net.hosts[0].ns;
    let peer_mac = o.vm(1, 0).mac.clone();

    // Control: no binding, learning off: the request crosses the overlay.
    v.ok(&[
        "vni",
        "add",
        "100",
        "--flood",
        "198.18.2.1",
        "--no-learning",
    ]);
    let cap = arp_capture(host);
    assert!(ask(&o));
    assert!(
        captured(cap) >= 1,
        "the capture saw no ARP leave without a binding"
    );

    // A static binding: answered by the VTEP, no VXLAN leaves for it.
    v.ok(&[
        "neigh",
        "add",
        "198.19.0.2",
        "--vni",
        "100",
        "--mac",
        &peer_mac,
    ]);
    let before = v.counter("counters", "arp_suppressed");
    let cap = arp_capture(host);
    assert!(ask(&o));
    assert_eq!(
        captured(cap),
        0,
        "ARP crossed the overlay despite the binding"
    );
    assert!(v.counter("counters", "arp_suppressed") > before);
    let neigh = o.vm(0, 0).ns.ok(&["ip", "neigh", "show", "198.19.0.2"]);
    assert!(neigh.contains(&peer_mac), "wrong answer: {neigh}");
    let shown: serde_json::Value =
        serde_json::from_str(&v.ok(&["neigh", "show", "--json"])).unwrap();
    assert_eq!(shown[0]["ip"], "198.19.0.2");
    assert_eq!(shown[0]["origin"], "static");
    v.ok(&["neigh", "del", "198.19.0.2", "--vni", "100"]);
}

#[test]
fn bindings_learned_from_arp_suppress_later_requests() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    let v = o.vteps[0].as_ref().expect("ours");
    // Host 1's VM asks for host 0's: its ARP request, flooded to host 0,
    // teaches host 0 that 198.19.0.2 is host 1's VM.
    assert!(
        o.vm(1, 0)
            .ns
            .ping_until("198.19.0.1", Duration::from_secs(5))
    );
    let shown: serde_json::Value =
        serde_json::from_str(&v.ok(&["neigh", "show", "--vni", "100", "--json"])).unwrap();
    let learned = shown
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ip"] == "198.19.0.2")
        .unwrap_or_else(|| panic!("198.19.0.2 not learned: {shown}"));
    assert_eq!(learned["mac"], o.vm(1, 0).mac);
    assert_eq!(learned["origin"], "learned");
    let cap = arp_capture(&o.net.hosts[0].ns);
    assert!(ask(&o));
    assert_eq!(
        captured(cap),
        0,
        "ARP crossed the overlay despite the learned binding"
    );
}

#[test]
fn storm_control_limits_bum_per_vni() {
    let o = Overlay::new(&[Kind::Ours, Kind::Ours], &vtep_bin());
    let (v0, v1) = (o.vteps[0].as_ref().unwrap(), o.vteps[1].as_ref().unwrap());
    let rate = 200.0;
    v0.ok(&[
        "vni",
        "add",
        "100",
        "--flood",
        "198.18.2.1",
        "--bum-pps",
        "200",
    ]);
    // Unicast in both tenants resolved first (ARP is BUM too).
    for t in 0..2 {
        assert!(
            o.vm(0, t)
                .ns
                .ping_until("198.19.0.2", Duration::from_secs(5))
        );
    }
    let floods = |v: &vtep_tests::Vtep| v.counter("counters", "decap_flood");
    let before = floods(v1);
    // Tenant 0's VM floods broadcast far above the limit; meanwhile its
    // unicast and the other tenant keep flowing.
    let unicast = o
        .vm(0, 0)
        .ns
        .spawn(&["ping", "-c", "20", "-i", "0.05", "-q", "198.19.0.2"]);
    let other = o
        .vm(0, 1)
        .ns
        .spawn(&["ping", "-c", "20", "-i", "0.05", "-q", "198.19.0.2"]);
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&[2, 0, 0, 0x64, 0, 1, 0x88, 0xb5]);
    frame.extend_from_slice(&[0u8; 46]);
    let (sent, secs) = flood_raw(&o.vm(0, 0).ns, "eth0", &frame, 2.0);
    std::thread::sleep(Duration::from_millis(200));
    let got = (floods(v1) - before) as f64;
    let expected = rate * secs;
    let burst = rate / 20.0;
    println!(
        "storm control: {sent} broadcast frames in {secs:.2} s, {got} crossed (limit {rate}/s)"
    );
    assert!(
        sent as f64 > 5.0 * expected,
        "the flood was too slow to test the limit"
    );
    assert!(
        got <= expected * 1.1 + burst,
        "{got} frames crossed, limit {expected:.0}"
    );
    assert!(
        got >= expected * 0.9,
        "only {got} frames crossed, limit {expected:.0}"
    );
    assert!(v0.counter("drop_reasons", "storm_control") > 0);
    for (name, p) in [
        ("unicast in the same tenant", unicast),
        ("the other tenant", other),
    ] {
        let out = p.finish(Duration::from_secs(10));
        assert!(out.status.success(), "{name} lost packets during the storm");
    }
}
