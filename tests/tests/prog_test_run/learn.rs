//! Data-plane learning against the entries the EVPN agent installs: the
//! first frame from another VTEP re-points a MAC that EVPN put behind a
//! remote (the agent then confirms it through BGP), but never a sticky
//! EVPN entry or a static one.

use vtep_common::maps::{FDB_F_EVPN, FDB_F_STICKY};

use super::*;

const MAC_EVPN: [u8; 6] = [2, 0, 0, 0, 4, 1];
const MAC_STICKY: [u8; 6] = [2, 0, 0, 0, 4, 2];
const MAC_STATIC: [u8; 6] = [2, 0, 0, 0, 4, 3];

#[test]
fn learning_moves_evpn_entries_but_not_sticky_or_static_ones() {
    let mut l = Loaded::new(config(1));
    l.vni(100, &[REMOTE, STRANGER], &[P_SKB]);
    l.port(P_SKB, 100, 0);
    l.fdb(100, MAC_SKB_PORT, None, P_SKB);
    {
        let mut r: HashMap<_, RemoteKey, RemoteInfo> =
            HashMap::try_from(l.ebpf.map_mut(MAP_REMOTES).unwrap()).unwrap();
        for remote in [REMOTE, STRANGER] {
            let key = RemoteKey {
                vni: 100,
                ip: ip(remote),
            };
            let mut info = r.get(&key, 0).unwrap();
            info.flags = REMOTE_F_LEARN;
            r.insert(key, info, 0).unwrap();
        }
    }
    l.fdb_flags(100, MAC_EVPN, Some(REMOTE), 0, FDB_F_EVPN);
    l.fdb_flags(100, MAC_STICKY, Some(REMOTE), 0, FDB_F_EVPN | FDB_F_STICKY);
    l.fdb(100, MAC_STATIC, Some(REMOTE), 0);
    let moved_before =
        l.counters(MAP_COUNTERS, Counter::MacMoved as u32 + 1)[Counter::MacMoved as usize];
    let run = run_xdp(&l);
    let mut out = vec![0u8; 2048];
    for src in [MAC_EVPN, MAC_STICKY, MAC_STATIC] {
        let mut inner = inner_frame(MAC_SKB_PORT);
        inner[6..12].copy_from_slice(&src);
        // Seen behind STRANGER now.
        run(&vxlan(STRANGER, VXLAN_PORT, I, 100, &inner), &mut out);
    }
    let fdb: HashMap<&MapData, FdbKey, FdbEntry> =
        HashMap::try_from(l.ebpf.map(MAP_FDB).unwrap()).unwrap();
    let learned: HashMap<&MapData, FdbKey, LearnedEntry> =
        HashMap::try_from(l.ebpf.map(MAP_LEARNED).unwrap()).unwrap();
    assert!(
        fdb.get(&FdbKey::new(100, MAC_EVPN), 0).is_err(),
        "the EVPN entry was not moved"
    );
    let e = learned
        .get(&FdbKey::new(100, MAC_EVPN), 0)
        .expect("the moved MAC is learned where it was seen");
    assert_eq!(e.remote, ip(STRANGER));
    for (mac, what) in [(MAC_STICKY, "sticky EVPN"), (MAC_STATIC, "static")] {
        let e = fdb
            .get(&FdbKey::new(100, mac), 0)
            .unwrap_or_else(|_| panic!("the {what} entry went"));
        assert_eq!(e.remote, ip(REMOTE), "the {what} entry moved");
        assert!(
            learned.get(&FdbKey::new(100, mac), 0).is_err(),
            "the {what} MAC was learned"
        );
    }
    let moved = l.counters(MAP_COUNTERS, Counter::MacMoved as u32 + 1)[Counter::MacMoved as usize];
    assert_eq!(moved - moved_before, 1, "one move counted");
}
