//! The RIB's decisions, input by input.

use super::*;

const US: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 1, 1));

fn vtep(s: &str) -> PeerVtep {
    crate::values::LocalIp::from(US.to_string().parse::<UnicastIp>().unwrap())
        .peer(s.parse().unwrap())
        .unwrap()
}

fn key() -> MacKey {
    (
        Vni::try_from(100).unwrap(),
        "02:00:00:00:00:01".parse().unwrap(),
    )
}

fn route(seq: u32) -> MacRoute {
    MacRoute {
        vni: key().0,
        mac: key().1,
        ip: None,
        seq,
        sticky: false,
        group: 0,
    }
}

fn rib() -> Rib {
    Rib::new(US, 2, Duration::from_secs(180))
}

#[test]
fn a_remote_mac_is_installed_and_removed() {
    let mut r = rib();
    let now = Instant::now();
    let b = vtep("198.18.2.1");
    let fx = r.remote_mac(b, route(0), false, now);
    assert_eq!(
        fx,
        vec![Effect::Install {
            key: key(),
            vtep: b,
            seq: 0,
            sticky: false,
            from: None,
            group: 0,
        }]
    );
    assert!(
        r.remote_mac(b, route(0), false, now).is_empty(),
        "no rewrite"
    );
    assert_eq!(
        r.remote_mac(b, route(0), true, now),
        vec![Effect::Uninstall(key())]
    );
}

#[test]
fn a_mac_learned_here_outbids_the_remote_route_and_loses_to_a_higher_one() {
    let mut r = rib();
    let now = Instant::now();
    let b = vtep("198.18.2.1");
    r.remote_mac(b, route(4), false, now);
    let fx = r.local_mac(key(), false, now);
    assert_eq!(
        fx,
        vec![Effect::Advertise(route(5)), Effect::Uninstall(key())]
    );
    // B hears ours and outbids it: ours is withdrawn, B's installed.
    let fx = r.remote_mac(b, route(6), false, now);
    assert_eq!(
        fx,
        vec![
            Effect::Withdraw(route(5)),
            Effect::Install {
                key: key(),
                vtep: b,
                seq: 6,
                sticky: false,
                from: None,
                group: 0,
            }
        ]
    );
    // A stale route of B (lower sequence) does not take it from us.
    let mut r = rib();
    r.local_mac(key(), false, now);
    let fx = r.remote_mac(b, route(0), false, now);
    assert!(fx.is_empty(), "{fx:?}");
}

#[test]
fn a_mac_withdrawn_just_before_it_is_learned_here_still_counts() {
    let mut r = rib();
    let now = Instant::now();
    let b = vtep("198.18.2.1");
    r.remote_mac(b, route(3), false, now);
    r.remote_mac(b, route(3), true, now);
    let fx = r.local_mac(key(), false, now);
    assert_eq!(fx[0], Effect::Advertise(route(4)));
}

#[test]
fn a_mac_withdrawn_by_one_vtep_and_advertised_by_another_moved() {
    let mut r = rib();
    let now = Instant::now();
    let (b, c) = (vtep("198.18.2.1"), vtep("198.18.3.1"));
    r.remote_mac(c, route(0), false, now);
    r.remote_mac(c, route(0), true, now);
    let fx = r.remote_mac(b, route(1), false, now);
    assert_eq!(
        fx,
        vec![Effect::Install {
            key: key(),
            vtep: b,
            seq: 1,
            sticky: false,
            from: Some(c),
            group: 0,
        }]
    );
    // Re-pointed without a withdrawal in between: a move too.
    let fx = r.remote_mac(c, route(2), false, now);
    assert!(matches!(fx[0], Effect::Install { from: Some(f), .. } if f == b));
}

#[test]
fn equal_sequences_go_to_the_lowest_vtep_address() {
    let now = Instant::now();
    let mut r = rib();
    r.local_mac(key(), false, now);
    // 198.18.0.9 < us: it wins the tie.
    let fx = r.remote_mac(vtep("198.18.0.9"), route(0), false, now);
    assert_eq!(fx[0], Effect::Withdraw(route(0)));
    let mut r = rib();
    r.local_mac(key(), false, now);
    assert!(
        r.remote_mac(vtep("198.18.9.9"), route(0), false, now)
            .is_empty()
    );
}

