//! What the kernel tells of a loaded program's machine code: where its
//! functions lie in kernel memory, and which source line each stretch of
//! them came from (`BPF_OBJ_GET_INFO_BY_FD`: the JIT's line info, one
//! address per BTF line record, whose file names and line texts are
//! strings of the program's BTF). No disassembler is needed: this host's
//! perf and bpftool are built without one (no libopcodes, no libbfd), and
//! it has no /proc/kcore to read the code from.

use std::{
    mem::{size_of, zeroed},
    ops::Range,
    os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd},
};

use anyhow::{Context as _, bail};
use aya_obj::generated::{
    bpf_attr, bpf_attr__bindgen_ty_8, bpf_attr__bindgen_ty_8__bindgen_ty_1, bpf_attr__bindgen_ty_9,
    bpf_btf_info, bpf_cmd, bpf_line_info, bpf_prog_info,
};

/// One source line's stretch of machine code: from `addr` up to the next
/// line's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub addr: u64,
    /// The source file, as the program's BTF names it (a build's path).
    pub file: String,
    pub line: u32,
    /// The line's text, trimmed.
    pub text: String,
}

/// A loaded program's machine code.
#[derive(Debug, Default)]
pub struct Image {
    /// Where its functions (the program and its BPF-to-BPF callees) lie.
    pub code: Vec<Range<u64>>,
    /// Its lines, by address.
    pub lines: Vec<Line>,
}

/// The `bpf(2)` system call.
fn bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> std::io::Result<i64> {
    // SAFETY: `attr` is a whole bpf_attr for `cmd`; every pointer in it is
    // to a buffer of the size it gives, alive for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr as *mut bpf_attr,
            size_of::<bpf_attr>(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(rc)
}

/// An all-zero kernel ABI struct.
fn zeroed_abi<T: Copy>() -> T {
    // SAFETY: only used for the bindgen'd plain-integer structs and
    // unions of the BPF ABI, for which all-zero bytes are a valid value
    // (the kernel's "not asked for").
    unsafe { zeroed() }
}

/// Fills `info` (a `bpf_*_info`) for the BPF object `fd`.
fn info_by_fd<T: Copy>(fd: &impl AsFd, info: &mut T) -> std::io::Result<()> {
    let mut attr = zeroed_abi::<bpf_attr>();
    attr.info = bpf_attr__bindgen_ty_9 {
        bpf_fd: fd.as_fd().as_raw_fd() as u32,
        info_len: size_of::<T>() as u32,
        info: info as *mut T as u64,
    };
    bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr).map(drop)
}

/// The machine code of the loaded program `prog`, with its lines.
pub fn image(prog: &aya::programs::ProgramInfo) -> anyhow::Result<Image> {
    let name = prog.name_as_str().unwrap_or("?").to_owned();
    let fd = prog.fd()?;
    let mut counts = zeroed_abi::<bpf_prog_info>();
    info_by_fd(&fd, &mut counts).with_context(|| format!("program {name}: its info"))?;
    let n_lines = counts.nr_line_info as usize;
    if n_lines == 0 || counts.nr_jited_line_info != counts.nr_line_info {
        bail!("program {name} has no line info for its machine code: load it with its BTF");
    }
    let mut ksyms = vec![0u64; counts.nr_jited_ksyms as usize];
    let mut lens = vec![0u32; counts.nr_jited_func_lens as usize];
    let mut records = vec![zeroed_abi::<bpf_line_info>(); n_lines];
    let mut addrs = vec![0u64; n_lines];
    let mut info = zeroed_abi::<bpf_prog_info>();
    info.nr_jited_ksyms = ksyms.len() as u32;
    info.jited_ksyms = ksyms.as_mut_ptr() as u64;
    info.nr_jited_func_lens = lens.len() as u32;
    info.jited_func_lens = lens.as_mut_ptr() as u64;
    info.nr_line_info = n_lines as u32;
    info.line_info_rec_size = size_of::<bpf_line_info>() as u32;
    info.line_info = records.as_mut_ptr() as u64;
    info.nr_jited_line_info = n_lines as u32;
    info.jited_line_info_rec_size = size_of::<u64>() as u32;
    info.jited_line_info = addrs.as_mut_ptr() as u64;
    info_by_fd(&fd, &mut info).with_context(|| format!("program {name}: its line info"))?;
    if ksyms.iter().all(|&k| k == 0) {
        bail!("program {name}: the kernel hides its addresses (kernel.kptr_restrict): run as root");
    }
    let strings = btf_strings(counts.btf_id).with_context(|| format!("program {name}: its BTF"))?;
    let mut lines: Vec<Line> = records
        .iter()
        .zip(&addrs)
        .map(|(r, &addr)| Line {
            addr,
            file: string_at(&strings, r.file_name_off),
            // BPF_LINE_INFO_LINE_NUM: the high 22 bits.
            line: r.line_col >> 10,
            text: string_at(&strings, r.line_off).trim().to_owned(),
        })
        .collect();
    lines.sort_by_key(|l| l.addr);
    let code = ksyms
        .iter()
        .zip(&lens)
        .map(|(&start, &len)| start..start + u64::from(len))
        .collect();
    Ok(Image { code, lines })
}

