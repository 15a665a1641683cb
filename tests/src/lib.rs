//! Test harness: network namespaces, veth pairs, bpffs mounts, background
//! processes and the `vtep` command, each behind an RAII guard that removes
//! what it made on drop (and so on panic).
//!
//! Names are unique per process and call, so tests run in parallel without
//! colliding. Addresses: underlays from 198.18.0.0/16, tenants from
//! 198.19.0.0/16, only inside namespaces made here, with no route out.

mod capture;
pub mod evpn;
mod files;
pub mod frames;
pub mod http;
pub mod raw;
pub mod rng;
pub mod topo;

pub use capture::{Capture, Captured, tshark_fields};
pub use files::{ConfigFile, TempFile};

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call: `vt<tag><pid>x<n>`.
pub fn unique(tag: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("vt{tag}{}x{n}", std::process::id())
}

fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "`{}` exited with {}\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

/// Runs a command; returns its output whatever the status.
pub fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", args.join(" ")))
}

/// Runs a command that must succeed; returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{}", describe(args, &out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts a command with its output captured, killed when the guard drops.
pub fn spawn(argv: &[&str]) -> Bg {
    let dir = std::env::temp_dir();
    let (out, err) = (dir.join(unique("out")), dir.join(unique("err")));
    let file = |p: &Path| {
        std::fs::File::create(p).unwrap_or_else(|e| panic!("cannot create {}: {e}", p.display()))
    };
    let child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(file(&out))
        .stderr(file(&err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", argv.join(" ")));
    Bg {
        child: Some(child),
        argv: argv.join(" "),
        out,
        err,
    }
}

/// Runs `f` on a thread of its own inside network namespace `ns` (by
/// name): `setns` changes the namespace of the calling thread only.
pub fn in_netns<T: Send>(
    ns: &str,
    f: impl FnOnce() -> anyhow::Result<T> + Send,
) -> anyhow::Result<T> {
    use std::os::fd::AsRawFd as _;
    std::thread::scope(|s| {
        s.spawn(|| {
            let path = format!("/run/netns/{ns}");
            let file = std::fs::File::open(&path)
                .map_err(|e| anyhow::anyhow!("cannot open {path}: {e}"))?;
            // SAFETY: `file` is an open namespace file for the whole call;
            // setns affects only this thread.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                anyhow::bail!("setns({path}): {}", std::io::Error::last_os_error());
            }
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; whether
/// it held. For waiting on a condition instead of sleeping for a guess.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// (transmitted, received) from ping's summary line.
pub fn ping_summary(out: &Output) -> (u64, u64) {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping summary in: {text}"));
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (n[0], n[1])
}

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A new namespace with `lo` up and IPv6 off (no router solicitations or
    /// DAD traffic in captures).
    pub fn new(tag: &str) -> Self {
        let ns = Netns { name: unique(tag) };
        ok(&["ip", "netns", "add", &ns.name]);
        ns.ok(&["ip", "link", "set", "lo", "up"]);
        ns.ok(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        ns.ok(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
        ns
    }

    /// A new namespace with `lo` up and IPv6 on, quietly: addresses
    /// usable at once (no duplicate address detection), no router
    /// solicitations. Interfaces made in it afterwards inherit that.
    pub fn with_ipv6(tag: &str) -> Self {
        let ns = Netns { name: unique(tag) };
        ok(&["ip", "netns", "add", &ns.name]);
        ns.ok(&["ip", "link", "set", "lo", "up"]);
        for conf in ["all", "default"] {
            for (key, value) in [
                ("disable_ipv6", "0"),
                ("accept_dad", "0"),
                ("router_solicitations", "0"),
                ("accept_ra", "0"),
            ] {
                ns.ok(&[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{conf}.{key}={value}"),
                ]);
            }
        }
        ns
    }

    fn argv<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["ip", "netns", "exec", self.name.as_str()];
        v.extend_from_slice(args);
        v
    }

    /// Runs a command in the namespace; returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        run(&self.argv(args))
    }

    /// Runs a command in the namespace that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(&self.argv(args))
    }

    /// Starts a command in the namespace, killed when the guard drops.
    pub fn spawn(&self, args: &[&str]) -> Bg {
        spawn(&self.argv(args))
    }

    /// Adds `addr` (CIDR) to `dev` and brings it up.
    pub fn addr(&self, dev: &str, cidr: &str) {
        self.ok(&["ip", "addr", "add", cidr, "dev", dev]);
        self.ok(&["ip", "link", "set", dev, "up"]);
    }

    /// Turns transmit checksum offload off on `dev`: an underlay veth then
    /// carries complete checksums, as a NIC puts on a wire.
    pub fn wire(&self, dev: &str) {
        self.ok(&["ethtool", "-K", dev, "tx", "off"]);
    }

    /// Whether `ping -c count` to `dst` gets every reply.
    pub fn ping(&self, dst: &str, count: u32) -> bool {
        let c = count.to_string();
        self.run(&["ping", "-c", &c, "-i", "0.2", "-W", "1", "-q", dst])
            .status
            .success()
    }

    /// Pings `dst` until a reply comes or `timeout` passes (ARP and
    /// neighbour resolution may take the first tries).
    pub fn ping_until(&self, dst: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self
                .run(&["ping", "-c", "1", "-W", "1", "-q", dst])
                .status
                .success()
            {
                return true;
            }
        }
        false
    }

    /// Waits (up to 5 s) until something listens on TCP `port` here.
    pub fn wait_listening(&self, port: u16) {
        let filter = format!("sport = :{port}");
        let listening = wait_until(Duration::from_secs(5), || {
            !self.ok(&["ss", "-Htln", &filter]).trim().is_empty()
        });
        assert!(
            listening,
            "nothing listens on TCP port {port} in {}",
            self.name
        );
    }

    /// The MAC address of `dev` (read inside the namespace, whose /sys
    /// `ip netns exec` mounts).
    pub fn mac(&self, dev: &str) -> String {
        self.ok(&["cat", &format!("/sys/class/net/{dev}/address")])
            .trim()
            .to_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}

/// A host namespace whose underlay `ul0` (198.18.0.1/24) is wired to
/// `eth0` (198.18.0.2/24) of a peer namespace: (host, peer).
pub fn underlay_pair(tag: &str) -> (Netns, Netns) {
    let host = Netns::new(tag);
    let peer = Netns::new(&format!("{tag}p"));
    veth(&host, "ul0", &peer, "eth0");
    host.addr("ul0", "198.18.0.1/24");
    peer.addr("eth0", "198.18.0.2/24");
    (host, peer)
}

/// `vtep up` on [`underlay_pair`]'s host, XDP in native mode.
pub const UP_NATIVE: &[&str] = &[
    "up",
    "--underlay",
    "ul0",
    "--local-ip",
    "198.18.0.1",
    "--xdp-mode",
    "native",
];

/// `vtep up` on [`underlay_pair`]'s host, decap in TC (no XDP).
pub const UP_TC: &[&str] = &[
    "up",
    "--underlay",
    "ul0",
    "--local-ip",
    "198.18.0.1",
    "--xdp-mode",
    "off",
];

/// Creates a veth pair with `a_dev` in `a` and `b_dev` in `b` (both down).
/// It goes away with either namespace.
pub fn veth(a: &Netns, a_dev: &str, b: &Netns, b_dev: &str) {
    ok(&[
        "ip", "link", "add", a_dev, "netns", &a.name, "type", "veth", "peer", "name", b_dev,
        "netns", &b.name,
    ]);
}

/// As [`veth`], with `queues` receive and transmit queues on each end (a
/// veth otherwise comes with one in use).
pub fn veth_with_queues(a: &Netns, a_dev: &str, b: &Netns, b_dev: &str, queues: usize) {
    let q = queues.to_string();
    ok(&[
        "ip",
        "link",
        "add",
        a_dev,
        "netns",
        &a.name,
        "numrxqueues",
        &q,
        "numtxqueues",
        &q,
        "type",
        "veth",
        "peer",
        "name",
        b_dev,
        "netns",
        &b.name,
        "numrxqueues",
        &q,
        "numtxqueues",
        &q,
    ]);
}

/// A background process, killed on drop. Its output goes to files, not
/// pipes: a chatty daemon never blocks writing to a pipe nobody reads;
/// when a test fails, the end of each output is printed with the test's.
pub struct Bg {
    child: Option<Child>,
    argv: String,
    out: PathBuf,
    err: PathBuf,
}

/// How much of a background process's output a failing test prints.
const TAIL: usize = 4000;

impl Bg {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits for the process to end by itself (up to `timeout`), then
    /// returns its output; kills it first if it is still running.
    pub fn finish(mut self, timeout: Duration) -> Output {
        let mut child = self.child.take().expect("process already collected");
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let status = child.wait().expect("cannot collect process status");
        let read = |p: &Path| std::fs::read(p).unwrap_or_default();
        Output {
            status,
            stdout: read(&self.out),
            stderr: read(&self.err),
        }
    }

    /// Stops the process with SIGINT (lets tools like tcpdump flush), then
    /// returns its output.
    pub fn interrupt(self) -> Output {
        let _ = run(&["kill", "-INT", &self.id().to_string()]);
        self.finish(Duration::from_secs(5))
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for (name, path) in [("stdout", &self.out), ("stderr", &self.err)] {
            if std::thread::panicking() {
                let text = std::fs::read(path).unwrap_or_default();
                if !text.is_empty() {
                    let tail = &text[text.len().saturating_sub(TAIL)..];
                    eprintln!(
                        "--- `{}` {name} (last {} bytes) ---\n{}",
                        self.argv,
                        tail.len(),
                        String::from_utf8_lossy(tail)
                    );
                }
            }
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A private bpf filesystem outside /sys (which `ip netns exec` remounts),
/// unmounted and removed on drop.
pub struct BpfFs {
    pub dir: PathBuf,
}

impl BpfFs {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("bpffs"));
        std::fs::create_dir_all(&dir).expect("cannot create bpffs mount point");
        ok(&[
            "mount",
            "-t",
            "bpf",
            "bpf",
            dir.to_str().expect("utf-8 temp dir"),
        ]);
        BpfFs { dir }
    }
}

impl Default for BpfFs {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for BpfFs {
    fn drop(&mut self) {
        let _ = run(&["umount", "-l", self.dir.to_str().unwrap_or_default()]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where the `vtep` binary is: `VTEP_BIN`, else next to the test binary's
/// `deps/` directory (cargo's target layout). `cargo test -p vtep-tests`
/// alone does not rebuild it; `cargo xtask test` builds it first.
pub fn vtep_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("VTEP_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("no current exe");
    let dir = exe.parent().expect("exe dir");
    let dir = if dir.ends_with("deps") {
        dir.parent().expect("target dir")
    } else {
        dir
    };
    dir.join("vtep")
}

/// `RUST_LOG=` the test's `VTEP_TEST_LOG`, if it has one.
static TEST_LOG: std::sync::LazyLock<Option<String>> = std::sync::LazyLock::new(|| {
    std::env::var("VTEP_TEST_LOG")
        .ok()
        .map(|l| format!("RUST_LOG={l}"))
});

/// One `vtep` instance run inside a namespace with its own pin root.
pub struct Vtep {
    pub ns: String,
    pub pin_root: PathBuf,
    pub instance: String,
    pub bin: PathBuf,
}

impl Vtep {
    /// An instance named after `ns`, pinned under `bpffs`.
    pub fn new(ns: &Netns, bpffs: &BpfFs) -> Self {
        Self::with_bin(ns, bpffs.dir.as_path(), vtep_bin())
    }

    /// As [`Vtep::new`], with an explicit binary and pin root.
    pub fn with_bin(ns: &Netns, pin_root: &Path, bin: PathBuf) -> Self {
        Vtep {
            ns: ns.name.clone(),
            pin_root: pin_root.to_owned(),
            instance: ns.name.clone(),
            bin,
        }
    }

    fn argv<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        // With a PATH that finds nothing: the product runs no other
        // program (no `ip`: it speaks netlink itself). VTEP_TEST_LOG
        // becomes its RUST_LOG (to debug a test: the daemons' logs are in
        // their guards' output).
        let mut v = vec![
            "ip",
            "netns",
            "exec",
            self.ns.as_str(),
            "env",
            "PATH=/nonexistent",
        ];
        v.extend(TEST_LOG.as_deref());
        v.extend([
            self.bin.to_str().expect("utf-8 path"),
            "--pin-root",
            self.pin_root.to_str().expect("utf-8 path"),
            "--instance",
            self.instance.as_str(),
        ]);
        v.extend_from_slice(args);
        v
    }

    /// Runs `vtep ARGS`; returns its output whatever the status.
    pub fn run(&self, args: &[&str]) -> Output {
        run(&self.argv(args))
    }

    /// Runs `vtep ARGS`, which must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(&self.argv(args))
    }

    /// Starts a long-running `vtep ARGS` (e.g. `events`), killed when the
    /// guard drops.
    pub fn spawn(&self, args: &[&str]) -> Bg {
        spawn(&self.argv(args))
    }

    /// Runs `vtep ARGS`, which must fail; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "expected failure: {}",
            describe(&self.argv(args), &out)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `vtep stats --json`, parsed.
    pub fn stats(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["stats", "--json"])).expect("stats --json is JSON")
    }

    /// `vtep maps dump NAME --json`, parsed.
    pub fn map_dump(&self, name: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["maps", "dump", name, "--json"]))
            .expect("maps dump --json is JSON")
    }

    /// The row of map `name` in `vtep maps list --json` (type, sizes,
    /// entries, capacity).
    pub fn map_row(&self, name: &str) -> serde_json::Value {
        let list: serde_json::Value = serde_json::from_str(&self.ok(&["maps", "list", "--json"]))
            .expect("maps list --json is JSON");
        list.as_array()
            .expect("maps list --json is an array")
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no map {name} in {list}"))
            .clone()
    }

    /// A counter from `vtep stats --json` (`drop_reasons` or `counters`).
    pub fn counter(&self, group: &str, name: &str) -> u64 {
        self.stats()[group][name]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {group}.{name}"))
    }
}

impl Drop for Vtep {
    fn drop(&mut self) {
        let _ = self.run(&["down"]);
    }
}
