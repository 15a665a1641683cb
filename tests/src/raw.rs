//! Whole Ethernet frames sent out of an interface in a test's namespace,
//! through an AF_PACKET socket (what a VM's own stack would not send:
//! frames from made-up MACs, floods of broadcasts).

use std::{ffi::CString, io, time::Instant};

use crate::{Netns, in_netns};

/// An AF_PACKET socket bound to one interface, closed on drop.
pub struct RawSocket(libc::c_int);

impl RawSocket {
    /// A socket sending out of `dev` in `ns`.
    pub fn open(ns: &Netns, dev: &str) -> anyhow::Result<Self> {
        let dev = CString::new(dev)?;
        in_netns(&ns.name, move || {
            // SAFETY: `dev` is a valid NUL-terminated name for the call.
            let ifindex = unsafe { libc::if_nametoindex(dev.as_ptr()) };
            if ifindex == 0 {
                anyhow::bail!("no interface {dev:?}");
            }
            Self::bound(ifindex)
        })
    }

    /// A socket sending out of device `ifindex` of the namespace named
    /// `ns`.
    pub fn open_index(ns: &str, ifindex: u32) -> anyhow::Result<Self> {
        in_netns(ns, move || Self::bound(ifindex))
    }

    /// A socket of this thread's namespace bound to device `ifindex`.
    fn bound(ifindex: u32) -> anyhow::Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error().into());
        }
        let sock = RawSocket(fd);
        // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a sockaddr_ll of the size given, alive for the
        // call; the socket is ours.
        let rc = unsafe {
            libc::bind(
                sock.0,
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error().into());
        }
        Ok(sock)
    }

    /// Hands what it sends straight to the device's transmit
    /// (PACKET_QDISC_BYPASS), as a traffic generator wants.
    pub fn bypass_qdisc(&self) -> io::Result<()> {
        let one: libc::c_int = 1;
        // SAFETY: the option's value is a c_int of the size given.
        let rc = unsafe {
            libc::setsockopt(
                self.0,
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                (&raw const one).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sends `frames` with one `sendmmsg`; how many the device took (0
    /// while its queue is full).
    pub fn send_batch(&self, frames: &[&[u8]]) -> io::Result<usize> {
        let mut iov: Vec<libc::iovec> = frames
            .iter()
            .map(|f| libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = iov
            .iter_mut()
            .map(|iov| {
                // SAFETY: an all-zero mmsghdr is valid (no name, no
                // control data); the iovec it points to outlives the call.
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_iov = iov;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        // SAFETY: `msgs` holds initialised headers whose buffers are the
        // frames, readable for the call.
        let n = unsafe { libc::sendmmsg(self.0, msgs.as_mut_ptr(), msgs.len() as u32, 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOBUFS) {
            return Ok(0);
        }
        Err(e)
    }

    /// Sends one frame, waiting while the device's queue is full.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        loop {
            // SAFETY: `frame` is readable for its length during the call.
            let n = unsafe { libc::send(self.0, frame.as_ptr().cast(), frame.len(), 0) };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOBUFS) {
                return Err(e);
            }
            std::thread::yield_now();
        }
    }
}

impl Drop for RawSocket {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and closed once.
        unsafe { libc::close(self.0) };
    }
}

/// Sends `frame` `count` times out of `dev` in `ns`.
pub fn send_raw(ns: &Netns, dev: &str, frame: &[u8], count: u32) {
    let s = RawSocket::open(ns, dev).expect("raw socket");
    for _ in 0..count {
        s.send(frame).expect("send a raw frame");
    }
}

/// Sends `frame` out of `dev` in `ns` as fast as it goes for `secs`
/// seconds; returns (frames sent, seconds taken).
pub fn flood_raw(ns: &Netns, dev: &str, frame: &[u8], secs: f64) -> (u64, f64) {
    let s = RawSocket::open(ns, dev).expect("raw socket");
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..50 {
            s.send(frame).expect("send a raw frame");
        }
        n += 50;
    }
    (n, start.elapsed().as_secs_f64())
}
