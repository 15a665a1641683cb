//! Loads and stores of packet memory at any alignment, a whole word at a
//! time.
//!
//! The BPF backend assumes that a wider access may need alignment, so a
//! `read_unaligned` or `write_unaligned` of a word becomes an access per
//! byte and the shifts and ORs that put the bytes together (a `u64`: 8
//! loads and 14 ALU instructions). Headers in packets are not aligned (the
//! inner Ethernet header of a VXLAN frame starts 50 bytes in), so the
//! datapath paid that on every address, MAC pair, port and outer header
//! word. On hosts with efficient unaligned access (x86-64, arm64:
//! `CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS`) the verifier accepts a
//! misaligned access to packet memory (never to the stack) and the JIT
//! emits one machine load or store for it: these functions emit that one
//! BPF instruction per word. (LLVM's `allows-misaligned-mem-access`
//! would do the same for every access, the stack's included, which the
//! verifier refuses: tried.)
//!
//! Values are as `read_unaligned` would give them: the bytes in memory
//! order, in native (little-endian) words.
//!
//! Precondition of every function: `[at, at + size)` lies within packet
//! memory (or the XDP metadata area), checked against its end by the
//! caller before the call on a pointer the verifier relates to `at` (else
//! it refuses the program).

use core::{arch::asm, mem::MaybeUninit};

/// One load and one store per word size: `$load(at)` returns the word at
/// `at`, `$store(at, v)` writes `v` there, each one BPF instruction of
/// width `$width`; `$load_off::<OFF>(base)` and `$store_off::<OFF>(base,
/// v)` do the same at `base + OFF` with the offset in the instruction
/// (a field of a header: no address computed into a register first, two
/// instructions fewer per access).
macro_rules! word_access {
    ($ty:ty, $width:literal, $load:ident, $store:ident) => {
        #[doc = concat!("The ", stringify!($ty), " at `at`.")]
        ///
        /// # Safety
        /// See the module docs.
        #[inline(always)]
        pub unsafe fn $load(at: usize) -> $ty {
            let v: u64;
            // SAFETY: the caller guarantees the bytes are readable packet
            // memory; the instruction only reads them.
            unsafe {
                asm!(concat!("{v} = *(", $width, " *)({at} + 0)"), v = out(reg) v,
                     at = in(reg) at, options(readonly, nostack, preserves_flags));
            }
            v as $ty
        }

        #[doc = concat!("Writes the ", stringify!($ty), " `v` at `at`.")]
        ///
        /// # Safety
        /// See the module docs; the memory is also writable.
        #[inline(always)]
        pub unsafe fn $store(at: usize, v: $ty) {
            // SAFETY: the caller guarantees the bytes are writable packet
            // memory; the instruction writes only them.
            unsafe {
                asm!(concat!("*(", $width, " *)({at} + 0) = {v}"), at = in(reg) at,
                     v = in(reg) v as u64, options(nostack, preserves_flags));
            }
        }
    };
    ($ty:ty, $width:literal, $load:ident, $store:ident, $load_off:ident, $store_off:ident) => {
        word_access!($ty, $width, $load, $store);

        #[doc = concat!("The ", stringify!($ty), " at `base + OFF`.")]
        ///
        /// # Safety
        /// See the module docs, for the bytes at `base + OFF`.
        #[inline(always)]
        pub unsafe fn $load_off<const OFF: usize>(base: usize) -> $ty {
            let v: u64;
            // SAFETY: as for the load at an address.
            unsafe {
                asm!(concat!("{v} = *(", $width, " *)({at} + {off})"), v = out(reg) v,
                     at = in(reg) base, off = const OFF,
                     options(readonly, nostack, preserves_flags));
            }
            v as $ty
        }

        #[doc = concat!("Writes the ", stringify!($ty), " `v` at `base + OFF`.")]
        ///
        /// # Safety
        /// See the module docs, for the bytes at `base + OFF`; they are
        /// also writable.
        #[inline(always)]
        pub unsafe fn $store_off<const OFF: usize>(base: usize, v: $ty) {
            // SAFETY: as for the store at an address.
            unsafe {
                asm!(concat!("*(", $width, " *)({at} + {off}) = {v}"), at = in(reg) base,
                     off = const OFF, v = in(reg) v as u64, options(nostack, preserves_flags));
            }
        }
    };
}

