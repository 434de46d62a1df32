//! The executable pool: page pairs of thunks (a code page, then its data page), where no page
//! is ever writable and executable at once (W^X), and no page the process wrote ever becomes
//! executable.
//!
//! Every code page holds the same bytes ([`CodePage::template`] for the host's page size), so
//! the process writes them once, into an anonymous in-memory file (`memfd_create`, sealed
//! against writes), and maps that file read+execute for every code page: the template page is
//! never mapped writable, and no mapping ever gains execute permission. This works in a
//! process that set `prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)` (systemd's
//! `MemoryDenyWriteExecute=`), which refuses W+X mappings and `mprotect(PROT_EXEC)` on
//! anonymous memory, as libffi's static trampolines do with a page of their library's text.
//!
//! Where `memfd_create` is unavailable (old kernels, sandboxes) or its files may not be
//! executed (`vm.memfd_noexec`), a code page is an anonymous page written and then switched to
//! read+execute; a policy that refuses that too is reported as [`Error::ExecDenied`].
//!
//! The data page after each code page is ordinary read+write memory: the dispatcher's address
//! at offset 0 and each thunk's record (slot word, target) at the thunk's own offset.

use std::sync::OnceLock;

use backcall_abi::thunks::{CodePage, DATA_DISPATCH};
use backcall_abi::{Abi, Arch};

use crate::error::Error;

/// One mapped page pair.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExecPage {
    /// the code page's address
    pub base: usize,
    /// the data page's address (`base + page_size`)
    pub data: usize,
    /// the template the code page maps
    pub code: &'static CodePage,
}

impl ExecPage {
    /// The address of thunk `i`.
    #[inline(always)]
    pub fn thunk(&self, i: u32) -> usize {
        self.base + self.code.thunk_offset(i) as usize
    }

    /// The address of thunk `i`'s record.
    #[inline(always)]
    pub fn record(&self, i: u32) -> usize {
        self.data + self.code.thunk_offset(i) as usize
    }
}

/// The host's page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let size = if size > 0 { size as usize } else { 4096 };
    PAGE_SIZE.store(size, std::sync::atomic::Ordering::Relaxed);
    size
}

static PAGE_SIZE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The page size, as [`page_size`] last read it (the dispatcher's hot path: set before the
/// first page exists, so before any call).
#[inline(always)]
pub(crate) fn page_size_cached() -> usize {
    PAGE_SIZE.load(std::sync::atomic::Ordering::Relaxed)
}

/// The process's code page and the file it is mapped from (if the system allows one).
struct Template {
    code: CodePage,
    /// a sealed memfd holding `code.bytes`, or none: anonymous pages are written instead
    file: Option<libc::c_int>,
}

static TEMPLATE: OnceLock<Result<Template, Error>> = OnceLock::new();

fn template(abi: Abi) -> Result<&'static Template, Error> {
    let t = TEMPLATE.get_or_init(|| {
        let code =
            CodePage::template(abi, page_size() as u32).map_err(|e| Error::Code(e.to_string()))?;
        let file = if std::env::var_os("BACKCALL_NO_MEMFD").is_some() {
            None
        } else {
            memfd_with(&code.bytes)
        };
        Ok(Template { code, file })
    });
    match t {
        Ok(t) if t.code.abi == abi => Ok(t),
        Ok(t) => Err(Error::Code(format!("the pool holds code for {}, not {abi}", t.code.abi))),
        Err(e) => Err(e.clone()),
    }
}

/// The offset of a named point of the shared code in the process's code page (the pool has
/// mapped pages, so the template exists).
pub(crate) fn symbol_offset(name: &str) -> usize {
    let t = TEMPLATE.get().and_then(|t| t.as_ref().ok()).expect("a mapped pool has a template");
    t.code.symbol(name).unwrap_or_else(|| panic!("{name} in the blob")) as usize
}

/// The code page every page pair of `abi` maps (built on first use).
pub(crate) fn template_for(abi: Abi) -> Result<&'static CodePage, Error> {
    template(abi).map(|t| &t.code)
}

/// A sealed, read-only-from-now-on memfd holding `bytes`, or `None` when the system offers
/// none that may be mapped executable.
#[cfg(target_os = "linux")]
fn memfd_with(bytes: &[u8]) -> Option<libc::c_int> {
    let name = c"backcall-thunks";
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3): ask for an executable file where `vm.memfd_noexec` would make
    // memfds non-executable by default; older kernels refuse the flag, so retry without.
    const MFD_EXEC: libc::c_uint = 0x10;
    // SAFETY: a NUL-terminated name and valid flags.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
    if fd < 0 {
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    if fd < 0 {
        return None;
    }
    let close = |fd| {
        // SAFETY: `fd` is ours and nothing maps it yet.
        unsafe { libc::close(fd) };
        None
    };
    let mut written = 0;
    while written < bytes.len() {
        // SAFETY: writes from a live slice.
        let n = unsafe { libc::write(fd, bytes[written..].as_ptr().cast(), bytes.len() - written) };
        if n <= 0 {
            return close(fd);
        }
        written += n as usize;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our own fd.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) } != 0 {
        return close(fd);
    }
    // Probe: the file must map read+execute (noexec mounts and policies say no here).
    let size = bytes.len();
    // SAFETY: a fresh shared mapping of our file, unmapped right away.
    let probe = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if probe == libc::MAP_FAILED {
        return close(fd);
    }
    // SAFETY: the probe mapping made above.
    unsafe { libc::munmap(probe, size) };
    Some(fd)
}

