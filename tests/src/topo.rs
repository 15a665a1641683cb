//! Topologies the tests and the demo share: hosts on a routed underlay,
//! VMs behind ports, and the kernel's own vxlan + bridge as a reference
//! VTEP.

use crate::{Netns, veth};

/// VM MTU: a 1500-byte underlay leaves 1450 bytes for the inner frame's IP
/// packet after the 50 bytes of VXLAN encapsulation (the kernel vxlan
/// driver's default too).
pub const VM_MTU: &str = "1450";

/// A host on the underlay.
pub struct Host {
    pub ns: Netns,
    /// Underlay interface name in `ns`.
    pub dev: String,
    /// Underlay IPv4 address (no prefix).
    pub ip: String,
}

/// Hosts each in their own underlay subnet, joined by a router:
/// host i has 198.18.i.1/24 on `ul0`, its gateway is 198.18.i.254.
pub struct RoutedUnderlay {
    pub router: Netns,
    pub hosts: Vec<Host>,
}

impl RoutedUnderlay {
    pub fn new(n: u8) -> Self {
        let router = Netns::new("rt");
        router.ok(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        let mut hosts = Vec::new();
        for i in 1..=n {
            let ns = Netns::new(&format!("h{i}"));
            let r_dev = format!("r{i}");
            veth(&router, &r_dev, &ns, "ul0");
            router.addr(&r_dev, &format!("198.18.{i}.254/24"));
            router.wire(&r_dev);
            let ip = format!("198.18.{i}.1");
            ns.addr("ul0", &format!("{ip}/24"));
            ns.wire("ul0");
            ns.ok(&[
                "ip",
                "route",
                "add",
                "198.18.0.0/16",
                "via",
                &format!("198.18.{i}.254"),
            ]);
            hosts.push(Host {
                ns,
                dev: "ul0".into(),
                ip,
            });
        }
        RoutedUnderlay { router, hosts }
    }
}

/// A VM: a namespace whose `eth0` is the peer of a port on its host, with
/// default offloads (TSO, GSO, checksum offload on), as containers have.
pub struct Vm {
    pub ns: Netns,
    /// Tenant IPv4 address (no prefix).
    pub ip: String,
    pub mac: String,
}

/// A VM behind port `port` on `host`, with tenant address `cidr` and `mac`.
pub fn vm(host: &Netns, port: &str, cidr: &str, mac: &str) -> Vm {
    let ns = Netns::new("vm");
    veth(host, port, &ns, "eth0");
    host.ok(&["ip", "link", "set", port, "up"]);
    ns.ok(&["ip", "link", "set", "eth0", "address", mac, "mtu", VM_MTU]);
    ns.addr("eth0", cidr);
    Vm {
        ns,
        ip: cidr.split('/').next().unwrap_or(cidr).to_owned(),
        mac: mac.to_owned(),
    }
}

/// Makes `host` a VTEP with the Linux kernel's vxlan driver and a bridge:
/// VNI `vni` (device `vx<vni>`, bridge `br<vni>`), no data-plane learning
/// on the vxlan device, head-end replication to `flood`, and `ports`
/// enslaved to the bridge.
pub fn kernel_vtep(host: &Host, vni: u32, flood: &[&str], ports: &[&str]) {
    let vx = format!("vx{vni}");
    let br = format!("br{vni}");
    let ns = &host.ns;
    ns.ok(&["ip", "link", "add", &br, "type", "bridge"]);
    ns.ok(&[
        "ip",
        "link",
        "add",
        &vx,
        "type",
        "vxlan",
        "id",
        &vni.to_string(),
        "local",
        &host.ip,
        "dstport",
        "4789",
        "dev",
        &host.dev,
        "nolearning",
    ]);
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
    for p in ports {
        ns.ok(&["ip", "link", "set", p, "master", &br]);
    }
    ns.ok(&["ip", "link", "set", &vx, "up"]);
    ns.ok(&["ip", "link", "set", &br, "up"]);
}
