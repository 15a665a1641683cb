//! Both CPUs, decap with `vtep` as ports get it by default:
//! - scaling: the generator on CPU 0, then on CPU 0 and CPU 1 at once;
//!   the rate of both over the rate of one (the datapath keeps per-CPU
//!   state only, so each CPU should add what it has); the same for
//!   `tc-peer`, its path without lookups or state (what this host gives a
//!   second CPU: the generator's threads, interrupts and its own work
//!   share the two), and for delivery from XDP (`vtep-xdp`) into a VM's
//!   veth of one queue, as containers' come, and of one queue per CPU (a
//!   veth queues XDP frames on its peer's queue of the sending CPU, modulo
//!   their count: with one, every CPU feeds one ring and one NAPI);
//! - isolation: a MAC explosion in VNI 200 (frames from a new source MAC
//!   each, learned and evicted again from a small learned table: a table
//!   change per frame) on CPU 1 while VNI 100's conversation runs on CPU
//!   0: VNI 100's rate then over its rate alone, and the decisions its
//!   frames had to make again from the tables (a decap cache refill).

use std::path::Path;

use anyhow::Context as _;

use super::{
    generator::{Arrival, Generator},
    pps::{Bench, Dir, Variant},
    report::{Cpus, Scaling},
    summary,
};

/// Bytes of outer IPv4, UDP and VXLAN header before the VNI, and the
/// offset of the inner source MAC's last two bytes (the explosion's
/// per-frame field), in the bench's decap frame (IPv4 underlay).
const VNI_AT: usize = 14 + 20 + 8 + 4;
const INNER_SRC_TAIL_AT: u32 = 50 + 6 + 4;

pub fn cpus(obj: &[u8], vtep_bin: &Path, smoke: bool, packets: u32) -> anyhow::Result<Cpus> {
    // A learned table far smaller than the explosion's 65536 MACs: every
    // frame of it learns (and evicts).
    let b = Bench::with_up(
        (Dir::Decap, Arrival::Xdp),
        Variant::Vtep,
        obj,
        vtep_bin,
        (&["--learned-capacity", "4096"], 1),
    )?;
    let v = b.vtep.as_ref().context("the vtep bench has no VTEP")?;
    v.ok(&["vni", "add", "200", "--flood", "198.18.0.2"]);
    let mut frame = b.generator.frame().to_vec();
    frame[VNI_AT..VNI_AT + 3].copy_from_slice(&200u32.to_be_bytes()[1..]);
    let explosion = Generator::with_flows(
        obj,
        Arrival::Xdp,
        b.generator.target(),
        frame,
        INNER_SRC_TAIL_AT,
        1 << 16,
    )?;
    let rounds = if smoke { 1 } else { 3 };
    let (mut one, mut two, mut during, mut refills) = (vec![], vec![], vec![], vec![]);
    let fills = || v.counter("counters", "decap_cache_fill");
    for _ in 0..rounds {
        let (o, t) = one_and_two(&b, packets)?;
        one.push(o);
        two.push(t);
        let before = fills();
        during.push(b.measure_at_once(&[(&b.generator, 0, packets), (&explosion, 1, packets)], 1)?);
        refills.push((fills() - before) as f64);
    }
    drop(b);
    let (one, two, during) = (summary(&one).0, summary(&two).0, summary(&during).0);
    let mut scalings = vec![Scaling::new(Variant::Vtep, 1, (one, two))];
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (variant, queues) in [
        (Variant::TcPeer, 1),
        (Variant::VtepXdp, 1),
        (Variant::VtepXdp, cpus),
    ] {
        let rates = scaling(obj, vtep_bin, (variant, queues), rounds, packets)?;
        scalings.push(Scaling::new(variant, queues, rates));
    }
    Ok(Cpus {
        scalings,
        during_explosion_mpps: during / 1e6,
        during_explosion_over_alone: during / one,
        refills_during_explosion: summary(&refills).0,
        packets_per_run: packets,
        rounds,
    })
}

/// The median rates of `variant`'s decap (XDP frames arriving; `queues`
/// on each end of the VM's veth) with the generator on CPU 0, and on CPU 0
/// and CPU 1 at once, over `rounds`.
fn scaling(
    obj: &[u8],
    vtep_bin: &Path,
    (variant, queues): (Variant, usize),
    rounds: usize,
    packets: u32,
) -> anyhow::Result<(f64, f64)> {
    let b = Bench::with_up(
        (Dir::Decap, Arrival::Xdp),
        variant,
        obj,
        vtep_bin,
        (&[], queues),
    )?;
    let (one, two): (Vec<f64>, Vec<f64>) = (0..rounds)
        .map(|_| one_and_two(&b, packets))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    Ok((summary(&one).0, summary(&two).0))
}

/// `b`'s rate with its generator on CPU 0, then on CPU 0 and CPU 1 at
/// once.
fn one_and_two(b: &Bench, packets: u32) -> anyhow::Result<(f64, f64)> {
    let one = b.measure_at_once(&[(&b.generator, 0, packets)], 1)?;
    let two = b.measure_at_once(&[(&b.generator, 0, packets), (&b.generator, 1, packets)], 2)?;
    Ok((one, two))
}
