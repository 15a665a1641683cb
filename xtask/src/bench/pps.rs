//! Packet-rate benchmarks: one topology per variant, built once, measured
//! in turns.
//!
//! Decap: generator ns `eth0` -> DUT `ul0` (underlay) -> DUT `p0` (port)
//! -> VM `eth0` (sink). Encap: VM `eth0` (generator) -> DUT `p0` -> DUT
//! `ul0` -> sink ns `eth0`. The generator is `bench_gen` run with
//! BPF_F_TEST_XDP_LIVE_FRAMES; the sink is `bench_sink_tc` (TC ingress,
//! counts and drops; `bench_sink` in XDP for the xdp-drop ceiling). The
//! rate is what the sink counted over the generator's run.

use std::{net::IpAddr, path::Path, time::Duration};

use anyhow::{Context as _, anyhow};
use aya::{
    Ebpf,
    maps::PerCpuArray,
    programs::{SchedClassifier, TcAttachType, Xdp, XdpMode, tc},
};
use vtep_tests::{BpfFs, Netns, UP_NATIVE, Vtep, veth_with_queues};

use super::{
    frames,
    generator::{Arrival, Generator, bench_obj},
};

/// Inner flows the generator makes.
pub const FLOWS: u32 = 256;
/// Frame size of the decap generator (the calibration size, 110 bytes).
pub const DECAP_FRAME: usize = 110;
/// The VM's MAC (decap destination) and the remote VM's MAC (encap
/// destination).
const VM_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const REMOTE_VM_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x99];
const LOCAL_VM_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Decap,
    Encap,
}

pub use super::variant::Variant;

/// Where a bench program is attached.
#[derive(Clone, Copy)]
enum Hook {
    Xdp,
    /// TC ingress.
    Tc,
}

/// Loads bench program `prog` (with the globals of [`bench_obj`]) and
/// attaches it to `dev` in `ns`.
fn attach(
    obj: &[u8],
    prog: &str,
    hook: Hook,
    (target, frame): (u32, &[u8]),
    (ns, dev): (&Netns, &str),
) -> anyhow::Result<Ebpf> {
    let ebpf = bench_obj(obj, target, 0, frame)?;
    vtep_tests::in_netns(&ns.name, move || {
        let mut ebpf = ebpf;
        match hook {
            Hook::Xdp => {
                let p: &mut Xdp = ebpf.program_mut(prog).context("program")?.try_into()?;
                p.load()
                    .with_context(|| format!("the kernel rejected {prog}"))?;
                p.attach(dev, XdpMode::Driver)
                    .with_context(|| format!("cannot attach {prog} to {dev}"))?;
            }
            Hook::Tc => {
                // A fresh device: no clsact qdisc yet.
                tc::qdisc_add_clsact(dev).with_context(|| format!("clsact on {dev}"))?;
                let p: &mut SchedClassifier =
                    ebpf.program_mut(prog).context("program")?.try_into()?;
                p.load()
                    .with_context(|| format!("the kernel rejected {prog}"))?;
                p.attach(dev, TcAttachType::Ingress)
                    .with_context(|| format!("cannot attach {prog} to {dev}"))?;
            }
        }
        Ok(ebpf)
    })
}

fn ifindex(ns: &Netns, dev: &str) -> anyhow::Result<u32> {
    ns.ok(&["cat", &format!("/sys/class/net/{dev}/ifindex")])
        .trim()
        .parse()
        .context("ifindex")
}

fn mac(ns: &Netns, dev: &str) -> anyhow::Result<[u8; 6]> {
    let s = ns.mac(dev);
    let v: Vec<u8> = s
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()?;
    v.try_into().map_err(|_| anyhow!("bad MAC {s}"))
}

/// One variant's topology, generator and sink, ready to measure.
pub struct Bench {
    pub dir: Dir,
    pub variant: Variant,
    pub generator: Generator,
    sink: Ebpf,
    /// The ceiling's program (or kernel-nogro's XDP_PASS), attached while
    /// the bench lives.
    _ceiling: Option<Ebpf>,
    /// Our VTEP on the DUT (vtep variant), for FDB scale and program cost.
    pub vtep: Option<Vtep>,
    dut: Netns,
    _ns: Vec<Netns>,
    _bpffs: BpfFs,
}

