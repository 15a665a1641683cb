//! The bench report: every figure a typed field (a figure renamed or
//! dropped fails to compile rather than printing "–"), its JSON form and
//! its Markdown (what BENCHMARKS.md holds).

use std::{collections::BTreeMap, fmt::Write as _};

use anyhow::bail;
use serde::Serialize;

use super::pps::Variant;

/// What the machine is.
#[derive(Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu: String,
    pub kernel: String,
}

impl Machine {
    /// This machine.
    pub fn here() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| {
                c.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_owned())
            })
            .unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu,
            kernel: vtep_tests::ok(&["uname", "-r"]).trim().to_owned(),
        }
    }
}

/// A packet rate over the rounds, Mpps.
#[derive(Clone, Copy, Serialize)]
pub struct Rate {
    pub mpps_median: f64,
    pub mpps_min: f64,
    pub mpps_max: f64,
}

/// Ratios between the variants of one direction (those whose variants
/// were measured). "The kernel" is the cheaper of its configurations
/// measured (`kernel` with GRO on the underlay, `kernel-nogro` without).
#[derive(Default, Serialize)]
pub struct Derived {
    /// Packet rates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtep_over_kernel: Option<f64>,
    /// Per-packet costs above the xdp-drop ceiling: the kernel's over
    /// ours (5 = a fifth of the kernel's cost).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_cost_over_vtep: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_cost_over_vtep_xdp: Option<f64>,
    /// The bare strip-and-redirect's: how far below the kernel's cost
    /// any decap delivering an skb can go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_cost_over_xdp_redirect: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtep_xdp_over_xdp_redirect: Option<f64>,
    /// The default path over a bare TC decap into the peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtep_over_tc_peer: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtep_uncached_over_xdp_redirect: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtep_over_encap_ceiling: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtep_over_baseline: Option<f64>,
    /// Over an IPv6 underlay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtep_ipv6_over_kernel_ipv6: Option<f64>,
    /// With group policy on the VNI, over without.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtep_policy_over_vtep: Option<f64>,
    /// Per variant: ns per packet more than the xdp-drop ceiling.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ns_per_packet_above_xdp_drop: BTreeMap<&'static str, f64>,
}

/// Packet rates of one direction.
#[derive(Serialize)]
pub struct DirReport {
    pub variants: BTreeMap<&'static str, Rate>,
    pub derived: Derived,
}

