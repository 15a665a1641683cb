//! Latency: ping RTT VM to VM through two of our VTEPs and through two of
//! the kernel's.

use std::path::Path;

use anyhow::bail;
use vtep_tests::topo::{Kind, Overlay};

use super::report::{Latency, Rtt};

/// Interleaved rounds of the measurement.
const ROUNDS: usize = 25;
/// Pings per round.
const PINGS: u32 = 200;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Pings every 1 ms: `ROUNDS` rounds of `PINGS` pings, the variants taking
/// turns, the samples of all rounds pooled per variant. Rounds of 0.2 s:
/// a burst of noise on this shared machine longer than that reaches both
/// variants (with rounds of 1 s, one variant could take it alone). The
/// p99 of 5000 samples is the 50th slowest: with 2000 it was the 20th,
/// and a few slow pings of either variant moved it by 2-3x between runs.
pub fn latency(vtep_bin: &Path, smoke: bool) -> anyhow::Result<Latency> {
    let (rounds, count) = if smoke { (1, 50u32) } else { (ROUNDS, PINGS) };
    let count_arg = count.to_string();
    let variants = [("vtep", Kind::Ours), ("kernel", Kind::Kernel)];
    let mut overlays = Vec::new();
    for (name, kind) in variants {
        let o = Overlay::new(&[kind, kind], vtep_bin);
        o.static_fdb(0);
        overlays.push(super::reachable(o, name)?);
    }
    let mut rtts: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (o, samples) in overlays.iter().zip(rtts.iter_mut()) {
            let text = o
                .vm(0, 0)
                .ns
                .ok(&["ping", "-c", &count_arg, "-i", "0.001", "198.19.0.2"]);
            samples.extend(
                text.lines()
                    .filter_map(|l| l.split("time=").nth(1))
                    .filter_map(|t| t.split_whitespace().next()?.parse::<f64>().ok())
                    .map(|ms| ms * 1000.0),
            );
        }
    }
    let mut out = Vec::new();
    for ((name, _), mut samples) in variants.into_iter().zip(rtts) {
        if samples.is_empty() {
            bail!("{name}: no RTTs in ping's output");
        }
        samples.sort_by(f64::total_cmp);
        out.push(Rtt {
            p50: percentile(&samples, 0.5),
            p99: percentile(&samples, 0.99),
            samples: samples.len(),
        });
    }
    let [vtep, kernel] = <[Rtt; 2]>::try_from(out).expect("two variants");
    Ok(Latency {
        vtep,
        kernel,
        rounds,
        pings_per_round: count,
    })
}
