//! The report as Markdown: what BENCHMARKS.md holds.

use std::fmt::Write as _;

use super::{Arrival, DirReport, Report, Tcp, TcpFigure, num};

impl Report {
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
        let measured = match self.revision.strip_suffix('+') {
            Some(rev) => format!("`vtep` at revision `{rev}` with uncommitted changes"),
            None => format!("`vtep` at revision `{}`", self.revision),
        };
        match &self.baseline {
            Some(rev) => writeln!(
                s,
                "Reproduce: `cargo xtask bench --baseline {rev} --write BENCHMARKS.md` (as root). \
                 Measured: {measured}; `baseline` is this project's `vtep` built from revision \
                 `{rev}`.\n"
            )?,
            None => writeln!(
                s,
                "Reproduce: `cargo xtask bench --write BENCHMARKS.md` (as root). Measured: \
                 {measured}.\n"
            )?,
        }
        writeln!(
            s,
            "Machine: {} CPUs ({}), kernel {}. {} interleaved rounds of {} frames per variant \
             (each round in an order of its own), {} inner flows, {}-byte VXLAN frames for \
             decap. Absolute figures drift on a shared machine; ratios much less: a ratio \
             of two rates is the median of the rounds' ratios, both measured in each round.\n",
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
             frame for the others). `vtep` is this VTEP as `vtep up` and `vtep port add` set \
             it up by default (`--xdp-mode auto`) on the underlay each arrival stands for: \
             with XDP frames arriving, a NIC, native XDP (XDP decides and strips, TC hands the \
             skb to the port); with skbs arriving, a veth, decap in TC without XDP (the veth \
             would copy every skb for XDP); and a veth port whose peer is in another \
             namespace gets frames with `bpf_redirect_peer` (`--deliver auto`); `vtep-tc` \
             decapsulates in TC, no XDP on the underlay (`--xdp-mode off`: with skbs arriving, \
             the same as `vtep`); `baseline` is the default of the build it is built from; \
             `vtep-xdp` delivers from \
             XDP (`--deliver xdp`; the VM's side of the veth has GRO on, else it cannot take \
             XDP frames); `vtep-uncached` is `vtep-xdp` without the decap decision cache \
             (`--no-decap-cache`); `vtep-policy` is `vtep` with group policy on the VNI \
             (`--gbp`, the VMs in groups, rules allowing their traffic: every frame's \
             identities looked up and judged). Ceilings: `xdp-drop` and `tc-drop` drop where the \
             generator's frames arrive (the generator's own cost); `xdp-redirect` strips \
             50 bytes and redirects, no lookups; `tc-peer` is the same in TC on the underlay \
             (no XDP: the frame shrunk by 50 bytes, the inner Ethernet header put back, \
             `bpf_redirect_peer` into the VM's side), the other way to hand a VM an skb; \
             `encap-ceiling` is a TC program on the port \
             that pushes fixed outer headers and redirects, no lookups (the port given the \
             room for them that `port add` gives). Every other variant \
             ends at the same sink, a TC ingress drop: on the VM's side of its port \
             for decap (where the VM's stack takes an skb), at the far end of the underlay for \
             encap.\n"
        )?;
        writeln!(
            s,
            "Arrivals: the generator's frames reach the device under test as XDP frames \
             (`bench_gen` run as BPF_PROG_TEST_RUN live frames: as a NIC with native XDP hands \
             them over, the skb built after XDP by whoever passes the frame up, and paid for \
             in every cost below) or as skbs (an AF_PACKET socket bypassing the qdisc: as a \
             VM's stack sends them to its port, the realistic case for encap, or as another \
             namespace sends them over a veth underlay, as trafgen does). A veth \
             with an XDP program copies every skb with less than 256 bytes of headroom into a \
             page before running it, which `xdp-drop` then pays too: `tc-drop`, a TC ingress \
             drop where the frames arrive, is the generator's own cost for skbs. Costs are \
             given above the fastest drop measured.\n"
        )?;
        for (dir, r) in [
            ("decap", &self.decap),
            ("encap", &self.encap),
            ("decap", &self.decap_skb),
            ("encap", &self.encap_skb),
        ] {
            if let Some(r) = r {
                write_rates(s, dir, r)?;
            }
        }
        writeln!(
            s,
            "### Program cost (kernel.bpf_stats_enabled, ns per run)\n"
        )?;
        for (name, c) in &self.program_cost_ns {
            writeln!(
                s,
                "- {name}: {:.1} ns (median of {} passes, {:.1}–{:.1}; {} runs)",
                c.ns_per_run, c.passes, c.ns_min, c.ns_max, c.runs
            )?;
        }
        writeln!(
            s,
            "\nThe `vtep` variants' programs and the ceilings' (`bench_strip_redirect` \
             (`xdp-redirect`), `bench_strip_peer` (`tc-peer`), `bench_encap_ceiling` \
             (`encap-ceiling`)), with frames arriving as XDP frames unless marked \
             \"skbs arriving\"; `(baseline)` marks the `baseline` build's programs. Decap: \
             in `vtep`, `vtep_decap` decides and strips in XDP and `vtep_decap_tc` hands the \
             skb to the port; in `vtep-tc`, no XDP, `vtep_decap_tc` decides, strips and hands \
             over (as in `vtep` with skbs arriving); in `vtep-xdp`, `vtep_decap` decides, \
             strips and redirects to the port. What ours spend above the ceilings is this \
             VTEP's lookups, counters and checks. A figure includes the kernel's work inside \
             the program's helper calls: with skbs arriving, the `baseline` encap program's \
             includes reallocating the skb's head for the outer headers if it is older than \
             ports given room for them (a VM's UDP and ICMP, and an AF_PACKET socket's, come \
             with 16 bytes on a veth as it comes; see README, \"Room for the outer \
             headers\"). Each figure is \
             the median of passes that run every costed variant in turn, with its range."
        )?;
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
                "\n### Both CPUs (decap, XDP frames arriving, Mpps)\n\n| variant | queues of the \
                 VM's veth | one generator on CPU 0 | one on each CPU | both/one |\n| --- | --- | \
                 --- | --- | --- |"
            )?;
            for v in &c.scalings {
                writeln!(
                    s,
                    "| {} | {} | {:.3} | {:.3} | {:.2}x |",
                    v.variant, v.vm_queues, v.one_cpu_mpps, v.two_cpus_mpps, v.two_over_one
                )?;
            }
            writeln!(
                s,
                "\n`vtep` delivers as ports get it by default (`bpf_redirect_peer` into the VM's \
                 side: no queue between the CPUs); `tc-peer` is that path without lookups or \
                 state, what this host gives a second CPU (the generators' threads, interrupts \
                 and its own work share the two). `vtep-xdp` delivers from XDP: a veth queues \
                 an XDP frame on its peer's receive queue of the sending CPU (modulo their \
                 count), so into a veth of one queue, as containers' come, every CPU feeds one \
                 ring and one NAPI.\n\n- VNI 100 on CPU 0 while a MAC explosion in VNI 200 \
                 learns a new MAC per frame on CPU 1: {:.3} ({:.2} of its rate alone), {:.0} \
                 of its decisions made again from the tables (decap cache fills) in a run of \
                 {} frames\n\nMedians of {} rounds.",
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
                "\n{} interleaved rounds of {} pings per variant (every 1 ms), the samples pooled.",
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
    let arrival = match r.arrival {
        Arrival::Xdp => "XDP frames",
        Arrival::Skb => "skbs",
    };
    writeln!(s, "### {dir}, {arrival} arriving: packet rate (Mpps)\n")?;
    writeln!(
        s,
        "| variant | median | min | max | ns/packet above {} |\n| --- | --- | --- | --- | --- |",
        r.ceiling.unwrap_or("–")
    )?;
    for (name, v) in &r.variants {
        let above = r.derived.ns_per_packet_above_ceiling.get(name).copied();
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
        ("kernel cost/vtep-tc cost", d.kernel_cost_over_vtep_tc),
        ("kernel cost/vtep-xdp cost", d.kernel_cost_over_vtep_xdp),
        (
            "kernel cost/xdp-redirect cost",
            d.kernel_cost_over_xdp_redirect,
        ),
        ("vtep-xdp/xdp-redirect", d.vtep_xdp_over_xdp_redirect),
        ("vtep/tc-peer", d.vtep_over_tc_peer),
        ("vtep-tc/tc-peer", d.vtep_tc_over_tc_peer),
        (
            "vtep-uncached/xdp-redirect",
            d.vtep_uncached_over_xdp_redirect,
        ),
        ("vtep/encap-ceiling", d.vtep_over_encap_ceiling),
        ("vtep-ipv6/kernel-ipv6", d.vtep_ipv6_over_kernel_ipv6),
        ("vtep-policy/vtep", d.vtep_policy_over_vtep),
    ];
    let mut shown: Vec<String> = parts
        .iter()
        .filter_map(|(name, x)| Some(format!("{name} = {:.3}", (*x)?)))
        .collect();
    if let Some(p) = d.vtep_over_baseline {
        shown.push(format!(
            "vtep/baseline = {:.3} (rounds {:.3}–{:.3})",
            p.median, p.min, p.max
        ));
    }
    writeln!(s, "\n{}\n", shown.join("; "))
}

