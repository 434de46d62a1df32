//! The pool's pages on Windows: `VirtualAlloc` reserves a page pair, the code page is written
//! and then switched to read+execute (`VirtualProtect`, `FlushInstructionCache`), the data page
//! is committed read+write. No page is writable and executable at once.

use super::os_error;
use crate::error::Error;

type Bool = i32;

const MEM_COMMIT: u32 = 0x1000;
const MEM_RESERVE: u32 = 0x2000;
const MEM_RELEASE: u32 = 0x8000;
const PAGE_NOACCESS: u32 = 0x01;
const PAGE_READWRITE: u32 = 0x04;
const PAGE_EXECUTE_READ: u32 = 0x20;

/// `SYSTEM_INFO` (sysinfoapi.h), of which only the page size is read.
#[repr(C)]
struct SystemInfo {
    processor_architecture: u32,
    page_size: u32,
    minimum_application_address: *mut core::ffi::c_void,
    maximum_application_address: *mut core::ffi::c_void,
    active_processor_mask: usize,
    number_of_processors: u32,
    processor_type: u32,
    allocation_granularity: u32,
    processor_level: u16,
    processor_revision: u16,
}

#[link(name = "kernel32")]
extern "system" {
    fn VirtualAlloc(
        address: *mut core::ffi::c_void,
        size: usize,
        allocation_type: u32,
        protect: u32,
    ) -> *mut core::ffi::c_void;
    fn VirtualProtect(
        address: *mut core::ffi::c_void,
        size: usize,
        protect: u32,
        old: *mut u32,
    ) -> Bool;
    fn VirtualFree(address: *mut core::ffi::c_void, size: usize, free_type: u32) -> Bool;
    fn FlushInstructionCache(
        process: *mut core::ffi::c_void,
        address: *const core::ffi::c_void,
        size: usize,
    ) -> Bool;
    fn GetCurrentProcess() -> *mut core::ffi::c_void;
    fn GetSystemInfo(info: *mut SystemInfo);
}

/// Windows has no sealed in-memory file the pool could map: code pages are written.
pub(super) enum CodeFile {}

/// The system's page size.
pub(super) fn page_size() -> usize {
    // SAFETY: all-zero is a valid SYSTEM_INFO, and GetSystemInfo fills it in.
    let mut info: SystemInfo = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out pointer.
    unsafe { GetSystemInfo(&mut info) };
    if info.page_size > 0 {
        info.page_size as usize
    } else {
        4096
    }
}

pub(super) fn code_file(_bytes: &[u8]) -> Option<CodeFile> {
    None
}

/// Reserves `len` bytes of address space, inaccessible.
pub(super) fn reserve(len: usize) -> Result<usize, Error> {
    // SAFETY: a fresh reservation; no existing memory is affected.
    let base = unsafe { VirtualAlloc(std::ptr::null_mut(), len, MEM_RESERVE, PAGE_NOACCESS) };
    if base.is_null() {
        return Err(Error::PoolExhausted(os_error("VirtualAlloc of a page pair failed")));
    }
    Ok(base as usize)
}

/// Gives back a reservation.
///
/// # Safety
/// `base` is a reservation of [`reserve`] that nothing refers to.
pub(super) unsafe fn release(base: usize, _len: usize) {
    // SAFETY: the caller's contract; MEM_RELEASE frees the whole reservation (size 0).
    unsafe { VirtualFree(base as *mut core::ffi::c_void, 0, MEM_RELEASE) };
}

pub(super) fn map_code_file(_base: usize, _size: usize, file: &CodeFile) -> Result<(), Error> {
    match *file {}
}

/// The code page at `base`, committed read+write, written with `bytes`, then switched to
/// read+execute.
pub(super) fn write_then_protect(base: usize, size: usize, bytes: &[u8]) -> Result<(), Error> {
    let page = base as *mut core::ffi::c_void;
    // SAFETY: the first page of our own reservation.
    if unsafe { VirtualAlloc(page, size, MEM_COMMIT, PAGE_READWRITE) }.is_null() {
        return Err(Error::PoolExhausted(os_error("VirtualAlloc of a code page failed")));
    }
    // SAFETY: `size` writable bytes; the template is `size` bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), page.cast::<u8>(), size) };
    let mut old = 0;
    // SAFETY: same page; from now on it is read+execute only.
    if unsafe { VirtualProtect(page, size, PAGE_EXECUTE_READ, &mut old) } == 0 {
        return Err(Error::ExecDenied(format!(
            "{}; the process refuses dynamic code (ProcessDynamicCodePolicy, Arbitrary Code \
             Guard), and backcall's pool needs VirtualProtect(PAGE_EXECUTE_READ)",
            os_error("VirtualProtect(PAGE_EXECUTE_READ) of a code page failed")
        )));
    }
    // "FlushInstructionCache": required after writing code that will run.
    // SAFETY: our own, mapped page.
    unsafe { FlushInstructionCache(GetCurrentProcess(), page, size) };
    Ok(())
}

/// Commits the data page at `data` read+write (never executable).
pub(super) fn make_data(data: usize, size: usize) -> Result<(), Error> {
    // SAFETY: the second page of our own reservation.
    if unsafe { VirtualAlloc(data as *mut core::ffi::c_void, size, MEM_COMMIT, PAGE_READWRITE) }
        .is_null()
    {
        return Err(Error::PoolExhausted(os_error("VirtualAlloc of a data page failed")));
    }
    Ok(())
}
