//! `cargo xtask bench`: this project's VTEP side by side with the kernel's
//! vxlan + bridge, in one run, reported as ratios.
//!
//! Packet rates (decap and encap, the generator's frames arriving as XDP
//! frames and as skbs: `generator`; with the ceilings) are measured in
//! interleaved rounds (`pps`); then program cost (`cost`), FDB scale
//! (`scale`), control-plane rate (`control`), EVPN scale (`evpn`),
//! latency (`latency`) and TCP throughput (`tcp`), one module each;
//! `report` is the typed report and its Markdown. See BENCHMARKS.md for a
//! run.

mod control;
mod cost;
mod cpus;
mod evpn;
mod frames;
mod generator;
mod latency;
mod pps;
mod report;
mod scale;
mod sections;
mod tcp;
mod variant;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

pub use cost::programs_named;

use crate::{cargo, sh, workspace_root};
use generator::Arrival;
use pps::{Bench, Dir, Variant};
use report::{DirReport, Machine, Report};
use vtep_tests::rng::Rng;

/// The seed of the rounds' orders.
const ORDER_SEED: u64 = 0x5eed_0bde_5eed;

/// Options of `cargo xtask bench`.
#[derive(clap::Args, Clone)]
pub struct Opts {
    /// Interleaved rounds over the variants.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Frames the generator sends per variant and round.
    #[arg(long, default_value_t = 2_000_000)]
    pub packets: u32,
    /// A short run that checks every figure is produced (seconds).
    #[arg(long)]
    pub smoke: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write the report as Markdown as this CPU model's section of this
    /// file (BENCHMARKS.md; the sections live in `benchmarks/` next to it).
    #[arg(long)]
    pub write: Option<PathBuf>,
    /// Also measure the `vtep` of this git revision (e.g. HEAD~1, main)
    /// side by side, as the `baseline` variant: `vtep/baseline` is the
    /// before/after ratio of a datapath change.
    #[arg(long, value_name = "REV")]
    pub baseline: Option<String>,
    /// Only one part: the packet rates of one direction (and its program
    /// cost), a quick before/after of a datapath change, e.g. `--only
    /// decap --baseline HEAD~1`; or the latency, TCP or both-CPUs section alone
    /// (their figures move from run to run: a few runs of one section
    /// show by how much). Not with --write or --smoke.
    #[arg(long, value_enum, conflicts_with_all = ["write", "smoke"])]
    pub only: Option<Only>,
    /// With --only decap or encap: just these variants (by name, e.g.
    /// `--variants vtep,encap-ceiling,xdp-drop`), for a quick look while
    /// trying a change.
    #[arg(long, value_delimiter = ',', requires = "only")]
    pub variants: Vec<String>,
    /// With --only decap or encap: only frames arriving this way (as XDP
    /// frames, as a NIC with native XDP hands them over; or as skbs, as a
    /// VM sends them). Without it, both.
    #[arg(long, value_enum, requires = "only")]
    pub arrival: Option<Arrival>,
}

/// The part of the bench `--only` runs.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    /// Decap packet rates and program cost.
    Decap,
    /// Encap packet rates and program cost.
    Encap,
    /// VM-to-VM ping RTT.
    Latency,
    /// VM-to-VM TCP throughput.
    Tcp,
    /// Both CPUs: decap scaling (`vtep`, `tc-peer`, `vtep-xdp` into one
    /// queue and one per CPU) and a MAC explosion's effect on another VNI.
    Cpus,
}

impl Only {
    /// The direction whose packet rates this part measures, if any.
    fn dir(self) -> Option<Dir> {
        match self {
            Only::Decap => Some(Dir::Decap),
            Only::Encap => Some(Dir::Encap),
            Only::Latency | Only::Tcp | Only::Cpus => None,
        }
    }
}

/// Builds the `vtep` binary of git revision `rev` (in a temporary worktree,
/// with a target directory of its own) and returns its path.
fn build_baseline(root: &std::path::Path, rev: &str) -> anyhow::Result<PathBuf> {
    let src = root.join("target/baseline-src");
    let target = root.join("target/baseline-target");
    let git = || {
        let mut c = std::process::Command::new("git");
        c.current_dir(root);
        c
    };
    // A worktree left by an interrupted run is replaced.
    let _ = git()
        .args(["worktree", "remove", "--force"])
        .arg(&src)
        .output();
    let _ = std::fs::remove_dir_all(&src);
    sh(git()
        .args(["worktree", "add", "--detach"])
        .arg(&src)
        .arg(rev))?;
    let built = sh(cargo()
        .current_dir(&src)
        .args([
            "build",
            "--release",
            "--package",
            "vtep-user",
            "--target-dir",
        ])
        .arg(&target));
    sh(git().args(["worktree", "remove", "--force"]).arg(&src))?;
    built.with_context(|| format!("cannot build the baseline revision {rev}"))?;
    Ok(target.join("release/vtep"))
}