/// The three namespaces of a bench and the links between them: decap
/// `gen eth0 -> dut ul0 | dut p0 -> far eth0`; encap `gen eth0 -> dut p0 |
/// dut ul0 -> far eth0`.
struct Topology {
    gen_ns: Netns,
    dut: Netns,
    far: Netns,
    gen_ifindex: u32,
    /// The port's and the underlay's ifindex on the DUT.
    p0: u32,
    ul0: u32,
    ul0_mac: [u8; 6],
    /// The underlay's addresses, the DUT's and the peer's (the far end's
    /// for encap, the generator's for decap).
    dut_ip: IpAddr,
    peer_ip: IpAddr,
}

impl Topology {
    /// `far_queues`: the receive and transmit queues of each end of the
    /// link to the far end (one, as a container's veth comes).
    fn new(dir: Dir, variant: Variant, far_queues: usize) -> anyhow::Result<Self> {
        let (dut_ip, peer_ip) = variant.underlay();
        let netns = |tag| {
            if dut_ip.is_ipv4() {
                Netns::new(tag)
            } else {
                Netns::with_ipv6(tag)
            }
        };
        let gen_ns = netns("bg");
        let dut = netns("bd");
        let far = netns("bf");
        let (gen_side, far_side) = match dir {
            Dir::Decap => ("ul0", "p0"),
            Dir::Encap => ("p0", "ul0"),
        };
        // As many receive queues as CPUs on the generator's link: frames
        // sent from two CPUs are then taken in by each CPU itself (a veth
        // picks the queue by the sending CPU), as a NIC's RSS would.
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        veth_with_queues(&gen_ns, "eth0", &dut, gen_side, cpus);
        veth_with_queues(&dut, far_side, &far, "eth0", far_queues);
        for (ns, dev) in [
            (&gen_ns, "eth0"),
            (&dut, "ul0"),
            (&dut, "p0"),
            (&far, "eth0"),
        ] {
            ns.ok(&["ip", "link", "set", dev, "up"]);
        }
        dut.addr("ul0", &cidr(dut_ip));
        dut.wire("ul0");
        Ok(Topology {
            gen_ifindex: ifindex(&gen_ns, "eth0")?,
            p0: ifindex(&dut, "p0")?,
            ul0: ifindex(&dut, "ul0")?,
            ul0_mac: mac(&dut, "ul0")?,
            gen_ns,
            dut,
            far,
            dut_ip,
            peer_ip,
        })
    }

    /// The frame the generator sends, and the offset of the field it
    /// varies per flow.
    fn frame(&self, dir: Dir) -> (Vec<u8>, u32) {
        match dir {
            Dir::Decap => {
                self.far
                    .ok(&["ip", "link", "set", "eth0", "address", "02:00:00:00:00:02"]);
                // The same inner frame over both families: the outer
                // headers take 50 or 70 bytes.
                let inner = frames::inner(VM_MAC, LOCAL_VM_MAC, DECAP_FRAME - 50);
                let f = frames::vxlan(
                    &inner,
                    [2, 0xee, 0, 0, 0, 2],
                    self.ul0_mac,
                    self.peer_ip,
                    self.dut_ip,
                    100,
                );
                let outer = f.len() - inner.len();
                (f, (outer + frames::INNER_SPORT) as u32)
            }
            Dir::Encap => {
                self.far.addr("eth0", &cidr(self.peer_ip));
                (
                    frames::inner(REMOTE_VM_MAC, LOCAL_VM_MAC, 64),
                    frames::INNER_SPORT as u32,
                )
            }
        }
    }
}

/// Our VTEP on the DUT, set up for `dir`: the port and the one
/// destination MAC the generator sends to.
fn vtep_dut(
    t: &Topology,
    (dir, variant, arrival): (Dir, Variant, Arrival),
    bpffs: &BpfFs,
    vtep_bin: &Path,
    up_args: &[&str],
) -> anyhow::Result<Vtep> {
    let v = Vtep::with_bin(&t.dut, &bpffs.dir, vtep_bin.to_owned());
    let (local, peer) = (t.dut_ip.to_string(), t.peer_ip.to_string());
    let mut up: Vec<&str> = UP_NATIVE
        .iter()
        .map(|a| match *a {
            "198.18.0.1" => local.as_str(),
            // The XDP mode's value.
            "native" => variant.xdp_mode(arrival),
            a => a,
        })
        .collect();
    if variant == Variant::VtepUncached {
        up.push("--no-decap-cache");
    }
    up.extend(up_args);
    v.ok(&up);
    v.ok(&["vni", "add", "100", "--flood", &peer]);
    match dir {
        Dir::Decap => {
            let mut port = vec!["port", "add", "p0", "--vni", "100"];
            if variant.xdp_delivery() {
                port.extend(["--deliver", "xdp"]);
            }
            v.ok(&port);
            v.ok(&[
                "fdb",
                "add",
                "02:00:00:00:00:02",
                "--vni",
                "100",
                "--port",
                "p0",
            ]);
        }
        Dir::Encap => {
            v.ok(&["port", "add", "p0", "--vni", "100"]);
            v.ok(&[
                "fdb",
                "add",
                "02:00:00:00:00:99",
                "--vni",
                "100",
                "--remote",
                &peer,
            ]);
        }
    }
    if variant == Variant::VtepPolicy {
        with_policy(&v, &peer);
    }
    Ok(v)
}