impl DirReport {
    /// From the rates (packets/s) each variant measured over the rounds.
    pub fn new(rates: &[(Variant, &[f64])]) -> Self {
        let variants: BTreeMap<&'static str, Rate> = rates
            .iter()
            .map(|(v, r)| {
                let (med, min, max) = super::summary(r);
                let rate = Rate {
                    mpps_median: med / 1e6,
                    mpps_min: min / 1e6,
                    mpps_max: max / 1e6,
                };
                (v.name(), rate)
            })
            .collect();
        let m = |v: Variant| variants.get(v.name()).map(|r| r.mpps_median);
        let ratio = |a: Variant, b: Variant| Some(m(a)? / m(b)?);
        let ns_per_packet_above_xdp_drop: BTreeMap<&'static str, f64> = match m(Variant::XdpDrop) {
            Some(drop) => variants
                .iter()
                .filter(|(name, _)| **name != Variant::XdpDrop.name())
                .map(|(name, r)| (*name, 1e3 / r.mpps_median - 1e3 / drop))
                .collect(),
            None => BTreeMap::new(),
        };
        let kernel = [Variant::Kernel, Variant::KernelNoGro]
            .into_iter()
            .filter_map(|v| Some((v, m(v)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(v, _)| v);
        let cost = |v: Variant| ns_per_packet_above_xdp_drop.get(v.name()).copied();
        let cost_ratio = |v: Variant| Some(cost(kernel?)? / cost(v)?);
        let derived = Derived {
            vtep_over_kernel: kernel.and_then(|k| ratio(Variant::Vtep, k)),
            kernel_cost_over_vtep: cost_ratio(Variant::Vtep),
            kernel_cost_over_vtep_xdp: cost_ratio(Variant::VtepXdp),
            kernel_cost_over_xdp_redirect: cost_ratio(Variant::XdpRedirect),
            vtep_xdp_over_xdp_redirect: ratio(Variant::VtepXdp, Variant::XdpRedirect),
            vtep_over_tc_peer: ratio(Variant::Vtep, Variant::TcPeer),
            vtep_uncached_over_xdp_redirect: ratio(Variant::VtepUncached, Variant::XdpRedirect),
            vtep_over_encap_ceiling: ratio(Variant::Vtep, Variant::EncapCeiling),
            vtep_over_baseline: ratio(Variant::Vtep, Variant::Baseline),
            vtep_ipv6_over_kernel_ipv6: ratio(Variant::VtepIpv6, Variant::KernelIpv6),
            vtep_policy_over_vtep: ratio(Variant::VtepPolicy, Variant::Vtep),
            ns_per_packet_above_xdp_drop,
        };
        DirReport { variants, derived }
    }

    fn median(&self, v: Variant) -> Option<f64> {
        self.variants.get(v.name()).map(|r| r.mpps_median)
    }
}

/// Average run time of one program.
#[derive(Serialize)]
pub struct ProgCost {
    pub ns_per_run: f64,
    pub runs: u64,
}

#[derive(Serialize)]
pub struct ScalePoint {
    pub entries: usize,
    pub mpps_median: f64,
}

/// Decap rate as the FDB grows.
#[derive(Serialize)]
pub struct FdbScale {
    pub points: Vec<ScalePoint>,
    pub largest_over_smallest: f64,
}

/// Both CPUs (see `cpus`).
#[derive(Serialize)]
pub struct Cpus {
    pub one_cpu_mpps: f64,
    pub two_cpus_mpps: f64,
    pub two_over_one: f64,
    /// VNI 100's rate on CPU 0 while VNI 200 learns a new MAC per frame on
    /// CPU 1.
    pub during_explosion_mpps: f64,
    pub during_explosion_over_alone: f64,
    /// Decap cache fills (VNI 100's decisions made again) during such a
    /// run: VNI 200's frames are never cached.
    pub refills_during_explosion: f64,
    pub packets_per_run: u32,
    pub rounds: usize,
}

#[derive(Serialize)]
pub struct ControlPlane {
    pub entries: usize,
    pub seconds: f64,
    pub entries_per_second: f64,
}

/// EVPN scale: MACs advertised by one host, installed by another.
#[derive(Serialize)]
pub struct EvpnScale {
    pub macs: u32,
    pub vnis: u32,
    /// FDB entries installed from routes per second (first to last).
    pub installed_per_second: f64,
    /// From the advertiser's gobgpd holding every route to the last FDB
    /// entry installed.
    pub last_advertisement_to_last_entry_s: f64,
    /// From the receiver's gobgpd holding every route to the last FDB
    /// entry: the receiving agent's own share.
    pub received_to_last_entry_s: f64,
    /// From `vtep fdb load` on the advertiser to the last FDB entry on
    /// the receiver (the advertiser's daemon picks configured MACs up
    /// within its 2 s refresh).
    pub load_to_last_entry_s: f64,
}

/// Ping RTTs of one variant, µs.
#[derive(Debug, Serialize)]
pub struct Rtt {
    pub p50: f64,
    pub p99: f64,
    pub samples: usize,
}

#[derive(Serialize)]
pub struct Latency {
    pub vtep: Rtt,
    pub kernel: Rtt,
    pub rounds: usize,
    pub pings_per_round: u32,
}

/// TCP throughput of one variant, Gbit/s.
#[derive(Debug, Serialize)]
pub struct TcpFigure {
    pub offloads_on: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offloads_off: Option<f64>,
}

#[derive(Serialize)]
pub struct Tcp {
    pub vtep: TcpFigure,
    #[serde(rename = "vtep-xdp-gro")]
    pub vtep_xdp_gro: TcpFigure,
    pub kernel: TcpFigure,
    pub runs: usize,
}

/// The whole report. The figures after `program_cost_ns` are left out
/// with `--only`.
#[derive(Serialize)]
pub struct Report {
    pub machine: Machine,
    pub rounds: usize,
    pub packets_per_round: u32,
    pub flows: u32,
    pub decap_frame_bytes: usize,
    pub baseline: Option<String>,
    pub decap: Option<DirReport>,
    pub encap: Option<DirReport>,
    pub program_cost_ns: BTreeMap<String, ProgCost>,
    pub fdb_scale: Option<FdbScale>,
    pub cpus: Option<Cpus>,
    pub control_plane: Option<ControlPlane>,
    pub evpn: Option<EvpnScale>,
    pub latency_us: Option<Latency>,
    pub tcp_gbps: Option<Tcp>,
}

fn num(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |x| format!("{x:.3}"))
}

