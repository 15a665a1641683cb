//! TCP throughput VM to VM (iperf3), offloads on (default) and off.

use std::path::Path;

use anyhow::Context as _;
use vtep_tests::topo::{Kind, Overlay, tcp_bytes};

use super::report::{Tcp, TcpFigure};

/// Runs per variant (the median is reported).
const RUNS: usize = 3;

/// The median of `RUNS` runs per variant, the variants taking turns.
///
/// Variants: `vtep` (as `vtep up` sets it up: on the veth underlay, decap
/// in TC, GRO there merging VXLAN packets for the instance's merge
/// device) and `kernel` with the VMs' veths as they come; `vtep-native`,
/// native XDP on the underlay (`--xdp-mode native`: GRO puts the inner
/// segments XDP passes up back together); and `vtep-xdp-gro`, native XDP
/// delivering from XDP (`port add --deliver xdp`) to VMs whose side of
/// the veth has GRO on (which is also what makes a veth accept XDP
/// frames). Without GRO a veth drops XDP frames, so that variant has
/// no "offloads off" figure.
pub fn tcp(vtep_bin: &Path, smoke: bool) -> anyhow::Result<Tcp> {
    let (secs, runs) = if smoke { (1, 1) } else { (4, RUNS) };
    let variants: [(&str, Kind, &[&str]); 4] = [
        ("vtep", Kind::Ours, &[]),
        ("vtep-xdp-gro", Kind::Ours, &["--xdp-mode", "native"]),
        ("vtep-native", Kind::Ours, &["--xdp-mode", "native"]),
        ("kernel", Kind::Kernel, &[]),
    ];
    let mut overlays = Vec::new();
    for (name, kind, up_args) in variants {
        let o = Overlay::with_up_args(&[kind, kind], vtep_bin, up_args);
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
        overlays.push(super::reachable(o, name)?);
    }
    let gbps =
        |o: &Overlay| tcp_bytes(o.vm(1, 0), o.vm(0, 0), secs) as f64 * 8.0 / f64::from(secs) / 1e9;
    let mut on = vec![Vec::new(); overlays.len()];
    for _ in 0..runs {
        for (o, r) in overlays.iter().zip(on.iter_mut()) {
            r.push(gbps(o));
        }
    }
    let mut figures = Vec::new();
    for (i, ((name, ..), o)) in variants.iter().zip(&overlays).enumerate() {
        let offloads_on = super::summary(&on[i]).0;
        let offloads_off = if *name == "vtep-xdp-gro" {
            None
        } else {
            for h in 0..2 {
                o.vm(h, 0).ns.ok(&[
                    "ethtool", "-K", "eth0", "tso", "off", "gso", "off", "gro", "off", "tx", "off",
                ]);
            }
            let off: Vec<f64> = (0..runs).map(|_| gbps(o)).collect();
            Some(super::summary(&off).0)
        };
        figures.push(TcpFigure {
            offloads_on,
            offloads_off,
        });
    }
    let [vtep, vtep_xdp_gro, vtep_native, kernel] =
        <[TcpFigure; 4]>::try_from(figures).expect("four variants");
    Ok(Tcp {
        vtep,
        vtep_xdp_gro,
        vtep_native,
        kernel,
        runs,
    })
}
