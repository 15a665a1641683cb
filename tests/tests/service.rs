//! Running `vtep` as a service: the systemd unit in `dist/` verifies,
//! completions and the manual page are produced, and `--version` names
//! the git revision. (The example configuration is checked by the config
//! parser's unit tests.)

use vtep_tests::{ok, run, unique, vtep_bin};

fn dist(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../dist")
        .join(file)
}

#[test]
fn the_unit_file_verifies() {
    let unit = std::fs::read_to_string(dist("vtep.service")).unwrap();
    assert!(
        unit.contains("ExecReload=/bin/kill -HUP $MAINPID"),
        "{unit}"
    );
    // systemd checks that the binary exists: point it at this build.
    let bin = vtep_bin();
    let unit = unit.replace("/usr/local/bin/vtep", bin.to_str().unwrap());
    let dir = std::env::temp_dir().join(unique("unit"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vtep.service");
    std::fs::write(&path, unit).unwrap();
    verify(&path);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `systemd-analyze verify` finds nothing to say about the unit at
/// `path` (--man=no: the manual page is installed with the binary, not
/// here).
fn verify(path: &std::path::Path) {
    let out = run(&[
        "systemd-analyze",
        "verify",
        "--man=no",
        path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_gobgpd_unit_verifies_and_keeps_the_api_on_loopback() {
    let unit = std::fs::read_to_string(dist("gobgpd-vtep.service")).unwrap();
    assert!(
        unit.contains("--api-hosts 127.0.0.1:50051"),
        "gobgpd's API must stay on loopback: {unit}"
    );
    verify(&dist("gobgpd-vtep.service"));
}

#[test]
fn completions_man_page_and_version() {
    let bin = vtep_bin();
    let vtep = bin.to_str().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef vtep"),
        ("fish", "complete -c vtep"),
    ] {
        let script = ok(&[vtep, "completions", shell]);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("fdb"), "{shell}: no subcommands");
    }
    let man = ok(&[vtep, "man"]);
    assert!(man.contains(".TH vtep 1") && man.contains("fdb"), "{man}");
    let version = ok(&[vtep, "--version"]);
    let rev = version
        .trim()
        .split_once('(')
        .and_then(|(_, r)| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no revision in {version}"));
    assert!(
        rev == "unknown" || (rev.len() >= 7 && rev.chars().all(|c| c.is_ascii_hexdigit())),
        "{version}"
    );
}
