//! The encap program against its reference model (vtep-common `model`)
//! on random and damaged frames from access ports and trunks, over each
//! underlay family.

use vtep_common::{
    consts::ETH_HLEN,
    ecn::TOS_INHERIT,
    maps::{PORT_F_GBP, PORT_F_POLICY, with_port_tos},
};

use super::{
    reference_policy::{POLICY_VNI, PolicyFixture},
    *,
};

/// The tables of the encap differential test, as the model sees them (the
/// same contents are written into the BPF maps); group policy in VNI 100
/// as [`PolicyFixture`] has it.
struct EncapFixture {
    policy: PolicyFixture,
    f: Family,
    ports: std::collections::BTreeMap<PortKey, PortInfo>,
    vnis: std::collections::BTreeMap<u32, VniInfo>,
    fdb: std::collections::BTreeMap<(u32, [u8; 6]), FdbEntry>,
    ul0: u32,
    ul0_mac: [u8; 6],
    mtus: std::collections::BTreeMap<u32, u32>,
}

impl model::EncapTables for EncapFixture {
    fn port(&self, key: PortKey) -> Option<PortInfo> {
        self.ports.get(&key).copied()
    }
    fn vni(&self, vni: u32) -> Option<VniInfo> {
        self.vnis.get(&vni).copied()
    }
    fn fdb(&self, vni: u32, mac: [u8; 6]) -> Option<FdbEntry> {
        self.fdb.get(&(vni, mac)).copied()
    }
    fn next_hop(&self, remote: Addr) -> Option<model::NextHop> {
        // As private_netns sets the underlay up.
        let hop = |resolved, dst_mac| model::NextHop {
            ifindex: self.ul0,
            resolved,
            src_mac: if resolved { self.ul0_mac } else { [0; 6] },
            dst_mac,
        };
        if remote == ip(self.f.remote) {
            Some(hop(true, [2, 0xee, 0, 0, 0, 2]))
        } else if remote == ip(self.f.unresolved) {
            Some(hop(false, [0; 6]))
        } else {
            None
        }
    }
    fn mtu(&self, ifindex: u32) -> u32 {
        self.mtus.get(&ifindex).copied().unwrap_or(0)
    }
}

/// A frame from a port, built from random choices, then randomly damaged.
fn random_port_frame(r: &mut Rng) -> Vec<u8> {
    let dst = match r.below(10) {
        0 => MAC_BEHIND_REMOTE,
        8 => MAC_TRUNK,
        1 => MAC_SKB_PORT,
        2 => MAC_XDP_PORT,
        3 => MAC_OTHER_VNI_PORT,
        4 => MAC_UNKNOWN,
        5 => MAC_A,
        6 => BROADCAST,
        7 => [0x33, 0x33, 0, 0, 0, r.next_u64() as u8],
        _ => [r.next_u64() as u8 & 0xfe, 0, 0, 0, 0, r.next_u64() as u8],
    };
    let mut f = match r.below(13) {
        0..=4 => inner_frame(dst),
        5..=7 => arp_frame(dst),
        8 => vlan_frame(dst),
        9 => sized_frame(dst, 1400 + r.below(200) as usize, r.below(4) != 0),
        10 => sized_frame6(dst, 60 + r.below(60) as usize),
        11 => sized_frame6(dst, 1400 + r.below(200) as usize),
        _ => sized_frame(dst, 60 + r.below(60) as usize, true),
    };
    if r.below(2) == 0 && model::inner_dsfield(&f).is_some() {
        set_ds(&mut f, ETH_HLEN, r.next_u64() as u8);
    }
    if r.below(8) == 0 {
        f[6] = r.next_u64() as u8;
    }
    // From a trunk: tagged with a bound VLAN, an unbound one, a priority
    // tag, an 802.1ad tag, or twice.
    let tag = |f: &mut Vec<u8>, tpid: u16, vid: u16| {
        let mut t = tpid.to_be_bytes().to_vec();
        t.extend_from_slice(&vid.to_be_bytes());
        f.splice(12..12, t);
    };
    match r.below(12) {
        0..=2 => tag(&mut f, 0x8100, [10, 20, 30][r.below(3) as usize]),
        3 => tag(&mut f, 0x8100, 40 | (r.next_u64() as u16 & 0xf000)),
        4 => tag(&mut f, 0x8100, 0),
        5 => tag(&mut f, 0x88a8, 10),
        6 => {
            tag(&mut f, 0x8100, 10);
            tag(&mut f, 0x8100, 20);
        }
        _ => {}
    }
    let header = f.len().min(64);
    match r.below(10) {
        0..=4 => {}
        5 | 6 => {
            for _ in 0..1 + r.below(4) {
                let at = 12 + r.below(header as u64 - 12) as usize;
                f[at] = r.next_u64() as u8;
            }
        }
        7 => f.truncate(14 + r.below(f.len() as u64 - 13) as usize),
        8 => f[14] = r.next_u64() as u8,
        _ => f[12..14].copy_from_slice(&(r.next_u64() as u16).to_be_bytes()),
    }
    f
}

