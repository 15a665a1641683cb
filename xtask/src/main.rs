//! `cargo xtask`: the project's tasks.
//!
//! - `setup`: checks every prerequisite and installs what is missing.
//! - `build-and-run [-- VTEP ARGS]`: builds `vtep`; with arguments runs it,
//!   without runs the demo (two hosts, two VMs each, two tenants).
//! - `test`: setup, lints, the whole test suite, short fuzz runs and a
//!   smoke run of the benchmark.
//! - `bench`: the benchmark (see `bench/mod.rs`).
//! - `fuzz`: the parsers' fuzz targets (see `fuzz.rs`).
//! - `profile PROG`: where a loaded BPF program spends its time, by source
//!   line (see `profile/mod.rs`).

mod bench;
mod demo;
mod fuzz;
mod profile;
mod setup;

use std::process::{Command, ExitCode};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Check the prerequisites of a task and install what is missing
    /// (Debian, root; packages without their recommends).
    Setup {
        /// The task to prepare for: build, demo, bench, test (the
        /// default: all of those) or profile.
        #[arg(long = "for", value_enum, default_value = "test")]
        need: setup::Need,
    },
    /// Build `vtep` and run it: the demo with no arguments, else
    /// `vtep ARGS` (for real NICs).
    BuildAndRun {
        /// Arguments for `vtep`, after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Setup, lints (fmt, clippy on host and BPF target), every test and
    /// short fuzz runs.
    Test,
    /// Benchmark against the kernel's vxlan + bridge (root, several
    /// minutes; --smoke for a check in seconds).
    Bench(bench::Opts),
    /// Fuzz the config file, CLI value and command-line parsers (cargo
    /// fuzz, nightly).
    Fuzz(fuzz::Opts),
    /// Where a loaded BPF program spends its time, by source line (perf
    /// samples on every CPU; root). Start a load first, e.g. in another
    /// shell: cargo xtask bench --only decap --arrival xdp --variants
    /// vtep-xdp --packets 300000000; then: cargo xtask profile vtep_decap
    Profile(profile::Opts),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Setup { need } => setup::run(need),
        Task::BuildAndRun { args } => build_and_run(&args),
        Task::Test => test(),
        Task::Bench(opts) => bench::run(&opts),
        Task::Fuzz(opts) => fuzz::run(&opts),
        Task::Profile(opts) => profile::run(&opts),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `cmd`, echoing it; fails if it fails.
pub fn sh(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("+ {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Builds the `vtep` binary (release) and returns its path.
fn build_vtep() -> anyhow::Result<std::path::PathBuf> {
    sh(cargo().args(["build", "--release", "--package", "vtep-user"]))?;
    Ok(workspace_root()?.join("target/release/vtep"))
}

pub fn workspace_root() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    Ok(dir
        .parent()
        .context("xtask has no parent directory")?
        .to_owned())
}

fn build_and_run(args: &[String]) -> anyhow::Result<()> {
    setup::run(setup::Need::Demo)?;
    let vtep = build_vtep()?;
    if args.is_empty() {
        return demo::run(&vtep);
    }
    sh(Command::new(&vtep).args(args))
}

fn test() -> anyhow::Result<()> {
    setup::run(setup::Need::Test)?;
    let root = workspace_root()?;
    sh(cargo().current_dir(&root).args(["fmt", "--all", "--check"]))?;
    sh(cargo()
        .current_dir(root.join("vtep-user/fuzz"))
        .args(["fmt", "--check"]))?;
    sh(cargo()
        .current_dir(&root)
        .args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
    sh(Command::new("rustup")
        .current_dir(root.join("vtep-ebpf"))
        .args([
            "run",
            "nightly",
            "cargo",
            "clippy",
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--",
            "-D",
            "warnings",
        ]))?;
    sh(cargo()
        .current_dir(&root)
        .args(["build", "--package", "vtep-user"]))?;
    let harness = bench::build_harness_object(&root)?;
    sh(cargo()
        .current_dir(&root)
        .env("VTEP_BIN", root.join("target/debug/vtep"))
        .env("VTEP_HARNESS_OBJ", harness)
        .args(["test", "--workspace", "--exclude", "vtep-ebpf"]))?;
    // Short fuzz runs: a crash or a broken promise of a parser fails the
    // test command.
    fuzz::run(&fuzz::Opts {
        target: None,
        secs: 10,
    })?;
    // The benchmark's smoke run: every figure produced, in seconds. Not a
    // timed test: nothing is compared against a target.
    bench::run(&bench::Opts {
        rounds: 1,
        packets: 100_000,
        smoke: true,
        json: true,
        write: None,
        baseline: None,
        only: None,
        variants: Vec::new(),
        arrival: None,
    })
}
