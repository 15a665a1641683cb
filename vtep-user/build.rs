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
/// checkout) and reruns when the checked-out commit changes: when HEAD,
/// the branch's ref or the packed refs change, of those that exist (cargo
/// takes a missing file as changed, and rebuilt the crate on every build
/// of a checkout without packed refs).
fn git_revision() {
    let rev = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=VTEP_GIT_REVISION={rev}");
    let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) else {
        return;
    };
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let files = ["HEAD", "packed-refs"]
        .into_iter()
        .chain(branch.as_deref())
        .map(|f| format!("{dir}/{f}"));
    for f in files.filter(|f| std::path::Path::new(f).exists()) {
        println!("cargo:rerun-if-changed={f}");
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
