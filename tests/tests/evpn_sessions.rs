//! BGP sessions as `vtep daemon` keeps them with gobgpd: a session left
//! half open by its peer does not wait out RFC 4271's OpenSent hold time.

use std::{
    io::Read,
    net::TcpStream,
    time::{Duration, Instant},
};

use vtep_tests::{
    BpfFs, ConfigFile, Vtep,
    evpn::{Gobgpd, our_config},
    in_netns,
    topo::RoutedUnderlay,
    wait_until,
};

/// A BGP message's header: marker, length, type (RFC 4271 §4.1).
const HEADER: usize = 19;
/// The OPEN message type (RFC 4271 §4.1).
const OPEN: u8 = 1;

/// What a peer that connected and never answered saw: how long after
/// our OPEN the connection was closed (`None`: not within `limit`).
fn silent_peer(ns: &str, to: &str, limit: Duration) -> Option<Duration> {
    in_netns(ns, || {
        let start = Instant::now();
        // Until the daemon has started BGP, nothing listens; until it
        // has configured the peer, gobgpd closes a connection from it at
        // once, before any OPEN.
        while start.elapsed() < limit {
            let mut open = [0u8; HEADER];
            let Ok(mut s) = TcpStream::connect((to, 179)) else {
                std::thread::sleep(Duration::from_millis(500));
                continue;
            };
            s.set_read_timeout(Some(limit))?;
            if s.read_exact(&mut open).is_err() {
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
            assert_eq!(open[18], OPEN, "gobgpd's first message: {open:?}");
            let opened = Instant::now();
            let mut rest = Vec::new();
            // Its OPEN's body, then a NOTIFICATION if any, then the end.
            return Ok(s.read_to_end(&mut rest).ok().map(|_| opened.elapsed()));
        }
        Ok(None)
    })
    .expect("a TCP connection to gobgpd")
}

/// Our gobgpd takes a connection from its configured peer, sends its OPEN
/// and gets none back, as happens when two gobgpd dial each other at the
/// same moment and one keeps the socket it dialled without using it. The
/// agent resets the session within twice its 15 s limit, not after the 4
/// minutes gobgpd would wait, and enables the peer again.
#[test]
fn a_session_left_half_open_is_reset() {
    let bpffs = BpfFs::new();
    let net = RoutedUnderlay::new(2);
    let (a, b) = (&net.hosts[0], &net.hosts[1]);
    let config = ConfigFile::new(&our_config(
        a,
        65000,
        &[100],
        &[],
        std::slice::from_ref(&b.ip),
    ));
    let _gobgpd = Gobgpd::start(&a.ns);
    let vtep = Vtep::new(&a.ns, &bpffs);
    let _daemon = vtep.spawn(&["daemon", "--config", config.arg()]);
    let closed = silent_peer(&b.ns.name, &a.ip, Duration::from_secs(60));
    let closed = closed.expect("the half-open session was not reset within 60 s");
    assert!(
        closed < Duration::from_secs(30),
        "the half-open session was reset only after {closed:?}"
    );
    // Reset, not left disabled: the peer is enabled again.
    let peer = || -> serde_json::Value {
        let out = vtep.ok(&["evpn", "show", "--json"]);
        serde_json::from_str::<serde_json::Value>(&out).expect("evpn show --json")["peers"][0]
            .clone()
    };
    let enabled = wait_until(Duration::from_secs(10), || peer()["admin_down"] == false);
    assert!(enabled, "the peer was left disabled: {}", peer());
}
