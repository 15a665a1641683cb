//! The decap program against its reference model (vtep-common `model`)
//! on random and damaged frames, over each underlay family (the encap
//! program: `reference_encap`).

use vtep_common::{
    consts::ETH_HLEN,
    maps::{REMOTE_F_GBP, REMOTE_F_POLICY},
};

use super::{
    reference_policy::{POLICY_VNI, PolicyFixture, random_vxlan_word},
    *,
};

/// The decap fixture's tables, for the reference model, with its ports
/// made real in [`private_netns`]: MAC_SKB_PORT behind `skb` (p2, MTU
/// [`P2_MTU`], or p3, MTU 1500), MAC_XDP_PORT behind `xdp` (p1, 1500),
/// MAC_PEER_PORT behind `peer` (delivered into a veth's peer from TC);
/// trunk bindings: MAC_TRUNK behind VLAN 10 of `xdp`, MAC_A behind VLAN
/// 20 of p2. Group policy in VNI 100 as [`PolicyFixture`] has it.
struct FixtureTables {
    skb: u32,
    xdp: u32,
    peer: u32,
    p2: u32,
    f: Family,
    policy: PolicyFixture,
}

impl model::DecapTables for FixtureTables {
    fn remote_allowed(&self, vni: u32, sender: Addr) -> bool {
        matches!(vni, 100 | 200 | 300) && sender == ip(self.f.remote)
    }
    fn remote_flags(&self, vni: u32, sender: Addr) -> u32 {
        if self.policy.on() && vni == POLICY_VNI && sender == ip(self.f.remote) {
            REMOTE_F_POLICY | REMOTE_F_GBP
        } else {
            0
        }
    }
    fn vni_ports(&self, vni: u32) -> Option<u32> {
        match vni {
            100 => Some(2),
            200 => Some(1),
            300 => Some(0),
            _ => None,
        }
    }
    fn fdb(&self, vni: u32, mac: [u8; 6]) -> Option<FdbEntry> {
        let e = |ifindex, remote: Option<IpAddr>, flags| FdbEntry {
            remote: remote.map_or(Addr::NONE, ip),
            ifindex,
            flags,
            peer: remote.map_or(0, peer_slot),
            ..FdbEntry::default()
        };
        let tagged = |ifindex, vid, flags| FdbEntry {
            vid,
            ..e(ifindex, None, flags)
        };
        match (vni, mac) {
            (100, MAC_TRUNK) => Some(tagged(self.xdp, 10, FDB_F_STATIC | FDB_F_XDP)),
            (100, MAC_A) => Some(tagged(self.p2, 20, FDB_F_STATIC)),
            (100, MAC_SKB_PORT) => Some(e(self.skb, None, FDB_F_STATIC)),
            (100, MAC_XDP_PORT) => Some(e(self.xdp, None, FDB_F_STATIC | FDB_F_XDP)),
            (100, MAC_PEER_PORT) => Some(e(self.peer, None, FDB_F_STATIC | FDB_F_PEER)),
            (100, MAC_BEHIND_REMOTE) => Some(e(0, Some(self.f.unresolved), FDB_F_STATIC)),
            _ => None,
        }
    }
    fn port_mtu(&self, ifindex: u32) -> Option<u32> {
        Some(if ifindex == self.p2 { P2_MTU } else { 1500 })
    }
}

/// The inner frame as decap leaves it: marked CE when `ce`.
fn decapsulated(inner: &[u8], ce: bool) -> Vec<u8> {
    let mut f = inner.to_vec();
    if ce {
        model::mark_ce(&mut f);
    }
    f
}

