//! The few bpf(2) commands skiff's socket-level load balancer needs: hash maps, loading a
//! program from instructions ([`asm`]) and attaching it to a cgroup through a link (so it goes
//! away with the process that holds the link). No crate loads programs from instructions rather
//! than from an ELF object built by a BPF toolchain, and the programs are small enough to be
//! written directly. bpf(2) has no safe wrapper to lean on, so this module holds the node's
//! only unsafe code: the syscall itself and taking ownership of the descriptor it returns.
#![allow(unsafe_code)]

pub mod asm;

use nix::libc;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// Commands, types and attach points (`linux/bpf.h`).
const MAP_CREATE: libc::c_long = 0;
const MAP_UPDATE_ELEM: libc::c_long = 2;
const MAP_DELETE_ELEM: libc::c_long = 3;
const PROG_LOAD: libc::c_long = 5;
const LINK_CREATE: libc::c_long = 28;
pub const MAP_TYPE_HASH: u32 = 1;
pub const MAP_TYPE_LRU_HASH: u32 = 9;
/// Allocate a hash map's entries as they are added, not all up front.
pub const NO_PREALLOC: u32 = 1;
pub const PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;
pub const CGROUP_INET4_CONNECT: u32 = 10;
pub const CGROUP_INET4_GETPEERNAME: u32 = 29;

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("creating eBPF map {name}: {error}")]
    CreateMap { name: String, error: std::io::Error },
    #[error("updating an eBPF map: {0}")]
    Update(std::io::Error),
    #[error("loading eBPF program {name}: {error}{log}")]
    Load { name: String, error: std::io::Error, log: String },
    #[error("attaching eBPF program to {cgroup}: {error}")]
    Attach { cgroup: String, error: std::io::Error },
    #[error(transparent)]
    Program(#[from] asm::UnknownLabel),
}

/// bpf(2) with `attr` (a command's part of `union bpf_attr`; the kernel zeroes the rest).
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: attr is a live, properly laid out repr(C) value of the size passed; pointers
    // inside it point at buffers that outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(r) }
}

/// A file descriptor bpf(2) returned.
fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just handed us this descriptor; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// A kernel object name: at most 15 bytes and NUL.
fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(name.bytes().filter(|b| b.is_ascii_alphanumeric() || *b == b'_').take(15)) {
        *o = b;
    }
    out
}

/// A map, alive while this (or a program using it) holds it.
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    key_size: usize,
    value_size: usize,
}

#[repr(C)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
struct MapElem {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

impl Map {
    pub fn create(
        name: &str,
        map_type: u32,
        key_size: usize,
        value_size: usize,
        max_entries: u32,
        flags: u32,
    ) -> Result<Map, BpfError> {
        let mut attr = MapCreate {
            map_type,
            key_size: key_size as u32,
            value_size: value_size as u32,
            max_entries,
            map_flags: flags,
            inner_map_fd: 0,
            numa_node: 0,
            map_name: name16(name),
        };
        let fd = bpf(MAP_CREATE, &mut attr).map_err(|error| BpfError::CreateMap { name: name.into(), error })?;
        Ok(Map { fd: owned(fd), key_size, value_size })
    }

    pub fn fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Set `key` to `value` (added or replaced).
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<(), BpfError> {
        self.check(key, Some(value))?;
        let mut attr = MapElem {
            map_fd: self.fd() as u32,
            _pad: 0,
            key: key.as_ptr() as u64,
            value: value.as_ptr() as u64,
            flags: 0, // BPF_ANY
        };
        bpf(MAP_UPDATE_ELEM, &mut attr).map(drop).map_err(BpfError::Update)
    }

    /// Remove `key`; absent is fine.
    pub fn delete(&self, key: &[u8]) -> Result<(), BpfError> {
        self.check(key, None)?;
        let mut attr = MapElem { map_fd: self.fd() as u32, _pad: 0, key: key.as_ptr() as u64, value: 0, flags: 0 };
        match bpf(MAP_DELETE_ELEM, &mut attr) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            other => other.map(drop).map_err(BpfError::Update),
        }
    }

