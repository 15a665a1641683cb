//! The host the CLI tests run `vtep` on: a namespace with an underlay and
//! two ports, and the check of a refused command.

use vtep_tests::{BpfFs, Netns, Vtep, underlay_pair, veth};

/// A host namespace with an underlay `ul0` (peer in `peer`) and two port
/// veths `p1`, `p2` (peers in the VM namespace).
pub struct Setup {
    pub vtep: Vtep,
    pub host: Netns,
    _peer: Netns,
    _vm: Netns,
    pub bpffs: BpfFs,
}

impl Setup {
    /// A new directory for files a test writes (next to the bpffs mount);
    /// the test removes it.
    pub fn temp_dir(&self, name: &str) -> std::path::PathBuf {
        let dir = self
            .bpffs
            .dir
            .parent()
            .expect("temp dir")
            .join(vtep_tests::unique(name));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

pub fn setup() -> Setup {
    let bpffs = BpfFs::new();
    let (host, peer) = underlay_pair("cli");
    let vm = Netns::new("clv");
    for p in ["p1", "p2"] {
        veth(&host, p, &vm, &format!("{p}v"));
        host.ok(&["ip", "link", "set", p, "up"]);
    }
    let vtep = Vtep::new(&host, &bpffs);
    Setup {
        vtep,
        host,
        _peer: peer,
        _vm: vm,
        bpffs,
    }
}

/// Runs a command that must fail with one line naming `needle`.
pub fn refused(v: &Vtep, args: &[&str], needle: &str) {
    let err = v.fails(args);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "`{}` printed more than one line:\n{err}",
        args.join(" ")
    );
    assert!(
        err.contains(needle),
        "`{}`: expected '{needle}' in: {err}",
        args.join(" ")
    );
}