/// A VXLAN frame over the underlay of `fam` built from random choices,
/// then randomly damaged; now and then one over the other family (left
/// to the kernel).
fn random_frame(r: &mut Rng, fam: Family) -> Vec<u8> {
    let dst = match r.below(9) {
        0 => MAC_SKB_PORT,
        7 => MAC_TRUNK,
        8 => MAC_A,
        1 => MAC_XDP_PORT,
        2 => MAC_BEHIND_REMOTE,
        3 => BROADCAST,
        4 => MAC_UNKNOWN,
        5 => MAC_PEER_PORT,
        _ => [r.next_u64() as u8, 0, 0, 0, 0, r.next_u64() as u8],
    };
    let mut inner = match r.below(4) {
        0 => inner_frame(dst),
        1 => arp_frame(dst),
        2 => vlan_frame(dst),
        // Around the ports' largest frames (1418 and 1518 bytes).
        _ => sized_frame(dst, 1400 + r.below(140) as usize, true),
    };
    if r.below(8) == 0 {
        inner[6] = r.next_u64() as u8;
    }
    // Any dsfield (ECN: Not-ECT, ECT(1), ECT(0), CE) in most IP packets.
    if r.below(3) != 0 && model::inner_dsfield(&inner).is_some() {
        set_ds(&mut inner, ETH_HLEN, r.next_u64() as u8);
    }
    inner.truncate(14 + r.below(inner.len() as u64 - 13) as usize);
    let any_vni = (r.next_u64() & 0xff_ffff) as u32;
    let vni = r.pick(&[100, 100, 100, 200, 300, 4242, any_vni]);
    let sender = match r.below(12) {
        0 | 1 => fam.stranger,
        2 => other_family(fam).remote,
        _ => fam.remote,
    };
    let flags = random_vxlan_word(r);
    let mut f = vxlan(sender, VXLAN_PORT, flags, vni, &inner);
    // Congestion marks of the underlay (CE) in many outer headers.
    if r.below(2) == 0 {
        let any = r.next_u64() as u8;
        set_ds(&mut f, ETH_HLEN, r.pick(&[3u8, 3, 0xbb, any]));
    }
    let v4 = sender.is_ipv4();
    let header = f.len().min(if v4 { 96 } else { 116 });
    match r.below(10) {
        0..=3 => {}
        4 | 5 => {
            for _ in 0..1 + r.below(4) {
                let at = r.below(header as u64) as usize;
                f[at] = r.next_u64() as u8;
            }
        }
        6 => f.truncate(14 + r.below(f.len() as u64 - 13) as usize),
        // Version and IHL, or version and traffic class.
        7 if v4 => f[14] = 0x40 | (r.next_u64() as u8 & 0x0f),
        7 => f[14] = r.next_u64() as u8,
        8 => {
            // IPv4: UDP length, total length or fragment bits and TTL;
            // IPv6: payload length, next header, hop limit, UDP length.
            let at = if v4 {
                r.pick(&[38usize, 39, 16, 17, 20, 21, 22])
            } else {
                r.pick(&[18usize, 19, 20, 21, 58, 59])
            };
            f[at] = r.next_u64() as u8;
        }
        _ => f[12..14].copy_from_slice(&(r.next_u64() as u16).to_be_bytes()),
    }
    f
}

/// The fixture addresses of the family `fam` is not.
fn other_family(fam: Family) -> Family {
    if fam.local.is_ipv4() { V6 } else { V4 }
}

#[test]
fn decap_matches_the_reference_model_on_random_frames() {
    decap_differential(V4, Via::Xdp);
}

#[test]
fn decap_over_ipv6_matches_the_reference_model_on_random_frames() {
    decap_differential(V6, Via::Xdp);
}

#[test]
fn decap_in_tc_matches_the_reference_model_on_random_frames() {
    decap_differential(V4, Via::Tc);
}

#[test]
fn decap_in_tc_over_ipv6_matches_the_reference_model_on_random_frames() {
    decap_differential(V6, Via::Tc);
}

/// Which program decapsulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// `vtep_decap` in XDP (passing frames up to TC with metadata).
    Xdp,
    /// `vtep_decap_tc` on an underlay without XDP (`CONFIG_F_DECAP_TC`).
    Tc,
}

