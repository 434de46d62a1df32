//! The pool's pages on Unix: `mmap`, `mprotect`, and on Linux a sealed `memfd` the code pages
//! map, so that no page the process wrote ever becomes executable.

use backcall_abi::Arch;

use super::os_error;
use crate::error::Error;

/// A file descriptor of the sealed template file.
pub(super) type CodeFile = libc::c_int;

/// The system's page size.
pub(super) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as usize
    } else {
        4096
    }
}

/// A sealed, read-only-from-now-on memfd holding `bytes`, or `None` when the system offers
/// none that may be mapped executable.
#[cfg(target_os = "linux")]
pub(super) fn code_file(bytes: &[u8]) -> Option<CodeFile> {
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
pub(super) fn code_file(_bytes: &[u8]) -> Option<CodeFile> {
    None
}

/// Reserves `len` bytes of address space, inaccessible.
pub(super) fn reserve(len: usize) -> Result<usize, Error> {
    // SAFETY: a fresh anonymous private reservation; no existing memory is affected.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(Error::PoolExhausted(os_error("mmap of a page pair failed")));
    }
    Ok(base as usize)
}

/// Gives back a reservation.
///
/// # Safety
/// `base..base + len` is a reservation of [`reserve`] that nothing refers to.
pub(super) unsafe fn release(base: usize, len: usize) {
    // SAFETY: the caller's contract.
    unsafe { libc::munmap(base as *mut libc::c_void, len) };
}

/// The memfd path: the code page at `base` becomes a read+execute view of the template file.
pub(super) fn map_code_file(base: usize, size: usize, file: &CodeFile) -> Result<(), Error> {
    // SAFETY: replaces the first page of our own reservation.
    let code = unsafe {
        libc::mmap(
            base as *mut libc::c_void,
            size,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_SHARED | libc::MAP_FIXED,
            *file,
            0,
        )
    };
    if code == libc::MAP_FAILED {
        return Err(exec_denied("mmap(PROT_EXEC) of the thunk template failed"));
    }
    flush_icache(base, size);
    Ok(())
}

/// The fallback: the anonymous page at `base`, written with `bytes`, then switched to
/// read+execute.
pub(super) fn write_then_protect(base: usize, size: usize, bytes: &[u8]) -> Result<(), Error> {
    let page = base as *mut libc::c_void;
    // SAFETY: the first page of our own reservation, read+write for the copy.
    if unsafe { libc::mprotect(page, size, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
        return Err(Error::PoolExhausted(os_error("mprotect of a code page failed")));
    }
    // SAFETY: `size` writable bytes; the template is `size` bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), page.cast::<u8>(), size) };
    flush_icache(base, size);
    // SAFETY: same page; from now on it is read+execute only.
    if unsafe { libc::mprotect(page, size, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
        return Err(exec_denied("mprotect(PROT_EXEC) of a code page failed"));
    }
    Ok(())
}

/// Makes the data page at `data` read+write (never executable).
pub(super) fn make_data(data: usize, size: usize) -> Result<(), Error> {
    // SAFETY: the second page of our own reservation; read+write only.
    if unsafe {
        libc::mprotect(data as *mut libc::c_void, size, libc::PROT_READ | libc::PROT_WRITE)
    } != 0
    {
        return Err(Error::PoolExhausted(os_error("mprotect of a data page failed")));
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
