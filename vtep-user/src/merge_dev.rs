//! An instance's merge device, where its underlay runs no XDP (the kernel
//! side and why: `vtep-ebpf/src/decap/merged.rs`): `vtx<N>`, `N` the
//! underlay's ifindex, a kernel vxlan device in metadata mode on the
//! instance's UDP port. Its socket is what lets the underlay's GRO merge
//! VXLAN packets (a VM's TCP segments) per inner flow; its TC ingress
//! runs `vtep_decap_merged`. Its own GRO is off (what reaches it is
//! merged already: GRO again would only queue it once more), and it
//! speaks no IPv6 of its own.

use crate::{netlink::Rtnl, sys};

/// The merge device's name for underlay `underlay_ifindex`.
pub fn name(underlay_ifindex: u32) -> String {
    format!("vtx{underlay_ifindex}")
}

/// The merge device could not be made or brought up (`--xdp-mode auto`
/// on a veth then decapsulates in XDP).
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot make the merge device '{name}' on UDP port {port} ({reason}); if it is left from \
     an instance gone, `ip link del {name}`; one vxlan device in metadata mode fits a UDP port \
     and namespace, and no other socket may hold the port: give this instance another \
     --udp-port, or --xdp-mode native"
)]
pub struct NoMergeDev {
    name: String,
    port: u16,
    reason: String,
}

/// Makes the merge device of underlay `underlay_ifindex` on UDP port
/// `udp_port`: its ifindex. Nothing is left behind on failure.
pub fn create(underlay_ifindex: u32, udp_port: u16) -> anyhow::Result<u32> {
    let name = name(underlay_ifindex);
    let failed = |e: &dyn std::fmt::Display| NoMergeDev {
        name: name.clone(),
        port: udp_port,
        reason: e.to_string(),
    };
    let mut rtnl = Rtnl::open()?;
    rtnl.add_vxlan_metadata(&name, udp_port)
        .map_err(|e| failed(&e))?;
    let ifindex = sys::ifindex(&name)?;
    let mut set_up = || -> anyhow::Result<()> {
        sys::disable_ipv6(&name)?;
        sys::set_gro(&name, false)?;
        rtnl.set_up(ifindex).map_err(|e| failed(&e))?;
        Ok(())
    };
    if let Err(e) = set_up() {
        remove(underlay_ifindex, ifindex);
        return Err(e);
    }
    Ok(ifindex)
}

/// Removes the merge device of underlay `underlay_ifindex` whose ifindex
/// is `ifindex`, if it is still there (by that index and its name); a
/// failure is only logged (nothing else depends on it).
pub fn remove(underlay_ifindex: u32, ifindex: u32) {
    let name = name(underlay_ifindex);
    if ifindex == 0 || sys::ifname(ifindex) != name {
        return;
    }
    if let Err(e) = Rtnl::open().and_then(|mut r| r.delete_link(ifindex)) {
        log::warn!("the merge device {name} stays: {e}");
    }
}
