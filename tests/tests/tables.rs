//! The `vtep` command's contract on tables: capacities and full tables
//! refused in one line with nothing half-applied, big configurations
//! applied, the records `up`/`down` keep (neighbour entries, remote VTEPs).

mod host;

use host::{refused, setup};

#[test]
fn capacities_give_clear_errors_and_big_configs_apply() {
    let s = setup();
    let v = &s.vtep;
    v.ok(&["up", "--underlay", "ul0", "--local-ip", "198.18.0.1"]);
    let too_many: Vec<String> = (1..=33).map(|i| format!("198.18.7.{i}")).collect();
    refused(
        v,
        &["vni", "add", "100", "--flood", &too_many.join(",")],
        "at most 32",
    );
    v.ok(&["down"]);

    // 20000 tenants in one file: applied in one pass.
    let mut cfg = String::from("underlay = \"ul0\"\nlocal_ip = \"198.18.0.1\"\n");
    for vni in 1..=20_000 {
        cfg.push_str(&format!("[[vni]]\nvni = {vni}\nflood = [\"198.18.0.2\"]\n"));
    }
    let path = std::env::temp_dir().join(format!("{}.toml", vtep_tests::unique("big")));
    std::fs::write(&path, cfg).unwrap();
    v.ok(&["up", "--config", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(v.map_row("VNIS")["entries"], 20_000);
}

#[test]
fn down_removes_the_neighbour_entries_it_created_and_no_others() {
    let s = setup();
    let v = &s.vtep;
    let neigh = |ip: &str| s.host.ok(&["ip", "neigh", "show", ip, "dev", "ul0"]);
    v.ok(&["up", "--underlay", "ul0", "--local-ip", "198.18.0.1"]);
    assert_eq!(neigh("198.18.0.2").trim(), "", "no entry before");
    v.ok(&["vni", "add", "100", "--flood", "198.18.0.2"]);
    assert!(
        neigh("198.18.0.2").contains("managed"),
        "{}",
        neigh("198.18.0.2")
    );
    v.ok(&["down"]);
    assert_eq!(
        neigh("198.18.0.2").trim(),
        "",
        "down left the entry it created"
    );

    // An entry the host had before is the host's: it stays.
    s.host.ok(&[
        "ip",
        "neigh",
        "add",
        "198.18.0.3",
        "lladdr",
        "02:ee:00:00:00:03",
        "dev",
        "ul0",
        "nud",
        "permanent",
    ]);
    v.ok(&["up", "--underlay", "ul0", "--local-ip", "198.18.0.1"]);
    v.ok(&["vni", "add", "100", "--flood", "198.18.0.3"]);
    v.ok(&["down"]);
    assert!(
        neigh("198.18.0.3").contains("02:ee:00:00:00:03"),
        "{}",
        neigh("198.18.0.3")
    );
}

#[test]
fn remote_vtep_records_follow_the_vnis_that_name_them() {
    let s = setup();
    let v = &s.vtep;
    v.ok(&["up", "--underlay", "ul0", "--local-ip", "198.18.0.1"]);
    let peers = || -> Vec<(String, u64, u64)> {
        let mut rows: Vec<_> = v
            .map_dump("PEERS")
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["remote"].as_str().unwrap().to_owned(),
                    p["slot"].as_u64().unwrap(),
                    p["vnis"].as_u64().unwrap(),
                )
            })
            .collect();
        rows.sort();
        rows
    };
    v.ok(&["vni", "add", "100", "--flood", "198.18.0.2,198.18.0.3"]);
    v.ok(&["vni", "add", "200", "--flood", "198.18.0.2"]);
    v.ok(&[
        "fdb",
        "add",
        "02:00:00:00:00:05",
        "--vni",
        "200",
        "--remote",
        "198.18.0.5",
    ]);
    let p = peers();
    assert_eq!(p.len(), 3, "{p:?}");
    assert_eq!((p[0].0.as_str(), p[0].2), ("198.18.0.2", 2), "{p:?}");
    assert_eq!((p[1].0.as_str(), p[1].2), ("198.18.0.3", 1), "{p:?}");
    assert_eq!((p[2].0.as_str(), p[2].2), ("198.18.0.5", 1), "{p:?}");
    let mut slots: Vec<u64> = p.iter().map(|r| r.1).collect();
    slots.sort();
    slots.dedup();
    assert_eq!(slots.len(), 3, "one stats slot per remote VTEP: {p:?}");
    assert!(slots.iter().all(|s| *s > 0), "slot 0 is never given: {p:?}");

    v.ok(&["vni", "del", "200"]);
    v.ok(&["vni", "add", "100", "--flood", "198.18.0.2"]);
    let p = peers();
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!((p[0].0.as_str(), p[0].2), ("198.18.0.2", 1), "{p:?}");
    let stats: serde_json::Value = serde_json::from_str(&v.ok(&["stats", "--json"])).unwrap();
    assert_eq!(stats["remotes"].as_array().unwrap().len(), 1, "{stats}");
    assert_eq!(stats["remotes"][0]["remote"], "198.18.0.2");
    assert_eq!(stats["remotes"][0]["tx_packets"], 0);
}

