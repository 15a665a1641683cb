//! Host-side library target: empty. It exists so `vtep-user` can name this
//! crate as a build dependency (and be rebuilt when it changes); the kernel
//! programs are the `vtep` binary target, built for `bpfel-unknown-none` by
//! `aya_build` from `vtep-user/build.rs`.
#![no_std]