/// `a`'s rate with offloads off over `b`'s, for the text.
fn ratio_off(a: &TcpFigure, b: &TcpFigure) -> String {
    match (a.offloads_off, b.offloads_off) {
        (Some(a), Some(b)) => format!("{:.2}", a / b),
        _ => "–".to_owned(),
    }
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
        ("vtep-native", &t.vtep_native),
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
         vtep-xdp-gro/kernel = {:.2}; vtep-native/kernel = {:.2}, {} with offloads off. \
         `vtep` is the VTEP as `vtep up` and `port add` set it up (into the peer of the VM's \
         veth, which is as it comes: neither GRO nor XDP on it): on a veth underlay it \
         decapsulates in TC, no XDP, and GRO there (`vtep up` turns it on) merges the VXLAN \
         packets of a flow for the instance's merge device (a kernel vxlan device in metadata \
         mode), behind which `vtep_decap_merged` decides them. `vtep-native` runs native XDP \
         on the underlay veth instead (`--xdp-mode native`), GRO merging the inner segments \
         XDP passes up. `vtep-xdp-gro` delivers from XDP (`--deliver xdp`) to a VM whose side \
         of the veth has GRO on.",
        t.runs,
        t.vtep.offloads_on / k,
        ratio_off(&t.vtep, &t.kernel),
        t.vtep_xdp_gro.offloads_on / k,
        t.vtep_native.offloads_on / k,
        ratio_off(&t.vtep_native, &t.kernel),
    )
}