/// Group policy on VNI 100 of `v` (flooding to `peer`): GBP, the VMs of
/// both directions in groups 10 and 20, rules allowing what the
/// generator sends (from the unknown group 0 on decap: its frames carry
/// no GBP header).
fn with_policy(v: &Vtep, peer: &str) {
    v.ok(&["vni", "add", "100", "--flood", peer, "--gbp"]);
    for (mac, group) in [(VM_MAC, "10"), (LOCAL_VM_MAC, "10"), (REMOTE_VM_MAC, "20")] {
        let mac = mac.map(|b| format!("{b:02x}")).join(":");
        v.ok(&["group", "set", &mac, "--vni", "100", "--group", group]);
    }
    for (from, to) in [("0", "10"), ("10", "20")] {
        v.ok(&[
            "policy", "add", "--vni", "100", "--from", from, "--to", to, "allow",
        ]);
    }
}

impl Bench {
    pub fn new(
        (dir, arrival): (Dir, Arrival),
        variant: Variant,
        obj: &[u8],
        vtep_bin: &Path,
    ) -> anyhow::Result<Self> {
        Self::with_up((dir, arrival), variant, obj, vtep_bin, (&[], 1))
    }

    /// As [`Bench::new`], our VTEP brought up with `up_args` too, and
    /// `far_queues` queues on each end of the link to the far end (the
    /// VM's for decap).
    pub fn with_up(
        (dir, arrival): (Dir, Arrival),
        variant: Variant,
        obj: &[u8],
        vtep_bin: &Path,
        (up_args, far_queues): (&[&str], usize),
    ) -> anyhow::Result<Self> {
        let bpffs = BpfFs::new();
        let t = Topology::new(dir, variant, far_queues)?;
        let (frame, offset) = t.frame(dir);
        // The device that takes the generator's frames (GRO on, or an
        // XDP program, lets a veth take XDP frames; skbs it takes as is).
        let rx = if dir == Dir::Decap { "ul0" } else { "p0" };
        // Whether the variants turn GRO on where the generator's frames
        // arrive: always for XDP frames (else a veth drops them), and on
        // the underlay for decap (NICs have it on); not on a port taking
        // a VM's skbs (a port as it comes has it off).
        let gro_on_rx = arrival == Arrival::Xdp || dir == Dir::Decap;
        // The sink: an XDP or TC drop where the generator's frames arrive
        // for xdp-drop and tc-drop (the generator's own cost); for every
        // other variant a TC ingress drop at the far end: in the VM for decap (every
        // delivery ends in an skb there, as a VM's stack takes it), at
        // the far end of the underlay for encap (an XDP program there
        // would make each variant's skb an XDP frame again, a copy).
        let sink = match variant {
            Variant::XdpDrop => attach(obj, "bench_sink", Hook::Xdp, (0, &[]), (&t.dut, rx))?,
            Variant::TcDrop => attach(obj, "bench_sink_tc", Hook::Tc, (0, &[]), (&t.dut, rx))?,
            _ => attach(obj, "bench_sink_tc", Hook::Tc, (0, &[]), (&t.far, "eth0"))?,
        };
        if dir == Dir::Decap && variant.xdp_delivery() {
            t.far.ok(&["ethtool", "-K", "eth0", "gro", "on"]);
        }
        let mut vtep = None;
        let mut ceiling = None;
        match (dir, variant) {
            (_, Variant::Kernel | Variant::KernelIpv6) => {
                kernel_dut(&t, dir)?;
                if gro_on_rx {
                    t.dut.ok(&["ethtool", "-K", rx, "gro", "on"]);
                }
            }
            (_, Variant::KernelNoGro) => {
                kernel_dut(&t, dir)?;
                if arrival == Arrival::Xdp {
                    let pass = attach(obj, "bench_pass", Hook::Xdp, (0, &[]), (&t.dut, rx))?;
                    // Attaching XDP to a veth turns its GRO on.
                    t.dut.ok(&["ethtool", "-K", rx, "gro", "off"]);
                    ceiling = Some(pass);
                }
            }
            (
                _,
                Variant::Vtep
                | Variant::VtepTc
                | Variant::VtepXdp
                | Variant::VtepUncached
                | Variant::Baseline
                | Variant::VtepIpv6
                | Variant::VtepPolicy,
            ) => {
                let how = (dir, variant, arrival);
                vtep = Some(vtep_dut(&t, how, &bpffs, vtep_bin, up_args)?);
                // A baseline may leave the underlay's GRO as it is: on
                // where XDP frames arrive, as for the others.
                if gro_on_rx {
                    t.dut.ok(&["ethtool", "-K", rx, "gro", "on"]);
                }
            }
            (Dir::Decap, Variant::XdpRedirect) => {
                ceiling = Some(attach(
                    obj,
                    "bench_strip_redirect",
                    Hook::Xdp,
                    (t.p0, &[]),
                    (&t.dut, "ul0"),
                )?);
            }
            (Dir::Decap, Variant::TcPeer) => {
                ceiling = Some(attach(
                    obj,
                    "bench_strip_peer",
                    Hook::Tc,
                    (t.p0, &[]),
                    (&t.dut, "ul0"),
                )?);
                t.dut.ok(&["ethtool", "-K", "ul0", "gro", "on"]);
            }
            (Dir::Encap, Variant::EncapCeiling) => {
                let outer = frames::vxlan(
                    &frame,
                    t.ul0_mac,
                    mac(&t.far, "eth0")?,
                    t.dut_ip,
                    t.peer_ip,
                    100,
                );
                // The outer headers and the inner Ethernet header (its
                // room's copy: adjust_room leaves the original in front).
                ceiling = Some(attach(
                    obj,
                    "bench_encap_ceiling",
                    Hook::Tc,
                    (t.ul0, &outer[..64]),
                    (&t.dut, "p0"),
                )?);
                headroom_as_vtep(&t);
                if gro_on_rx {
                    t.dut.ok(&["ethtool", "-K", "p0", "gro", "on"]);
                }
            }
            (_, Variant::XdpDrop) => {}
            (_, Variant::TcDrop) => {
                if arrival == Arrival::Xdp {
                    t.dut.ok(&["ethtool", "-K", rx, "gro", "on"]);
                }
            }
            _ => anyhow::bail!("no {} variant for {dir:?}", variant.name()),
        }
        if variant.is_kernel() {
            // Up only while measured (see `kernel_vxlan_up`).
            t.dut.ok(&["ip", "link", "set", "vx0", "down"]);
        }
        if dir == Dir::Encap {
            // The far end drops ARP (its XDP sink counts everything): a
            // permanent neighbour entry stands in for resolution.
            let far_mac = t.far.mac("eth0");
            t.dut.ok(&[
                "ip",
                "neigh",
                "replace",
                &t.peer_ip.to_string(),
                "dev",
                "ul0",
                "lladdr",
                &far_mac,
                "nud",
                "permanent",
            ]);
        }
        let generator =
            Generator::new(obj, arrival, (&t.gen_ns.name, t.gen_ifindex), frame, offset)?;
        Ok(Bench {
            dir,
            variant,
            generator,
            sink,
            _ceiling: ceiling,
            vtep,
            dut: t.dut,
            _ns: vec![t.gen_ns, t.far],
            _bpffs: bpffs,
        })
    }

