//! Builds the kernel programs (`vtep-ebpf`, nightly, `bpfel-unknown-none`)
//! and leaves the object in OUT_DIR, where `src/main.rs` embeds it; and
//! records the git revision for `vtep --version`.
use std::process::Command;

use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

/// `git ARGS` in this crate's directory, trimmed, if git answers.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Sets `VTEP_GIT_REVISION` (the short commit, `unknown` outside a git
/// checkout) and reruns when the checked-out commit changes.
fn git_revision() {
    let rev = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=VTEP_GIT_REVISION={rev}");
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/packed-refs");
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{branch}");
        }
    }
}

fn main() -> anyhow::Result<()> {
    git_revision();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow!("vtep-user has no parent directory"))?
        .join("vtep-ebpf");
    let root = root
        .to_str()
        .context("the vtep-ebpf path is not UTF-8")?
        .to_owned();
    let ebpf = Package {
        name: "vtep-ebpf",
        root_dir: &root,
        ..Default::default()
    };
    aya_build::build_ebpf([ebpf], Toolchain::default())
}
