//! Running code inside a network namespace: `setns` changes the namespace
//! of the calling thread only, so each call gets a thread of its own.

use std::{fs::File, os::fd::AsRawFd as _};

use anyhow::{Context as _, bail};

/// Runs `f` on a thread inside network namespace `ns` (by name).
pub fn run_in<T: Send>(
    ns: &str,
    f: impl FnOnce() -> anyhow::Result<T> + Send,
) -> anyhow::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let path = format!("/run/netns/{ns}");
            let file = File::open(&path).with_context(|| format!("cannot open {path}"))?;
            // SAFETY: `file` is an open namespace file for the whole call;
            // setns affects only this thread.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                bail!("setns({path}): {}", std::io::Error::last_os_error());
            }
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}
