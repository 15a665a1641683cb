//! Tenant address bindings, the table of ARP and ND suppression
//! (`NEIGHS`): which MAC owns an IPv4 or IPv6 address in a VNI. Learned
//! from the ARP and Neighbor Discovery the data plane sees, configured
//! (`vtep neigh add`), or installed from EVPN routes.

use aya_ebpf::helpers::bpf_ktime_get_coarse_ns;
use vtep_common::{
    addr::Addr,
    maps::{Config, NEIGH_F_EVPN, NEIGH_F_STATIC, NeighEntry, NeighKey},
};

use crate::{maps::NEIGHS, parse::is_group};

/// A learned binding is refreshed at most this often (ns).
const REFRESH_NS: u64 = 1_000_000_000;

/// [`bind`] in a stack frame of its own (the encap program's is tight).
/// Its result must be used, as `learn::learn`'s (LLVM drops an unused
/// one, and the verifier refuses a subprogram that may exit with a stack
/// pointer in R0).
#[inline(never)]
pub fn learn(vni: u32, ip: &Addr, mac: &[u8; 6]) -> bool {
    bind(vni, ip, mac)
}

/// Learns that `ip` belongs to `mac` in `vni`; configured and EVPN
/// bindings are never replaced. Returns whether the binding is new (the
/// caller counts it).
#[inline(always)]
pub fn bind(vni: u32, ip: &Addr, mac: &[u8; 6]) -> bool {
    if ip.is_none() || is_group(mac) {
        return false;
    }
    let key = NeighKey { vni, ip: *ip };
    // SAFETY: plain helper call.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    if let Some(e) = NEIGHS.get_ptr_mut(key) {
        // SAFETY: map values stay valid for the duration of the program.
        let e = unsafe { &mut *e };
        // Configured and EVPN bindings are owned by userspace.
        if e.flags & (NEIGH_F_STATIC | NEIGH_F_EVPN) != 0 {
            return false;
        }
        if e.mac != *mac {
            e.mac = *mac;
            e.seen_ns = now;
        } else if now.saturating_sub(e.seen_ns) > REFRESH_NS {
            e.seen_ns = now;
        }
        return false;
    }
    let e = NeighEntry {
        mac: *mac,
        _pad: [0; 2],
        flags: 0,
        _pad2: 0,
        seen_ns: now,
    };
    NEIGHS.insert(key, e, 0).is_ok()
}

/// The MAC that owns `ip` in `vni`, if the binding holds: configured or
/// from EVPN, or learned and seen within the ageing time.
#[inline(always)]
pub fn owner(vni: u32, ip: &Addr, cfg: &Config) -> Option<[u8; 6]> {
    let e = NEIGHS.get_ptr(NeighKey { vni, ip: *ip })?;
    // SAFETY: map values stay valid for the duration of the program.
    let e = unsafe { &*e };
    if e.flags & (NEIGH_F_STATIC | NEIGH_F_EVPN) == 0 {
        // SAFETY: plain helper call.
        let age = unsafe { bpf_ktime_get_coarse_ns() }.saturating_sub(e.seen_ns);
        if age > u64::from(cfg.ageing_s) * 1_000_000_000 {
            return None;
        }
    }
    Some(e.mac)
}
