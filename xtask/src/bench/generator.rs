//! The traffic generators, one per way frames can reach the device under
//! test ([`Arrival`]): `bench_gen` (vtep-ebpf `bench.rs`) run by
//! BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, which redirects each
//! frame out of the generator's device as an XDP frame (as a NIC with
//! native XDP hands frames over: the skb is built after XDP, by whoever
//! passes the frame up); or an AF_PACKET socket that bypasses the qdisc
//! (`sendmmsg`), whose frames arrive as skbs already built (as a VM's or
//! container's stack sends them, or trafgen). And the loading of the bench
//! object's programs with their globals.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use aya::{
    Ebpf, EbpfLoader,
    programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp},
};

use vtep_tests::raw::RawSocket;

use super::pps::FLOWS;

/// Words of a frame's start the generator restores before each send.
const HEADER_MAX: usize = 12;

/// Loads the bench object with its globals: `target` to redirect to; for
/// the generator, the flow field's `offset`; the `frame` whose start the
/// generator restores (or the encap ceiling writes); empty for the others.
pub fn bench_obj(obj: &[u8], target: u32, offset: u32, frame: &[u8]) -> anyhow::Result<Ebpf> {
    bench_obj_flows(obj, (target, offset, FLOWS), frame)
}

/// As [`bench_obj`], the generator varying its field over `flows` values
/// (a power of two, at most 65536).
fn bench_obj_flows(
    obj: &[u8],
    (target, offset, flows): (u32, u32, u32),
    frame: &[u8],
) -> anyhow::Result<Ebpf> {
    let mut header = [0u64; HEADER_MAX];
    let words = (frame.len() / 8).min(HEADER_MAX);
    for (i, w) in header.iter_mut().take(words).enumerate() {
        *w = u64::from_ne_bytes(frame[8 * i..8 * i + 8].try_into()?);
    }
    EbpfLoader::new()
        .override_global("TARGET", &target, true)
        .override_global("FLOWS", &flows, true)
        .override_global("FLOW_OFFSET", &offset, true)
        .override_global("HEADER", &header, true)
        .override_global("HEADER_WORDS", &(words as u32), true)
        .load(obj)
        .context("cannot load the bench object")
}

/// How the generator's frames reach the device under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Arrival {
    /// As XDP frames (`bench_gen`, live frames): a NIC with native XDP.
    Xdp,
    /// As skbs (AF_PACKET, qdisc bypassed): a VM's stack, or a device
    /// without XDP in front.
    Skb,
}

impl Arrival {
    pub fn name(self) -> &'static str {
        match self {
            Arrival::Xdp => "xdp",
            Arrival::Skb => "skb",
        }
    }
}

/// What sends: the bench object's `bench_gen`, or an AF_PACKET socket
/// bypassing the qdisc, with the frame of every flow.
enum Source {
    Xdp(Box<Ebpf>),
    Skb(RawSocket, Vec<Vec<u8>>),
}

/// A generator sending `frame` (its 16-bit field at `offset` varied over
/// [`FLOWS`] values) out of device `ifindex` of namespace `ns`.
pub struct Generator {
    source: Source,
    ns: String,
    ifindex: u32,
    frame: Vec<u8>,
}

impl Generator {
    pub fn new(
        obj: &[u8],
        arrival: Arrival,
        target: (&str, u32),
        frame: Vec<u8>,
        offset: u32,
    ) -> anyhow::Result<Self> {
        Self::with_flows(obj, arrival, target, frame, offset, FLOWS)
    }

