//! Topologies the tests and the demo share: hosts on a routed underlay,
//! VMs behind ports, and the kernel's own vxlan + bridge as a reference
//! VTEP.

use crate::{Netns, veth};

/// VM MTU: a 1500-byte underlay leaves 1450 bytes for the inner frame's IP
/// packet after the 50 bytes of VXLAN encapsulation (the kernel vxlan
/// driver's default too).
pub const VM_MTU: &str = "1450";

/// The underlay's address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// 198.18.0.0/16.
    V4,
    /// 2001:2::/48 (the hosts' /64s are 2001:2:0:i::/64).
    V6,
}

impl Family {
    /// The VM MTU that fits the underlay once encapsulated: 1500 less 50
    /// bytes over IPv4, 70 over IPv6 (RFC 7348 §4.3: no fragmentation).
    pub fn vm_mtu(self) -> &'static str {
        match self {
            Family::V4 => VM_MTU,
            Family::V6 => "1430",
        }
    }

    fn netns(self, tag: &str) -> Netns {
        match self {
            Family::V4 => Netns::new(tag),
            Family::V6 => Netns::with_ipv6(tag),
        }
    }
}

/// A host on the underlay.
pub struct Host {
    pub ns: Netns,
    /// Underlay interface name in `ns`.
    pub dev: String,
    /// Underlay address (no prefix).
    pub ip: String,
}

impl Host {
    /// Packets the merge device of an instance decapsulating in TC here
    /// received (`vtx<N>`: what GRO merged on the underlay).
    pub fn merged_packets(&self) -> u64 {
        let links: serde_json::Value = serde_json::from_str(
            &self
                .ns
                .ok(&["ip", "-s", "-j", "-d", "link", "show", "type", "vxlan"]),
        )
        .expect("ip -j");
        let dev = links
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["ifname"].as_str().is_some_and(|n| n.starts_with("vtx")))
            .unwrap_or_else(|| panic!("no merge device: {links}"));
        dev["stats64"]["rx"]["packets"]
            .as_u64()
            .expect("rx packets")
    }
}

/// Hosts each in their own underlay subnet, joined by a router: host i
/// has 198.18.i.1/24 on `ul0` and its gateway is 198.18.i.254, or over
/// IPv6 2001:2:0:i::1/64 and 2001:2:0:i::fe.
pub struct RoutedUnderlay {
    pub router: Netns,
    pub hosts: Vec<Host>,
    pub family: Family,
}

impl RoutedUnderlay {
    pub fn new(n: u8) -> Self {
        Self::of(Family::V4, n)
    }

    /// `n` hosts on an underlay of `family`.
    pub fn of(family: Family, n: u8) -> Self {
        let router = family.netns("rt");
        let (forwarding, net, prefix, len, gw) = match family {
            Family::V4 => (
                "net.ipv4.ip_forward=1",
                "198.18.0.0/16",
                "198.18.",
                24,
                "254",
            ),
            Family::V6 => (
                "net.ipv6.conf.all.forwarding=1",
                "2001:2::/48",
                "2001:2:0:",
                64,
                "fe",
            ),
        };
        router.ok(&["sysctl", "-qw", forwarding]);
        let mut hosts = Vec::new();
        for i in 1..=n {
            let ns = family.netns(&format!("h{i}"));
            let r_dev = format!("r{i}");
            veth(&router, &r_dev, &ns, "ul0");
            let (ip, gw) = match family {
                Family::V4 => (format!("{prefix}{i}.1"), format!("{prefix}{i}.{gw}")),
                Family::V6 => (format!("{prefix}{i}::1"), format!("{prefix}{i}::{gw}")),
            };
            router.addr(&r_dev, &format!("{gw}/{len}"));
            router.wire(&r_dev);
            ns.addr("ul0", &format!("{ip}/{len}"));
            ns.wire("ul0");
            ns.ok(&["ip", "route", "add", net, "via", &gw]);
            hosts.push(Host {
                ns,
                dev: "ul0".into(),
                ip,
            });
        }
        RoutedUnderlay {
            router,
            hosts,
            family,
        }
    }
}

/// A VM: a namespace whose `eth0` is the peer of a port on its host, with
/// default offloads (TSO, GSO, checksum offload on), as containers have.
pub struct Vm {
    pub ns: Netns,
    /// Tenant IPv4 address (no prefix).
    pub ip: String,
    /// Tenant IPv6 address (no prefix), for VMs of an IPv6 overlay.
    pub ip6: Option<String>,
    pub mac: String,
}

