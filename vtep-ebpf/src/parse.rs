//! Bounds-checked header parsing over packet memory (XDP and TC direct
//! packet access): a cursor that advances one header at a time, and reads
//! at an offset of an skb.

use core::mem::size_of;

use aya_ebpf::programs::TcContext;

/// A `T` at `offset` in the frame of `ctx`: read straight from the skb's
/// linear data when it lies there (no helper call), else copied out by
/// `bpf_skb_load_bytes` (headers in paged data); `None` past the end of
/// the frame. Precondition: `T` is plain bytes; `offset` is a constant or
/// bounded (the verifier checks the access).
#[inline(always)]
pub fn read<T: Copy>(ctx: &TcContext, offset: usize) -> Option<T> {
    let (data, end) = (ctx.data(), ctx.data_end());
    if data + offset + size_of::<T>() <= end {
        // SAFETY: [data + offset, + size_of::<T>()) lies within the linear
        // data, checked just above; the read is unaligned.
        return Some(unsafe { ((data + offset) as *const T).read_unaligned() });
    }
    ctx.load(offset).ok()
}

/// A position in packet memory, between `data` and `data_end`.
pub struct Cursor {
    pos: usize,
    end: usize,
}

impl Cursor {
    /// A cursor at `start`; `end` is the packet's `data_end`.
    #[inline(always)]
    pub fn new(start: usize, end: usize) -> Self {
        Self { pos: start, end }
    }

    /// The current position (the start of the next header).
    #[inline(always)]
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The next header as `T`, or `None` if the packet ends before it.
    /// Precondition: `T` is a `#[repr(C)]` header type; the pointer may be
    /// unaligned, read fields through it only (no references to wider
    /// fields).
    #[inline(always)]
    pub fn next<T>(&mut self) -> Option<*const T> {
        let start = self.pos;
        if start + size_of::<T>() > self.end {
            return None;
        }
        self.pos = start + size_of::<T>();
        Some(start as *const T)
    }

    /// Skips `len` bytes (at most 40, IPv4 options), or `None` past the end.
    #[inline(always)]
    pub fn skip(&mut self, len: usize) -> Option<()> {
        let len = len & 0x3f;
        if self.pos + len > self.end {
            return None;
        }
        self.pos += len;
        Some(())
    }
}

/// Whether a MAC is a group (broadcast or multicast) address: the I/G bit.
#[inline(always)]
pub fn is_group(mac: &[u8; 6]) -> bool {
    mac[0] & 1 != 0
}

/// Whether an on-wire EtherType is a VLAN tag (802.1Q or 802.1ad).
#[inline(always)]
pub fn is_vlan(ether_type: u16) -> bool {
    ether_type == vtep_common::consts::ETH_P_8021Q.to_be()
        || ether_type == vtep_common::consts::ETH_P_8021AD.to_be()
}