impl Report {
    /// Every figure a full run must have: (name, value).
    fn figures(&self) -> Vec<(&'static str, Option<f64>)> {
        let d = self.decap.as_ref();
        let e = self.encap.as_ref();
        let cost = |p: &str| self.program_cost_ns.get(p).map(|c| c.ns_per_run);
        let lat = self.latency_us.as_ref();
        let tcp = self.tcp_gbps.as_ref();
        vec![
            ("decap kernel", d.and_then(|d| d.median(Variant::Kernel))),
            (
                "decap kernel-nogro",
                d.and_then(|d| d.median(Variant::KernelNoGro)),
            ),
            ("decap vtep", d.and_then(|d| d.median(Variant::Vtep))),
            ("decap vtep-xdp", d.and_then(|d| d.median(Variant::VtepXdp))),
            ("decap xdp-drop", d.and_then(|d| d.median(Variant::XdpDrop))),
            (
                "decap xdp-redirect",
                d.and_then(|d| d.median(Variant::XdpRedirect)),
            ),
            (
                "decap vtep-uncached",
                d.and_then(|d| d.median(Variant::VtepUncached)),
            ),
            ("decap tc-peer", d.and_then(|d| d.median(Variant::TcPeer))),
            (
                "decap vtep/kernel",
                d.and_then(|d| d.derived.vtep_over_kernel),
            ),
            (
                "decap vtep-xdp/xdp-redirect",
                d.and_then(|d| d.derived.vtep_xdp_over_xdp_redirect),
            ),
            (
                "decap vtep-uncached/xdp-redirect",
                d.and_then(|d| d.derived.vtep_uncached_over_xdp_redirect),
            ),
            (
                "decap vtep-ipv6/kernel-ipv6",
                d.and_then(|d| d.derived.vtep_ipv6_over_kernel_ipv6),
            ),
            (
                "decap vtep-policy/vtep",
                d.and_then(|d| d.derived.vtep_policy_over_vtep),
            ),
            ("encap kernel", e.and_then(|e| e.median(Variant::Kernel))),
            ("encap vtep", e.and_then(|e| e.median(Variant::Vtep))),
            (
                "encap encap-ceiling",
                e.and_then(|e| e.median(Variant::EncapCeiling)),
            ),
            (
                "encap vtep/kernel",
                e.and_then(|e| e.derived.vtep_over_kernel),
            ),
            (
                "encap vtep/encap-ceiling",
                e.and_then(|e| e.derived.vtep_over_encap_ceiling),
            ),
            (
                "encap vtep-ipv6/kernel-ipv6",
                e.and_then(|e| e.derived.vtep_ipv6_over_kernel_ipv6),
            ),
            (
                "encap vtep-policy/vtep",
                e.and_then(|e| e.derived.vtep_policy_over_vtep),
            ),
            ("cost vtep_decap", cost("vtep_decap")),
            ("cost vtep_encap", cost("vtep_encap")),
            (
                "FDB largest/smallest",
                self.fdb_scale.as_ref().map(|f| f.largest_over_smallest),
            ),
            ("two CPUs/one", self.cpus.as_ref().map(|c| c.two_over_one)),
            (
                "explosion: VNI 100 during/alone",
                self.cpus.as_ref().map(|c| c.during_explosion_over_alone),
            ),
            (
                "fdb load entries/s",
                self.control_plane.as_ref().map(|c| c.entries_per_second),
            ),
            (
                "EVPN installed/s",
                self.evpn.as_ref().map(|e| e.installed_per_second),
            ),
            ("RTT vtep p50", lat.map(|l| l.vtep.p50)),
            ("RTT vtep p99", lat.map(|l| l.vtep.p99)),
            ("RTT kernel p50", lat.map(|l| l.kernel.p50)),
            ("RTT kernel p99", lat.map(|l| l.kernel.p99)),
            ("TCP vtep on", tcp.map(|t| t.vtep.offloads_on)),
            ("TCP vtep off", tcp.and_then(|t| t.vtep.offloads_off)),
            (
                "TCP vtep-xdp-gro on",
                tcp.map(|t| t.vtep_xdp_gro.offloads_on),
            ),
            ("TCP kernel on", tcp.map(|t| t.kernel.offloads_on)),
            ("TCP kernel off", tcp.and_then(|t| t.kernel.offloads_off)),
        ]
    }

