//! `cargo xtask fuzz`: the fuzz targets of the parsers of what users type
//! (`vtep-user/fuzz`: the config file, CLI values, the command line), run
//! with cargo fuzz (libFuzzer, nightly). `cargo xtask test` runs each for
//! a few seconds; longer runs by hand: `cargo xtask fuzz config --secs 600`.
//!
//! Each target starts from its committed seeds (`fuzz/seeds/TARGET`) and
//! keeps what it finds in `target/fuzz-corpus/TARGET`, outside the source
//! tree; a crash leaves its input in `vtep-user/fuzz/artifacts/TARGET`.

use std::process::Command;

use anyhow::bail;

use crate::{sh, workspace_root};

/// The targets, as `vtep-user/fuzz/Cargo.toml` names them.
pub const TARGETS: &[&str] = &["config", "values", "cli"];

/// Options of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub struct Opts {
    /// One target (config, values or cli); all of them, one after the
    /// other, if not given.
    pub target: Option<String>,
    /// Seconds of fuzzing per target.
    #[arg(long, default_value_t = 60)]
    pub secs: u32,
}

pub fn run(opts: &Opts) -> anyhow::Result<()> {
    let targets: Vec<&str> = match &opts.target {
        Some(t) if TARGETS.contains(&t.as_str()) => vec![t.as_str()],
        Some(t) => bail!(
            "no fuzz target '{t}': the targets are {}",
            TARGETS.join(", ")
        ),
        None => TARGETS.to_vec(),
    };
    let root = workspace_root()?;
    let crate_dir = root.join("vtep-user");
    for t in targets {
        let corpus = root.join("target/fuzz-corpus").join(t);
        std::fs::create_dir_all(&corpus)?;
        sh(Command::new("rustup")
            .current_dir(&crate_dir)
            .args(["run", "nightly", "cargo", "fuzz", "run", t])
            .arg(&corpus)
            .arg(crate_dir.join("fuzz/seeds").join(t))
            .args(["--", &format!("-max_total_time={}", opts.secs)]))?;
    }
    Ok(())
}
