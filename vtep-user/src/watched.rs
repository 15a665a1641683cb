//! The `WATCHED` record: until when (`CLOCK_MONOTONIC_COARSE` ns) a
//! daemon vouches that it hears link, route and neighbour changes and
//! bumps the routes' generation on each; while it does, the datapath's
//! cached decisions live longer (vtep-common `caches::lifetime_ns`).

use aya::maps::{Array, MapData};
use vtep_common::consts::MAP_WATCHED;

use crate::{instance::Instance, sys};

/// Vouches for changes until `until` (0: no longer).
pub fn vouch(inst: &Instance, until: u64) -> anyhow::Result<()> {
    let mut record: Array<MapData, u64> = inst.map(MAP_WATCHED)?;
    record.set(0, until, 0)?;
    Ok(())
}

/// Whether a daemon vouches for changes now (no: also where the instance
/// has no record, being up from a build without it until its next `vtep
/// up`).
pub fn vouched(inst: &Instance) -> bool {
    inst.map::<Array<MapData, u64>>(MAP_WATCHED)
        .and_then(|r| Ok(r.get(&0, 0)?))
        .is_ok_and(|until| until > sys::coarse_now_ns())
}