/// A VM behind port `port` on `host`, with tenant address `cidr` and `mac`.
pub fn vm(host: &Netns, port: &str, cidr: &str, mac: &str) -> Vm {
    vm_on(Family::V4, host, port, cidr, mac)
}

/// As [`vm`], for an overlay over `family`: over IPv6 the VM also has
/// IPv6 (its MTU fits the underlay either way).
pub fn vm_on(family: Family, host: &Netns, port: &str, cidr: &str, mac: &str) -> Vm {
    let ns = family.netns("vm");
    veth(host, port, &ns, "eth0");
    host.ok(&["ip", "link", "set", port, "up"]);
    ns.ok(&[
        "ip",
        "link",
        "set",
        "eth0",
        "address",
        mac,
        "mtu",
        family.vm_mtu(),
    ]);
    ns.addr("eth0", cidr);
    let ip = cidr.split('/').next().unwrap_or(cidr).to_owned();
    let ip6 = (family == Family::V6).then(|| {
        let host_part = ip.rsplit('.').next().unwrap_or("1");
        let ip6 = format!("{TENANT6}{host_part}");
        ns.ok(&["ip", "addr", "add", &format!("{ip6}/64"), "dev", "eth0"]);
        ip6
    });
    Vm {
        ns,
        ip,
        ip6,
        mac: mac.to_owned(),
    }
}

/// The tenant IPv6 prefix of VMs on an IPv6 overlay: VM i at
/// 2001:2:0:100::<i+1>/64, as its IPv4 address is 198.19.0.<i+1>.
pub const TENANT6: &str = "2001:2:0:100::";

/// Makes `host` a VTEP with the Linux kernel's vxlan driver and a bridge:
/// VNI `vni` (device `vx<vni>`, bridge `br<vni>`), no data-plane learning
/// on the vxlan device, head-end replication to `flood`, and `ports`
/// enslaved to the bridge.
pub fn kernel_vtep(host: &Host, vni: u32, flood: &[&str], ports: &[&str]) {
    let br = format!("br{vni}");
    let ns = &host.ns;
    ns.ok(&["ip", "link", "add", &br, "type", "bridge"]);
    for p in ports {
        ns.ok(&["ip", "link", "set", p, "master", &br]);
    }
    kernel_vxlan(host, vni, flood, &[]);
    ns.ok(&["ip", "link", "set", &br, "up"]);
}

/// The vxlan device `vx<vni>` of [`kernel_vtep`] on `host`, (re)made with
/// `extra` options (like `gbp`, which the kernel only takes at creation)
/// and enslaved to bridge `br<vni>`.
pub fn kernel_vxlan(host: &Host, vni: u32, flood: &[&str], extra: &[&str]) {
    let vx = format!("vx{vni}");
    let br = format!("br{vni}");
    let ns = &host.ns;
    // Absent the first time.
    let _ = ns.run(&["ip", "link", "del", &vx]);
    let vni_s = vni.to_string();
    let mut add = vec![
        "ip",
        "link",
        "add",
        &vx,
        "type",
        "vxlan",
        "id",
        &vni_s,
        "local",
        &host.ip,
        "dstport",
        "4789",
        "dev",
        &host.dev,
        "nolearning",
    ];
    // Over IPv6 a VTEP sends UDP checksum zero (RFC 6935), which the
    // kernel's vxlan only takes when told to (RFC 6936 §5).
    if host.ip.contains(':') {
        add.push("udp6zerocsumrx");
    }
    add.extend_from_slice(extra);
    ns.ok(&add);
    ns.ok(&["ip", "link", "set", &vx, "master", &br]);
    for remote in flood {
        ns.ok(&[
            "bridge",
            "fdb",
            "append",
            "00:00:00:00:00:00",
            "dev",
            &vx,
            "dst",
            remote,
        ]);
    }
    ns.ok(&["ip", "link", "set", &vx, "up"]);
}

/// Which VTEP runs on a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// This project's `vtep`.
    Ours,
    /// The kernel's vxlan driver + bridge (the reference peer).
    Kernel,
}

