//! `vtep events`: a line per learned, moved, aged-out and frozen MAC.

use std::{
    os::fd::AsRawFd as _,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use aya::maps::{MapData, RingBuf};
use serde_json::json;
use vtep_common::{
    consts::MAP_EVENTS,
    maps::{MacEvent, MacEventKind},
};

use crate::{
    domain::Edit,
    instance::{Instance, coarse_now_ns},
    sys,
    values::{Mac, ip_from_map},
};

/// Follow MAC mobility: one line per MAC learned, moved, aged out or
/// frozen, with its VNI, old and new location and a timestamp, until
/// interrupted. The kernel programs report learned, moved and frozen
/// MACs; this command also removes learned MACs idle for the ageing time
/// and reports them as aged. One reader at a time.
///
/// Example: vtep events --json
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// One JSON object per line: {time, vni, mac, event, old, new}.
    #[arg(long)]
    json: bool,
}

/// A location as the event's JSON and text show it.
fn place(remote: u32, ifindex: u32) -> (serde_json::Value, String) {
    match (remote, ifindex) {
        (0, 0) => (serde_json::Value::Null, "-".into()),
        (0, i) => {
            let name = sys::ifname(i);
            (json!({ "port": name }), format!("port {name}"))
        }
        (r, _) => {
            let ip = ip_from_map(r).to_string();
            (json!({ "remote": ip }), format!("remote {ip}"))
        }
    }
}

fn print(ev: &MacEvent, json_out: bool) {
    let Some(kind) = MacEventKind::from_u32(ev.kind) else {
        return;
    };
    // Event times are CLOCK_MONOTONIC_COARSE: place them on the wall clock.
    let ago = Duration::from_nanos(coarse_now_ns().saturating_sub(ev.ts_ns));
    let time = SystemTime::now()
        .checked_sub(ago)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    let (old_j, old_t) = place(ev.old_remote, ev.old_ifindex);
    let (new_j, new_t) = place(ev.new_remote, ev.new_ifindex);
    let mac = Mac(ev.mac).to_string();
    if json_out {
        let line = json!({ "time": time, "event": kind.name(), "vni": ev.vni, "mac": mac,
            "old": old_j, "new": new_j });
        println!("{line}");
    } else {
        println!(
            "{time:.3} {:<7} vni {} {mac} {old_t} -> {new_t}",
            kind.name(),
            ev.vni
        );
    }
}

pub fn run(args: Args, inst: &Instance) -> anyhow::Result<()> {
    inst.require_up()?;
    let mut ring: RingBuf<MapData> = inst.map(MAP_EVENTS)?;
    let mut last_reap = Instant::now();
    loop {
        while let Some(item) = ring.next() {
            if item.len() >= size_of::<MacEvent>() {
                // SAFETY: the kernel programs write whole MacEvent records;
                // the length was checked and the read is unaligned-safe.
                let ev = unsafe { (item.as_ptr() as *const MacEvent).read_unaligned() };
                print(&ev, args.json);
            }
        }
        if last_reap.elapsed() >= Duration::from_secs(1) {
            let now = coarse_now_ns();
            // Another command holding the instance: reap at the next round.
            let stale = match Edit::try_begin(inst)? {
                Some(mut e) => e.reap_stale()?,
                None => Vec::new(),
            };
            for (k, e) in stale {
                let ev = MacEvent {
                    ts_ns: now,
                    kind: MacEventKind::Aged as u32,
                    vni: k.vni,
                    mac: k.mac,
                    old_remote: e.remote,
                    old_ifindex: e.ifindex,
                    ..MacEvent::default()
                };
                print(&ev, args.json);
            }
            last_reap = Instant::now();
        }
        let mut pfd = libc::pollfd {
            fd: ring.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut pfd, 1, 200) };
    }
}
