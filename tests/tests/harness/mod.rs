//! Programs of the harness's eBPF object (`vtep-ebpf`'s `vtep-bench`
//! binary, which `cargo xtask test` builds and names in
//! `VTEP_HARNESS_OBJ`) attached in a test's namespace: what this kernel
//! cannot do otherwise (no 8021q, no act_vlan, no ECN-marking qdisc).

use anyhow::Context as _;
use aya::{
    Ebpf, EbpfLoader,
    programs::{SchedClassifier, TcAttachType, tc},
};
use vtep_tests::{Netns, in_netns};

/// The harness's eBPF object.
fn harness_object() -> Vec<u8> {
    let path = std::env::var_os("VTEP_HARNESS_OBJ")
        .expect("VTEP_HARNESS_OBJ names the harness's eBPF object: run through `cargo xtask test`");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"))
}

/// Harness programs attached to an interface; detached when dropped (and
/// with the namespace at the latest).
pub struct Attached {
    _programs: Ebpf,
}

/// Attaches `progs` (TC program name, hook) to `dev` in `ns`, with the
/// object's global `VID` set to `vid`.
pub fn attach(ns: &Netns, dev: &str, progs: &[(&str, TcAttachType)], vid: u16) -> Attached {
    let obj = harness_object();
    in_netns(&ns.name, move || {
        let mut ebpf = EbpfLoader::new()
            .override_global("VID", &u32::from(vid), true)
            .load(&obj)?;
        tc::qdisc_add_clsact(dev).context("clsact")?;
        for (prog, hook) in progs {
            let p: &mut SchedClassifier = ebpf
                .program_mut(prog)
                .context("no such program")?
                .try_into()?;
            p.load()?;
            p.attach(dev, *hook)?;
        }
        Ok(Attached { _programs: ebpf })
    })
    .unwrap_or_else(|e| panic!("cannot attach {progs:?} to {dev}: {e:#}"))
}
