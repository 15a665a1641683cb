//! BGP EVPN fixtures: gobgpd (the engine `vtep daemon` drives) and FRR
//! with the kernel's vxlan (the peer we interoperate with), each run in a
//! test namespace, their APIs on that namespace's loopback, stopped and
//! cleaned up on drop.

use std::{path::PathBuf, time::Duration};

use crate::{Bg, Netns, frames, raw::send_raw, topo::Host, unique, wait_until};

/// gobgpd's gRPC API inside a test namespace.
pub const GOBGP_API: &str = "127.0.0.1:50051";

/// gobgpd in `ns`, API on loopback, no configuration file (`vtep daemon`
/// configures it), or with `config` (a route reflector).
pub struct Gobgpd {
    ns: String,
    bg: Option<Bg>,
    config: Option<crate::ConfigFile>,
}

impl Gobgpd {
    pub fn start(ns: &Netns) -> Self {
        Self::with_config(ns, None)
    }

    /// gobgpd reading `config` (TOML).
    pub fn with_config(ns: &Netns, config: Option<&str>) -> Self {
        let config = config.map(crate::ConfigFile::new);
        let mut g = Gobgpd {
            ns: ns.name.clone(),
            bg: None,
            config,
        };
        g.restart(ns);
        g
    }

    /// Kills it (SIGKILL: nothing withdrawn on its way out).
    pub fn kill(&mut self) {
        self.bg = None;
    }

    /// Starts it again (after [`Gobgpd::kill`]).
    pub fn restart(&mut self, ns: &Netns) {
        assert_eq!(ns.name, self.ns);
        let mut argv = vec!["gobgpd", "--api-hosts", GOBGP_API, "--pprof-disable"];
        if let Some(c) = &self.config {
            argv.extend(["-f", c.arg()]);
        }
        self.bg = Some(ns.spawn(&argv));
        ns.wait_listening(50051);
    }
}

/// FRR (zebra + bgpd) with the kernel's vxlan in a host namespace: VNIs
/// as `vx<VNI>` devices without learning in bridges `br<VNI>`, advertised
/// with `advertise-all-vni`.
pub struct Frr {
    ns: String,
    dir: PathBuf,
    _zebra: Bg,
    _bgpd: Bg,
}

impl Frr {
    /// Starts FRR on `host` (AS `asn`, router id = its address) peering
    /// with `peers`; `vnis`: (VNI, ports to bridge into it).
    pub fn start(host: &Host, asn: u32, peers: &[&str], vnis: &[(u32, &[&str])]) -> Self {
        for (vni, ports) in vnis {
            crate::topo::kernel_vtep(host, *vni, &[], ports);
            host.ns.ok(&[
                "bridge",
                "link",
                "set",
                "dev",
                &format!("vx{vni}"),
                "learning",
                "off",
            ]);
        }
        let dir = std::env::temp_dir().join(unique("frr"));
        std::fs::create_dir_all(&dir).expect("FRR directory");
        let zebra = dir.join("zebra.conf");
        std::fs::write(&zebra, "ip nht resolve-via-default\n").expect("zebra.conf");
        let mut bgp = format!(
            "router bgp {asn}\n bgp router-id {}\n no bgp default ipv4-unicast\n",
            host.ip
        );
        for p in peers {
            bgp.push_str(&format!(" neighbor {p} remote-as {asn}\n"));
        }
        bgp.push_str(" address-family l2vpn evpn\n");
        for p in peers {
            bgp.push_str(&format!("  neighbor {p} activate\n"));
        }
        bgp.push_str("  advertise-all-vni\n exit-address-family\n");
        let bgpd = dir.join("bgpd.conf");
        std::fs::write(&bgpd, bgp).expect("bgpd.conf");
        // The daemons run as user frr: their files and sockets must be
        // theirs.
        let run_dir = format!("/var/run/frr/{}", host.ns.name);
        crate::ok(&["mkdir", "-p", &run_dir]);
        crate::ok(&[
            "chown",
            "-R",
            "frr:frr",
            &run_dir,
            dir.to_str().expect("utf-8"),
        ]);
        let daemon = |bin: &str, conf: &PathBuf, pid: &str| {
            host.ns.spawn(&[
                bin,
                "-N",
                &host.ns.name,
                "-f",
                conf.to_str().expect("utf-8"),
                "-A",
                "127.0.0.1",
                "-i",
                dir.join(pid).to_str().expect("utf-8"),
            ])
        };
        let zebra = daemon("/usr/lib/frr/zebra", &zebra, "zebra.pid");
        let zserv = format!("{run_dir}/zserv.api");
        assert!(
            wait_until(Duration::from_secs(10), || std::path::Path::new(&zserv)
                .exists()),
            "zebra did not start in {}",
            host.ns.name
        );
        let bgpd = daemon("/usr/lib/frr/bgpd", &bgpd, "bgpd.pid");
        Frr {
            ns: host.ns.name.clone(),
            dir,
            _zebra: zebra,
            _bgpd: bgpd,
        }
    }

    /// `vtysh -c COMMAND` (a `... json` show command), parsed.
    pub fn json(&self, command: &str) -> serde_json::Value {
        let out = crate::run(&[
            "ip", "netns", "exec", &self.ns, "vtysh", "-N", &self.ns, "-c", command,
        ]);
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// Where FRR has `mac` of `vni`: (type "local"/"remote", remote VTEP,
    /// MAC-mobility sequence number seen from remote).
    pub fn mac(&self, vni: u32, mac: &str) -> Option<(String, String, u64)> {
        let v = self.json(&format!("show evpn mac vni {vni} mac {mac} json"));
        let m = v.get(mac).unwrap_or(&v);
        let kind = m.get("type")?.as_str()?.to_owned();
        let vtep = m
            .get("remoteVtep")
            .and_then(|r| r.as_str())
            .unwrap_or_default()
            .to_owned();
        let seq = m
            .get("remoteSequence")
            .or_else(|| m.get("localSequence"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        Some((kind, vtep, seq))
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(format!("/var/run/frr/{}", self.ns));
    }
}

/// A gratuitous ARP from `mac` for `ip` out of `dev` in `ns`, as a
/// hypervisor sends for a VM it has just moved.
pub fn garp(ns: &Netns, dev: &str, mac: &str, ip: &str) {
    let mac = frames::mac(mac);
    let ip: std::net::Ipv4Addr = ip.parse().expect("IPv4");
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&mac);
    arp.extend_from_slice(&ip.octets());
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&ip.octets());
    send_raw(
        ns,
        dev,
        &frames::eth([0xff; 6], mac, frames::ETH_ARP, &arp),
        1,
    );
}

/// A `vtep daemon --config` file for `host` (AS `asn`): its VNIs, ports
/// (interface, VNI) and BGP peers.
pub fn our_config(
    host: &Host,
    asn: u32,
    vnis: &[u32],
    ports: &[(&str, u32)],
    peers: &[String],
) -> String {
    let mut c = format!("underlay = \"{}\"\nlocal_ip = \"{}\"\n", host.dev, host.ip);
    for v in vnis {
        c.push_str(&format!("[[vni]]\nvni = {v}\n"));
    }
    for (p, v) in ports {
        c.push_str(&format!("[[port]]\niface = \"{p}\"\nvni = {v}\n"));
    }
    c.push_str(&format!("[evpn]\nasn = {asn}\n"));
    for p in peers {
        c.push_str(&format!("[[evpn.peer]]\naddress = \"{p}\"\n"));
    }
    c
}