word_access!(u16, "u16", u16_at, put_u16, u16_off, put_u16_off);
word_access!(u32, "u32", u32_at, put_u32, u32_off, put_u32_off);
word_access!(u64, "u64", u64_at, put_u64);

/// The u32 at `base + OFF`, widened as the load leaves it (a BPF load of
/// 32 bits zeroes the register's upper half): for sums in a `u64`, without
/// the two shifts LLVM adds to widen a `u32` it cannot see is wide.
///
/// # Safety
/// See the module docs, for the bytes at `base + OFF`.
#[inline(always)]
pub unsafe fn u32_wide_off<const OFF: usize>(base: usize) -> u64 {
    let v: u64;
    // SAFETY: as for the other loads.
    unsafe {
        asm!("{v} = *(u32 *)({at} + {off})", v = out(reg) v, at = in(reg) base,
             off = const OFF, options(readonly, nostack, preserves_flags));
    }
    v
}

/// Copies the `n` bytes at `from` to `to` (not overlapping), a word at
/// a time, without a copy on the stack.
///
/// # Safety
/// See the module docs, for both ranges; `[to, to + n)` is writable.
#[inline(always)]
pub unsafe fn copy(from: usize, to: usize, n: usize) {
    let mut i = 0;
    // SAFETY: the caller guarantees both ranges lie within packet memory.
    unsafe {
        while i + 8 <= n {
            put_u64(to + i, u64_at(from + i));
            i += 8;
        }
        if i + 4 <= n {
            put_u32(to + i, u32_at(from + i));
            i += 4;
        }
        if i + 2 <= n {
            put_u16(to + i, u16_at(from + i));
            i += 2;
        }
        if i < n {
            *((to + i) as *mut u8) = *((from + i) as *const u8);
        }
    }
}

/// A `T`'s bytes in a local aligned for the widest word, so that LLVM
/// moves them in and out in words (and keeps them in registers).
#[repr(C, align(8))]
struct Words<T>(MaybeUninit<T>);

/// The `T` at `at`, read a word at a time.
///
/// # Safety
/// See the module docs; `T` is plain bytes (any bit pattern is a `T`).
#[inline(always)]
pub unsafe fn read<T: Copy>(at: usize) -> T {
    let mut w = Words::<T>(MaybeUninit::uninit());
    let p = w.0.as_mut_ptr() as usize;
    let n = size_of::<T>();
    let mut i = 0;
    // SAFETY: the caller guarantees [at, at + n) is readable; `p` is
    // 8-aligned and [p, p + n) is the local's, each word within it and
    // aligned for its size (the offsets step down from 8 to 1 in turn).
    unsafe {
        while i + 8 <= n {
            *((p + i) as *mut u64) = u64_at(at + i);
            i += 8;
        }
        if i + 4 <= n {
            *((p + i) as *mut u32) = u32_at(at + i);
            i += 4;
        }
        if i + 2 <= n {
            *((p + i) as *mut u16) = u16_at(at + i);
            i += 2;
        }
        if i < n {
            *((p + i) as *mut u8) = *((at + i) as *const u8);
        }
        w.0.assume_init()
    }
}

/// Writes `v` at `at`, a word at a time.
///
/// # Safety
/// As for [`put_u16`]; `T` is plain bytes (no padding).
#[inline(always)]
pub unsafe fn write<T: Copy>(at: usize, v: T) {
    let w = Words::<T>(MaybeUninit::new(v));
    let p = w.0.as_ptr() as usize;
    let n = size_of::<T>();
    let mut i = 0;
    // SAFETY: as in `read`, the other way round.
    unsafe {
        while i + 8 <= n {
            put_u64(at + i, *((p + i) as *const u64));
            i += 8;
        }
        if i + 4 <= n {
            put_u32(at + i, *((p + i) as *const u32));
            i += 4;
        }
        if i + 2 <= n {
            put_u16(at + i, *((p + i) as *const u16));
            i += 2;
        }
        if i < n {
            *((at + i) as *mut u8) = *((p + i) as *const u8);
        }
    }
}
