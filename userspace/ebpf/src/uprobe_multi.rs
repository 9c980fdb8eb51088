//! Uprobes through multi-uprobe links (`BPF_TRACE_UPROBE_MULTI`, Linux 6.6+):
//! one link places a program at any number of offsets of one file, for one
//! process or for all, and one removal (one RCU grace period) takes them all
//! away. aya 0.14's uprobes are perf events, one per offset, each removal
//! waiting a grace period under the kernel's `event_mutex`, which every new
//! uprobe of the machine waits for too: a recording started just after
//! another waited seconds for that one's 25 probes to go.
//!
//! aya cannot load a program for these links (the expected attach type must
//! be given at load), so the uprobe programs are loaded here from the same
//! object, with aya-obj's relocations against the maps aya created: aya
//! keeps the maps and the tracepoints, this module the uprobe programs.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use aya::maps::{Map, MapData};
use aya::util::KernelVersion;
use aya::Ebpf;
use aya_obj::btf::BtfFeatures;
use aya_obj::generated::{bpf_attach_type, bpf_attr, bpf_cmd, bpf_prog_type};

use crate::Error;

/// `BPF_F_UPROBE_MULTI_RETURN`: the program runs at the function's return.
const RETURN_FLAG: u32 = 1;
/// Verifier log kept when a program is refused (its end says why).
const LOG_BYTES: usize = 1 << 20;

/// The uprobe programs of the object, loaded for multi-uprobe links.
pub(crate) struct UprobePrograms {
    programs: HashMap<&'static str, OwnedFd>,
}

/// Where a program goes: offsets of one file, each with its cookie
/// (`bpf_get_attach_cookie`).
pub(crate) struct Sites<'a> {
    pub path: &'a Path,
    pub offsets: &'a [u64],
    /// One per offset, or empty for none.
    pub cookies: &'a [u64],
    /// At the function's return instead of at the offset.
    pub at_return: bool,
    /// The process (thread group) that runs the program and gets the
    /// breakpoints: every probe is placed for one process, so that no other
    /// traps on it.
    pub pid: u32,
}

impl<'a> Sites<'a> {
    /// Entry probes at `offsets` of `path`, without cookies, for `pid`.
    pub fn entries(path: &'a Path, offsets: &'a [u64], pid: u32) -> Sites<'a> {
        Sites {
            path,
            offsets,
            cookies: &[],
            at_return: false,
            pid,
        }
    }
}

/// A placed program; dropping it removes its probes (one grace period).
pub(crate) struct UprobeLink {
    _fd: OwnedFd,
    /// What was placed, to place it again for another process.
    program: &'static str,
    path: PathBuf,
    offsets: Vec<u64>,
    cookies: Vec<u64>,
    at_return: bool,
}