/// The work tree's git revision (short), `+` appended when tracked files
/// have changes; `unknown` outside a git checkout.
fn revision(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match (
        git(&["rev-parse", "--short", "HEAD"]),
        git(&["status", "--porcelain", "--untracked-files=no"]),
    ) {
        (Some(rev), Some(changes)) if changes.is_empty() => rev,
        (Some(rev), _) => format!("{rev}+"),
        (None, _) => "unknown".to_owned(),
    }
}

/// Builds the eBPF object of the bench and the test harness (`vtep-ebpf`'s
/// `vtep-bench` binary); its path.
pub fn build_harness_object(root: &Path) -> anyhow::Result<PathBuf> {
    let target_dir = root.join("target/bench-ebpf");
    let mut rustflags = std::ffi::OsString::new();
    for (i, f) in [
        "--cfg=bpf_target_arch=\"x86_64\"",
        "-Cdebuginfo=2",
        "-Clink-arg=--btf",
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            rustflags.push("\x1f");
        }
        rustflags.push(f);
    }
    sh(Command::new("rustup")
        .current_dir(root)
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags)
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .args([
            "run",
            "nightly",
            "cargo",
            "build",
            "--package",
            "vtep-ebpf",
            "--bin",
            "vtep-bench",
        ])
        .args([
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
        ])
        .arg("--target-dir")
        .arg(&target_dir))?;
    Ok(target_dir.join("bpfel-unknown-none/release/vtep-bench"))
}

/// `o`, once a ping crosses it (`name`: the variant, for the error).
fn reachable(
    o: vtep_tests::topo::Overlay,
    name: &str,
) -> anyhow::Result<vtep_tests::topo::Overlay> {
    let vm = &o.vm(0, 0).ns;
    if !vm.ping_until("198.19.0.2", std::time::Duration::from_secs(5)) {
        bail!("{name}: no ping across the overlay");
    }
    Ok(o)
}

/// Median, min and max of `v` (not empty).
pub fn summary(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (s[s.len() / 2], s[0], s[s.len() - 1])
}

/// The sections after the packet rates and program cost, into `report`:
/// FDB scale (on the `vtep-uncached` decap bench of `benches`, which are
/// dropped after it), both CPUs, control plane, EVPN scale, latency and
/// TCP.
fn sections_after_rates(
    report: &mut Report,
    benches: Vec<Bench>,
    (obj, vtep_bin): (&[u8], &Path),
    smoke: bool,
    packets: u32,
) -> anyhow::Result<()> {
    // FDB scale without the decision cache: every frame looks the FDB
    // up (with it, no frame of the bench's conversation would).
    let uncached = benches
        .iter()
        .find(|b| {
            b.dir == Dir::Decap
                && b.variant == Variant::VtepUncached
                && b.generator.arrival() == Arrival::Xdp
        })
        .context("no vtep-uncached decap bench")?;
    report.fdb_scale = Some(scale::fdb_scale(uncached, smoke, packets)?);
    drop(benches);
    report.cpus = Some(cpus::cpus(obj, vtep_bin, smoke, packets)?);
    report.control_plane = Some(control::control_plane(vtep_bin, smoke)?);
    report.evpn = Some(evpn::evpn_scale(vtep_bin, smoke)?);
    report.latency_us = Some(latency::latency(vtep_bin, smoke)?);
    report.tcp_gbps = Some(tcp::tcp(vtep_bin, smoke)?);
    Ok(())
}