#[test]
fn full_tables_give_clear_errors_and_nothing_half_applied() {
    let s = setup();
    let v = &s.vtep;
    let dir = s.temp_dir("full");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let entries = |from: usize, n: usize, remote: &str| -> String {
        (from..from + n)
            .map(|i| format!("02:00:00:00:00:{i:02x} 100 remote {remote}\n"))
            .collect()
    };
    let fdb_len = || {
        let fdb: serde_json::Value =
            serde_json::from_str(&v.ok(&["fdb", "show", "--json"])).unwrap();
        fdb.as_array().unwrap().len()
    };

    // The static FDB, sized small.
    v.ok(&[
        "up",
        "--underlay",
        "ul0",
        "--local-ip",
        "198.18.0.1",
        "--fdb-capacity",
        "16",
    ]);
    v.ok(&["vni", "add", "100", "--flood", "198.18.0.2"]);
    v.ok(&["fdb", "load", &write("ten", &entries(0, 10, "198.18.0.2"))]);
    // Ten more, naming a remote VTEP not seen before: six fit, then the
    // table is full; the six are undone, the new remote is not left
    // behind.
    let more = write("more", &entries(10, 10, "198.18.0.9"));
    refused(v, &["fdb", "load", &more], "FDB full");
    assert!(v.fails(&["fdb", "load", &more]).contains("nothing loaded"));
    assert_eq!(fdb_len(), 10, "a refused load left entries");
    let remotes = v.map_dump("REMOTES");
    assert_eq!(remotes.as_array().unwrap().len(), 1, "{remotes}");
    assert_eq!(remotes[0]["refs"], 11, "flood list + 10 entries: {remotes}");
    let peers = v.map_dump("PEERS");
    assert_eq!(peers.as_array().unwrap().len(), 1, "{peers}");
    v.ok(&["fdb", "load", &write("six", &entries(10, 6, "198.18.0.2"))]);
    assert_eq!(fdb_len(), 16);
    refused(
        v,
        &[
            "fdb",
            "add",
            "02:00:00:00:01:00",
            "--vni",
            "100",
            "--remote",
            "198.18.0.3",
        ],
        "--fdb-capacity",
    );
    assert_eq!(fdb_len(), 16);
    assert_eq!(v.map_dump("PEERS").as_array().unwrap().len(), 1);
    // Replacing an entry needs no room.
    v.ok(&[
        "fdb",
        "add",
        "02:00:00:00:00:00",
        "--vni",
        "100",
        "--remote",
        "198.18.0.3",
    ]);
    v.ok(&["down"]);

    // The VNI table: a config over its capacity is refused before
    // anything is loaded; one at its capacity applies, and one more VNI is
    // refused with the table unchanged.
    let config = |n: u32| {
        let mut c = String::from("underlay = \"ul0\"\nlocal_ip = \"198.18.0.1\"\n");
        for vni in 1..=n {
            c.push_str(&format!("[[vni]]\nvni = {vni}\n"));
        }
        c
    };
    refused(
        v,
        &["up", "--config", &write("over", &config(65_537))],
        "at most 65536",
    );
    assert!(v.fails(&["stats"]).contains("is not up"), "half brought up");
    v.ok(&["up", "--config", &write("full", &config(65_536))]);
    refused(
        v,
        &["vni", "add", "70000", "--flood", "198.18.0.2"],
        "VNI table full",
    );
    assert_eq!(v.map_row("VNIS")["entries"], 65_536);
    assert_eq!(
        v.map_row("REMOTES")["entries"],
        0,
        "the refused VNI left a remote"
    );
    assert_eq!(
        v.map_row("PEERS")["entries"],
        0,
        "the refused VNI left a remote"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