    fn sink_count(&self) -> anyhow::Result<u64> {
        let m: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.sink.map("BENCH").context("BENCH map")?)?;
        Ok(m.get(&0, 0)?.iter().sum())
    }

    /// Sends `packets` frames; returns the rate the sink saw (packets/s).
    pub fn measure(&self, packets: u32) -> anyhow::Result<f64> {
        let _up = self.kernel_vxlan_up();
        let before = self.sink_count()?;
        let elapsed = self.generator.run(packets, None)?;
        // Frames still in a queue reach the sink within a few ms.
        std::thread::sleep(Duration::from_millis(20));
        let seen = self.sink_count()? - before;
        Ok(seen as f64 / elapsed.as_secs_f64())
    }

    /// A kernel variant's vxlan device up while the guard lives (none for
    /// the other variants). Up, it has a UDP tunnel socket, and while any
    /// such socket exists GRO looks up a socket for every UDP packet on
    /// the host: the kernel variants' devices are up only while they are
    /// measured, so that the other variants run on a host without a
    /// foreign tunnel socket, as a host running only this VTEP is.
    fn kernel_vxlan_up(&self) -> Option<KernelVxlanUp<'_>> {
        self.variant.is_kernel().then(|| {
            self.dut.ok(&["ip", "link", "set", "vx0", "up"]);
            KernelVxlanUp(&self.dut)
        })
    }

    /// Runs every generator of `runs` at once, each on its CPU with its
    /// count of frames; returns the rate the sink saw while the first ran
    /// (packets/s), over the longest of the runs `measured` says count.
    pub fn measure_at_once(
        &self,
        runs: &[(&Generator, usize, u32)],
        measured: usize,
    ) -> anyhow::Result<f64> {
        let before = self.sink_count()?;
        let elapsed = std::thread::scope(|s| {
            let handles: Vec<_> = runs
                .iter()
                .map(|(g, cpu, packets)| s.spawn(move || g.run(*packets, Some(*cpu))))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect::<anyhow::Result<Vec<Duration>>>()
        })?;
        std::thread::sleep(Duration::from_millis(20));
        let seen = self.sink_count()? - before;
        let longest = elapsed
            .iter()
            .take(measured)
            .max()
            .copied()
            .unwrap_or_default();
        Ok(seen as f64 / longest.as_secs_f64())
    }
}

