//! The tables' generation, from userspace: the one-`u64` `GENERATION` map,
//! mapped into this process so that a bump is an atomic add on the very
//! memory the kernel programs add to (a map update could undo a
//! concurrent bump by the datapath).
//!
//! The decap decision cache (vtep-ebpf `cache`) keeps a decision only for
//! the generation it was made in; every change to a table a decision reads
//! (FDB, LEARNED, REMOTES) is followed by a [`Generation::bump`].

use std::{
    os::fd::{AsFd, AsRawFd},
    path::Path,
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

use aya::maps::MapData;

/// Why the generation could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    #[error("cannot open the pinned map {path}: {source}")]
    Open {
        path: String,
        source: aya::maps::MapError,
    },
    #[error(
        "cannot map {path} into memory ({source}): was the instance made by an older build? \
         run `vtep down` and `vtep up`"
    )]
    Mmap {
        path: String,
        source: std::io::Error,
    },
}

/// The `GENERATION` map of an instance, mapped.
pub struct Generation {
    value: NonNull<AtomicU64>,
    len: usize,
    _map: MapData,
}

impl Generation {
    /// Maps the pinned `GENERATION` map at `path`.
    pub fn open(path: &Path) -> Result<Self, GenerationError> {
        let shown = || path.display().to_string();
        let map = MapData::from_pin(path).map_err(|source| GenerationError::Open {
            path: shown(),
            source,
        })?;
        // SAFETY: sysconf has no preconditions.
        let len = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        // SAFETY: a fresh shared mapping of the map's first page (an
        // array's values start at offset 0); the result is checked.
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
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(Self {
            value: NonNull::new(p.cast()).expect("mmap never returns null on success"),
            len,
            _map: map,
        })
    }

    fn atomic(&self) -> &AtomicU64 {
        // SAFETY: the mapping is page-aligned, lives as long as `self`, and
        // its first 8 bytes are the u64, which every writer (kernel programs
        // and userspace) only changes atomically.
        unsafe { self.value.as_ref() }
    }

    /// Marks every cached decision out of date. Call after a table change.
    pub fn bump(&self) {
        self.atomic().fetch_add(1, Ordering::SeqCst);
    }

    /// The generation now.
    pub fn get(&self) -> u64 {
        self.atomic().load(Ordering::SeqCst)
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `open`.
        unsafe { libc::munmap(self.value.as_ptr().cast(), self.len) };
    }
}