    /// As [`Generator::new`], over `flows` values of the field.
    pub fn with_flows(
        obj: &[u8],
        arrival: Arrival,
        (ns, ifindex): (&str, u32),
        frame: Vec<u8>,
        offset: u32,
        flows: u32,
    ) -> anyhow::Result<Self> {
        let source = match arrival {
            Arrival::Xdp => {
                let mut ebpf = bench_obj_flows(obj, (ifindex, offset, flows), &frame)?;
                let p: &mut Xdp = ebpf
                    .program_mut("bench_gen")
                    .context("no program bench_gen")?
                    .try_into()?;
                p.load().context("the kernel rejected bench_gen")?;
                Source::Xdp(Box::new(ebpf))
            }
            Arrival::Skb => Source::Skb(
                {
                    let socket = RawSocket::open_index(ns, ifindex)?;
                    socket
                        .bypass_qdisc()
                        .context("PACKET_QDISC_BYPASS on the generator's socket")?;
                    socket
                },
                (0..flows)
                    .map(|flow| {
                        // As `bench_gen` writes it.
                        let mut f = frame.clone();
                        let at = offset as usize;
                        f[at..at + 2].copy_from_slice(&(1024 + flow as u16).to_be_bytes());
                        f
                    })
                    .collect(),
            ),
        };
        Ok(Generator {
            source,
            ns: ns.to_owned(),
            ifindex,
            frame,
        })
    }

    /// The frame it sends (before the per-flow field).
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// Where it sends: its namespace and device.
    pub fn target(&self) -> (&str, u32) {
        (&self.ns, self.ifindex)
    }

    /// How its frames arrive.
    pub fn arrival(&self) -> Arrival {
        match self.source {
            Source::Xdp(_) => Arrival::Xdp,
            Source::Skb(..) => Arrival::Skb,
        }
    }

    /// Sends `packets` frames, on CPU `cpu` if given (else wherever the
    /// thread runs); how long it took.
    pub fn run(&self, packets: u32, cpu: Option<usize>) -> anyhow::Result<Duration> {
        vtep_tests::in_netns(&self.ns, || {
            if let Some(cpu) = cpu {
                pin(cpu)?;
            }
            match &self.source {
                Source::Xdp(ebpf) => self.run_xdp(ebpf, packets),
                Source::Skb(socket, frames) => send_skbs(socket, frames, packets),
            }
        })
    }

    fn run_xdp(&self, ebpf: &Ebpf, packets: u32) -> anyhow::Result<Duration> {
        let prog: &Xdp = ebpf.program("bench_gen").context("bench_gen")?.try_into()?;
        // struct xdp_md: data, data_end (= the frame's size),
        // data_meta, ingress_ifindex, rx_queue_index, egress_ifindex.
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(self.frame.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&self.ifindex.to_ne_bytes());
        let start = Instant::now();
        prog.test_run(TestRunOptions {
            data_in: Some(&self.frame),
            ctx_in: Some(&ctx),
            repeat: packets,
            attrs: TestRunAttrs::new().xdp_live_frames(64),
            ..TestRunOptions::new()
        })
        .context("BPF_PROG_TEST_RUN (live frames)")?;
        Ok(start.elapsed())
    }
}

/// Frames per `sendmmsg`.
const BATCH: usize = 64;

/// Sends `packets` of `frames` (in turn) through `socket`: each is an skb
/// handed to the device's transmit, and on a veth the receive side runs
/// on this CPU before the call returns. How long it took.
fn send_skbs(socket: &RawSocket, frames: &[Vec<u8>], packets: u32) -> anyhow::Result<Duration> {
    let all: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let start = Instant::now();
    let (mut sent, mut next) = (0usize, 0usize);
    while sent < packets as usize {
        let batch = BATCH.min(packets as usize - sent).min(all.len() - next);
        let n = socket
            .send_batch(&all[next..next + batch])
            .context("sendmmsg on the generator's AF_PACKET socket")?;
        sent += n;
        next = (next + n) % all.len();
    }
    Ok(start.elapsed())
}

/// Pins the calling thread to CPU `cpu`.
fn pin(cpu: usize) -> anyhow::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes
    // within it (cpu < CPU_SETSIZE, checked by the kernel's answer below
    // for CPUs that do not exist).
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        anyhow::bail!(
            "cannot pin the generator to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}