/// Takes the kernel variant's vxlan device down again when dropped.
struct KernelVxlanUp<'a>(&'a Netns);

impl Drop for KernelVxlanUp<'_> {
    fn drop(&mut self) {
        self.0.ok(&["ip", "link", "set", "vx0", "down"]);
    }
}

/// A /24 or /64 around `ip`.
fn cidr(ip: IpAddr) -> String {
    format!("{ip}/{}", if ip.is_ipv4() { 24 } else { 64 })
}

/// Gives the port the room for outer headers in front of the VM's frames
/// that `vtep port add` gives a veth (vtep-user/src/headroom.rs): a
/// member of a bridge, down, whose other member is a vxlan device.
fn headroom_as_vtep(t: &Topology) {
    let dut = &t.dut;
    dut.ok(&["ip", "link", "add", "hr0", "type", "bridge"]);
    let local = t.dut_ip.to_string();
    dut.ok(&[
        "ip", "link", "add", "hrx0", "type", "vxlan", "id", "1", "dstport", "1", "local", &local,
    ]);
    for dev in ["hrx0", "p0"] {
        dut.ok(&["ip", "link", "set", dev, "master", "hr0"]);
    }
}

/// The kernel's vxlan + bridge on the DUT: learning off, static FDB; over
/// IPv6 it takes the zero UDP checksums VTEPs send (`udp6zerocsumrx`).
fn kernel_dut(t: &Topology, dir: Dir) -> anyhow::Result<()> {
    let (dut, local, peer) = (&t.dut, t.dut_ip.to_string(), t.peer_ip.to_string());
    dut.ok(&["ip", "link", "add", "br0", "type", "bridge"]);
    let mut add = vec![
        "ip",
        "link",
        "add",
        "vx0",
        "type",
        "vxlan",
        "id",
        "100",
        "local",
        &local,
        "dstport",
        "4789",
        "dev",
        "ul0",
        "nolearning",
    ];
    if t.dut_ip.is_ipv6() {
        add.push("udp6zerocsumrx");
    }
    dut.ok(&add);
    for dev in ["vx0", "p0"] {
        dut.ok(&["ip", "link", "set", dev, "master", "br0"]);
        dut.ok(&[
            "ip",
            "link",
            "set",
            dev,
            "type",
            "bridge_slave",
            "learning",
            "off",
        ]);
    }
    dut.ok(&["ip", "link", "set", "vx0", "up"]);
    dut.ok(&["ip", "link", "set", "br0", "up"]);
    match dir {
        Dir::Decap => {
            dut.ok(&[
                "bridge",
                "fdb",
                "add",
                "02:00:00:00:00:02",
                "dev",
                "p0",
                "master",
                "static",
            ]);
        }
        Dir::Encap => {
            dut.ok(&[
                "bridge",
                "fdb",
                "add",
                "02:00:00:00:00:99",
                "dev",
                "vx0",
                "master",
                "static",
            ]);
            dut.ok(&[
                "bridge",
                "fdb",
                "add",
                "02:00:00:00:00:99",
                "dev",
                "vx0",
                "dst",
                &peer,
                "self",
                "static",
            ]);
        }
    }
    Ok(())
}
