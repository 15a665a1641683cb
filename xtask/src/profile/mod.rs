//! `cargo xtask profile PROG`: where a loaded BPF program spends its time,
//! by source line. `perf` samples every CPU for a while (`cpu-clock`: a
//! VM has no hardware counters), and each sample that falls into the
//! program's machine code is charged to the source line that code came
//! from ([`jit`]). Run it while a load keeps the program busy, e.g. a
//! long bench of one variant in another shell:
//!
//! ```text
//! cargo xtask bench --only decap --arrival xdp --variants vtep-xdp --packets 300000000
//! cargo xtask profile vtep_decap
//! ```
//!
//! A line's share is of the program's samples. The sampled instruction
//! is often the one after the one that waited (skid), and an inlined
//! helper's lines (a map lookup the verifier inlined, `helpers.rs`) are
//! charged to the helper's call: read the figures as places to look.

mod jit;

use std::{collections::HashMap, path::PathBuf, process::Command};

use anyhow::{Context as _, bail};

use crate::{bench::programs_named, setup, sh, workspace_root};
use jit::{Image, Line};

#[derive(clap::Args)]
pub struct Opts {
    /// The program's name (as the kernel keeps it: its first 15 bytes).
    prog: String,
    /// How long to sample, in seconds.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=120))]
    seconds: u32,
    /// How many source lines to show, the busiest first.
    #[arg(long, default_value_t = 30)]
    top: usize,
}

/// A file removed when this is dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn run(opts: &Opts) -> anyhow::Result<()> {
    setup::run(setup::Need::Profile)?;
    let images = images(&opts.prog)?;
    let data =
        TempFile(std::env::temp_dir().join(format!("xtask-profile-{}.data", std::process::id())));
    sh(Command::new("perf")
        .args(["record", "-q", "-e", "cpu-clock", "-a", "-o"])
        .arg(&data.0)
        .args(["--", "sleep", &opts.seconds.to_string()]))?;
    let out = Command::new("perf")
        .args(["script", "-F", "ip", "-i"])
        .arg(&data.0)
        .output()
        .context("cannot run perf script")?;
    if !out.status.success() {
        bail!(
            "perf script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ips: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| u64::from_str_radix(l.trim(), 16).ok())
        .collect();
    let tally = attribute(&images, &ips);
    print(opts, images.len(), &tally);
    Ok(())
}

/// The machine code of every loaded program named `name`.
fn images(name: &str) -> anyhow::Result<Vec<Image>> {
    let images = programs_named(name)
        .map(|p| jit::image(&p?))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if images.is_empty() {
        bail!(
            "no loaded BPF program is named {name}: start the load first (see `cargo xtask profile --help`), or check the name with `bpftool prog list`"
        );
    }
    Ok(images)
}

/// Where samples fell.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    /// All samples.
    samples: u64,
    /// Those in the programs' code.
    in_programs: u64,
    /// Per source line (file, line, text), the busiest first.
    lines: Vec<((String, u32, String), u64)>,
}

/// Charges each sample at one of `images`' addresses to the line whose
/// code holds it.
fn attribute(images: &[Image], ips: &[u64]) -> Tally {
    let mut per_line: HashMap<(String, u32, String), u64> = HashMap::new();
    let mut tally = Tally {
        samples: ips.len() as u64,
        ..Tally::default()
    };
    for &ip in ips {
        let Some(image) = images
            .iter()
            .find(|i| i.code.iter().any(|r| r.contains(&ip)))
        else {
            continue;
        };
        tally.in_programs += 1;
        let at = image.lines.partition_point(|l| l.addr <= ip);
        let key = match at.checked_sub(1).map(|k| &image.lines[k]) {
            Some(Line {
                file, line, text, ..
            }) => (file.clone(), *line, text.clone()),
            None => ("(before its first line)".into(), 0, String::new()),
        };
        *per_line.entry(key).or_default() += 1;
    }
    tally.lines = per_line.into_iter().collect();
    tally
        .lines
        .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    tally
}

/// A source path without the build's own prefix: the workspace's, or
/// the registry's or the Rust library's up to the crate.
fn short_path(file: &str) -> &str {
    if let Ok(root) = workspace_root()
        && let Some(rest) = file.strip_prefix(&format!("{}/", root.display()))
    {
        return rest;
    }
    for marker in ["/registry/src/", "/rust/library/"] {
        if let Some((_, rest)) = file.rsplit_once(marker) {
            // The registry's index directory comes first.
            return match marker {
                "/registry/src/" => rest.split_once('/').map_or(rest, |(_, r)| r),
                _ => rest,
            };
        }
    }
    file
}

fn print(opts: &Opts, programs: usize, t: &Tally) {
    let share = |n: u64, of: u64| 100.0 * n as f64 / of.max(1) as f64;
    println!(
        "{}: {} of {} samples ({:.1}%) in {} program(s) of that name, {} s on every CPU",
        opts.prog,
        t.in_programs,
        t.samples,
        share(t.in_programs, t.samples),
        programs,
        opts.seconds
    );
    if t.in_programs == 0 {
        println!("no sample fell in its code: is the load running?");
        return;
    }
    println!("{:>6} {:>8}  source", "share", "samples");
    for ((file, line, text), n) in t.lines.iter().take(opts.top) {
        println!(
            "{:>5.1}% {:>8}  {}:{}  {}",
            share(*n, t.in_programs),
            n,
            short_path(file),
            line,
            text
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(addr: u64, line: u32) -> Line {
        Line {
            addr,
            file: "/w/vtep-ebpf/src/parse.rs".into(),
            line,
            text: format!("line {line}"),
        }
    }

    #[test]
    fn samples_are_charged_to_the_line_whose_code_holds_them() {
        let images = [
            Image {
                code: vec![100..200, 300..350],
                lines: vec![line(100, 1), line(150, 2), line(300, 3)],
            },
            Image {
                code: vec![1000..1100, 1200..1300],
                lines: vec![line(1010, 9)],
            },
        ];
        // Outside every program: 99, 200, 250, 350; line 1: 100, 149;
        // line 2: 150, 199; line 3: 349; before the second image's first
        // line: 1000.
        let ips = [99, 100, 149, 150, 199, 200, 250, 349, 350, 1000];
        let t = attribute(&images, &ips);
        assert_eq!(t.samples, 10);
        assert_eq!(t.in_programs, 6);
        let file = String::from("/w/vtep-ebpf/src/parse.rs");
        assert_eq!(
            t.lines,
            vec![
                ((file.clone(), 1, "line 1".into()), 2),
                ((file.clone(), 2, "line 2".into()), 2),
                (("(before its first line)".into(), 0, String::new()), 1),
                ((file, 3, "line 3".into()), 1),
            ]
        );
    }

    #[test]
    fn paths_lose_the_build_prefix_up_to_the_crate() {
        assert_eq!(
            short_path(
                "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/aya-ebpf-0.2.1/src/helpers.rs"
            ),
            "aya-ebpf-0.2.1/src/helpers.rs"
        );
        assert_eq!(
            short_path(
                "/root/.rustup/toolchains/nightly/lib/rustlib/src/rust/library/core/src/bool.rs"
            ),
            "core/src/bool.rs"
        );
        let root = workspace_root().unwrap();
        let own = format!("{}/vtep-ebpf/src/parse.rs", root.display());
        assert_eq!(short_path(&own), "vtep-ebpf/src/parse.rs");
        assert_eq!(short_path("elsewhere.rs"), "elsewhere.rs");
    }
}