/// 100,000 random frames through the decap program (`via`) over the
/// underlay of `fam`, each checked against the model.
fn decap_differential(fam: Family, via: Via) {
    let (ul0, _) = private_netns();
    let (p1, p2, p3) = (ifindex("p1"), ifindex("p2"), ifindex("p3"));
    let mut cfg = config_at(fam.local, 1);
    if via == Via::Tc {
        cfg.flags |= CONFIG_F_DECAP_TC;
    }
    let mut l = decap_loaded_with(fam, cfg);
    // Floods are cloned out of real devices from TC: the VNIs' ports must
    // exist (the model counts them only).
    let p4 = ifindex("p4");
    let flood_ports = |vni: u32| match vni {
        100 => vec![p1, p2],
        200 => vec![p4],
        _ => vec![],
    };
    if via == Via::Tc {
        for vni in [100, 200] {
            l.vni(vni, &[fam.remote], &flood_ports(vni));
        }
    }
    l.port(p1, 100, PORT_F_XDP);
    l.port(p2, 100, 0);
    l.port(p3, 100, PORT_F_PEER);
    l.fdb_flags(100, MAC_XDP_PORT, None, p1, FDB_F_STATIC | FDB_F_XDP);
    l.fdb(100, MAC_SKB_PORT, None, p2);
    l.fdb_flags(100, MAC_PEER_PORT, None, p3, FDB_F_STATIC | FDB_F_PEER);
    l.binding(PortKey::new(p1, 10), 100, PORT_F_XDP);
    l.binding(PortKey::new(p2, 20), 100, 0);
    l.fdb_at(
        100,
        MAC_TRUNK,
        None,
        PortKey::new(p1, 10),
        FDB_F_STATIC | FDB_F_XDP,
    );
    l.fdb_at(100, MAC_A, None, PortKey::new(p2, 20), FDB_F_STATIC);
    // Group policy: members of groups 10, 20 and 30; the peer port's and
    // p2 VLAN 20's default groups 7 and 5.
    let members = [(MAC_SKB_PORT, 10), (MAC_XDP_PORT, 20), (MAC_TRUNK, 30)];
    let groups = [(PortKey::new(p3, 0), 7), (PortKey::new(p2, 20), 5)];
    let policy = PolicyFixture::install(&mut l, &members, &groups);
    let mut tables = FixtureTables {
        skb: p2,
        xdp: p1,
        peer: p3,
        p2,
        f: fam,
        policy,
    };
    let seed = std::env::var("VTEP_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5654_4550_2026_u64);
    let mut rng = Rng(seed);
    let run = |l: &Loaded, frame: &[u8], out: &mut [u8]| match via {
        Via::Xdp => run_xdp(l)(frame, out),
        Via::Tc => run_decap_tc(l, ul0, 0, frame, out),
    };
    // The actions of each program.
    let (pass, drop) = match via {
        Via::Xdp => (XDP_PASS, XDP_DROP),
        Via::Tc => (TC_ACT_OK, TC_ACT_SHOT),
    };
    let drops_total = |l: &Loaded| l.counters(MAP_DROPS, DropReason::COUNT).iter().sum::<u64>();
    let (mut expected_drops, start_drops) = (0u64, drops_total(&l));
    let mut seen = std::collections::BTreeMap::<String, u32>::new();
    for i in 0..100_000u32 {
        // Now and then MAC_SKB_PORT moves between p2 and p3 (as `vtep fdb
        // add` does it): no decision cached before may be used after.
        if i % 1000 == 999 {
            tables.skb = if tables.skb == p2 { p3 } else { p2 };
            l.fdb(100, MAC_SKB_PORT, None, tables.skb);
        }
        // And VNI 100's policy goes off, on, to default deny.
        if i % 1000 == 499 {
            tables.policy.next(&mut l, &[], Some(fam.remote));
        }
        let frame = random_frame(&mut rng, fam);
        // test_run makes no skb of less than an Ethernet header and the
        // IP header its EtherType announces (the model passes such frames).
        if via == Via::Tc && frame.len() < ETH_HLEN + 40 {
            continue;
        }
        let want = model::decap(&frame, &cfg, &tables, &tables.policy);
        let mut out = vec![0u8; frame.len() + 64];
        let (action, len) = run(&l, &frame, &mut out);
        let got = &out[..len];
        let fail = |what: &str| -> ! {
            let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
            panic!(
                "frame {i} over {fam:?} (seed {seed}): {what}\nmodel: {want:?}\nprogram: action {action}, output {len} bytes\nframe: {hex}"
            )
        };
        let key = match want {
            model::Verdict::Pass => {
                if action != pass || got != &frame[..] {
                    fail("expected pass, unchanged");
                }
                "pass".to_owned()
            }
            model::Verdict::Drop(reason) => {
                if action != drop {
                    fail("expected a drop");
                }
                expected_drops += 1;
                format!("drop {}", reason.name())
            }
            model::Verdict::Redirect { strip, vid, ce, .. } => {
                let inner = decapsulated(&frame[strip..], ce);
                let want_out = match vid {
                    0 => inner,
                    v => tagged(&inner, 0x8100, v),
                };
                if action != XDP_REDIRECT || got != &want_out[..] {
                    fail("expected a redirect of the inner frame");
                }
                if vid == 0 {
                    "redirect"
                } else {
                    "redirect tagged"
                }
                .to_owned()
            }
            model::Verdict::Up {
                strip,
                vni,
                ifindex,
                action: act,
                vid,
                ce,
            } => {
                let inner = decapsulated(&frame[strip..], ce);
                // TC hands the skb over itself (a VLAN tag, pushed as the
                // skb's, is not in the frame), or floods clones of it.
                let (want_action, want_out) = match (via, act) {
                    (Via::Xdp, _) => (
                        XDP_PASS,
                        [tagged_meta(act, vni, ifindex, vid), inner].concat(),
                    ),
                    (Via::Tc, META_ACTION_FLOOD) => {
                        // A copy too big for its port is dropped there.
                        let mtu = |p| model::DecapTables::port_mtu(&tables, p).unwrap();
                        expected_drops += flood_ports(vni)
                            .into_iter()
                            .filter(|p| inner.len() > (mtu(*p) + 18) as usize)
                            .count() as u64;
                        (TC_ACT_SHOT, inner)
                    }
                    (Via::Tc, _) => (TC_ACT_REDIRECT, inner),
                };
                if action != want_action || got != &want_out[..] {
                    fail("expected the inner frame delivered or flooded");
                }
                match act {
                    META_ACTION_FLOOD => "flood",
                    META_ACTION_DELIVER_PEER => "deliver to a peer",
                    _ => "deliver",
                }
                .to_owned()
            }
        };
        *seen.entry(key).or_default() += 1;
        // The drop counter named by the model, checked now and then (each
        // read is a syscall per CPU); the total is checked at the end.
        if i % 997 == 0
            && let model::Verdict::Drop(reason) = want
        {
            let before = l.counters(MAP_DROPS, DropReason::COUNT)[reason as usize];
            run(&l, &frame, &mut out);
            let after = l.counters(MAP_DROPS, DropReason::COUNT)[reason as usize];
            assert_eq!(
                after,
                before + 1,
                "frame {i} (seed {seed}): counter {}",
                reason.name()
            );
            expected_drops += 1;
        }
    }
    assert_eq!(
        drops_total(&l) - start_drops,
        expected_drops,
        "drop counters (seed {seed})"
    );
    let c = l.counters(MAP_COUNTERS, Counter::COUNT);
    let fills = c[Counter::DecapCacheFill as usize];
    let delivered = c[Counter::DecapXdp as usize] + c[Counter::DecapSkb as usize];
    println!(
        "decap ({via:?}) vs reference model over {}, seed {seed}: 100000 frames, no mismatch: \
         {seen:?}; {delivered} deliveries, {fills} decided from the tables, the rest from the cache",
        vtep_user::values::family(fam.local),
    );
    assert!(
        fills > 0 && delivered > 2 * fills,
        "the decap cache was not exercised: {fills} fills for {delivered} deliveries"
    );
    // The generator reaches every kind of verdict (without XDP, every
    // delivery is from TC).
    let redirects: &[&str] = match via {
        Via::Xdp => &["redirect", "redirect tagged"],
        Via::Tc => &[],
    };
    for kind in redirects.iter().copied().chain([
        "pass",
        "deliver",
        "deliver to a peer",
        "flood",
        "drop malformed",
        "drop unknown_vni",
        "drop unknown_remote",
        "drop no_i_flag",
        "drop inner_vlan",
        "drop remote_to_remote",
        "drop ce_not_ect",
        "drop no_flood_target",
        "drop group_source_mac",
        "drop too_big",
        "drop policy_denied",
    ]) {
        assert!(seen.contains_key(kind), "no frame got '{kind}': {seen:?}");
    }
}