/// Tenants of [`Overlay`]: (VNI, MAC prefix). Both tenants use the same
/// VM addresses, 198.19.0.<host+1>/24; only the MACs differ.
pub const TENANTS: [(u32, &str); 2] = [(100, "02:00:00:64:00"), (200, "02:00:00:c8:00")];

/// Hosts on a [`RoutedUnderlay`] (so the VTEPs are in different subnets),
/// each a VTEP of its `Kind`, each with one VM per tenant behind port
/// `p<vni>`, VM i at 198.19.0.<i+1>. Each VTEP floods to all the others;
/// no static FDB entries unless added.
pub struct Overlay {
    /// Our VTEP per host (`None` for a kernel host). Dropped first: `down`
    /// runs while the namespaces still exist.
    pub vteps: Vec<Option<crate::Vtep>>,
    /// VMs per host, per tenant (same order as [`TENANTS`]).
    pub vms: Vec<Vec<Vm>>,
    pub net: RoutedUnderlay,
    pub bpffs: crate::BpfFs,
}

impl Overlay {
    pub fn new(kinds: &[Kind], vtep_bin: &std::path::Path) -> Self {
        Self::with_up_args(kinds, vtep_bin, &[])
    }

    /// As [`Overlay::new`], with extra `vtep up` arguments for our VTEPs.
    pub fn with_up_args(kinds: &[Kind], vtep_bin: &std::path::Path, up_args: &[&str]) -> Self {
        Self::over(Family::V4, kinds, vtep_bin, up_args)
    }

    /// As [`Overlay::with_up_args`], over an underlay of `family`.
    pub fn over(
        family: Family,
        kinds: &[Kind],
        vtep_bin: &std::path::Path,
        up_args: &[&str],
    ) -> Self {
        let bpffs = crate::BpfFs::new();
        let net = RoutedUnderlay::of(family, kinds.len() as u8);
        let mut vteps = Vec::new();
        let mut vms = Vec::new();
        for (i, host) in net.hosts.iter().enumerate() {
            let others: Vec<&str> = net
                .hosts
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, h)| h.ip.as_str())
                .collect();
            let guests: Vec<Vm> = TENANTS
                .iter()
                .map(|(vni, mac)| {
                    vm_on(
                        family,
                        &host.ns,
                        &format!("p{vni}"),
                        &format!("198.19.0.{}/24", i + 1),
                        &format!("{mac}:{:02x}", i + 1),
                    )
                })
                .collect();
            let vtep = match kinds[i] {
                Kind::Kernel => {
                    for (vni, _) in TENANTS {
                        kernel_vtep(host, vni, &others, &[&format!("p{vni}")]);
                    }
                    None
                }
                Kind::Ours => {
                    let v = crate::Vtep::with_bin(&host.ns, &bpffs.dir, vtep_bin.to_owned());
                    let mut up = vec!["up", "--underlay", &host.dev, "--local-ip", &host.ip];
                    up.extend_from_slice(up_args);
                    v.ok(&up);
                    let flood = others.join(",");
                    for (vni, _) in TENANTS {
                        let vni = vni.to_string();
                        v.ok(&["vni", "add", &vni, "--flood", &flood]);
                        v.ok(&["port", "add", &format!("p{vni}"), "--vni", &vni]);
                    }
                    Some(v)
                }
            };
            vteps.push(vtep);
            vms.push(guests);
        }
        Overlay {
            vteps,
            vms,
            net,
            bpffs,
        }
    }

    /// The VM of `tenant` (index into [`TENANTS`]) on `host`.
    pub fn vm(&self, host: usize, tenant: usize) -> &Vm {
        &self.vms[host][tenant]
    }

    /// Static FDB entries for `tenant` on our VTEPs: each VM's MAC on its
    /// port locally, behind the other host's VTEP remotely.
    pub fn static_fdb(&self, tenant: usize) {
        let vni = TENANTS[tenant].0.to_string();
        let port = format!("p{vni}");
        for (i, v) in self.vteps.iter().enumerate() {
            let Some(v) = v else { continue };
            for (j, guests) in self.vms.iter().enumerate() {
                let mac = guests[tenant].mac.as_str();
                if i == j {
                    v.ok(&["fdb", "add", mac, "--vni", &vni, "--port", &port]);
                } else {
                    let remote = self.net.hosts[j].ip.as_str();
                    v.ok(&["fdb", "add", mac, "--vni", &vni, "--remote", remote]);
                }
            }
        }
    }

    /// The mobile VM (tenant 0's of host 0) gets a second interface,
    /// `eth1`, behind port `m100` on host `to` (ours), prepared ahead as a
    /// migration target is, down.
    pub fn prepare_target(&self, to: usize) -> &Vm {
        let mobile = self.vm(0, 0);
        let host = &self.net.hosts[to].ns;
        veth(host, "m100", &mobile.ns, "eth1");
        host.ok(&["ip", "link", "set", "m100", "up"]);
        mobile.ns.ok(&[
            "ip",
            "link",
            "set",
            "eth1",
            "address",
            &mobile.mac,
            "mtu",
            "1450",
        ]);
        let v = self.vteps[to].as_ref().expect("our VTEP on the target");
        v.ok(&["port", "add", "m100", "--vni", "100"]);
        mobile
    }

    /// Moves the mobile VM's address from eth0 to eth1 in one step, as a
    /// VM resumes on its new host (with `announce`, the kernel sends a
    /// gratuitous ARP as eth1 comes up); then its old port is removed.
    pub fn switch_over(&self, mobile: &Vm, announce: bool) {
        mobile.ns.ok(&[
            "sysctl",
            "-qw",
            &format!("net.ipv4.conf.eth1.arp_notify={}", u8::from(announce)),
        ]);
        mobile.ns.ok(&[
            "sh",
            "-c",
            "ip link set eth0 down && ip addr flush dev eth0 && ip addr add 198.19.0.1/24 dev eth1 && ip link set eth1 up",
        ]);
        let v = self.vteps[0].as_ref().expect("our VTEP on host 0");
        v.ok(&["port", "del", "p100"]);
    }

    /// Names of every namespace this overlay made.
    pub fn namespaces(&self) -> Vec<String> {
        let mut names = vec![self.net.router.name.clone()];
        names.extend(self.net.hosts.iter().map(|h| h.ns.name.clone()));
        names.extend(self.vms.iter().flatten().map(|g| g.ns.name.clone()));
        names
    }
}

