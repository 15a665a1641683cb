//! Stats slots: the indices userspace hands out into the per-CPU stats
//! arrays (`VNI_STATS`, `PEER_STATS`), so the datapath counts with an
//! array access instead of a hash lookup.

use std::{collections::BTreeSet, ops::Range};

use aya::{
    Pod,
    maps::{MapData, PerCpuArray, PerCpuValues},
    util::nr_cpus,
};

use super::map::MapFault;

/// Slots handed out from a range, the ones in use read once per
/// invocation when first needed (a config with many VNIs or remotes must
/// not rescan a table for each), the search going on from the last slot
/// handed out (wrapping around), so many allocations cost one pass.
#[derive(Default)]
pub struct Slots {
    used: Option<BTreeSet<u32>>,
    hint: u32,
}

impl Slots {
    /// A slot in `range` not in use (`in_use` lists them on first call).
    pub fn take(
        &mut self,
        range: Range<u32>,
        in_use: impl FnOnce() -> Result<BTreeSet<u32>, MapFault>,
    ) -> Result<Option<u32>, MapFault> {
        let used = match &mut self.used {
            Some(u) => u,
            None => self.used.insert(in_use()?),
        };
        let start = self.hint.clamp(range.start, range.end);
        let Some(slot) = (start..range.end)
            .chain(range.start..start)
            .find(|s| !used.contains(s))
        else {
            return Ok(None);
        };
        used.insert(slot);
        self.hint = slot + 1;
        Ok(Some(slot))
    }

    /// `slot` is free again.
    pub fn release(&mut self, slot: u32) {
        if let Some(used) = &mut self.used {
            used.remove(&slot);
        }
    }
}

/// Counters kept per slot, zeroed when a slot is handed out.
pub trait SlotCounters {
    /// Zeroes `slot` (on every CPU).
    fn reset(&mut self, slot: u32) -> Result<(), MapFault>;
}

impl<V: Pod + Default> SlotCounters for PerCpuArray<MapData, V> {
    fn reset(&mut self, slot: u32) -> Result<(), MapFault> {
        let cpus = nr_cpus().map_err(|(_, e)| MapFault::Cpus(e))?;
        let zero = PerCpuValues::try_from(vec![V::default(); cpus]).map_err(MapFault::Cpus)?;
        Ok(self.set(slot, zero, 0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_wrap_and_come_back() {
        let mut s = Slots::default();
        let none = || Ok(BTreeSet::from([1]));
        assert_eq!(s.take(0..3, none).unwrap(), Some(0));
        assert_eq!(s.take(0..3, none).unwrap(), Some(2));
        assert_eq!(s.take(0..3, none).unwrap(), None);
        s.release(0);
        assert_eq!(s.take(0..3, none).unwrap(), Some(0));
    }
}
