//! `cargo xtask setup`: the prerequisites of one task, each checked, only
//! what is missing installed, each step said. Idempotent.
//!
//! What each task needs is data ([`needs`]), and what would be done is a
//! pure [`plan`] of it, so a test can check, for a machine that has
//! nothing, that the demo installs no test tool, that every task gets
//! what it runs, and that no `apt-get install` pulls recommended packages
//! (on Debian, tshark's recommends once replaced the host's time daemon).

use std::process::Command;

use anyhow::bail;

use crate::sh;

/// The tasks that need something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Need {
    /// Building `vtep` (its kernel programs need the BPF toolchain).
    Build,
    /// `cargo xtask build-and-run`: building, and the demo's namespaces
    /// and pings.
    Demo,
    /// `cargo xtask bench`: the demo's tools and iperf3.
    Bench,
    /// `cargo xtask test`: the bench's (it ends with a smoke run of it),
    /// the test tools and the fuzzer.
    Test,
    /// `cargo xtask profile`: perf (the programs it samples are loaded by
    /// something else: a bench, a test, a host).
    Profile,
}

impl Need {
    /// The tasks whose prerequisites this one needs too.
    fn includes(self) -> &'static [Need] {
        match self {
            Need::Build => &[],
            Need::Demo => &[Need::Build],
            Need::Bench => &[Need::Demo],
            Need::Test => &[Need::Bench],
            Need::Profile => &[],
        }
    }
}

/// One prerequisite: how to tell it is there, and how to get it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prereq {
    /// A Debian package, and the command (or file) that shows it is there.
    Apt(&'static str, &'static str),
    /// The nightly toolchain's `rust-src` (building for the BPF target).
    RustSrc,
    /// `bpf-linker`, built against LLVM 22.
    BpfLinker,
    /// `cargo fuzz`.
    CargoFuzz,
}

/// What `need` needs beyond what the tasks it includes need.
fn own(need: Need) -> &'static [Prereq] {
    use Prereq::*;
    match need {
        Need::Build => &[
            Apt("llvm-22-dev", "/usr/lib/llvm-22/bin/llvm-config"),
            RustSrc,
            BpfLinker,
            // The GoBGP 3.x protos the EVPN client is generated from.
            Apt(
                "golang-github-osrg-gobgp-dev",
                "/usr/share/gocode/src/github.com/osrg/gobgp/api/gobgp.proto",
            ),
        ],
        Need::Demo => &[
            Apt("iproute2", "ip"),
            Apt("iputils-ping", "ping"),
            Apt("ethtool", "ethtool"),
        ],
        Need::Bench => &[Apt("iperf3", "iperf3"), Apt("gobgpd", "gobgpd")],
        Need::Test => &[
            Apt("tcpdump", "tcpdump"),
            Apt("tshark", "tshark"),
            // Marks and counts on the kernel's side of the VXLAN-GBP test.
            Apt("nftables", "nft"),
            // The EVPN peer we interoperate with.
            Apt("frr", "/usr/lib/frr/bgpd"),
            // libFuzzer (cargo fuzz) is C++.
            Apt("g++", "g++"),
            CargoFuzz,
        ],
        Need::Profile => &[Apt("linux-perf", "perf")],
    }
}

/// Everything `need` needs, what it includes first.
pub fn needs(need: Need) -> Vec<Prereq> {
    let mut out: Vec<Prereq> = need.includes().iter().flat_map(|n| needs(*n)).collect();
    for p in own(need) {
        if !out.contains(p) {
            out.push(*p);
        }
    }
    out
}

const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

/// Packages whose Debian scripts enable and start a system service. The
/// set-up installs them for the tests and the bench, which run their
/// daemons inside test namespaces: the host must neither run nor enable
/// them (gobgpd's unit would serve an unauthenticated API on every
/// address). Starting is denied during the install (policy-rc.d), and
/// the units are disabled again after it (`systemctl disable` works on
/// the unit files, with or without a running systemd).
const SERVICES: &[(&str, &str)] = &[
    ("frr", "frr.service"),
    ("gobgpd", "gobgpd.service"),
    ("nftables", "nftables.service"),
];

