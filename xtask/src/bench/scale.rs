//! FDB scale: decap rate with 10, 10k and 1M FDB entries, on the
//! `vtep-uncached` bench (every frame looks the FDB up).

use std::fmt::Write as _;

use anyhow::Context as _;

use super::{
    pps::Bench,
    report::{FdbScale, ScalePoint},
};

/// Writes `n` FDB lines (MACs 02:01:..) behind `remote` in VNI 100, for
/// `vtep fdb load`.
pub fn fdb_file(n: usize, remote: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = std::env::temp_dir().join(vtep_tests::unique("fdb"));
    let mut text = String::with_capacity(n * 40);
    for i in 0..n {
        let b = (i as u32).to_be_bytes();
        writeln!(
            text,
            "02:01:{:02x}:{:02x}:{:02x}:{:02x} 100 remote {remote}",
            b[0], b[1], b[2], b[3]
        )?;
    }
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The decap rate of `b` (a vtep bench) as its FDB grows.
pub fn fdb_scale(b: &Bench, smoke: bool, packets: u32) -> anyhow::Result<FdbScale> {
    let v = b.vtep.as_ref().context("the vtep bench has no VTEP")?;
    let sizes: &[usize] = if smoke {
        &[10, 1_000]
    } else {
        &[10, 10_000, 1_000_000]
    };
    let mut have = 1; // the VM's own entry
    let mut points = Vec::new();
    for &n in sizes {
        let file = fdb_file(n - have, "198.18.0.2")?;
        v.ok(&["fdb", "load", file.to_str().context("path")?]);
        let _ = std::fs::remove_file(&file);
        have = n;
        let r: Vec<f64> = (0..3)
            .map(|_| b.measure(packets))
            .collect::<anyhow::Result<_>>()?;
        points.push(ScalePoint {
            entries: n,
            mpps_median: super::summary(&r).0 / 1e6,
        });
    }
    let (first, last) = (points[0].mpps_median, points[points.len() - 1].mpps_median);
    Ok(FdbScale {
        points,
        largest_over_smallest: last / first,
    })
}
