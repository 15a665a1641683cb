//! One map, as the table rules see it: get, put, delete, list, with each
//! failure classified once (absent is `None`, never an error; full,
//! denied and other failures are kept apart), whatever holds the entries:
//! a pinned BPF hash map, or a `BTreeMap` in the unit tests.

use aya::{
    Pod,
    maps::{HashMap, MapData, MapError},
};

use vtep_common::maps::{FdbKey, RemoteKey};

use crate::{cause::Cause, generation::Generation};

/// Why a map operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MapFault {
    /// The map has no room for another key.
    #[error("full")]
    Full,
    /// The kernel refused the operation to this process.
    #[error("permission denied: {}", Cause(.0.as_ref()))]
    Denied(Box<MapError>),
    /// The per-CPU values cannot be sized.
    #[error("cannot count the possible CPUs: {0}")]
    Cpus(std::io::Error),
    /// Anything else the kernel or aya reported.
    #[error("{}", Cause(.0.as_ref()))]
    Other(Box<MapError>),
}

/// Whether `e` says "no such key".
fn is_absent(e: &MapError) -> bool {
    match e {
        MapError::KeyNotFound => true,
        MapError::SyscallError(s) => s.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
    }
}

impl MapFault {
    /// Classifies an aya error; `None` for "no such key".
    pub fn classify(e: MapError) -> Option<Self> {
        (!is_absent(&e)).then(|| e.into())
    }
}

impl From<MapError> for MapFault {
    /// A failed write or a failed read of a slot that must exist: "no
    /// such key" is an error like any other here.
    fn from(e: MapError) -> Self {
        let errno = match &e {
            MapError::SyscallError(s) => s.io_error.raw_os_error(),
            _ => None,
        };
        match errno {
            Some(libc::E2BIG | libc::ENOMEM | libc::ENOSPC) => MapFault::Full,
            Some(libc::EPERM | libc::EACCES) => MapFault::Denied(Box::new(e)),
            _ => MapFault::Other(Box::new(e)),
        }
    }
}

/// A key-value table.
pub trait KvMap<K, V> {
    /// The value of `key`, `None` if there is none.
    fn lookup(&self, key: &K) -> Result<Option<V>, MapFault>;
    /// Adds or replaces `key`.
    fn put(&mut self, key: K, value: V) -> Result<(), MapFault>;
    /// Removes `key`; whether it was there.
    fn delete(&mut self, key: &K) -> Result<bool, MapFault>;
    /// Every entry, in no particular order.
    fn entries(&self) -> Result<Vec<(K, V)>, MapFault>;
}

/// `Ok(None)` for an absent key, the classified error otherwise.
fn absent_or<T>(r: Result<T, MapError>) -> Result<Option<T>, MapFault> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) => MapFault::classify(e).map_or(Ok(None), Err),
    }
}

impl<K: Pod, V: Pod> KvMap<K, V> for HashMap<MapData, K, V> {
    fn lookup(&self, key: &K) -> Result<Option<V>, MapFault> {
        absent_or(HashMap::get(self, key, 0))
    }

    fn put(&mut self, key: K, value: V) -> Result<(), MapFault> {
        Ok(self.insert(key, value, 0)?)
    }

    fn delete(&mut self, key: &K) -> Result<bool, MapFault> {
        absent_or(self.remove(key)).map(|r| r.is_some())
    }

    fn entries(&self) -> Result<Vec<(K, V)>, MapFault> {
        // An entry deleted while the map is walked is simply not listed.
        let mut out = Vec::new();
        for item in self.iter() {
            if let Some(kv) = absent_or(item)? {
                out.push(kv);
            }
        }
        Ok(out)
    }
}

/// A key that names its VNI.
pub trait InVni {
    fn vni(&self) -> u32;
}

impl InVni for FdbKey {
    fn vni(&self) -> u32 {
        self.vni
    }
}

impl InVni for RemoteKey {
    fn vni(&self) -> u32 {
        self.vni
    }
}

/// `VNIS`' key: the VNI itself.
impl InVni for u32 {
    fn vni(&self) -> u32 {
        *self
    }
}

/// A table the decap decision cache reads (FDB, LEARNED, REMOTES, and
/// for group policy MEMBERS and VNIS; PORTS' writers bump by hand): reads
/// go straight to the map; every change is followed by a bump of the
/// generation of the entry's VNI, so that no decision cached before it is
/// used after.
pub struct Watched<M> {
    map: M,
    generation: std::rc::Rc<Generation>,
}

impl<M> Watched<M> {
    /// `map`, whose changes bump `generation`.
    pub fn new(map: M, generation: std::rc::Rc<Generation>) -> Self {
        Self { map, generation }
    }
}

impl<K: InVni, V, M: KvMap<K, V>> KvMap<K, V> for Watched<M> {
    fn lookup(&self, key: &K) -> Result<Option<V>, MapFault> {
        self.map.lookup(key)
    }

    fn put(&mut self, key: K, value: V) -> Result<(), MapFault> {
        let vni = key.vni();
        let r = self.map.put(key, value);
        self.generation.bump(vni);
        r
    }

    fn delete(&mut self, key: &K) -> Result<bool, MapFault> {
        let r = self.map.delete(key);
        self.generation.bump(key.vni());
        r
    }

    fn entries(&self) -> Result<Vec<(K, V)>, MapFault> {
        self.map.entries()
    }
}

/// A table in memory with a capacity, for unit tests of the rules.
#[cfg(test)]
#[derive(Debug)]
pub struct MemMap<K, V> {
    pub entries: std::collections::BTreeMap<K, V>,
    pub capacity: usize,
}

#[cfg(test)]
impl<K, V> MemMap<K, V> {
    /// An empty table holding at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: std::collections::BTreeMap::new(),
            capacity,
        }
    }
}

#[cfg(test)]
impl<K: Ord + Copy, V: Copy> KvMap<K, V> for MemMap<K, V> {
    fn lookup(&self, key: &K) -> Result<Option<V>, MapFault> {
        Ok(self.entries.get(key).copied())
    }

    fn put(&mut self, key: K, value: V) -> Result<(), MapFault> {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            return Err(MapFault::Full);
        }
        self.entries.insert(key, value);
        Ok(())
    }

    fn delete(&mut self, key: &K) -> Result<bool, MapFault> {
        Ok(self.entries.remove(key).is_some())
    }

    fn entries(&self) -> Result<Vec<(K, V)>, MapFault> {
        Ok(self.entries.iter().map(|(k, v)| (*k, *v)).collect())
    }
}

#[cfg(test)]
mod tests {
    use aya::sys::SyscallError;

    use super::*;
    use crate::tables::TableError;

    /// As `vtep` prints an error (`{e:#}`) and as a warning logs one
    /// (`{e}`): the kernel's reason, once.
    #[test]
    fn a_map_fault_names_the_kernel_s_reason_once() {
        let syscall = || {
            Box::new(MapError::SyscallError(SyscallError {
                call: "bpf_map_update_elem",
                io_error: std::io::Error::from_raw_os_error(libc::E2BIG),
            }))
        };
        for fault in [MapFault::Other(syscall()), MapFault::Denied(syscall())] {
            let e = TableError::map("write", "fdb")(fault);
            let logged = e.to_string();
            let printed = format!("{:#}", anyhow::Error::from(e));
            for shown in [logged, printed] {
                assert!(shown.starts_with("cannot write the fdb table: "), "{shown}");
                assert!(shown.contains("`bpf_map_update_elem` failed"), "{shown}");
                assert_eq!(
                    shown.matches("Argument list too long").count(),
                    1,
                    "{shown}"
                );
            }
        }
    }
}
