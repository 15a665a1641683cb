//! Program cost: the kernel's own accounting of BPF run time
//! (`kernel.bpf_stats_enabled`), per program, in passes of its own after
//! the packet rates (bpf_stats adds two clock reads to every BPF program
//! run, which would tax the BPF variants' rates).
//!
//! Each pass runs every costed bench once, in turn, and charges the runs
//! its programs made to that bench's figure; the report gives each
//! figure's median over the passes with its range, so that a change of a
//! few ns stands out of this shared machine's drift (one pass moved by
//! ±20% between runs).

use std::collections::BTreeMap;

use anyhow::Context as _;

use super::{
    generator::Arrival,
    pps::{Bench, Dir, Variant},
    report::ProgCost,
    summary,
};

const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";
/// The bytes of a program's name the kernel keeps (BPF_OBJ_NAME_LEN, less
/// its NUL).
const KERNEL_NAME_MAX: usize = 15;

/// Every loaded program named `name`. The kernel keeps the first 15 bytes
/// of a program's name: a longer one is matched by them.
pub fn programs_named(
    name: &str,
) -> impl Iterator<Item = anyhow::Result<aya::programs::ProgramInfo>> + '_ {
    let kept = &name[..name.len().min(KERNEL_NAME_MAX)];
    aya::programs::loaded_programs().filter_map(move |p| match p {
        Ok(p) if p.name_as_str() == Some(kept) => Some(Ok(p)),
        Ok(_) => None,
        Err(e) => Some(Err(e.into())),
    })
}

/// `kernel.bpf_stats_enabled` on while this lives (restored on drop).
struct BpfStats {
    old: String,
}

impl BpfStats {
    fn enable() -> anyhow::Result<Self> {
        let old = std::fs::read_to_string(STATS_SYSCTL).context("bpf_stats_enabled")?;
        std::fs::write(STATS_SYSCTL, "1").context("cannot enable bpf_stats")?;
        Ok(BpfStats { old })
    }

    /// Total run time (ns) and runs of the programs named `name`, over
    /// every loaded program of that name.
    fn read(&self, name: &str) -> anyhow::Result<(u128, u64)> {
        let (mut ns, mut runs) = (0u128, 0u64);
        for p in programs_named(name) {
            let p = p?;
            ns += p.run_time().as_nanos();
            runs += p.run_count();
        }
        Ok((ns, runs))
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write(STATS_SYSCTL, self.old.trim());
    }
}

/// The programs whose cost a bench's pass measures, with the label their
/// figures get (after the program's name; none for the default path's).
/// A program a variant does not run with its arrival (`vtep_decap` with
/// skbs arriving on a veth underlay) makes no runs and gets no figure.
fn costed(dir: Dir, v: Variant) -> &'static [(&'static str, &'static str)] {
    match (dir, v) {
        // By default `vtep_decap` decides and strips in XDP and
        // `vtep_decap_tc` hands the skb to the port.
        (Dir::Decap, Variant::Vtep) => &[("vtep_decap", ""), ("vtep_decap_tc", "")],
        (Dir::Decap, Variant::Baseline) => {
            &[("vtep_decap", "baseline"), ("vtep_decap_tc", "baseline")]
        }
        // `vtep_decap_tc` decapsulating by itself.
        (Dir::Decap, Variant::VtepTc) => &[("vtep_decap_tc", "no XDP")],
        // `vtep_decap` redirecting to the port itself: what
        // `bench_strip_redirect` is the ceiling of.
        (Dir::Decap, Variant::VtepXdp) => &[("vtep_decap", "XDP delivery")],
        (Dir::Decap, Variant::XdpRedirect) => &[("bench_strip_redirect", "")],
        (Dir::Decap, Variant::TcPeer) => &[("bench_strip_peer", "")],
        (Dir::Encap, Variant::Vtep) => &[("vtep_encap", "")],
        (Dir::Encap, Variant::Baseline) => &[("vtep_encap", "baseline")],
        (Dir::Encap, Variant::EncapCeiling) => &[("bench_encap_ceiling", "")],
        _ => &[],
    }
}

/// A figure's name: the program's, then its label and, with skbs
/// arriving, that (frames arriving as XDP frames are the unmarked case).
fn cost_key(prog: &str, label: &str, arrival: Arrival) -> String {
    match (label.is_empty(), arrival) {
        (true, Arrival::Xdp) => prog.to_owned(),
        (false, Arrival::Xdp) => format!("{prog} ({label})"),
        (true, Arrival::Skb) => format!("{prog} (skbs arriving)"),
        (false, Arrival::Skb) => format!("{prog} ({label}; skbs arriving)"),
    }
}

/// Each costed program's cost over `passes` passes of `packets` frames
/// through every bench that runs it, keyed as [`cost_key`] names it.
pub fn program_costs(
    benches: &[Bench],
    passes: usize,
    packets: u32,
) -> anyhow::Result<BTreeMap<String, ProgCost>> {
    let stats = BpfStats::enable()?;
    let mut samples: BTreeMap<String, (Vec<f64>, u64)> = BTreeMap::new();
    for _ in 0..passes {
        for b in benches {
            let progs = costed(b.dir, b.variant);
            if progs.is_empty() {
                continue;
            }
            let before = progs
                .iter()
                .map(|(p, _)| stats.read(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            b.measure(packets)?;
            for ((prog, label), (ns0, runs0)) in progs.iter().zip(before) {
                let (ns, runs) = stats.read(prog)?;
                if runs == runs0 {
                    continue;
                }
                let key = cost_key(prog, label, b.generator.arrival());
                let s = samples.entry(key).or_default();
                s.0.push((ns - ns0) as f64 / (runs - runs0) as f64);
                s.1 += runs - runs0;
            }
        }
    }
    Ok(samples
        .into_iter()
        .map(|(key, (ns, runs))| {
            let (median, min, max) = summary(&ns);
            let cost = ProgCost {
                ns_per_run: median,
                ns_min: min,
                ns_max: max,
                passes: ns.len(),
                runs,
            };
            (key, cost)
        })
        .collect())
}
