//! The decap decision cache against the tables.

use super::*;

/// The decap decision cache (vtep-ebpf `cache`): the frames of a
/// conversation after the first are decided from the cache, never after a
/// table change in their VNI (its generation moves) and never after the
/// learned entry of their destination went stale; learning bumps the
/// generation; changes in other VNIs do not touch it.
#[test]
fn decap_cache_follows_the_tables() {
    private_netns();
    let (p2, p3) = (ifindex("p2"), ifindex("p3"));
    let mut l = Loaded::new(Config {
        ageing_s: 1,
        ..config(1)
    });
    l.vni(100, &[REMOTE], &[p2, p3]);
    l.port(p2, 100, 0);
    l.port(p3, 100, 0);
    l.fdb(100, MAC_SKB_PORT, None, p2);
    let fills =
        |l: &Loaded| l.counters(MAP_COUNTERS, Counter::COUNT)[Counter::DecapCacheFill as usize];
    let to_skb_port = vxlan(REMOTE, VXLAN_PORT, I, 100, &inner_frame(MAC_SKB_PORT));

    assert_eq!(passed_up_to(&l, &to_skb_port), p2);
    assert_eq!(fills(&l), 1, "the first frame is decided from the tables");
    for _ in 0..3 {
        assert_eq!(passed_up_to(&l, &to_skb_port), p2);
    }
    assert_eq!(fills(&l), 1, "the frames after it, from the cache");
    // A change in another VNI (say a flood of new MACs there) leaves this
    // VNI's decisions cached.
    l.generation.bump(200);
    assert_eq!(passed_up_to(&l, &to_skb_port), p2);
    assert_eq!(
        fills(&l),
        1,
        "a change in VNI 200 dropped VNI 100's decision"
    );

    // The FDB entry changes behind the cache's back (no bump): the cache
    // still answers, which is what makes the generation load-bearing...
    {
        let mut m: HashMap<_, FdbKey, FdbEntry> =
            HashMap::try_from(l.ebpf.map_mut(MAP_FDB).unwrap()).unwrap();
        let e = FdbEntry {
            remote: Addr::NONE,
            ifindex: p3,
            flags: FDB_F_STATIC,
            peer: 0,
            ..FdbEntry::default()
        };
        m.insert(FdbKey::new(100, MAC_SKB_PORT), e, 0).unwrap();
    }
    assert_eq!(passed_up_to(&l, &to_skb_port), p2);
    // ...and once it moves, as after every change `vtep` makes, the next
    // frame follows the table.
    l.generation.bump(100);
    assert_eq!(passed_up_to(&l, &to_skb_port), p3);
    assert_eq!(fills(&l), 2);

    // A learned destination 0.7 s into its 1 s of life: delivered and
    // cached, then flooded once it went stale, with no table change.
    {
        let mut m: HashMap<_, FdbKey, LearnedEntry> =
            HashMap::try_from(l.ebpf.map_mut(MAP_LEARNED).unwrap()).unwrap();
        let seen_ns = coarse_now_ns() - 700_000_000;
        let e = LearnedEntry {
            ifindex: p3,
            seen_ns,
            window_ns: seen_ns,
            ..LearnedEntry::default()
        };
        m.insert(FdbKey::new(100, MAC_UNKNOWN), e, 0).unwrap();
    }
    l.generation.bump(100);
    let to_learned = vxlan(REMOTE, VXLAN_PORT, I, 100, &inner_frame(MAC_UNKNOWN));
    assert_eq!(passed_up_to(&l, &to_learned), p3);
    assert_eq!(passed_up_to(&l, &to_learned), p3);
    assert_eq!(fills(&l), 3);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(passed_up_to(&l, &to_learned), 0, "stale: flooded");

    // Learning from REMOTE: a MAC learned bumps the generation; seeing it
    // again (a refresh at most) does not.
    {
        let mut r: HashMap<_, RemoteKey, RemoteInfo> =
            HashMap::try_from(l.ebpf.map_mut(MAP_REMOTES).unwrap()).unwrap();
        let key = RemoteKey {
            vni: 100,
            ip: ip(REMOTE),
        };
        let mut info = r.get(&key, 0).unwrap();
        info.flags |= REMOTE_F_LEARN;
        r.insert(key, info, 0).unwrap();
    }
    l.generation.bump(100);
    let before = l.generation.get(100);
    assert_eq!(passed_up_to(&l, &to_skb_port), p3);
    let learned = l.generation.get(100);
    assert!(
        learned > before,
        "learning MAC_A did not bump the generation"
    );
    assert_eq!(passed_up_to(&l, &to_skb_port), p3);
    assert_eq!(
        l.generation.get(100),
        learned,
        "a second frame changed nothing"
    );
}
