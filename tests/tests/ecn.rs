//! QoS markings across the tunnel (issue 18), in network namespaces, our
//! VTEP against the kernel's vxlan: the outer DSCP of each VNI (`--tos
//! inherit` or fixed) and the ECN field copied out (RFC 6040 §4.1), as
//! tshark on the underlay router sees them, byte for byte the kernel's
//! with its `tos` set the same way; a congestion mark the router
//! puts on the outer header (a small TC program there) arriving in the
//! VM's ECN-capable packet, and dropped over a packet that is not.

use std::time::Duration;

use aya::programs::TcAttachType;
use vtep_tests::{
    Capture, TempFile, Vtep,
    topo::{Kind, Overlay},
    vtep_bin,
};

mod harness;

fn ours(o: &Overlay) -> &Vtep {
    o.vteps[0].as_ref().expect("our VTEP on host 0")
}

/// TOS 0xba: DSCP 46 (EF), ECT(0).
const EF_ECT0: &str = "0xba";

#[test]
fn outer_dscp_follows_the_vni_setting_and_ecn_the_inner_packet() {
    let o = Overlay::new(&[Kind::Ours, Kind::Kernel], &vtep_bin());
    let v = ours(&o);
    let flood = o.net.hosts[1].ip.as_str();
    v.ok(&["vni", "add", "100", "--flood", flood, "--tos", "inherit"]);
    v.ok(&["vni", "add", "200", "--flood", flood, "--tos", "0x20"]);
    // The kernel's vxlan on host 1, set the same way: the reference.
    let kernel = &o.net.hosts[1].ns;
    kernel.ok(&[
        "ip", "link", "set", "vx100", "type", "vxlan", "tos", "inherit",
    ]);
    kernel.ok(&["ip", "link", "set", "vx200", "type", "vxlan", "tos", "0x20"]);
    for tenant in 0..2 {
        let (vm, peer) = (o.vm(0, tenant), o.vm(1, tenant));
        assert!(vm.ns.ping_until(&peer.ip, Duration::from_secs(5)));
    }
    let pcap = TempFile::new("dscp", ".pcap");
    // Host 0's side of the router: what our VTEP sends, what the kernel's
    // sends to it.
    let cap = Capture::start(
        &o.net.router,
        &["-i", "r1", "-w", pcap.arg(), "udp port 4789"],
    );
    for tenant in 0..2 {
        for (from, to) in [(0, 1), (1, 0)] {
            let (vm, peer) = (o.vm(from, tenant), o.vm(to, tenant));
            let ok = vm
                .ns
                .run(&["ping", "-c", "3", "-i", "0.2", "-Q", EF_ECT0, &peer.ip]);
            assert!(
                ok.status.success(),
                "VNI {}: ping -Q {EF_ECT0} from host {from}",
                [100, 200][tenant]
            );
        }
    }
    cap.stop();
    // Echo requests from each host per VNI: the outer dsfield of each
    // (every occurrence of the field, outer first; the inner one is 0xba).
    let out = vtep_tests::ok(&[
        "tshark",
        "-r",
        pcap.arg(),
        "-Y",
        "icmp.type == 8",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=+",
        "-e",
        "ip.src",
        "-e",
        "vxlan.vni",
        "-e",
        "ip.dsfield",
    ]);
    let outer = |host: usize, vni: &str| -> Vec<String> {
        out.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                let ds: Vec<&str> = f.get(2)?.split('+').collect();
                (f[0].split('+').next() == Some(o.net.hosts[host].ip.as_str())
                    && f.get(1) == Some(&vni)
                    && ds.get(1) == Some(&"0xba"))
                .then(|| ds[0].to_owned())
            })
            .collect()
    };
    let (in100, in200) = (outer(0, "100"), outer(0, "200"));
    assert!(in100.len() >= 3 && in200.len() >= 3, "{out}");
    // The kernel's vxlan writes the same bytes.
    for (vni, ours) in [("100", &in100), ("200", &in200)] {
        let theirs = outer(1, vni);
        assert!(
            theirs.len() >= 3 && theirs.iter().all(|d| *d == ours[0]),
            "VNI {vni}: the kernel's outer dsfields {theirs:?}, ours {ours:?}"
        );
    }
    // VNI 100 inherits DSCP 46 and ECT(0); VNI 200 has DSCP 8 (TOS 0x20)
    // and the inner ECT(0).
    assert!(
        in100.iter().all(|d| d == "0xba"),
        "VNI 100 outer dsfields {in100:?}"
    );
    assert!(
        in200.iter().all(|d| d == "0x22"),
        "VNI 200 outer dsfields {in200:?}"
    );
}

#[test]
fn an_underlay_congestion_mark_reaches_the_vm_or_drops_not_ect() {
    let o = Overlay::new(&[Kind::Ours, Kind::Kernel], &vtep_bin());
    let v = ours(&o);
    // The router marks every VXLAN packet towards host 0 CE.
    let _marker = harness::attach(
        &o.net.router,
        "r1",
        &[("underlay_mark_ce", TcAttachType::Egress)],
        0,
    );
    let (vm, peer) = (o.vm(0, 0), o.vm(1, 0));
    // From the kernel side, ECT(0): the kernel's vxlan copies it out, the
    // router turns it CE, we pass CE on to the VM.
    let cap = Capture::start(&vm.ns, &["-i", "eth0", "-v", "icmp"]);
    let marked = v.counter("counters", "ecn_ce_marked");
    let ok = peer.ns.run(&[
        "ping", "-c", "3", "-i", "0.2", "-W", "2", "-Q", EF_ECT0, &vm.ip,
    ]);
    let seen = cap.stop();
    assert!(
        ok.status.success(),
        "ping -Q {EF_ECT0} through a congested router"
    );
    // tcpdump -v: "IP (tos 0xbb,CE, ttl ...)" then the ICMP line.
    let requests = seen
        .lines
        .iter()
        .filter(|l| l.contains("echo request"))
        .count();
    let marked_ce = seen.lines.iter().filter(|l| l.contains("tos 0xbb")).count();
    assert!(
        requests >= 3 && marked_ce >= 3,
        "the VM saw {:?}, expected its echo requests with DSCP 46 and CE (tos 0xbb)",
        seen.lines
    );
    assert!(v.counter("counters", "ecn_ce_marked") >= marked + 3);
    // Not-ECT under CE: the mark cannot be passed on, the packet goes.
    let dropped = v.counter("drop_reasons", "ce_not_ect");
    let lost = peer
        .ns
        .run(&["ping", "-c", "3", "-i", "0.2", "-W", "1", &vm.ip]);
    assert!(
        !lost.status.success(),
        "Not-ECT packets under CE were delivered"
    );
    assert!(v.counter("drop_reasons", "ce_not_ect") >= dropped + 3);
}
