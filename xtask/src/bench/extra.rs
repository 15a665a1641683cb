//! The figures beyond packet rate: program cost, FDB scale, control-plane
//! rate, latency, TCP throughput; and the report.

use std::{fmt::Write as _, path::Path, time::Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use vtep_tests::{
    BpfFs, Netns, Vtep,
    topo::{Kind, Overlay, tcp_bytes},
    veth,
};

use super::pps::Bench;

const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// `kernel.bpf_stats_enabled` on while this lives (restored on drop).
pub struct BpfStats {
    old: String,
}

impl BpfStats {
    pub fn enable() -> anyhow::Result<Self> {
        let old = std::fs::read_to_string(STATS_SYSCTL).context("bpf_stats_enabled")?;
        std::fs::write(STATS_SYSCTL, "1").context("cannot enable bpf_stats")?;
        Ok(BpfStats { old })
    }

    /// Average run time (ns) of each named program, over every loaded
    /// program of that name.
    pub fn read(&self, names: &[&str]) -> anyhow::Result<Value> {
        let mut out = serde_json::Map::new();
        for name in names {
            let (mut ns, mut runs) = (0u128, 0u64);
            for p in aya::programs::loaded_programs() {
                let p = p?;
                if p.name_as_str() == Some(*name) {
                    ns += p.run_time().as_nanos();
                    runs += p.run_count();
                }
            }
            if runs > 0 {
                out.insert(
                    (*name).into(),
                    json!({ "ns_per_run": ns as f64 / runs as f64, "runs": runs }),
                );
            }
        }
        Ok(Value::Object(out))
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write(STATS_SYSCTL, self.old.trim());
    }
}

/// What the machine is.
pub fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();
    let kernel = vtep_tests::ok(&["uname", "-r"]).trim().to_owned();
    json!({ "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()), "cpu": cpu, "kernel": kernel })
}

/// Writes `n` FDB lines (MACs 02:01:..) behind `remote` in VNI 100.
fn fdb_file(n: usize, remote: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = std::env::temp_dir().join(vtep_tests::unique("fdb"));
    let mut text = String::with_capacity(n * 40);
    for i in 0..n {
        let b = (i as u32).to_be_bytes();
        writeln!(
            text,
            "02:01:{:02x}:{:02x}:{:02x}:{:02x} 100 remote {remote}",
            b[0], b[1], b[2], b[3]
        )?;
    }
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Decap rate of our VTEP with 10, 10k and 1M FDB entries (run on the
/// `vtep-uncached` bench: every frame looks the FDB up).
pub fn fdb_scale(b: &Bench, smoke: bool, packets: u32) -> anyhow::Result<Value> {
    let v = b.vtep.as_ref().context("the vtep bench has no VTEP")?;
    let sizes: &[usize] = if smoke {
        &[10, 1_000]
    } else {
        &[10, 10_000, 1_000_000]
    };
    let mut have = 1; // the VM's own entry
    let mut out = serde_json::Map::new();
    for &n in sizes {
        let file = fdb_file(n - have, "198.18.0.2")?;
        v.ok(&["fdb", "load", file.to_str().context("path")?]);
        let _ = std::fs::remove_file(&file);
        have = n;
        let mut r: Vec<f64> = (0..3)
            .map(|_| b.measure(packets))
            .collect::<anyhow::Result<_>>()?;
        r.sort_by(f64::total_cmp);
        out.insert(n.to_string(), json!({ "mpps_median": r[1] / 1e6 }));
    }
    let first = out[&sizes[0].to_string()]["mpps_median"]
        .as_f64()
        .unwrap_or(0.0);
    let last = out[&sizes[sizes.len() - 1].to_string()]["mpps_median"]
        .as_f64()
        .unwrap_or(0.0);
    out.insert("largest_over_smallest".into(), json!(last / first));
    Ok(Value::Object(out))
}

/// FDB entries programmed per second by `vtep fdb load`.
pub fn control_plane(vtep_bin: &Path, smoke: bool) -> anyhow::Result<Value> {
    let n = if smoke { 5_000 } else { 200_000 };
    let bpffs = BpfFs::new();
    let host = Netns::new("cp");
    let peer = Netns::new("cpp");
    veth(&host, "ul0", &peer, "eth0");
    host.addr("ul0", "198.18.0.1/24");
    peer.addr("eth0", "198.18.0.2/24");
    let v = Vtep::with_bin(&host, &bpffs.dir, vtep_bin.to_owned());
    v.ok(&["up", "--underlay", "ul0", "--local-ip", "198.18.0.1"]);
    v.ok(&["vni", "add", "100", "--flood", "198.18.0.2"]);
    let file = fdb_file(n, "198.18.0.2")?;
    let start = Instant::now();
    v.ok(&["fdb", "load", file.to_str().context("path")?]);
    let secs = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&file);
    Ok(json!({ "entries": n, "seconds": secs, "entries_per_second": n as f64 / secs }))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// RTT VM to VM through two of our VTEPs and through two of the kernel's
/// (ping every 2 ms): `LATENCY_ROUNDS` rounds, the variants taking turns
/// (a burst of noise on this shared machine then hits both alike), the
/// samples of all rounds pooled per variant.
pub fn latency(vtep_bin: &Path, smoke: bool) -> anyhow::Result<Value> {
    let (rounds, count) = if smoke {
        (1, 50u32)
    } else {
        (LATENCY_ROUNDS, 400)
    };
    let count_arg = count.to_string();
    let variants = [("vtep", Kind::Ours), ("kernel", Kind::Kernel)];
    let mut overlays = Vec::new();
    for (name, kind) in variants {
        let o = Overlay::new(&[kind, kind], vtep_bin);
        o.static_fdb(0);
        if !o
            .vm(0, 0)
            .ns
            .ping_until("198.19.0.2", std::time::Duration::from_secs(5))
        {
            bail!("{name}: no ping across the overlay");
        }
        overlays.push(o);
    }
    let mut rtts: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (o, samples) in overlays.iter().zip(rtts.iter_mut()) {
            let text = o
                .vm(0, 0)
                .ns
                .ok(&["ping", "-c", &count_arg, "-i", "0.002", "198.19.0.2"]);
            samples.extend(
                text.lines()
                    .filter_map(|l| l.split("time=").nth(1))
                    .filter_map(|t| t.split_whitespace().next()?.parse::<f64>().ok())
                    .map(|ms| ms * 1000.0),
            );
        }
    }
    let mut out = serde_json::Map::new();
    for ((name, _), mut samples) in variants.into_iter().zip(rtts) {
        if samples.is_empty() {
            bail!("{name}: no RTTs in ping's output");
        }
        samples.sort_by(f64::total_cmp);
        out.insert(name.into(), json!({ "p50": percentile(&samples, 0.5), "p99": percentile(&samples, 0.99), "samples": samples.len() }));
    }
    out.insert("rounds".into(), json!(rounds));
    out.insert("pings_per_round".into(), json!(count));
    Ok(Value::Object(out))
}

/// TCP throughput VM to VM (iperf3), offloads on (default) and off: the
/// median of `TCP_RUNS` runs per variant, the variants taking turns.
///
/// Variants: `vtep` and `kernel` with the VMs' veths as they come; and
/// `vtep-xdp-gro`, our VTEP delivering from XDP (`port add --deliver xdp`)
/// to VMs whose side of the veth has GRO on (which is also what makes a
/// veth accept XDP frames): with XDP on the underlay, frames arrive
/// segmented, and GRO at the VM's veth puts the segments back together
/// before the VM's stack, as the kernel's vxlan gets whole GSO packets
/// through a plain veth. Without GRO a veth drops XDP frames, so that
/// variant has no "offloads off" figure.
pub fn tcp(vtep_bin: &Path, smoke: bool) -> anyhow::Result<Value> {
    let (secs, runs) = if smoke { (1, 1) } else { (4, TCP_RUNS) };
    let variants = [
        ("vtep", Kind::Ours),
        ("vtep-xdp-gro", Kind::Ours),
        ("kernel", Kind::Kernel),
    ];
    let mut overlays = Vec::new();
    for (name, kind) in variants {
        let o = Overlay::new(&[kind, kind], vtep_bin);
        o.static_fdb(0);
        if name == "vtep-xdp-gro" {
            for (h, v) in o.vteps.iter().enumerate() {
                let v = v.as_ref().context("our VTEP")?;
                o.vm(h, 0).ns.ok(&["ethtool", "-K", "eth0", "gro", "on"]);
                v.ok(&["port", "del", "p100"]);
                v.ok(&["port", "add", "p100", "--vni", "100", "--deliver", "xdp"]);
                v.ok(&[
                    "fdb",
                    "add",
                    &o.vm(h, 0).mac,
                    "--vni",
                    "100",
                    "--port",
                    "p100",
                ]);
            }
        }
        if !o
            .vm(0, 0)
            .ns
            .ping_until("198.19.0.2", std::time::Duration::from_secs(5))
        {
            bail!("{name}: no ping across the overlay");
        }
        overlays.push(o);
    }
    let gbps =
        |o: &Overlay| tcp_bytes(o.vm(1, 0), o.vm(0, 0), secs) as f64 * 8.0 / f64::from(secs) / 1e9;
    let mut on = vec![Vec::new(); overlays.len()];
    for _ in 0..runs {
        for (o, r) in overlays.iter().zip(on.iter_mut()) {
            r.push(gbps(o));
        }
    }
    let mut out = serde_json::Map::new();
    for (i, ((name, _), o)) in variants.iter().zip(&overlays).enumerate() {
        out.insert(
            (*name).into(),
            json!({ "offloads_on": super::summary(&on[i]).0 }),
        );
        if *name == "vtep-xdp-gro" {
            continue;
        }
        for h in 0..2 {
            o.vm(h, 0).ns.ok(&[
                "ethtool", "-K", "eth0", "tso", "off", "gso", "off", "gro", "off", "tx", "off",
            ]);
        }
        let off: Vec<f64> = (0..runs).map(|_| gbps(o)).collect();
        out[*name]["offloads_off"] = json!(super::summary(&off).0);
    }
    out.insert("runs".into(), json!(runs));
    Ok(Value::Object(out))
}

/// TCP runs per variant (the median is reported).
const TCP_RUNS: usize = 3;

/// Every figure the report must have, as JSON pointers.
/// Interleaved rounds of the latency measurement.
const LATENCY_ROUNDS: usize = 5;

const FIGURES: &[&str] = &[
    "/decap/variants/kernel/mpps_median",
    "/decap/variants/vtep/mpps_median",
    "/decap/variants/xdp-drop/mpps_median",
    "/decap/variants/xdp-redirect/mpps_median",
    "/decap/derived/vtep_over_kernel",
    "/decap/derived/vtep_over_xdp_redirect",
    "/decap/variants/vtep-uncached/mpps_median",
    "/decap/derived/vtep_uncached_over_xdp_redirect",
    "/decap/derived/ns_per_packet_above_xdp_drop/vtep",
    "/decap/derived/ns_per_packet_above_xdp_drop/kernel",
    "/encap/variants/kernel/mpps_median",
    "/encap/variants/vtep/mpps_median",
    "/encap/derived/vtep_over_kernel",
    "/program_cost_ns/vtep_decap/ns_per_run",
    "/program_cost_ns/vtep_encap/ns_per_run",
    "/fdb_scale/largest_over_smallest",
    "/control_plane/entries_per_second",
    "/latency_us/vtep/p50",
    "/latency_us/vtep/p99",
    "/latency_us/kernel/p50",
    "/latency_us/kernel/p99",
    "/tcp_gbps/vtep/offloads_on",
    "/tcp_gbps/vtep/offloads_off",
    "/tcp_gbps/vtep-xdp-gro/offloads_on",
    "/tcp_gbps/kernel/offloads_on",
    "/tcp_gbps/kernel/offloads_off",
];

/// Fails unless every figure is there as a finite number; rates, times
/// and ratios must also be above zero (a difference of two rates, the ns
/// per packet above the drop ceiling, may not be in a short noisy run).
pub fn check_complete(report: &Value) -> anyhow::Result<()> {
    for f in FIGURES {
        let difference = f.contains("ns_per_packet_above_xdp_drop");
        match report.pointer(f).and_then(Value::as_f64) {
            Some(x) if x.is_finite() && (difference || x > 0.0) => {}
            other => bail!("bench figure {f} is missing or out of range: {other:?}"),
        }
    }
    Ok(())
}

fn num(report: &Value, ptr: &str) -> String {
    report
        .pointer(ptr)
        .and_then(Value::as_f64)
        .map_or_else(|| "–".into(), |x| format!("{x:.3}"))
}

/// The report as Markdown (what BENCHMARKS.md holds).
pub fn markdown(r: &Value) -> String {
    let mut s = String::new();
    let m = &r["machine"];
    let _ = writeln!(s, "# Benchmarks\n");
    match r["baseline"].as_str() {
        Some(rev) => {
            let _ = writeln!(
                s,
                "Reproduce: `cargo xtask bench --baseline {rev} --write BENCHMARKS.md` (as root). \
                 `baseline` is this project's `vtep` built from revision `{rev}`.\n"
            );
        }
        None => {
            let _ = writeln!(
                s,
                "Reproduce: `cargo xtask bench --write BENCHMARKS.md` (as root).\n"
            );
        }
    }
    let _ = writeln!(
        s,
        "Machine: {} CPUs ({}), kernel {}. {} interleaved rounds of {} frames per variant, {} inner flows, {}-byte VXLAN frames for decap. Absolute figures drift on a shared machine; ratios much less.\n",
        m["cpus"],
        m["cpu"].as_str().unwrap_or(""),
        m["kernel"].as_str().unwrap_or(""),
        r["rounds"],
        r["packets_per_round"],
        r["flows"],
        r["decap_frame_bytes"]
    );
    for dir in ["decap", "encap"]
        .into_iter()
        .filter(|d| r.get(d).is_some())
    {
        let _ = writeln!(s, "## {dir}: packet rate (Mpps)\n");
        let _ = writeln!(
            s,
            "| variant | median | min | max | ns/packet above xdp-drop |\n| --- | --- | --- | --- | --- |"
        );
        if let Some(vars) = r[dir]["variants"].as_object() {
            for name in vars.keys() {
                let p = format!("/{dir}/variants/{name}");
                let _ = writeln!(
                    s,
                    "| {name} | {} | {} | {} | {} |",
                    num(r, &format!("{p}/mpps_median")),
                    num(r, &format!("{p}/mpps_min")),
                    num(r, &format!("{p}/mpps_max")),
                    num(
                        r,
                        &format!("/{dir}/derived/ns_per_packet_above_xdp_drop/{name}")
                    )
                );
            }
        }
        let _ = write!(
            s,
            "\nvtep/kernel = {}; vtep/xdp-redirect = {}",
            num(r, &format!("/{dir}/derived/vtep_over_kernel")),
            num(r, &format!("/{dir}/derived/vtep_over_xdp_redirect"))
        );
        if r[dir]["derived"].get("vtep_over_baseline").is_some() {
            let _ = write!(
                s,
                "; vtep/baseline = {}",
                num(r, &format!("/{dir}/derived/vtep_over_baseline"))
            );
        }
        if r[dir]["derived"]
            .get("vtep_uncached_over_xdp_redirect")
            .is_some()
        {
            let _ = write!(
                s,
                "; vtep-uncached/xdp-redirect = {}\n\n`vtep` decides the frames of a conversation \
                 after its first from a per-CPU decision cache; `vtep-uncached` \
                 (`vtep up --no-decap-cache`) decides every frame from the tables: VNI and \
                 sender check, learning, FDB lookup, port MTU.",
                num(
                    r,
                    &format!("/{dir}/derived/vtep_uncached_over_xdp_redirect")
                )
            );
        }
        let _ = writeln!(s, "\n");
    }
    let _ = writeln!(
        s,
        "## Program cost (kernel.bpf_stats_enabled, ns per run)\n"
    );
    if let Some(p) = r["program_cost_ns"].as_object() {
        for (name, v) in p {
            let _ = writeln!(
                s,
                "- {name}: {:.1} ns ({} runs)",
                v["ns_per_run"].as_f64().unwrap_or(0.0),
                v["runs"]
            );
        }
    }
    // `--only`: the packet rates of one direction, nothing else.
    if r.get("fdb_scale").is_none() {
        return s;
    }
    let _ = writeln!(
        s,
        "\n## FDB scale (vtep-uncached decap, every frame looked up, Mpps)\n"
    );
    if let Some(f) = r["fdb_scale"].as_object() {
        for (k, v) in f {
            match v.get("mpps_median") {
                Some(x) => {
                    let _ = writeln!(s, "- {k} entries: {:.3}", x.as_f64().unwrap_or(0.0));
                }
                None => {
                    let _ = writeln!(s, "- largest/smallest: {:.3}", v.as_f64().unwrap_or(0.0));
                }
            }
        }
    }
    let _ = writeln!(
        s,
        "\n## Control plane\n\n`vtep fdb load` of {} entries: {:.2} s, {:.0} entries/s\n",
        r["control_plane"]["entries"],
        r["control_plane"]["seconds"].as_f64().unwrap_or(0.0),
        r["control_plane"]["entries_per_second"]
            .as_f64()
            .unwrap_or(0.0)
    );
    let _ = writeln!(
        s,
        "## Latency, VM to VM through two VTEPs (µs, ping RTT)\n\n| variant | p50 | p99 |\n| --- | --- | --- |"
    );
    for v in ["vtep", "kernel"] {
        let _ = writeln!(
            s,
            "| {v} | {} | {} |",
            num(r, &format!("/latency_us/{v}/p50")),
            num(r, &format!("/latency_us/{v}/p99"))
        );
    }
    let _ = writeln!(
        s,
        "\n{} interleaved rounds of {} pings per variant (every 2 ms), the samples pooled.",
        r["latency_us"]["rounds"], r["latency_us"]["pings_per_round"]
    );
    let _ = writeln!(
        s,
        "\n## TCP VM to VM (iperf3, Gbit/s)\n\n| variant | offloads on | offloads off |\n| --- | --- | --- |"
    );
    for v in ["vtep", "vtep-xdp-gro", "kernel"] {
        let _ = writeln!(
            s,
            "| {v} | {} | {} |",
            num(r, &format!("/tcp_gbps/{v}/offloads_on")),
            num(r, &format!("/tcp_gbps/{v}/offloads_off"))
        );
    }
    let on = |n: &str| r.pointer(&format!("/tcp_gbps/{n}/offloads_on"))?.as_f64();
    let ratio = |v: &str| match (on(v), on("kernel")) {
        (Some(a), Some(k)) => format!("{:.2}", a / k),
        _ => "–".into(),
    };
    let _ = writeln!(
        s,
        "\nMedians of {} runs per variant, the variants taking turns. \
         vtep/kernel = {}; vtep-xdp-gro/kernel = {} (offloads on). \
         With XDP on the underlay veth, its peer cannot hand it GSO packets: \
         TCP arrives in MTU-sized frames, where the kernel's vxlan (no XDP) gets \
         whole GSO packets through the veth. `vtep-xdp-gro` delivers from XDP \
         (`vtep port add IFACE --deliver xdp`) to a VM whose side of the veth has GRO \
         on (`ethtool -K eth0 gro on` in the VM or container), which puts the segments \
         back together before its TCP stack.",
        r["tcp_gbps"]["runs"],
        ratio("vtep"),
        ratio("vtep-xdp-gro")
    );
    s
}