impl UprobePrograms {
    /// Loads the uprobe programs `names` of `object`, whose maps `ebpf`
    /// (loaded from the same object) created.
    pub(crate) fn load(
        object: &[u8],
        ebpf: &Ebpf,
        names: &[&'static str],
    ) -> Result<UprobePrograms, Error> {
        let oldest = KernelVersion::new(6, 6, 0);
        if let Ok(running) = KernelVersion::current() {
            if running < oldest {
                return Err(Error::Probes(format!(
                    "the eBPF mode needs Linux 6.6 or newer (multi-uprobe links); this is {}.{}",
                    running.code() >> 16,
                    (running.code() >> 8) & 0xff
                )));
            }
        }
        let malformed = |what: String| Error::Probes(format!("the eBPF object: {what}"));
        let mut obj = aya_obj::Object::parse(object).map_err(|e| malformed(e.to_string()))?;
        // Kernels with multi-uprobe links have every BTF feature.
        let features = BtfFeatures::new(true, true, true, true, true, true, true, true);
        let btf = match obj
            .fixup_and_sanitize_btf(&features)
            .map_err(|e| malformed(e.to_string()))?
        {
            Some(btf) => Some(load_btf(&btf.to_bytes())?),
            None => None,
        };
        let maps = obj
            .maps
            .iter()
            .map(|(name, map)| Ok((name.clone(), map_fd(ebpf, name)?, map.clone())))
            .collect::<Result<Vec<_>, Error>>()?;
        let text_sections: HashSet<usize> = obj.functions.keys().map(|&(index, _)| index).collect();
        obj.relocate_maps(
            maps.iter().map(|(name, fd, map)| (name.as_str(), *fd, map)),
            &text_sections,
        )
        .map_err(|e| malformed(e.to_string()))?;
        obj.relocate_calls(&text_sections)
            .map_err(|e| malformed(e.to_string()))?;
        let btf = btf.as_ref().map(AsFd::as_fd);
        let load = |name: &'static str| {
            let program = obj.programs.get(name).ok_or(Error::Missing(name))?;
            let function = obj
                .functions
                .get(&program.function_key())
                .ok_or(Error::Missing(name))?;
            Ok((name, load_program(name, program, function, btf)?))
        };
        // Each on a thread: the verifier takes 20–50 ms over the allocator
        // entry and the stack walk each, the others together ~5 ms, at
        // every start.
        let programs = std::thread::scope(|scope| {
            let loads: Vec<_> = names
                .iter()
                .map(|&name| scope.spawn(move || load(name)))
                .collect();
            loads
                .into_iter()
                .map(|load| {
                    load.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect::<Result<HashMap<_, _>, Error>>()
        })?;
        Ok(UprobePrograms { programs })
    }

    /// The loaded program `name`.
    fn fd(&self, name: &'static str) -> Result<BorrowedFd<'_>, Error> {
        self.programs
            .get(name)
            .map(AsFd::as_fd)
            .ok_or(Error::Missing(name))
    }

    /// Places program `name` at `sites`.
    pub(crate) fn attach(
        &self,
        name: &'static str,
        sites: &Sites<'_>,
    ) -> Result<UprobeLink, Error> {
        let program = self.fd(name)?;
        let path = CString::new(sites.path.as_os_str().as_bytes())
            .map_err(|_| Error::Probes(format!("{}: a NUL in the path", name)))?;
        let mut attr = zeroed_attr();
        // SAFETY: plain integers written into the link_create member of the
        // zeroed union; the pointers stay valid for the system call below.
        unsafe {
            let create = &mut attr.link_create;
            create.__bindgen_anon_1.prog_fd = program.as_raw_fd() as u32;
            create.attach_type = bpf_attach_type::BPF_TRACE_UPROBE_MULTI as u32;
            let multi = &mut create.__bindgen_anon_3.uprobe_multi;
            multi.path = path.as_ptr() as u64;
            multi.offsets = sites.offsets.as_ptr() as u64;
            if !sites.cookies.is_empty() {
                multi.cookies = sites.cookies.as_ptr() as u64;
            }
            multi.cnt = sites.offsets.len() as u32;
            multi.flags = if sites.at_return { RETURN_FLAG } else { 0 };
            multi.pid = sites.pid;
        }
        debug_assert!(sites.cookies.is_empty() || sites.cookies.len() == sites.offsets.len());
        let fd = bpf_fd(bpf_cmd::BPF_LINK_CREATE, &mut attr).map_err(|source| {
            Error::Probes(format!(
                "cannot place eBPF program {name} in {}: {source}",
                sites.path.display()
            ))
        })?;
        Ok(UprobeLink {
            _fd: fd,
            program: name,
            path: sites.path.to_path_buf(),
            offsets: sites.offsets.to_vec(),
            cookies: sites.cookies.to_vec(),
            at_return: sites.at_return,
        })
    }

    /// The probes of `link` again, for process `pid` alone (a forked child,
    /// which maps the same files at the same places).
    pub(crate) fn attach_again(&self, link: &UprobeLink, pid: u32) -> Result<UprobeLink, Error> {
        let sites = Sites {
            path: &link.path,
            offsets: &link.offsets,
            cookies: &link.cookies,
            at_return: link.at_return,
            pid,
        };
        self.attach(link.program, &sites)
    }

    /// Puts program `name` at `slot` of the program array `map` (tail calls).
    pub(crate) fn fill_slot(
        &self,
        map: &MapData,
        slot: u32,
        name: &'static str,
    ) -> Result<(), Error> {
        let program = self.fd(name)?.as_raw_fd() as u32;
        let mut attr = zeroed_attr();
        // SAFETY: integers into the map-element member of the zeroed union;
        // the key and value outlive the system call below.
        unsafe {
            let element = &mut attr.__bindgen_anon_2;
            element.map_fd = map.fd().as_fd().as_raw_fd() as u32;
            element.key = (&raw const slot) as u64;
            element.__bindgen_anon_1.value = (&raw const program) as u64;
        }
        bpf(bpf_cmd::BPF_MAP_UPDATE_ELEM, &mut attr)
            .map(drop)
            .map_err(Error::Io)
    }
}

/// The descriptor of map `name` that aya created.
fn map_fd(ebpf: &Ebpf, name: &str) -> Result<RawFd, Error> {
    let missing = || Error::Probes(format!("the eBPF object's map {name} was not created"));
    let data = match ebpf.map(name).ok_or_else(missing)? {
        Map::Array(data)
        | Map::HashMap(data)
        | Map::LruHashMap(data)
        | Map::PerCpuArray(data)
        | Map::PerCpuHashMap(data)
        | Map::PerCpuLruHashMap(data)
        | Map::ProgramArray(data)
        | Map::RingBuf(data) => data,
        _ => {
            return Err(Error::Probes(format!(
                "map {name}: a kind this loader does not relocate"
            )))
        }
    };
    Ok(data.fd().as_fd().as_raw_fd())
}

fn load_btf(bytes: &[u8]) -> Result<OwnedFd, Error> {
    let mut attr = zeroed_attr();
    // SAFETY: integers into the BTF-load member of the zeroed union; `bytes`
    // outlives the system call below.
    unsafe {
        let load = &mut attr.__bindgen_anon_7;
        load.btf = bytes.as_ptr() as u64;
        load.btf_size = bytes.len() as u32;
    }
    bpf_fd(bpf_cmd::BPF_BTF_LOAD, &mut attr)
        .map_err(|e| Error::Probes(format!("cannot load the eBPF object's BTF: {e}")))
}

fn load_program(
    name: &'static str,
    program: &aya_obj::Program,
    function: &aya_obj::Function,
    btf: Option<BorrowedFd<'_>>,
) -> Result<OwnedFd, Error> {
    let func_info = function.func_info.func_info_bytes();
    let line_info = function.line_info.line_info_bytes();
    let load = |log: &mut [u8]| {
        let mut attr = zeroed_attr();
        // SAFETY: integers into the program-load member of the zeroed union;
        // every buffer pointed to outlives the system call below.
        unsafe {
            let u = &mut attr.__bindgen_anon_3;
            u.prog_type = bpf_prog_type::BPF_PROG_TYPE_KPROBE as u32;
            u.expected_attach_type = bpf_attach_type::BPF_TRACE_UPROBE_MULTI as u32;
            u.insns = function.instructions.as_ptr() as u64;
            u.insn_cnt = function.instructions.len() as u32;
            u.license = program.license.as_ptr() as u64;
            for (to, &from) in u.prog_name.iter_mut().zip(name.as_bytes().iter().take(15)) {
                *to = from as libc::c_char;
            }
            if let Some(btf) = btf {
                u.prog_btf_fd = btf.as_raw_fd() as u32;
                if function.func_info_rec_size > 0 {
                    u.func_info = func_info.as_ptr() as u64;
                    u.func_info_cnt = function.func_info.len() as u32;
                    u.func_info_rec_size = function.func_info_rec_size as u32;
                }
                if function.line_info_rec_size > 0 {
                    u.line_info = line_info.as_ptr() as u64;
                    u.line_info_cnt = function.line_info.len() as u32;
                    u.line_info_rec_size = function.line_info_rec_size as u32;
                }
            }
            if !log.is_empty() {
                u.log_level = 1;
                u.log_buf = log.as_mut_ptr() as u64;
                u.log_size = log.len() as u32;
            }
        }
        bpf_fd(bpf_cmd::BPF_PROG_LOAD, &mut attr)
    };
    load(&mut []).or_else(|error| {
        // Again with the verifier's log, to say why.
        let mut log = vec![0u8; LOG_BYTES];
        load(&mut log).map_err(|_| {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let why: Vec<&str> = text.lines().rev().take(3).collect();
            Error::Probes(format!(
                "the kernel refused eBPF program {name}: {error} ({})",
                why.into_iter().rev().collect::<Vec<_>>().join(" / ")
            ))
        })
    })
}

/// Removes links on a thread of its own: each removal waits for the
/// kernel's grace periods, which the recording must not (a followed child
/// that exits leaves its links behind, and every link on a function is
/// looked at by each of its calls until removed).
pub(crate) struct LinkCloser {
    sender: Option<mpsc::Sender<Vec<UprobeLink>>>,
}

impl LinkCloser {
    pub(crate) fn new() -> LinkCloser {
        let (sender, receiver) = mpsc::channel::<Vec<UprobeLink>>();
        let spawned = std::thread::Builder::new()
            .name("memray-unlink".to_string())
            .spawn(move || receiver.into_iter().for_each(drop));
        LinkCloser {
            sender: spawned.ok().map(|_| sender),
        }
    }

    /// Removes `links`, on the closing thread if there is one.
    pub(crate) fn close(&self, links: Vec<UprobeLink>) {
        match &self.sender {
            Some(sender) => drop(sender.send(links)),
            None => drop(links),
        }
    }
}

fn zeroed_attr() -> bpf_attr {
    // SAFETY: bpf_attr is a union of plain integers: all zeroes is valid (and
    // what the kernel wants in the fields not set).
    unsafe { std::mem::zeroed() }
}

/// The bpf(2) system call.
fn bpf(command: bpf_cmd, attr: &mut bpf_attr) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid bpf_attr of the size passed; the kernel reads
    // (and for some commands writes) only within it.
    let result = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command as libc::c_long,
            std::ptr::from_mut(attr),
            size_of::<bpf_attr>(),
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(result)
}

/// A bpf(2) command that makes an object: its new descriptor.
fn bpf_fd(command: bpf_cmd, attr: &mut bpf_attr) -> io::Result<OwnedFd> {
    let fd =
        RawFd::try_from(bpf(command, attr)?).map_err(|_| io::Error::other("bad descriptor"))?;
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