    /// Fails unless every figure is there, finite and above zero; the ns
    /// per packet above the drop ceiling and the cost ratios made of them
    /// (differences of two rates, which a short noisy run may make
    /// negative) need only be there and finite.
    pub fn check_complete(&self) -> anyhow::Result<()> {
        for (name, x) in self.figures() {
            match x {
                Some(x) if x.is_finite() && x > 0.0 => {}
                other => bail!("bench figure {name} is missing or out of range: {other:?}"),
            }
        }
        // Figures from differences of rates: there and finite.
        let above = |r: Option<&DirReport>, v: Variant| {
            r.and_then(|r| {
                r.derived
                    .ns_per_packet_above_xdp_drop
                    .get(v.name())
                    .copied()
            })
        };
        let (d, e) = (self.decap.as_ref(), self.encap.as_ref());
        let differences = [
            (
                "decap vtep ns/packet above xdp-drop",
                above(d, Variant::Vtep),
            ),
            (
                "decap vtep-xdp ns/packet above xdp-drop",
                above(d, Variant::VtepXdp),
            ),
            (
                "decap kernel ns/packet above xdp-drop",
                above(d, Variant::Kernel),
            ),
            (
                "decap kernel-nogro ns/packet above xdp-drop",
                above(d, Variant::KernelNoGro),
            ),
            (
                "encap vtep ns/packet above xdp-drop",
                above(e, Variant::Vtep),
            ),
            (
                "encap kernel ns/packet above xdp-drop",
                above(e, Variant::Kernel),
            ),
            (
                "decap kernel cost/vtep cost",
                d.and_then(|d| d.derived.kernel_cost_over_vtep),
            ),
            (
                "encap kernel cost/vtep cost",
                e.and_then(|e| e.derived.kernel_cost_over_vtep),
            ),
        ];
        for (name, x) in differences {
            if !x.is_some_and(f64::is_finite) {
                bail!("bench figure {name} is missing: {x:?}");
            }
        }
        Ok(())
    }

    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        self.write_markdown(&mut s)
            .expect("writing to a String cannot fail");
        s
    }

    fn write_markdown(&self, s: &mut String) -> std::fmt::Result {
        let m = &self.machine;
        writeln!(s, "## {}\n", m.cpu)?;
        match &self.baseline {
            Some(rev) => writeln!(
                s,
                "Reproduce: `cargo xtask bench --baseline {rev} --write BENCHMARKS.md` (as root). \
                 `baseline` is this project's `vtep` built from revision `{rev}`.\n"
            )?,
            None => writeln!(
                s,
                "Reproduce: `cargo xtask bench --write BENCHMARKS.md` (as root).\n"
            )?,
        }
        writeln!(
            s,
            "Machine: {} CPUs ({}), kernel {}. {} interleaved rounds of {} frames per variant, {} \
             inner flows, {}-byte VXLAN frames for decap. Absolute figures drift on a shared \
             machine; ratios much less.\n",
            m.cpus,
            m.cpu,
            m.kernel,
            self.rounds,
            self.packets_per_round,
            self.flows,
            self.decap_frame_bytes
        )?;
        writeln!(
            s,
            "Variants: `kernel` is the kernel's vxlan + bridge with GRO on the underlay (as NICs \
             have it: it then pays vxlan GRO on every frame), `kernel-nogro` the same with GRO \
             off; ratios to \"kernel\" take the cheaper of the two. The kernel variants' vxlan \
             devices are up only while they are measured: while any kernel UDP tunnel socket \
             exists, GRO looks up a UDP socket for every UDP packet on the host (some 40 ns a \
             frame for the others). `vtep` adds ports as `vtep \
             port add` does by default (`--deliver auto`: a veth whose peer is in another \
             namespace gets frames from TC with `bpf_redirect_peer`), `vtep-xdp` with \
             `--deliver xdp` (the VM's side of the veth has GRO on, else it cannot take XDP \
             frames); `vtep-uncached` is `vtep-xdp` without the decap decision cache \
             (`--no-decap-cache`); `vtep-policy` is `vtep` with group policy on the VNI \
             (`--gbp`, the VMs in groups, rules allowing their traffic: every frame's \
             identities looked up and judged). Ceilings: `xdp-drop` drops where the generator's frames \
             arrive (the generator's own cost: costs are given above it); `xdp-redirect` strips \
             50 bytes and redirects, no lookups; `tc-peer` is the same in TC on the underlay \
             (no XDP: the frame shrunk by 50 bytes, the inner Ethernet header put back, \
             `bpf_redirect_peer` into the VM's side), the other way to hand a VM an skb; \
             `encap-ceiling` is a TC program on the port \
             that pushes fixed outer headers and redirects, no lookups. Every variant but \
             `xdp-drop` ends at the same sink, a TC ingress drop: on the VM's side of its port \
             for decap (where the VM's stack takes an skb), at the far end of the underlay for \
             encap.\n"
        )?;
        for (dir, r) in [("decap", &self.decap), ("encap", &self.encap)] {
            if let Some(r) = r {
                write_rates(s, dir, r)?;
            }
        }
        writeln!(
            s,
            "### Program cost (kernel.bpf_stats_enabled, ns per run)\n"
        )?;
        for (name, c) in &self.program_cost_ns {
            writeln!(s, "- {name}: {:.1} ns ({} runs)", c.ns_per_run, c.runs)?;
        }
        if let Some(f) = &self.fdb_scale {
            writeln!(
                s,
                "\n### FDB scale (vtep-uncached decap, every frame looked up, Mpps)\n"
            )?;
            for p in &f.points {
                writeln!(s, "- {} entries: {:.3}", p.entries, p.mpps_median)?;
            }
            writeln!(s, "- largest/smallest: {:.3}", f.largest_over_smallest)?;
        }
        if let Some(c) = &self.cpus {
            writeln!(
                s,
                "\n### Both CPUs (decap, `vtep`, Mpps)\n\n- one generator on CPU 0: {:.3}; one on \
                 each CPU: {:.3} ({:.2}x)\n- VNI 100 on CPU 0 while a MAC explosion in VNI 200 \
                 learns a new MAC per frame on CPU 1: {:.3} ({:.2} of its rate alone), {:.0} \
                 of its decisions made again from the tables (decap cache fills) in a run of \
                 {} frames\n\nMedians of {} rounds.",
                c.one_cpu_mpps,
                c.two_cpus_mpps,
                c.two_over_one,
                c.during_explosion_mpps,
                c.during_explosion_over_alone,
                c.refills_during_explosion,
                c.packets_per_run,
                c.rounds
            )?;
        }
        if let Some(c) = &self.control_plane {
            writeln!(
                s,
                "\n### Control plane\n\n`vtep fdb load` of {} entries: {:.2} s, {:.0} entries/s\n",
                c.entries, c.seconds, c.entries_per_second
            )?;
        }
        if let Some(e) = &self.evpn {
            writeln!(
                s,
                "### EVPN scale\n\n{} MACs on {} VNIs advertised by one host (its daemon and \
                 gobgpd), installed from BGP by another: {:.0} MACs/s; {:.2} s from the last \
                 advertisement to the last FDB entry, of which {:.2} s after the receiver's \
                 gobgpd had them all ({:.2} s from `vtep fdb load` on the advertiser)\n",
                e.macs,
                e.vnis,
                e.installed_per_second,
                e.last_advertisement_to_last_entry_s,
                e.received_to_last_entry_s,
                e.load_to_last_entry_s
            )?;
        }
        if let Some(l) = &self.latency_us {
            writeln!(
                s,
                "### Latency, VM to VM through two VTEPs (µs, ping RTT)\n\n| variant | p50 | p99 |\n| --- | --- | --- |"
            )?;
            for (name, r) in [("vtep", &l.vtep), ("kernel", &l.kernel)] {
                writeln!(s, "| {name} | {:.3} | {:.3} |", r.p50, r.p99)?;
            }
            writeln!(
                s,
                "\n{} interleaved rounds of {} pings per variant (every 2 ms), the samples pooled.",
                l.rounds, l.pings_per_round
            )?;
        }
        if let Some(t) = &self.tcp_gbps {
            write_tcp(s, t)?;
        }
        Ok(())
    }
}

