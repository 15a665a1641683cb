//! Shared ground between the `vtep` kernel programs and userspace.
//!
//! Everything here is `no_std` so the eBPF crate can use it; the `user`
//! feature adds `aya::Pod` impls so userspace can read and write the same
//! bytes through BPF maps. Pure logic that both sides need (header building,
//! the flow hash) lives here so it can be unit-tested on the host.
#![no_std]

pub mod addr;
pub mod caches;
pub mod consts;
pub mod counters;
pub mod ecn;
pub mod icmp;
pub mod maps;
pub mod model;
pub mod nd;
pub mod policy;
pub mod vxlan;

#[cfg(test)]
extern crate std;
