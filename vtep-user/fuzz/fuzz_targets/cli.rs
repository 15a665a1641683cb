//! The command line: any argument vector (NUL-separated in the input)
//! parses or is refused with an error; clap never panics on it.
#![no_main]

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use vtep_user::cmd::Cli;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let args = std::iter::once("vtep").chain(s.split('\0'));
    if let Err(e) = Cli::try_parse_from(args) {
        // The error renders (vtep prints its first line).
        let _ = e.to_string();
    }
});