/// The string section of BTF object `id` (`struct btf_header`: magic,
/// version, flags, `hdr_len`, type and string sections' offsets and
/// lengths after the header).
fn btf_strings(id: u32) -> anyhow::Result<Vec<u8>> {
    let mut attr = zeroed_abi::<bpf_attr>();
    attr.__bindgen_anon_6 = bpf_attr__bindgen_ty_8 {
        __bindgen_anon_1: bpf_attr__bindgen_ty_8__bindgen_ty_1 { btf_id: id },
        next_id: 0,
        open_flags: 0,
    };
    let raw = bpf(bpf_cmd::BPF_BTF_GET_FD_BY_ID, &mut attr)?;
    // SAFETY: the call returned a new file descriptor, ours to close.
    let fd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let mut size = zeroed_abi::<bpf_btf_info>();
    info_by_fd(&fd, &mut size)?;
    let mut btf = vec![0u8; size.btf_size as usize];
    let mut info = zeroed_abi::<bpf_btf_info>();
    info.btf = btf.as_mut_ptr() as u64;
    info.btf_size = size.btf_size;
    info_by_fd(&fd, &mut info)?;
    string_section(&btf)
}

/// The string section of raw BTF.
fn string_section(btf: &[u8]) -> anyhow::Result<Vec<u8>> {
    let word = |at: usize| -> anyhow::Result<usize> {
        let b = btf.get(at..at + 4).context("BTF shorter than its header")?;
        Ok(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    if btf.get(..2) != Some(&0xeb9f_u16.to_ne_bytes()[..]) {
        bail!("not BTF (bad magic)");
    }
    let start = word(4)? + word(16)?;
    let section = btf
        .get(start..start + word(20)?)
        .context("BTF's strings lie past its end")?;
    Ok(section.to_vec())
}

/// The NUL-terminated string at `off` of a BTF string section ("" past
/// its end).
fn string_at(strings: &[u8], off: u32) -> String {
    let tail = strings.get(off as usize..).unwrap_or_default();
    let s = tail.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BTF with no types and the strings given.
    fn btf(strings: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&0xeb9f_u16.to_ne_bytes());
        b.extend_from_slice(&[1, 0]);
        for w in [24u32, 0, 0, 0, strings.len() as u32] {
            b.extend_from_slice(&w.to_ne_bytes());
        }
        b.extend_from_slice(strings);
        b
    }

    #[test]
    fn strings_are_read_by_offset_from_the_string_section() {
        let s = string_section(&btf(b"\0src/parse.rs\0if x {\0")).unwrap();
        assert_eq!(string_at(&s, 1), "src/parse.rs");
        assert_eq!(string_at(&s, 14), "if x {");
        assert_eq!(string_at(&s, 0), "");
        assert_eq!(string_at(&s, 99), "");
    }

    #[test]
    fn what_is_not_btf_or_is_cut_short_is_refused() {
        assert!(string_section(b"\x00\x00\x01\x00").is_err());
        let mut cut = btf(b"\0abc\0");
        cut.truncate(26);
        assert!(string_section(&cut).is_err());
    }
}