    /// The kernel reads key_size and value_size bytes: shorter buffers must never reach it.
    fn check(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), BpfError> {
        if key.len() != self.key_size || value.is_some_and(|v| v.len() != self.value_size) {
            return Err(BpfError::Update(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "key or value of the wrong size",
            )));
        }
        Ok(())
    }
}

#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// Load a program of `prog_type` for `attach_type`; a program the verifier refuses comes back
/// with the verifier's log.
pub fn load(name: &str, prog_type: u32, attach_type: u32, insns: &[asm::Insn]) -> Result<OwnedFd, BpfError> {
    let code: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
    let license = c"GPL";
    let attempt = |log: &mut Vec<u8>| {
        let mut attr = ProgLoad {
            prog_type,
            insn_cnt: insns.len() as u32,
            insns: code.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: u32::from(!log.is_empty()),
            log_size: log.len() as u32,
            log_buf: if log.is_empty() { 0 } else { log.as_mut_ptr() as u64 },
            kern_version: 0,
            prog_flags: 0,
            prog_name: name16(name),
            prog_ifindex: 0,
            expected_attach_type: attach_type,
        };
        bpf(PROG_LOAD, &mut attr)
    };
    match attempt(&mut Vec::new()) {
        Ok(fd) => Ok(owned(fd)),
        Err(error) => {
            // Again with a log, to say why.
            let mut log = vec![0u8; 64 * 1024];
            let _ = attempt(&mut log);
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
            let log = if text.is_empty() { String::new() } else { format!("\n{text}") };
            Err(BpfError::Load { name: name.into(), error, log })
        }
    }
}

#[repr(C)]
struct LinkCreate {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
}

/// Attach `program` to the cgroup (v2) directory `cgroup` and its descendants. The attachment
/// lasts as long as the returned link, i.e. at most as long as this process.
pub fn attach_cgroup(program: &OwnedFd, cgroup: &std::path::Path, attach_type: u32) -> Result<OwnedFd, BpfError> {
    let failed = |error| BpfError::Attach { cgroup: cgroup.display().to_string(), error };
    let dir = std::fs::File::open(cgroup).map_err(failed)?;
    let mut attr =
        LinkCreate { prog_fd: program.as_raw_fd() as u32, target_fd: dir.as_raw_fd() as u32, attach_type, flags: 0 };
    bpf(LINK_CREATE, &mut attr).map(owned).map_err(failed)
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on
/// a hybrid host), from `/proc/self/mounts`' text.
pub fn cgroup2_mount(mounts: &str) -> Option<std::path::PathBuf> {
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_, path, fstype) = (fields.next()?, fields.next()?, fields.next()?);
        (fstype == "cgroup2").then(|| std::path::PathBuf::from(path.replace("\\040", " ")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_to_what_the_kernel_takes() {
        assert_eq!(&name16("skiff_lb")[..9], b"skiff_lb\0");
        assert_eq!(name16("a-very-long-name-indeed")[15], 0);
        assert_eq!(&name16("a-b")[..3], b"ab\0");
    }

    #[test]
    fn the_cgroup2_mount_is_found_on_unified_and_hybrid_hosts() {
        let unified = "sysfs /sys sysfs rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n";
        assert_eq!(cgroup2_mount(unified), Some("/sys/fs/cgroup".into()));
        let hybrid = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
        assert_eq!(cgroup2_mount(hybrid), Some("/sys/fs/cgroup/unified".into()));
        assert_eq!(cgroup2_mount("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n"), None);
    }

    #[test]
    fn a_key_of_the_wrong_size_never_reaches_the_kernel() {
        // A map object that was never created: check() refuses before any syscall.
        let fd = std::fs::File::open("/dev/null").expect("/dev/null").into();
        let map = Map { fd, key_size: 8, value_size: 8 };
        assert!(map.put(&[0; 4], &[0; 8]).is_err());
        assert!(map.put(&[0; 8], &[0; 7]).is_err());
        assert!(map.delete(&[0; 9]).is_err());
    }
}
