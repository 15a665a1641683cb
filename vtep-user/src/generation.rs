//! The tables' generations, from userspace: the `GENERATION` map (one
//! `u64` per VNI slot, and the routes'), mapped into this process so that a bump is an
//! atomic add on the very memory the kernel programs add to (a map update
//! could undo a concurrent bump by the datapath).
//!
//! The decap decision cache (vtep-ebpf `cache`) keeps a decision only for
//! the generation of its VNI it was made in; every change to a table entry
//! a decision reads (FDB, LEARNED, REMOTES) is followed by a
//! [`Generation::bump`] of the entry's VNI.

use std::{
    os::fd::{AsFd, AsRawFd},
    path::Path,
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

use aya::maps::MapData;
use vtep_common::consts::{ROUTES_GENERATION, generation_slot};

use crate::cause::Cause;

/// Why the generation could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    #[error("cannot open the pinned map {path}: {}", Cause(err))]
    Open {
        path: String,
        err: aya::maps::MapError,
    },
    #[error(
        "cannot map {path} into memory ({err}): was the instance made by an older build? \
         run `vtep down` and `vtep up`"
    )]
    Mmap { path: String, err: std::io::Error },
}

/// The `GENERATION` map of an instance, mapped.
pub struct Generation {
    slots: NonNull<AtomicU64>,
    len: usize,
    _map: MapData,
}

impl Generation {
    /// Maps the pinned `GENERATION` map at `path`.
    pub fn open(path: &Path) -> Result<Self, GenerationError> {
        let shown = || path.display().to_string();
        let map =
            MapData::from_pin(path).map_err(|err| GenerationError::Open { path: shown(), err })?;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let len = ((ROUTES_GENERATION as usize + 1) * size_of::<u64>()).next_multiple_of(page);
        // SAFETY: a fresh shared mapping of the map's values (an array's
        // values start at offset 0, 8 bytes apart for a u64); the result
        // is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.fd().as_fd().as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(GenerationError::Mmap {
                path: shown(),
                err: std::io::Error::last_os_error(),
            });
        }
        Ok(Self {
            slots: NonNull::new(p.cast()).expect("mmap never returns null on success"),
            len,
            _map: map,
        })
    }

    /// The generation of `vni`'s slot.
    fn atomic(&self, vni: u32) -> &AtomicU64 {
        self.slot(generation_slot(vni))
    }

    /// Slot `slot` (at most `ROUTES_GENERATION`).
    fn slot(&self, slot: u32) -> &AtomicU64 {
        assert!(slot <= ROUTES_GENERATION);
        // SAFETY: the mapping is page-aligned, lives as long as `self`, and
        // holds ROUTES_GENERATION + 1 u64s (checked just above); every
        // writer (kernel programs and userspace) only changes them
        // atomically.
        unsafe { &*self.slots.as_ptr().add(slot as usize) }
    }

    /// Marks every cached next hop out of date. Call after a change to the
    /// host's routes, neighbours or links.
    pub fn bump_routes(&self) {
        self.slot(ROUTES_GENERATION).fetch_add(1, Ordering::SeqCst);
    }

    /// Marks every cached decision of `vni` out of date. Call after a
    /// change to a table entry of `vni`.
    pub fn bump(&self, vni: u32) {
        self.atomic(vni).fetch_add(1, Ordering::SeqCst);
    }

    /// The generation of `vni` now.
    pub fn get(&self, vni: u32) -> u64 {
        self.atomic(vni).load(Ordering::SeqCst)
    }

    /// Slot `slot` now (`ROUTES_GENERATION` is the routes').
    pub fn slot_value(&self, slot: u32) -> u64 {
        self.slot(slot).load(Ordering::SeqCst)
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `open`.
        unsafe { libc::munmap(self.slots.as_ptr().cast(), self.len) };
    }
}