#[test]
fn sticky_macs_never_move() {
    let now = Instant::now();
    let mut r = rib();
    let fx = r.local_mac(key(), true, now);
    assert_eq!(
        fx,
        vec![Effect::Advertise(MacRoute {
            sticky: true,
            ..route(0)
        })]
    );
    assert!(
        r.remote_mac(vtep("198.18.0.9"), route(9), false, now)
            .is_empty()
    );
    // A MAC sticky elsewhere is not advertised from here.
    let mut r = rib();
    let sticky = MacRoute {
        sticky: true,
        ..route(0)
    };
    r.remote_mac(vtep("198.18.2.1"), sticky, false, now);
    assert!(r.local_mac(key(), false, now).is_empty());
}

#[test]
fn a_mac_moving_too_often_is_frozen_then_thawed() {
    let now = Instant::now();
    let mut r = rib();
    let b = vtep("198.18.2.1");
    let mut seq = 0;
    let mut frozen = false;
    for _ in 0..3 {
        r.remote_mac(b, route(seq), false, now);
        let fx = r.local_mac(key(), false, now);
        seq += 2;
        frozen |= fx.contains(&Effect::Frozen(key()));
    }
    assert!(frozen, "3 takeovers with a limit of 2 freeze the MAC");
    assert_eq!(r.counts().3, 1);
    assert!(r.advertised().is_empty(), "a frozen MAC is not advertised");
    let later = now + Duration::from_secs(181);
    assert!(!r.thaw(later).is_empty());
    assert_eq!(r.counts().3, 0);
}

#[test]
fn a_reread_table_sweeps_what_is_gone() {
    let now = Instant::now();
    let mut r = rib();
    let b = vtep("198.18.2.1");
    let vni = key().0;
    r.seed_installed(
        key(),
        Installed {
            vtep: b,
            seq: 0,
            sticky: false,
            group: 0,
        },
    );
    r.remote_flood(b, vni, false);
    assert!(
        r.replace_remote(Vec::new(), Vec::new(), false, now)
            .is_empty(),
        "a read without sweep removes nothing"
    );
    assert_eq!(r.flood(vni), vec![b]);
    let fx = r.replace_remote(Vec::new(), Vec::new(), true, now);
    assert!(fx.contains(&Effect::Uninstall(key())));
    assert!(fx.contains(&Effect::Flood(vni)));
    assert!(r.flood(vni).is_empty());
}

#[test]
fn ip_bindings_follow_the_routes() {
    let now = Instant::now();
    let mut r = rib();
    let b = vtep("198.18.2.1");
    let ip: UnicastIp = "198.19.0.1".parse().unwrap();
    let with_ip = MacRoute {
        ip: Some(ip),
        ..route(0)
    };
    let fx = r.remote_mac(b, with_ip, false, now);
    assert!(fx.contains(&Effect::Bind(key(), ip)));
    let fx = r.remote_mac(b, with_ip, true, now);
    assert!(fx.contains(&Effect::Unbind(key(), ip)));
    // A local MAC's address is advertised with it (with the sequence
    // that outbids B's withdrawn route), and withdrawn when unbound.
    r.local_mac(key(), false, now);
    let bound = BTreeSet::from([ip]);
    let ours = MacRoute { seq: 1, ..with_ip };
    assert_eq!(r.local_ips(key(), &bound), vec![Effect::Advertise(ours)]);
    assert!(r.local_ips(key(), &bound).is_empty());
    assert_eq!(r.advertised().len(), 2);
    assert_eq!(
        r.local_ips(key(), &BTreeSet::new()),
        vec![Effect::Withdraw(ours)]
    );
    assert_eq!(r.advertised().len(), 1);
}

#[test]
fn groups_travel_with_the_routes_and_follow_membership_changes() {
    let mut r = rib();
    let now = Instant::now();
    let b = vtep("198.18.2.1");
    // B's route carries group 10: installed with it; a new group on the
    // same route is installed again.
    let g10 = MacRoute {
        group: 10,
        ..route(0)
    };
    let fx = r.remote_mac(b, g10, false, now);
    assert!(
        matches!(fx[..], [Effect::Install { group: 10, .. }]),
        "{fx:?}"
    );
    let fx = r.remote_mac(b, MacRoute { group: 20, ..g10 }, false, now);
    assert!(
        matches!(fx[..], [Effect::Install { group: 20, .. }]),
        "{fx:?}"
    );
    // The VM arrives here: our route carries the group our membership
    // gives it; a change of membership advertises it again.
    r.local_mac(key(), false, now);
    assert!(r.is_local(key()));
    let fx = r.local_group(key(), 20);
    assert_eq!(
        fx,
        vec![Effect::Advertise(MacRoute {
            seq: 1,
            group: 20,
            ..route(0)
        })]
    );
    assert!(r.local_group(key(), 20).is_empty());
    assert!(r.advertised().iter().all(|a| a.group == 20));
}