/// One direction's rate table and ratios.
fn write_rates(s: &mut String, dir: &str, r: &DirReport) -> std::fmt::Result {
    writeln!(s, "### {dir}: packet rate (Mpps)\n")?;
    writeln!(
        s,
        "| variant | median | min | max | ns/packet above xdp-drop |\n| --- | --- | --- | --- | --- |"
    )?;
    for (name, v) in &r.variants {
        let above = r.derived.ns_per_packet_above_xdp_drop.get(name).copied();
        writeln!(
            s,
            "| {name} | {:.3} | {:.3} | {:.3} | {} |",
            v.mpps_median,
            v.mpps_min,
            v.mpps_max,
            num(above)
        )?;
    }
    let d = &r.derived;
    let parts = [
        ("vtep/kernel", d.vtep_over_kernel),
        ("kernel cost/vtep cost", d.kernel_cost_over_vtep),
        ("kernel cost/vtep-xdp cost", d.kernel_cost_over_vtep_xdp),
        (
            "kernel cost/xdp-redirect cost",
            d.kernel_cost_over_xdp_redirect,
        ),
        ("vtep-xdp/xdp-redirect", d.vtep_xdp_over_xdp_redirect),
        ("vtep/tc-peer", d.vtep_over_tc_peer),
        (
            "vtep-uncached/xdp-redirect",
            d.vtep_uncached_over_xdp_redirect,
        ),
        ("vtep/encap-ceiling", d.vtep_over_encap_ceiling),
        ("vtep/baseline", d.vtep_over_baseline),
        ("vtep-ipv6/kernel-ipv6", d.vtep_ipv6_over_kernel_ipv6),
        ("vtep-policy/vtep", d.vtep_policy_over_vtep),
    ];
    let shown: Vec<String> = parts
        .iter()
        .filter_map(|(name, x)| Some(format!("{name} = {:.3}", (*x)?)))
        .collect();
    writeln!(s, "\n{}\n", shown.join("; "))
}