/// Where Debian's maintainer scripts ask whether a service may start.
const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

/// Denies service starts while it lives, unless the host has a policy of
/// its own (then that one rules).
struct NoServiceStarts(bool);

impl NoServiceStarts {
    fn new() -> anyhow::Result<Self> {
        let path = std::path::Path::new(POLICY_RC_D);
        if path.exists() {
            return Ok(Self(false));
        }
        std::fs::write(
            path,
            "#!/bin/sh\n# cargo xtask setup: no service starts while it installs\nexit 101\n",
        )?;
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        Ok(Self(true))
    }
}

impl Drop for NoServiceStarts {
    fn drop(&mut self) {
        if self.0 {
            let _ = std::fs::remove_file(POLICY_RC_D);
        }
    }
}

/// The commands that install `missing` (a subset of some [`needs`]), as
/// argument vectors.
pub fn plan(missing: &[Prereq]) -> Vec<Vec<String>> {
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let packages: Vec<&str> = missing
        .iter()
        .filter_map(|p| match p {
            Prereq::Apt(pkg, _) => Some(*pkg),
            _ => None,
        })
        .collect();
    let mut steps = Vec::new();
    if !packages.is_empty() {
        steps.push(owned(&["apt-get", "update", "-q"]));
        let mut install = owned(&["apt-get", "install", "-y", "-q", "--no-install-recommends"]);
        install.extend(packages.iter().map(|p| (*p).to_owned()));
        steps.push(install);
        for (pkg, unit) in SERVICES {
            if packages.contains(pkg) {
                steps.push(owned(&["systemctl", "disable", unit]));
            }
        }
    }
    for p in missing {
        match p {
            Prereq::Apt(..) => {}
            Prereq::RustSrc => steps.push(owned(&[
                "rustup",
                "component",
                "add",
                "rust-src",
                "--toolchain",
                "nightly",
            ])),
            Prereq::BpfLinker => steps.push(owned(&[
                "cargo",
                "install",
                "bpf-linker",
                "--no-default-features",
                "--features",
                "llvm-22",
            ])),
            Prereq::CargoFuzz => steps.push(owned(&["cargo", "install", "cargo-fuzz", "--locked"])),
        }
    }
    steps
}

