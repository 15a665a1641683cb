//! Keeping the underlay next hops of remote VTEPs resolved.
//!
//! Flood copies and non-IP frames (ARP) cannot wait in the kernel's
//! neighbour queue the way `bpf_redirect_neigh` lets IP unicast wait, so
//! the next hop of every remote VTEP gets a neighbour entry: where the host
//! has none, a *managed* one (`NTF_EXT_MANAGED`, Linux 5.16+), which the
//! kernel resolves at once and keeps resolved, so `bpf_fib_lookup` always
//! finds its MAC. An entry the host already has is left alone.
//!
//! iproute2's `ip` does the netlink work (it is a prerequisite of the
//! project, installed by `cargo xtask setup`).

use std::{net::Ipv4Addr, process::Command};

use anyhow::{Context as _, bail};
use serde::Deserialize;

#[derive(Deserialize)]
struct Route {
    gateway: Option<String>,
    dev: String,
}

fn ip(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run `ip` (install iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The next hop (gateway, or the remote itself when on-link) and interface
/// the kernel routes `remote` through from `local`.
pub fn next_hop(remote: Ipv4Addr, local: Ipv4Addr) -> anyhow::Result<(Ipv4Addr, String)> {
    let json = ip(&[
        "-4",
        "-j",
        "route",
        "get",
        &remote.to_string(),
        "from",
        &local.to_string(),
    ])?;
    let routes: Vec<Route> = serde_json::from_str(&json).context("cannot parse `ip route get`")?;
    let r = routes
        .into_iter()
        .next()
        .with_context(|| format!("no route to remote VTEP {remote}"))?;
    let hop = match r.gateway {
        Some(g) => g.parse().with_context(|| format!("bad gateway '{g}'"))?,
        None => remote,
    };
    Ok((hop, r.dev))
}

/// Makes sure the next hop towards `remote` has a neighbour entry: one
/// that exists is the host's and is left as it is (permanent, or kept
/// fresh by the host's own traffic); where there is none, a managed entry
/// is created. Returns the hop, its interface and whether `vtep` created
/// the entry (then `vtep down` removes it).
pub fn keep_resolved(
    remote: Ipv4Addr,
    local: Ipv4Addr,
) -> anyhow::Result<(Ipv4Addr, String, bool)> {
    let (hop, dev) = next_hop(remote, local)?;
    let existing = ip(&["-4", "neigh", "show", &hop.to_string(), "dev", &dev])?;
    if !existing.trim().is_empty() {
        return Ok((hop, dev, false));
    }
    ip(&["neigh", "add", &hop.to_string(), "dev", &dev, "managed"])
        .with_context(|| format!("cannot make {hop} on {dev} a managed neighbour"))?;
    Ok((hop, dev, true))
}

/// Removes the neighbour entry of `hop` on `dev` (one `vtep` created).
pub fn forget(hop: Ipv4Addr, dev: &str) -> anyhow::Result<()> {
    ip(&["neigh", "del", &hop.to_string(), "dev", dev])?;
    Ok(())
}
