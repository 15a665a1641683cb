//! How an error shows what caused it: once. `vtep` prints an error with
//! its whole chain (`{e:#}`: each `source()` after the message), so an
//! error type that writes its cause into its message must not also return
//! it as its source, or the cause is printed twice ("File exists (os
//! error 17): File exists (os error 17)"). Ours write the cause into the
//! message, where the message's hint can follow it, through [`Cause`]
//! (the cause and everything below it), and keep it in a field that is
//! not a source: their `{e}` alone says everything (warnings log it so),
//! and `{e:#}` says it once.

use std::{error::Error, fmt};

/// Displays an error and its sources, each after a ": ", as anyhow's
/// `{:#}` does.
pub struct Cause<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Cause<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn shows_the_whole_chain_once() {
        let e = Outer(std::io::Error::from_raw_os_error(libc::EEXIST));
        let shown = Cause(&e).to_string();
        assert!(shown.starts_with("outer: File exists"), "{shown}");
        assert_eq!(shown.matches("File exists").count(), 1, "{shown}");
    }
}