/// The TCP table and what it means.
fn write_tcp(s: &mut String, t: &Tcp) -> std::fmt::Result {
    writeln!(
        s,
        "\n### TCP VM to VM (iperf3, Gbit/s)\n\n| variant | offloads on | offloads off |\n| --- | --- | --- |"
    )?;
    for (name, f) in [
        ("vtep", &t.vtep),
        ("vtep-xdp-gro", &t.vtep_xdp_gro),
        ("kernel", &t.kernel),
    ] {
        writeln!(
            s,
            "| {name} | {:.3} | {} |",
            f.offloads_on,
            num(f.offloads_off)
        )?;
    }
    let k = t.kernel.offloads_on;
    writeln!(
        s,
        "\nMedians of {} runs per variant, the variants taking turns. \
         vtep/kernel = {:.2} with the VMs' offloads on, {} with them off; \
         vtep-xdp-gro/kernel = {:.2}. `vtep` is ports as `port add` makes them (into the \
         peer of the VM's veth, which is as it comes: neither GRO nor XDP on it). XDP on \
         the underlay veth keeps its peer from handing it GSO packets, so TCP arrives in \
         MTU-sized frames where the kernel's vxlan gets whole GSO packets through the veth; \
         GRO on the underlay (`vtep up` turns it on) puts each flow's inner segments back \
         together before they reach the port. `vtep-xdp-gro` delivers from XDP (`--deliver \
         xdp`) to a VM whose side of the veth has GRO on.",
        t.runs,
        t.vtep.offloads_on / k,
        match (t.vtep.offloads_off, t.kernel.offloads_off) {
            (Some(v), Some(k)) => format!("{:.2}", v / k),
            _ => "–".to_owned(),
        },
        t.vtep_xdp_gro.offloads_on / k
    )
}