#[cfg(not(target_os = "linux"))]
fn memfd_with(_bytes: &[u8]) -> Option<libc::c_int> {
    None
}

fn os_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// Maps one page pair of `abi`'s code whose data page names `dispatch` as the dispatcher.
pub(crate) fn map_page(abi: Abi, dispatch: usize) -> Result<ExecPage, Error> {
    let t = template(abi)?;
    let size = t.code.page_size as usize;
    // Reserve both pages first, so that the code page is followed by its data page.
    // SAFETY: a fresh anonymous private reservation; no existing memory is affected.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * size,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(Error::PoolExhausted(os_error("mmap of a page pair failed")));
    }
    let unmap = |e: Error| {
        // SAFETY: the reservation made above; nothing refers to it yet.
        unsafe { libc::munmap(base, 2 * size) };
        e
    };
    let code = match t.file {
        Some(fd) => map_shared_code(base, size, fd),
        None => write_then_protect(base, size, &t.code.bytes),
    };
    code.map_err(unmap)?;
    let data = (base as usize + size) as *mut libc::c_void;
    // SAFETY: the second page of the reservation; read+write only.
    if unsafe { libc::mprotect(data, size, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
        return Err(unmap(Error::PoolExhausted(os_error("mprotect of a data page failed"))));
    }
    // SAFETY: the data page is `size` writable bytes, zeroed by mmap.
    let words = unsafe { std::slice::from_raw_parts_mut(data.cast::<u8>(), size) };
    t.code.init_data(words, dispatch as u64);
    debug_assert_eq!(DATA_DISPATCH, 0);
    Ok(ExecPage { base: base as usize, data: data as usize, code: &t.code })
}

/// The memfd path: the code page is a read+execute view of the template file.
fn map_shared_code(base: *mut libc::c_void, size: usize, fd: libc::c_int) -> Result<(), Error> {
    // SAFETY: replaces the first page of our own reservation.
    let code = unsafe {
        libc::mmap(
            base,
            size,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_SHARED | libc::MAP_FIXED,
            fd,
            0,
        )
    };
    if code == libc::MAP_FAILED {
        return Err(exec_denied("mmap(PROT_EXEC) of the thunk template failed"));
    }
    flush_icache(base as usize, size);
    Ok(())
}

/// The fallback: an anonymous page, written, then switched to read+execute.
fn write_then_protect(base: *mut libc::c_void, size: usize, bytes: &[u8]) -> Result<(), Error> {
    // SAFETY: the first page of our own reservation, read+write for the copy.
    if unsafe { libc::mprotect(base, size, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
        return Err(Error::PoolExhausted(os_error("mprotect of a code page failed")));
    }
    // SAFETY: `size` writable bytes; the template is `size` bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.cast::<u8>(), size) };
    flush_icache(base as usize, size);
    // SAFETY: same page; from now on it is read+execute only.
    if unsafe { libc::mprotect(base, size, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
        return Err(exec_denied("mprotect(PROT_EXEC) of a code page failed"));
    }
    Ok(())
}

/// The error of a system that refuses executable memory, naming the usual policies.
fn exec_denied(what: &str) -> Error {
    Error::ExecDenied(format!(
        "{}; the process refuses executable memory (prctl PR_SET_MDWE / systemd \
         MemoryDenyWriteExecute=, SELinux execmem, or memfd_create unavailable or \
         non-executable), and backcall's pool needs either an executable memfd or \
         mprotect(PROT_EXEC)",
        os_error(what)
    ))
}

/// Makes code visible to instruction fetch (a no-op where the caches are coherent).
fn flush_icache(_start: usize, _len: usize) {
    if Arch::host().is_some_and(Arch::needs_icache_flush) {
        #[cfg(target_arch = "aarch64")]
        aarch64_flush_icache(_start, _len);
    }
}

#[cfg(target_arch = "aarch64")]
fn aarch64_flush_icache(start: usize, len: usize) {
    // Arm ARM B2.4.4: clean D-cache to the point of unification, invalidate I-cache, then
    // barriers. 64 bytes is the smallest line size in use; CTR_EL0 could refine it.
    const LINE: usize = 64;
    let end = start + len;
    let mut a = start & !(LINE - 1);
    while a < end {
        // SAFETY: `a` lies inside a readable mapping of ours.
        unsafe { std::arch::asm!("dc cvau, {0}", in(reg) a) };
        a += LINE;
    }
    // SAFETY: barriers and cache maintenance have no memory-safety preconditions.
    unsafe { std::arch::asm!("dsb ish") };
    let mut a = start & !(LINE - 1);
    while a < end {
        // SAFETY: as above.
        unsafe { std::arch::asm!("ic ivau, {0}", in(reg) a) };
        a += LINE;
    }
    // SAFETY: as above.
    unsafe { std::arch::asm!("dsb ish", "isb") };
}
