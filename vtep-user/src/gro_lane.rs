//! An instance's GRO lane, where its underlay runs no XDP (the kernel side
//! and why: `vtep-ebpf/src/lane.rs`): a veth pair next to the underlay,
//! `vtl<N>s` (frames sent in; TSO off, without which a veth's frames are
//! not for its peer's GRO) and `vtl<N>r` (GRO on; its TC ingress hands
//! what GRO made to the ports), `N` the underlay's ifindex. The receiving
//! end takes no frame as checksum-verified on the veth's word (a frame off
//! a real wire keeps its inner TCP checksum checked, by GRO), and neither
//! end speaks IPv6 of its own.

use anyhow::Context as _;

use crate::{netlink::Rtnl, sys};

/// The lane's MTU: the largest a veth takes, so that no port's frames are
/// too big for it.
const MTU: u32 = 65535;

/// The lane's two ends for underlay `underlay_ifindex`: (sending,
/// receiving).
pub fn names(underlay_ifindex: u32) -> (String, String) {
    (
        format!("vtl{underlay_ifindex}s"),
        format!("vtl{underlay_ifindex}r"),
    )
}

/// Makes the lane of underlay `underlay_ifindex`: the sending end's
/// ifindex. Nothing is left behind on failure.
pub fn create(underlay_ifindex: u32) -> anyhow::Result<u32> {
    let (send, recv) = names(underlay_ifindex);
    let mut rtnl = Rtnl::open()?;
    rtnl.add_veth_pair(&send, &recv, MTU).with_context(|| {
        format!("cannot make the GRO lane (if '{send}' is left from an instance gone, `ip link del {send}`)")
    })?;
    let ifindex = sys::ifindex(&send)?;
    let mut set_up = || -> anyhow::Result<()> {
        for end in [&send, &recv] {
            rtnl.set_up(sys::ifindex(end)?)?;
        }
        sys::set_gro(&recv, true)?;
        sys::set_rx_checksum(&recv, false)?;
        // A veth sending with TSO on keeps its frames from its peer's GRO.
        sys::set_tso(&send, false)?;
        for end in [&send, &recv] {
            sys::disable_ipv6(end)?;
        }
        Ok(())
    };
    if let Err(e) = set_up() {
        remove(underlay_ifindex, ifindex);
        return Err(e);
    }
    Ok(ifindex)
}

/// Removes the lane of underlay `underlay_ifindex` whose sending end is
/// `ifindex` (both ends go), if it is still there (by that index and its
/// name); a failure is only logged (nothing else depends on it).
pub fn remove(underlay_ifindex: u32, ifindex: u32) {
    let (send, _) = names(underlay_ifindex);
    if sys::ifname(ifindex) != send {
        return;
    }
    if let Err(e) = Rtnl::open().and_then(|mut r| r.delete_link(ifindex)) {
        log::warn!("the GRO lane {send} stays: {e}");
    }
}
