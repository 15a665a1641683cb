//! An instance's merge device, where its underlay runs no XDP (the kernel
//! side and why: `vtep-ebpf/src/decap/merged.rs`): `vtx<N>`, `N` the
//! underlay's ifindex, a kernel vxlan device in metadata mode on the
//! instance's UDP port. Its socket is what lets the underlay's GRO merge
//! VXLAN packets (a VM's TCP segments) per inner flow; its TC ingress
//! runs `vtep_decap_merged`. Its own GRO is off (what reaches it is
//! merged already: GRO again would only queue it once more), and it
//! speaks no IPv6 of its own.

use anyhow::Context as _;

use crate::{netlink::Rtnl, sys};

/// The merge device's name for underlay `underlay_ifindex`.
pub fn name(underlay_ifindex: u32) -> String {
    format!("vtx{underlay_ifindex}")
}

/// Makes the merge device of underlay `underlay_ifindex` on UDP port
/// `udp_port`: its ifindex. Nothing is left behind on failure.
pub fn create(underlay_ifindex: u32, udp_port: u16) -> anyhow::Result<u32> {
    let name = name(underlay_ifindex);
    let mut rtnl = Rtnl::open()?;
    rtnl.add_vxlan_metadata(&name, udp_port).with_context(|| {
        format!(
            "cannot make the merge device '{name}' (if it is left from an instance gone, \
             `ip link del {name}`; one vxlan device in metadata mode per UDP port and namespace)"
        )
    })?;
    let ifindex = sys::ifindex(&name)?;
    let mut set_up = || -> anyhow::Result<()> {
        sys::disable_ipv6(&name)?;
        sys::set_gro(&name, false)?;
        rtnl.set_up(ifindex).with_context(|| {
            format!("is UDP port {udp_port} taken by another socket in this namespace?")
        })?;
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
