//! Watching the wire: tcpdump running in a namespace while a test sends,
//! and tshark's decoding of a saved capture.

use std::time::Duration;

use crate::{Bg, Netns, TempFile, ok, wait_until};

/// The `fields` tshark decodes of each packet in `pcap` (`options`: its
/// `-o` preferences), one row per packet, the first occurrence of each.
pub fn tshark_fields(pcap: &str, options: &[&str], fields: &[&str]) -> Vec<Vec<String>> {
    let mut argv = vec!["tshark", "-r", pcap];
    for o in options {
        argv.extend(["-o", o]);
    }
    argv.extend(["-T", "fields", "-E", "occurrence=f", "-E", "separator=,"]);
    for f in fields {
        argv.extend(["-e", f]);
    }
    ok(&argv)
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

/// A running `tcpdump -nn -l ARGS` in a namespace, and the file its
/// stderr goes to.
pub struct Capture(Bg, TempFile);

/// What a stopped [`Capture`] saw.
pub struct Captured {
    /// What it printed (a packet can take more than one line).
    pub lines: Vec<String>,
    /// Packets the kernel matched to its filter ("packets received by
    /// filter"), whether or not tcpdump got to print them.
    pub matched: u64,
}

impl Capture {
    /// Starts tcpdump and waits until it captures (it says "listening on"
    /// once its socket and filter are in place).
    pub fn start(ns: &Netns, args: &[&str]) -> Self {
        let log = TempFile::new("cap", "");
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let cmd = format!(
            "exec tcpdump -nn -l {} 2>'{}'",
            quoted.join(" "),
            log.path().display()
        );
        let bg = ns.spawn(&["sh", "-c", &cmd]);
        let ready = wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(log.path()).is_ok_and(|t| t.contains("listening on"))
        });
        assert!(
            ready,
            "tcpdump never started: {:?}",
            std::fs::read_to_string(log.path())
        );
        Capture(bg, log)
    }

    /// Lets tcpdump read what its filter already matched, then stops it.
    pub fn stop(self) -> Captured {
        std::thread::sleep(Duration::from_millis(500));
        let out = self.0.interrupt();
        let stderr = std::fs::read_to_string(self.1.path()).unwrap_or_default();
        let lines = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        let matched = stderr
            .lines()
            .find(|l| l.contains("received by filter"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no tcpdump summary in: {stderr}"));
        Captured { lines, matched }
    }
}