pub fn run(opts: &Opts) -> anyhow::Result<()> {
    crate::setup::run(crate::setup::Need::Bench)?;
    let root = workspace_root()?;
    sh(cargo()
        .current_dir(&root)
        .args(["build", "--release", "--package", "vtep-user"]))?;
    let vtep_bin = root.join("target/release/vtep");
    let baseline_bin = match &opts.baseline {
        Some(rev) => Some(build_baseline(&root, rev)?),
        None => None,
    };
    let path = build_harness_object(&root)?;
    let obj = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let (rounds, packets) = if opts.smoke {
        (1, 20_000)
    } else {
        (opts.rounds, opts.packets)
    };

    let mut benches = Vec::new();
    let mut decap = vec![
        Variant::Kernel,
        Variant::KernelNoGro,
        Variant::Vtep,
        Variant::VtepTc,
        Variant::VtepXdp,
        Variant::KernelIpv6,
        Variant::VtepIpv6,
        Variant::VtepUncached,
        Variant::VtepPolicy,
    ];
    let mut encap = vec![
        Variant::Kernel,
        Variant::Vtep,
        Variant::KernelIpv6,
        Variant::VtepIpv6,
        Variant::VtepPolicy,
    ];
    // From skbs: the default paths, the kernel, the ceilings.
    let mut decap_skb = vec![
        Variant::Kernel,
        Variant::KernelNoGro,
        Variant::Vtep,
        Variant::VtepTc,
        Variant::VtepXdp,
    ];
    let mut encap_skb = vec![
        Variant::Kernel,
        Variant::Vtep,
        Variant::KernelIpv6,
        Variant::VtepIpv6,
    ];
    if baseline_bin.is_some() {
        for v in [&mut decap, &mut encap, &mut decap_skb, &mut encap_skb] {
            v.push(Variant::Baseline);
        }
    }
    decap.extend([Variant::XdpDrop, Variant::XdpRedirect, Variant::TcPeer]);
    encap.extend([Variant::XdpDrop, Variant::EncapCeiling]);
    decap_skb.extend([
        Variant::XdpDrop,
        Variant::TcDrop,
        Variant::XdpRedirect,
        Variant::TcPeer,
    ]);
    encap_skb.extend([Variant::XdpDrop, Variant::TcDrop, Variant::EncapCeiling]);
    for (dir, arrival, variants) in [
        (Dir::Decap, Arrival::Xdp, decap),
        (Dir::Encap, Arrival::Xdp, encap),
        (Dir::Decap, Arrival::Skb, decap_skb),
        (Dir::Encap, Arrival::Skb, encap_skb),
    ] {
        if opts.only.is_some_and(|only| only.dir() != Some(dir))
            || opts.arrival.is_some_and(|only| only != arrival)
        {
            continue;
        }
        let wanted =
            |v: &Variant| opts.variants.is_empty() || opts.variants.iter().any(|n| n == v.name());
        for v in variants.into_iter().filter(wanted) {
            let bin = match (&baseline_bin, v) {
                (Some(b), Variant::Baseline) => b,
                _ => &vtep_bin,
            };
            benches.push(Bench::new((dir, arrival), v, &obj, bin)?);
        }
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); benches.len()];
    // Each round measures the variants in an order of its own, drawn from
    // a fixed seed (a run repeats it): no variant always runs first, or
    // always right after the same one, whose load, cache state or kernel
    // tunnel socket it would inherit.
    let mut rng = Rng(ORDER_SEED);
    let mut order: Vec<usize> = (0..benches.len()).collect();
    for round in 0..rounds {
        rng.shuffle(&mut order);
        for &i in &order {
            let (b, r) = (&benches[i], &mut rates[i]);
            let pps = b.measure(packets)?;
            if pps <= 0.0 {
                bail!(
                    "{:?} {} ({} arrivals): the sink saw nothing",
                    b.dir,
                    b.variant.name(),
                    b.generator.arrival().name()
                );
            }
            r.push(pps);
        }
        eprintln!("bench: round {}/{rounds} done", round + 1);
    }
    let program_cost_ns = cost::program_costs(&benches, rounds, packets)?;

    let dir_report = |dir: Dir, arrival: Arrival| {
        let r: Vec<(Variant, &[f64])> = benches
            .iter()
            .zip(&rates)
            .filter(|(b, _)| b.dir == dir && b.generator.arrival() == arrival)
            .map(|(b, r)| (b.variant, r.as_slice()))
            .collect();
        (!r.is_empty()).then(|| DirReport::new(arrival, &r))
    };
    let mut report = Report {
        machine: Machine::here(),
        revision: revision(&root),
        rounds,
        packets_per_round: packets,
        flows: pps::FLOWS,
        decap_frame_bytes: pps::DECAP_FRAME,
        baseline: opts.baseline.clone(),
        decap: dir_report(Dir::Decap, Arrival::Xdp),
        encap: dir_report(Dir::Encap, Arrival::Xdp),
        decap_skb: dir_report(Dir::Decap, Arrival::Skb),
        encap_skb: dir_report(Dir::Encap, Arrival::Skb),
        program_cost_ns,
        fdb_scale: None,
        cpus: None,
        control_plane: None,
        evpn: None,
        latency_us: None,
        tcp_gbps: None,
    };

    match opts.only {
        Some(Only::Latency) => report.latency_us = Some(latency::latency(&vtep_bin, false)?),
        Some(Only::Tcp) => report.tcp_gbps = Some(tcp::tcp(&vtep_bin, false)?),
        Some(Only::Cpus) => {
            report.cpus = Some(cpus::cpus(&obj, &vtep_bin, false, packets)?);
        }
        Some(Only::Decap | Only::Encap) => {}
        None => sections_after_rates(&mut report, benches, (&obj, &vtep_bin), opts.smoke, packets)?,
    }

    if opts.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.markdown());
    }
    if let Some(path) = &opts.write {
        sections::write(path, &report.machine.cpu, &report.markdown())?;
    }
    if opts.smoke {
        report.check_complete()?;
    }
    Ok(())
}