fn found(cmd: &str) -> bool {
    if cmd.starts_with('/') {
        return std::path::Path::new(cmd).exists();
    }
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

/// Whether `p` is there already.
fn present(p: Prereq) -> bool {
    match p {
        Prereq::Apt(_, cmd) => found(cmd),
        Prereq::RustSrc => Command::new("rustup")
            .args(["component", "list", "--toolchain", "nightly", "--installed"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("rust-src")),
        // bpf-linker built against LLVM 22 links libLLVM-22.
        Prereq::BpfLinker => succeeds(Command::new("bpf-linker").arg("--version")),
        Prereq::CargoFuzz => succeeds(Command::new("cargo").args(["fuzz", "--version"])),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Makes sure what `need` needs is there, installing what is missing.
pub fn run(need: Need) -> anyhow::Result<()> {
    let missing: Vec<Prereq> = needs(need).into_iter().filter(|p| !present(*p)).collect();
    if missing.is_empty() {
        eprintln!("xtask setup: all prerequisites of {need:?} present");
        return Ok(());
    }
    let steps = plan(&missing);
    if !(is_root() && found("apt-get")) {
        let lines: Vec<String> = steps.iter().map(|s| s.join(" ")).collect();
        bail!(
            "missing prerequisites and this is not a Debian machine run as root; run:\n  {}",
            lines.join("\n  ")
        );
    }
    let installs = steps.iter().any(|s| s[0] == "apt-get" && s[1] == "install");
    let _no_starts = if installs {
        Some(NoServiceStarts::new()?)
    } else {
        None
    };
    for step in &steps {
        let mut cmd = Command::new(&step[0]);
        cmd.args(&step[1..]);
        match step[0].as_str() {
            "apt-get" => {
                cmd.env("DEBIAN_FRONTEND", "noninteractive");
            }
            // No systemd, no unit to leave enabled.
            "systemctl" if !found("systemctl") => continue,
            "cargo" if step.iter().any(|a| a == "bpf-linker") => {
                eprintln!("xtask setup: building bpf-linker against LLVM 22 (about two minutes)");
                cmd.env("LLVM_PREFIX", LLVM_PREFIX);
            }
            _ => {}
        }
        sh(&mut cmd)?;
    }
    eprintln!("xtask setup: done");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packages(need: Need) -> Vec<&'static str> {
        needs(need)
            .into_iter()
            .filter_map(|p| match p {
                Prereq::Apt(pkg, _) => Some(pkg),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn each_task_gets_what_it_runs_and_no_more() {
        let demo = packages(Need::Demo);
        for tool in ["tcpdump", "tshark", "iperf3", "g++", "gobgpd", "frr"] {
            assert!(!demo.contains(&tool), "the demo installs {tool}");
        }
        assert!(!needs(Need::Demo).contains(&Prereq::CargoFuzz));
        for tool in ["llvm-22-dev", "iproute2", "iputils-ping", "ethtool"] {
            assert!(demo.contains(&tool), "the demo lacks {tool}");
        }
        let test = packages(Need::Test);
        for tool in ["tcpdump", "tshark", "iperf3", "g++", "gobgpd", "frr"] {
            assert!(test.contains(&tool), "the tests lack {tool}");
        }
        let bench = packages(Need::Bench);
        for tool in ["iperf3", "ethtool", "iproute2", "gobgpd"] {
            assert!(bench.contains(&tool), "the bench lacks {tool}");
        }
        assert!(
            !bench.contains(&"tshark")
                && !bench.contains(&"frr")
                && !needs(Need::Bench).contains(&Prereq::CargoFuzz)
        );
        assert!(
            test.contains(&"iperf3"),
            "the test command's bench smoke run lacks iperf3"
        );
        assert!(needs(Need::Build).contains(&Prereq::BpfLinker));
        assert_eq!(packages(Need::Profile), ["linux-perf"]);
        assert!(!test.contains(&"linux-perf"), "the tests install perf");
    }

    #[test]
    fn nothing_is_installed_with_recommends() {
        // A machine that has nothing: everything is missing.
        for need in [
            Need::Build,
            Need::Demo,
            Need::Test,
            Need::Bench,
            Need::Profile,
        ] {
            let steps = plan(&needs(need));
            let installs: Vec<&Vec<String>> = steps
                .iter()
                .filter(|s| s[0] == "apt-get" && s[1] == "install")
                .collect();
            assert_eq!(installs.len(), 1, "{need:?}: {steps:?}");
            assert!(
                installs[0].iter().any(|a| a == "--no-install-recommends"),
                "{need:?}: {steps:?}"
            );
        }
        let demo = plan(&needs(Need::Demo));
        assert!(
            !demo
                .iter()
                .flatten()
                .any(|a| a == "tshark" || a == "cargo-fuzz"),
            "{demo:?}"
        );
    }

    #[test]
    fn services_installed_for_the_tests_are_left_disabled() {
        let test = plan(&needs(Need::Test));
        for unit in ["frr.service", "gobgpd.service"] {
            let disabled = test
                .iter()
                .any(|s| s[0] == "systemctl" && s[1] == "disable" && s[2] == unit);
            assert!(disabled, "{unit} stays enabled: {test:?}");
        }
        let demo = plan(&needs(Need::Demo));
        assert!(!demo.iter().any(|s| s[0] == "systemctl"), "{demo:?}");
    }
}
