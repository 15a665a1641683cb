//! The bench report: every figure a typed field (a figure renamed or
//! dropped fails to compile rather than printing "–"), its JSON form and
//! its Markdown (what BENCHMARKS.md holds).

mod markdown;

use std::collections::BTreeMap;

use anyhow::bail;
use serde::Serialize;

use super::{generator::Arrival, pps::Variant};

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

/// One variant's rate over another's, round by round (both measured in
/// each round, so that the machine's drift between rounds cancels): the
/// median of the rounds' ratios and their range.
#[derive(Clone, Copy, Serialize)]
pub struct Paired {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Paired {
    /// From two variants' rates in round order.
    fn new(a: &[f64], b: &[f64]) -> Option<Self> {
        let per_round: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
        if per_round.is_empty() {
            return None;
        }
        let (median, min, max) = super::summary(&per_round);
        Some(Paired { median, min, max })
    }
}

/// Ratios between the variants of one direction (those whose variants
/// were measured). Ratios of rates are paired by round ([`Paired`]).
/// "The kernel" is the cheaper of its configurations measured (`kernel`
/// with GRO on the underlay, `kernel-nogro` without).
#[derive(Default, Serialize)]
pub struct Derived {
    /// Packet rates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtep_over_kernel: Option<f64>,
    /// Per-packet costs above the drop ceiling: the kernel's over ours
    /// (5 = a fifth of the kernel's cost).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_cost_over_vtep: Option<f64>,
    /// The same decapsulating in TC (no XDP on the underlay).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_cost_over_vtep_tc: Option<f64>,
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
    /// Decap in TC over the bare TC decap: what its lookups cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtep_tc_over_tc_peer: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtep_uncached_over_xdp_redirect: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtep_over_encap_ceiling: Option<f64>,
    /// The before/after ratio of a change, with its range over the
    /// rounds: how far this run can resolve one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtep_over_baseline: Option<Paired>,
    /// Over an IPv6 underlay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtep_ipv6_over_kernel_ipv6: Option<f64>,
    /// With group policy on the VNI, over without.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtep_policy_over_vtep: Option<f64>,
    /// Per variant: ns per packet more than the drop ceiling.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ns_per_packet_above_ceiling: BTreeMap<&'static str, f64>,
}

/// Packet rates of one direction, the generator's frames arriving one
/// way.
#[derive(Serialize)]
pub struct DirReport {
    pub arrival: Arrival,
    pub variants: BTreeMap<&'static str, Rate>,
    /// The drop variant costs are given above: the fastest measured (the
    /// generator's own cost).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<&'static str>,
    pub derived: Derived,
}

impl DirReport {
    /// From the rates (packets/s) each variant measured over the rounds,
    /// the frames arriving as `arrival` says.
    pub fn new(arrival: Arrival, rates: &[(Variant, &[f64])]) -> Self {
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
        let of = |v: Variant| rates.iter().find(|(w, _)| *w == v).map(|(_, r)| *r);
        let paired = |a: Variant, b: Variant| Paired::new(of(a)?, of(b)?);
        let ratio = |a: Variant, b: Variant| paired(a, b).map(|p| p.median);
        let ceiling = rates
            .iter()
            .filter(|(v, _)| v.is_drop_ceiling())
            .filter_map(|(v, _)| Some((*v, m(*v)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let ns_per_packet_above_ceiling: BTreeMap<&'static str, f64> = match ceiling {
            Some((_, drop)) => rates
                .iter()
                .filter(|(v, _)| !v.is_drop_ceiling())
                .filter_map(|(v, _)| Some((v.name(), 1e3 / m(*v)? - 1e3 / drop)))
                .collect(),
            None => BTreeMap::new(),
        };
        let kernel = [Variant::Kernel, Variant::KernelNoGro]
            .into_iter()
            .filter_map(|v| Some((v, m(v)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(v, _)| v);
        let cost = |v: Variant| ns_per_packet_above_ceiling.get(v.name()).copied();
        let cost_ratio = |v: Variant| Some(cost(kernel?)? / cost(v)?);
        let derived = Derived {
            vtep_over_kernel: kernel.and_then(|k| ratio(Variant::Vtep, k)),
            kernel_cost_over_vtep: cost_ratio(Variant::Vtep),
            kernel_cost_over_vtep_tc: cost_ratio(Variant::VtepTc),
            kernel_cost_over_vtep_xdp: cost_ratio(Variant::VtepXdp),
            kernel_cost_over_xdp_redirect: cost_ratio(Variant::XdpRedirect),
            vtep_xdp_over_xdp_redirect: ratio(Variant::VtepXdp, Variant::XdpRedirect),
            vtep_over_tc_peer: ratio(Variant::Vtep, Variant::TcPeer),
            vtep_tc_over_tc_peer: ratio(Variant::VtepTc, Variant::TcPeer),
            vtep_uncached_over_xdp_redirect: ratio(Variant::VtepUncached, Variant::XdpRedirect),
            vtep_over_encap_ceiling: ratio(Variant::Vtep, Variant::EncapCeiling),
            vtep_over_baseline: paired(Variant::Vtep, Variant::Baseline),
            vtep_ipv6_over_kernel_ipv6: ratio(Variant::VtepIpv6, Variant::KernelIpv6),
            vtep_policy_over_vtep: ratio(Variant::VtepPolicy, Variant::Vtep),
            ns_per_packet_above_ceiling,
        };
        DirReport {
            arrival,
            variants,
            ceiling: ceiling.map(|(v, _)| v.name()),
            derived,
        }
    }

    fn median(&self, v: Variant) -> Option<f64> {
        self.variants.get(v.name()).map(|r| r.mpps_median)
    }
}

/// Average run time of one program, over passes of the bench.
#[derive(Serialize)]
pub struct ProgCost {
    /// The median pass's.
    pub ns_per_run: f64,
    pub ns_min: f64,
    pub ns_max: f64,
    pub passes: usize,
    /// Runs over all passes.
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
    /// `vtep` first, then the others measured.
    pub scalings: Vec<Scaling>,
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

impl Cpus {
    /// Both CPUs' rate over one's for `variant` into a VM's veth of one
    /// queue (`multiqueue` false) or of more.
    pub fn two_over_one(&self, variant: Variant, multiqueue: bool) -> Option<f64> {
        self.scalings
            .iter()
            .find(|s| s.variant == variant.name() && (s.vm_queues > 1) == multiqueue)
            .map(|s| s.two_over_one)
    }
}

/// One variant's decap rate with the generator on one CPU and on both.
#[derive(Serialize)]
pub struct Scaling {
    pub variant: &'static str,
    /// Queues of the VM's veth.
    pub vm_queues: usize,
    pub one_cpu_mpps: f64,
    pub two_cpus_mpps: f64,
    pub two_over_one: f64,
}

impl Scaling {
    /// From the rates (packets/s) on one CPU and on two.
    pub fn new(variant: Variant, vm_queues: usize, (one, two): (f64, f64)) -> Self {
        Scaling {
            variant: variant.name(),
            vm_queues,
            one_cpu_mpps: one / 1e6,
            two_cpus_mpps: two / 1e6,
            two_over_one: two / one,
        }
    }
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
    #[serde(rename = "vtep-native")]
    pub vtep_native: TcpFigure,
    pub kernel: TcpFigure,
    pub runs: usize,
}

/// The whole report. The figures after `program_cost_ns` are left out
/// with `--only`.
#[derive(Serialize)]
pub struct Report {
    pub machine: Machine,
    /// The git revision of the `vtep` measured (`+` when the work tree
    /// had changes to tracked files).
    pub revision: String,
    pub rounds: usize,
    pub packets_per_round: u32,
    pub flows: u32,
    pub decap_frame_bytes: usize,
    pub baseline: Option<String>,
    /// The generator's frames arriving as XDP frames.
    pub decap: Option<DirReport>,
    pub encap: Option<DirReport>,
    /// Arriving as skbs.
    pub decap_skb: Option<DirReport>,
    pub encap_skb: Option<DirReport>,
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
    fn figures(&self) -> Vec<(String, Option<f64>)> {
        let mut all: Vec<(String, Option<f64>)> = self
            .xdp_figures()
            .into_iter()
            .map(|(name, x)| (name.to_owned(), x))
            .collect();
        for (dir, r, variants) in [
            (
                "decap",
                &self.decap_skb,
                &[
                    Variant::Kernel,
                    Variant::KernelNoGro,
                    Variant::Vtep,
                    Variant::TcDrop,
                    Variant::TcPeer,
                ][..],
            ),
            (
                "encap",
                &self.encap_skb,
                &[Variant::Kernel, Variant::Vtep, Variant::EncapCeiling][..],
            ),
        ] {
            for v in variants {
                let x = r.as_ref().and_then(|r| r.median(*v));
                all.push((format!("{dir} from skbs {}", v.name()), x));
            }
        }
        all
    }

    /// The figures of the XDP-frame arrivals and the rest of the run.
    fn xdp_figures(&self) -> Vec<(&'static str, Option<f64>)> {
        let d = self.decap.as_ref();
        let e = self.encap.as_ref();
        let cost = |p: &str| self.program_cost_ns.get(p).map(|c| c.ns_per_run);
        let lat = self.latency_us.as_ref();
        let tcp = self.tcp_gbps.as_ref();
        let scaling = |v: Variant, multiqueue: bool| {
            self.cpus
                .as_ref()
                .and_then(|c| c.two_over_one(v, multiqueue))
        };
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
            ("cost bench_strip_redirect", cost("bench_strip_redirect")),
            ("cost bench_encap_ceiling", cost("bench_encap_ceiling")),
            (
                "FDB largest/smallest",
                self.fdb_scale.as_ref().map(|f| f.largest_over_smallest),
            ),
            ("two CPUs/one", scaling(Variant::Vtep, false)),
            ("two CPUs/one tc-peer", scaling(Variant::TcPeer, false)),
            (
                "two CPUs/one vtep-xdp, VM's veth of one queue",
                scaling(Variant::VtepXdp, false),
            ),
            (
                "two CPUs/one vtep-xdp, VM's veth of a queue per CPU",
                scaling(Variant::VtepXdp, true),
            ),
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
            r.and_then(|r| r.derived.ns_per_packet_above_ceiling.get(v.name()).copied())
        };
        let (d, e) = (self.decap.as_ref(), self.encap.as_ref());
        let (ds, es) = (self.decap_skb.as_ref(), self.encap_skb.as_ref());
        let differences = [
            (
                "decap vtep ns/packet above the ceiling",
                above(d, Variant::Vtep),
            ),
            (
                "decap vtep-xdp ns/packet above the ceiling",
                above(d, Variant::VtepXdp),
            ),
            (
                "decap kernel ns/packet above the ceiling",
                above(d, Variant::Kernel),
            ),
            (
                "decap kernel-nogro ns/packet above the ceiling",
                above(d, Variant::KernelNoGro),
            ),
            (
                "encap vtep ns/packet above the ceiling",
                above(e, Variant::Vtep),
            ),
            (
                "encap kernel ns/packet above the ceiling",
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
            (
                "decap from skbs kernel cost/vtep cost",
                ds.and_then(|d| d.derived.kernel_cost_over_vtep),
            ),
            (
                "encap from skbs kernel cost/vtep cost",
                es.and_then(|e| e.derived.kernel_cost_over_vtep),
            ),
        ];
        for (name, x) in differences {
            if !x.is_some_and(f64::is_finite) {
                bail!("bench figure {name} is missing: {x:?}");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Arrival, DirReport, Variant};

    #[test]
    fn ratios_pair_the_rounds() {
        // The machine at 1, 3 and 2 times its speed in three rounds, vtep
        // 10% ahead in the first two and 30% behind in the last: paired,
        // 1.1 with the range 0.7–1.1. The ratio of the two medians would
        // be 1.4/2.0 = 0.7, the rounds' speeds mixed into it.
        let (vtep, baseline) = ([1.1, 3.3, 1.4], [1.0, 3.0, 2.0]);
        let r = DirReport::new(
            Arrival::Xdp,
            &[(Variant::Vtep, &vtep), (Variant::Baseline, &baseline)],
        );
        let p = r.derived.vtep_over_baseline.expect("a paired ratio");
        assert!((p.median - 1.1).abs() < 1e-9, "{}", p.median);
        assert!((p.min - 0.7).abs() < 1e-9, "{}", p.min);
        assert!((p.max - 1.1).abs() < 1e-9, "{}", p.max);
    }

    #[test]
    fn costs_are_above_the_fastest_drop() {
        // Mpps 1.0 and 0.5 for the drops: the ceiling is 1.0 (1000 ns a
        // frame); 0.25 Mpps is 3000 ns above it, 0.2 is 4000.
        let (tc, xdp, vtep, kernel) = ([1e6], [5e5], [2.5e5], [2e5]);
        let r = DirReport::new(
            Arrival::Skb,
            &[
                (Variant::TcDrop, &tc),
                (Variant::XdpDrop, &xdp),
                (Variant::Vtep, &vtep),
                (Variant::Kernel, &kernel),
            ],
        );
        assert_eq!(r.ceiling, Some("tc-drop"));
        let above = &r.derived.ns_per_packet_above_ceiling;
        assert_eq!(above.len(), 2, "{above:?}");
        assert!((above["vtep"] - 3000.0).abs() < 1e-6);
        assert!((above["kernel"] - 4000.0).abs() < 1e-6);
        let k = r.derived.kernel_cost_over_vtep.expect("a cost ratio");
        assert!((k - 4.0 / 3.0).abs() < 1e-9);
    }
}
