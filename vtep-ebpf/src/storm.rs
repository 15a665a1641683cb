//! Storm control: a token bucket per VNI on BUM frames from its ports.
//!
//! The bucket is shared by all CPUs (one entry per VNI stats slot in
//! `BUM_BUCKETS`); concurrent updates race without locks, which can let a
//! few frames more or fewer through but never stalls a CPU. The burst is
//! 50 ms worth of frames (at least one).

use aya_ebpf::helpers::bpf_ktime_get_coarse_ns;

use crate::maps::BUM_BUCKETS;

/// Whether one more BUM frame of the VNI in `slot` fits in `pps`.
#[inline(always)]
pub fn allow(slot: u32, pps: u32) -> bool {
    let Some(b) = BUM_BUCKETS.get_ptr_mut(slot) else {
        return true;
    };
    // SAFETY: map values stay valid for the duration of the program.
    let b = unsafe { &mut *b };
    // SAFETY: plain helper call.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let burst = u64::from(pps / 20).max(1) * 1000;
    // At most a second of refill: the burst is smaller, and the product
    // below stays far from overflow.
    let elapsed = now.saturating_sub(b.last_ns).min(1_000_000_000);
    let tokens = (b.tokens_milli + elapsed * u64::from(pps) / 1_000_000).min(burst);
    b.last_ns = now;
    if tokens >= 1000 {
        b.tokens_milli = tokens - 1000;
        true
    } else {
        b.tokens_milli = tokens;
        false
    }
}
