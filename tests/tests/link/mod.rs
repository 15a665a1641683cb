//! What the kernel says of a test's links (over rtnetlink, as `vtep`
//! asks it).

use vtep_tests::Netns;

/// The room interface `dev` of `ns` asks senders to leave in front of
/// their frames (IFLA_HEADROOM), and the name of its master ("" if none).
pub fn headroom_and_master(ns: &Netns, dev: &str) -> (u16, String) {
    vtep_tests::in_netns(&ns.name, || {
        let ifindex = vtep_user::sys::ifindex(dev)?;
        let link = vtep_user::netlink::Rtnl::open()?.link(ifindex)?;
        let master = if link.master == 0 {
            String::new()
        } else {
            vtep_user::sys::ifname(link.master)
        };
        Ok((link.headroom, master))
    })
    .expect("link")
}
