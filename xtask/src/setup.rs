//! `cargo xtask setup`: every prerequisite checked, only what is missing
//! installed, each step said. Idempotent.

use std::process::Command;

use anyhow::bail;

use crate::sh;

/// Debian packages, with the command that shows each is there.
const PACKAGES: &[(&str, &str)] = &[
    ("llvm-22-dev", "/usr/lib/llvm-22/bin/llvm-config"),
    ("iproute2", "ip"),
    ("iputils-ping", "ping"),
    ("ethtool", "ethtool"),
    ("tcpdump", "tcpdump"),
    ("tshark", "tshark"),
    ("iperf3", "iperf3"),
    ("netsniff-ng", "trafgen"),
    ("python3", "python3"),
    // libFuzzer (cargo fuzz) is C++.
    ("g++", "g++"),
];

const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

/// How cargo-fuzz is installed (the lock file pins what it was tested with).
const CARGO_FUZZ_INSTALL: &[&str] = &["cargo", "install", "cargo-fuzz", "--locked"];

fn found(cmd: &str) -> bool {
    if cmd.starts_with('/') {
        return std::path::Path::new(cmd).exists();
    }
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn has_rust_src() -> bool {
    Command::new("rustup")
        .args(["component", "list", "--toolchain", "nightly", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("rust-src"))
}

fn bpf_linker_ok() -> bool {
    // bpf-linker built against LLVM 22 links libLLVM-22.
    Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn cargo_fuzz_ok() -> bool {
    Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

pub fn run() -> anyhow::Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, cmd)| !found(cmd))
        .map(|(pkg, _)| *pkg)
        .collect();
    let need_rust_src = !has_rust_src();
    let need_linker = !bpf_linker_ok();
    let need_fuzz = !cargo_fuzz_ok();
    if missing.is_empty() && !need_rust_src && !need_linker && !need_fuzz {
        eprintln!("xtask setup: all prerequisites present");
        return Ok(());
    }

    let mut steps: Vec<String> = Vec::new();
    if !missing.is_empty() {
        steps.push("apt-get update".into());
        steps.push(format!(
            "DEBIAN_FRONTEND=noninteractive apt-get install -y {}",
            missing.join(" ")
        ));
    }
    if need_rust_src {
        steps.push("rustup component add rust-src --toolchain nightly".into());
    }
    if need_linker {
        steps.push(format!(
            "LLVM_PREFIX={LLVM_PREFIX} cargo install bpf-linker --no-default-features --features llvm-22"
        ));
    }
    if need_fuzz {
        steps.push(CARGO_FUZZ_INSTALL.join(" "));
    }
    let can_install = is_root() && found("apt-get");
    if !can_install {
        bail!(
            "missing prerequisites and this is not a Debian machine run as root; run:\n  {}",
            steps.join("\n  ")
        );
    }
    if !missing.is_empty() {
        eprintln!("xtask setup: installing {}", missing.join(", "));
        sh(Command::new("apt-get").args(["update", "-q"]))?;
        sh(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q"])
            .args(&missing))?;
    }
    if need_rust_src {
        eprintln!("xtask setup: adding the nightly rust-src component");
        sh(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
    }
    if need_linker {
        eprintln!("xtask setup: building bpf-linker against LLVM 22 (about two minutes)");
        sh(Command::new("cargo").env("LLVM_PREFIX", LLVM_PREFIX).args([
            "install",
            "bpf-linker",
            "--no-default-features",
            "--features",
            "llvm-22",
        ]))?;
    }
    if need_fuzz {
        eprintln!("xtask setup: installing cargo-fuzz (about a minute)");
        sh(Command::new("cargo").args(&CARGO_FUZZ_INSTALL[1..]))?;
    }
    eprintln!("xtask setup: done");
    Ok(())
}
