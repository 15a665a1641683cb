//! Commands run at once on one instance never corrupt its tables: every
//! change holds the instance's lock from its first read to its last
//! write.

use std::time::Duration;

use vtep_tests::{BpfFs, Vtep, underlay_pair};

#[test]
fn parallel_commands_never_corrupt_the_tables() {
    let bpffs = BpfFs::new();
    let (host, _peer) = underlay_pair("cc");
    let v = &Vtep::new(&host, &bpffs);
    v.ok(&["up", "--underlay", "ul0", "--local-ip", "198.18.0.1"]);
    // Every VNI names the same two remote VTEPs, so every command
    // read-modify-writes the same REMOTES and PEERS entries.
    let all = |args: &dyn Fn(u32) -> Vec<String>| {
        let running: Vec<_> = (1..=40)
            .map(|n| {
                let a = args(n);
                let a: Vec<&str> = a.iter().map(String::as_str).collect();
                v.spawn(&a)
            })
            .collect();
        for p in running {
            let out = p.finish(Duration::from_secs(120));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    for round in 0..6 {
        all(&|n| {
            [
                "vni",
                "add",
                &n.to_string(),
                "--flood",
                "198.18.9.1,198.18.9.2",
            ]
            .map(str::to_owned)
            .to_vec()
        });
        assert_eq!(v.map_row("VNIS")["entries"], 40, "round {round}");
        let peers = v.map_dump("PEERS");
        let refs: Vec<u64> = peers
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["vnis"].as_u64().unwrap())
            .collect();
        assert_eq!(refs, [40, 40], "round {round}: {peers}");
        all(&|n| ["vni", "del", &n.to_string()].map(str::to_owned).to_vec());
        for map in ["VNIS", "REMOTES", "PEERS"] {
            assert_eq!(
                v.map_row(map)["entries"],
                0,
                "round {round}: {map} after every VNI went: {}",
                v.map_dump(map)
            );
        }
    }
    // `down` removes the lock file with the instance.
    v.ok(&["down"]);
    let left: Vec<String> = std::fs::read_dir("/run/vtep")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(&v.instance))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "left in /run/vtep: {left:?}");
}