/// Bytes one TCP transfer of `secs` seconds moves from `client` to
/// `server` (iperf3).
pub fn tcp_bytes(server: &Vm, client: &Vm, secs: u32) -> u64 {
    tcp_bytes_to(server, &server.ip, client, secs)
}

/// As [`tcp_bytes`], to the server's address `addr` (IPv4 or IPv6).
pub fn tcp_bytes_to(server: &Vm, addr: &str, client: &Vm, secs: u32) -> u64 {
    let v = iperf3(server, addr, client, &["-t", &secs.to_string()]);
    v["end"]["sum_received"]["bytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("no bytes in iperf3's report: {v}"))
}

/// The rate (bits/s of UDP payload) at which `server` received a UDP
/// stream `client` sent at `rate` (like "1G") for `secs` seconds.
pub fn udp_received_bps(server: &Vm, client: &Vm, rate: &str, secs: u32) -> f64 {
    let args = ["-u", "-b", rate, "-t", &secs.to_string()];
    let v = iperf3(server, &server.ip, client, &args);
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("no received rate in iperf3's report: {v}"))
}

/// One iperf3 run from `client` to `server` at `addr` with `args`: its
/// JSON report (the server's figures in `sum_received`).
fn iperf3(server: &Vm, addr: &str, client: &Vm, args: &[&str]) -> serde_json::Value {
    let _srv = server.ns.spawn(&["iperf3", "-s", "-1", "-B", addr]);
    for _ in 0..50 {
        let mut argv = vec!["iperf3", "-c", addr, "-J", "--connect-timeout", "500"];
        argv.extend_from_slice(args);
        let out = client.ns.run(&argv);
        // With -J, iperf3 exits 0 even when it cannot connect: the report
        // says so in "error". Retry until the server listens.
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if out.status.success() && v.get("error").is_none() {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("iperf3 from {} to {addr} never connected", client.ip);
}

pub use crate::raw::{flood_raw, send_raw};

/// The configuration of host 0 of a two-host [`Overlay`] of ours: VNI 100
/// flooding to host 1, its port p100.
pub const HOST0_CONFIG: &str = "underlay = \"ul0\"\nlocal_ip = \"198.18.1.1\"\n\
    [[vni]]\nvni = 100\nflood = [\"198.18.2.1\"]\n\
    [[port]]\niface = \"p100\"\nvni = 100\n";
