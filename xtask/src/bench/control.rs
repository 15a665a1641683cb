//! Control-plane rate: FDB entries programmed per second by
//! `vtep fdb load`.

use std::{path::Path, time::Instant};

use anyhow::Context as _;
use vtep_tests::{BpfFs, Vtep, underlay_pair};

use super::{report::ControlPlane, scale::fdb_file};

/// Times one `vtep fdb load` of many entries.
pub fn control_plane(vtep_bin: &Path, smoke: bool) -> anyhow::Result<ControlPlane> {
    let n = if smoke { 5_000 } else { 200_000 };
    let bpffs = BpfFs::new();
    let (host, _peer) = underlay_pair("cp");
    let v = Vtep::with_bin(&host, &bpffs.dir, vtep_bin.to_owned());
    v.ok(&["up", "--underlay", "ul0", "--local-ip", "198.18.0.1"]);
    v.ok(&["vni", "add", "100", "--flood", "198.18.0.2"]);
    let file = fdb_file(n, "198.18.0.2")?;
    let start = Instant::now();
    v.ok(&["fdb", "load", file.to_str().context("path")?]);
    let seconds = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&file);
    Ok(ControlPlane {
        entries: n,
        seconds,
        entries_per_second: n as f64 / seconds,
    })
}