#[test]
fn encap_matches_the_reference_model_on_random_frames() {
    encap_differential(V4);
}

#[test]
fn encap_over_ipv6_matches_the_reference_model_on_random_frames() {
    encap_differential(V6);
}

/// 100,000 random frames from ports through the encap program over the
/// underlay of `fam`, each checked against the model.
fn encap_differential(fam: Family) {
    let (ul0, ul0_mac) = private_netns();
    let (p1, p2, p3, p4) = (ifindex("p1"), ifindex("p2"), ifindex("p3"), ifindex("p4"));
    let (p5, p6) = (ifindex("p5"), ifindex("p6"));
    let unbound = ul0;
    let cfg = config_at(fam.local, ul0);
    let mut l = Loaded::new(cfg);
    // VNI 100: two ports, a resolved, an unresolved and an unrouted remote;
    // VNI 200: one port, one remote; VNI 300: one port, nothing else;
    // VNI 400: two ports, no remote. Trunks: p1 VLAN 10 in VNI 400, p6
    // VLAN 20 and p2 VLAN 30 in VNI 100 (p2 carries VNI 100 untagged and
    // tagged: translation on one port).
    let k = PortKey::new;
    let bindings = [
        (k(p1, 0), 100),
        (k(p2, 0), 100),
        (k(p3, 0), 200),
        (k(p4, 0), 300),
        (k(p5, 0), 400),
        (k(p6, 0), 400),
        (k(p1, 10), 400),
        (k(p6, 20), 100),
        (k(p2, 30), 100),
    ];
    // Outer TOS settings: VNI 100 inherits, VNI 200 has DSCP 10.
    let tos_of = |vni: u32| match vni {
        100 => TOS_INHERIT,
        200 => 0x28,
        _ => 0,
    };
    let members = |vni: u32| -> Vec<PortKey> {
        bindings
            .iter()
            .filter(|(_, v)| *v == vni)
            .map(|(b, _)| *b)
            .collect()
    };
    let flood_100 = [fam.remote, fam.unresolved, fam.unrouted];
    l.vni_bindings(100, &flood_100, &members(100));
    l.vni_bindings(200, &[fam.remote], &members(200));
    l.vni_bindings(300, &[], &members(300));
    l.vni_bindings(400, &[], &members(400));
    for (b, vni) in bindings {
        l.binding(b, vni, with_port_tos(0, tos_of(vni)));
    }
    let fdb = [
        (100, MAC_BEHIND_REMOTE, Some(fam.remote), k(0, 0)),
        (200, MAC_BEHIND_REMOTE, Some(fam.remote), k(0, 0)),
        (100, MAC_UNKNOWN, Some(fam.unresolved), k(0, 0)),
        (100, MAC_A, Some(fam.unrouted), k(0, 0)),
        (100, MAC_SKB_PORT, None, k(p2, 0)),
        (100, MAC_XDP_PORT, None, k(p1, 0)),
        (100, MAC_OTHER_VNI_PORT, None, k(p3, 0)),
        (300, MAC_SKB_PORT, None, k(unbound, 0)),
        (100, MAC_TRUNK, None, k(p6, 20)),
        (400, MAC_TRUNK, None, k(p1, 10)),
        (400, MAC_SKB_PORT, None, k(p1, 20)),
    ];
    for (vni, mac, remote, at) in fdb {
        l.fdb_at(vni, mac, remote, at, FDB_F_STATIC);
    }
    let vni_info = |remotes: &[IpAddr], ports: &[PortKey]| {
        let mut i = VniInfo {
            slot: 0,
            n_remotes: remotes.len() as u32,
            n_ports: ports.len() as u32,
            ..VniInfo::default()
        };
        for (k, r) in remotes.iter().enumerate() {
            i.remotes[k] = ip(*r);
        }
        for (n, b) in ports.iter().enumerate() {
            i.ports[n] = b.ifindex;
            i.vids[n] = b.vid;
            i.port_stats[n] = binding_slot(*b);
        }
        i
    };
    let port_info = |key, vni| PortInfo {
        vni,
        flags: with_port_tos(0, tos_of(vni)),
        slot: vni,
        stats: binding_slot(key),
        ..PortInfo::default()
    };
    // Group policy: the usual sender (MAC_A) in group 10, the VMs behind
    // p2 and p1 in 20 and 10; p1's untagged and p6 VLAN 20's default
    // groups 5 and 30.
    let members_of = [(MAC_A, 10), (MAC_SKB_PORT, 20), (MAC_XDP_PORT, 10)];
    let groups = [(k(p1, 0), 5), (k(p6, 20), 30)];
    let policy = PolicyFixture::install(&mut l, &members_of, &groups);
    let mut tables = EncapFixture {
        policy,
        f: fam,
        ports: bindings
            .into_iter()
            .map(|(p, v)| (p, port_info(p, v)))
            .collect(),
        vnis: [
            (100, vni_info(&flood_100, &members(100))),
            (200, vni_info(&[fam.remote], &members(200))),
            (300, vni_info(&[], &members(300))),
            (400, vni_info(&[], &members(400))),
        ]
        .into_iter()
        .collect(),
        fdb: fdb
            .iter()
            .map(|(vni, mac, remote, at)| {
                let e = FdbEntry {
                    remote: remote.map_or(Addr::NONE, ip),
                    ifindex: at.ifindex,
                    vid: at.vid,
                    flags: FDB_F_STATIC,
                    peer: 0,
                    ..FdbEntry::default()
                };
                ((*vni, *mac), e)
            })
            .collect(),
        ul0,
        ul0_mac,
        mtus: bindings
            .iter()
            .map(|(b, _)| (b.ifindex, if b.ifindex == p2 { P2_MTU } else { 1500 }))
            .chain([(ul0, 1500)])
            .collect(),
    };

    let seed = std::env::var("VTEP_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x454e_4341_5026_u64);
    let mut rng = Rng(seed);
    let start = l.counters(MAP_DROPS, DropReason::COUNT);
    let counted = |l: &Loaded| -> Vec<u64> {
        let now = l.counters(MAP_DROPS, DropReason::COUNT);
        now.iter().zip(&start).map(|(a, b)| a - b).collect()
    };
    let mut expected = vec![0u64; DropReason::COUNT as usize];
    let mut seen = std::collections::BTreeMap::<String, u32>::new();
    let ports = [p1, p2, p3, p4, p5, p6, p1, p2, p6, p3, unbound];
    for i in 0..100_000u32 {
        // VNI 100's policy goes off, on, to default deny now and then.
        if i % 1000 == 499 {
            tables.policy.next(&mut l, &members(POLICY_VNI), None);
            let bits = tables.policy.port_bits();
            for p in tables.ports.values_mut().filter(|p| p.vni == POLICY_VNI) {
                p.flags = (p.flags & !(PORT_F_POLICY | PORT_F_GBP)) | bits;
            }
        }
        let frame = random_port_frame(&mut rng);
        let from = rng.pick(&ports);
        let (want, copies) = model::encap(&frame, from, &cfg, &tables, &tables.policy);
        // The frame as the program leaves it when it has not built
        // another: without the tags the kernel took off.
        let tags = match model::untag(&frame, &mut vec![0; frame.len()]) {
            Ok((_, n)) => (frame.len() - n) / VLAN_HLEN,
            Err((_, t)) => t,
        };
        let body = [&frame[..12], &frame[12 + VLAN_HLEN * tags..]].concat();
        expected[DropReason::TooBig as usize] += u64::from(copies.too_big);
        let mut out = vec![0u8; frame.len() + 256];
        let Ok((action, len)) = try_run_tc(&l, from, &frame, &mut out) else {
            // BPF_PROG_TEST_RUN refuses an skb whose IP header is cut short
            // (a real port would hand it over): only those are skipped.
            let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
            assert!(
                (ethertype == 0x0800 && frame.len() < 34)
                    || (ethertype == 0x86dd && frame.len() < 54),
                "frame {i}: BPF_PROG_TEST_RUN refused a frame of {} bytes",
                frame.len()
            );
            *seen.entry("refused by test_run".to_owned()).or_default() += 1;
            continue;
        };
        let got = &out[..len];
        let fail = |what: &str| -> ! {
            let hex = |f: &[u8]| f.iter().map(|b| format!("{b:02x}")).collect::<String>();
            panic!(
                "frame {i} from ifindex {from} over {fam:?} (seed {seed}): {what}\nmodel: {want:?}\nprogram: action {action}, output {len} bytes: {}\nframe: {}",
                hex(got),
                hex(&frame)
            )
        };
        let with_outer = |outer: &[u16]| -> Vec<u8> {
            let mut f: Vec<u8> = outer.iter().flat_map(|w| w.to_ne_bytes()).collect();
            f.extend_from_slice(&body);
            f
        };
        let key = match want {
            model::EncapVerdict::Drop(reason) => {
                if action != TC_ACT_SHOT || got != &body[..] {
                    fail("expected a drop, frame unchanged but for its tags");
                }
                expected[reason as usize] += 1;
                format!("drop {}", reason.name())
            }
            model::EncapVerdict::Switch { vid, .. } => {
                if action != TC_ACT_REDIRECT || got != &body[..] {
                    fail("expected the frame switched unchanged but for its tag");
                }
                if vid == 0 {
                    "switch"
                } else {
                    "switch to a VLAN"
                }
                .to_owned()
            }
            model::EncapVerdict::Unicast {
                resolved, outer, ..
            } => {
                if action != TC_ACT_REDIRECT || got != &with_outer(outer.words())[..] {
                    fail("expected the frame encapsulated");
                }
                if resolved {
                    "unicast"
                } else {
                    "unicast via neighbour"
                }
                .to_owned()
            }
            model::EncapVerdict::FragNeeded { reply } => {
                if action != TC_ACT_REDIRECT || got != &reply[..] {
                    fail("expected an ICMP fragmentation-needed reply");
                }
                expected[DropReason::TooBig as usize] += 1;
                "icmp frag needed".to_owned()
            }
            model::EncapVerdict::PacketTooBig { reply } => {
                if action != TC_ACT_REDIRECT || got != &reply[..] {
                    fail("expected an ICMPv6 packet-too-big reply");
                }
                expected[DropReason::TooBig as usize] += 1;
                "icmp packet too big".to_owned()
            }
            model::EncapVerdict::Flood(f) => {
                if action != TC_ACT_SHOT {
                    fail("expected the original consumed by a flood");
                }
                let want_out = match (f.grown, f.last) {
                    (false, _) => Some(body.clone()),
                    (true, Some(outer)) => Some(with_outer(outer.words())),
                    (true, None) => None,
                };
                if want_out.is_some_and(|w| got != &w[..]) {
                    fail("expected the flood to leave the last copy's encapsulation");
                }
                expected[DropReason::NoNeighbour as usize] += u64::from(f.no_neighbour);
                expected[DropReason::NoRoute as usize] += u64::from(f.no_route);
                format!("flood to {} remotes", f.sent)
            }
        };
        *seen.entry(key).or_default() += 1;
        if i % 997 == 0 {
            let got = counted(&l);
            assert_eq!(
                got,
                expected,
                "drop counters after frame {i} (seed {seed}) {want:?} {}",
                frame.iter().map(|b| format!("{b:02x}")).collect::<String>()
            );
        }
    }
    let got = counted(&l);
    assert_eq!(got, expected, "drop counters (seed {seed})");
    println!(
        "encap vs reference model over {}, seed {seed}: 100000 frames, no mismatch: {seen:?}",
        vtep_user::values::family(fam.local)
    );
    // Most unicast frames were decided from the encap cache, which the
    // model knows nothing of.
    let fills = l.counters(MAP_COUNTERS, Counter::COUNT)[Counter::EncapCacheFill as usize];
    let unicast = u64::from(seen.get("unicast").copied().unwrap_or(0));
    assert!(
        fills > 0 && unicast > 2 * fills,
        "the encap cache was not exercised: {fills} fills for {unicast} unicast frames"
    );
    for kind in [
        "switch",
        "switch to a VLAN",
        "unicast",
        "unicast via neighbour",
        "icmp frag needed",
        "icmp packet too big",
        "flood to 0 remotes",
        "flood to 1 remotes",
        "drop unbound_vlan",
        "drop qinq",
        "drop inner_vlan",
        "drop group_source_mac",
        "drop hairpin",
        "drop vni_mismatch",
        "drop no_route",
        "drop no_neighbour",
        "drop too_big",
        "drop no_flood_target",
        "drop policy_denied",
    ] {
        assert!(seen.contains_key(kind), "no frame got '{kind}': {seen:?}");
    }
}
