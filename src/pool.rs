//! The executable pool: pages of thunks, never writable and executable at once (W^X).
//!
//! A page is mapped read+write, filled with [`CodePage::build`]'s bytes (thunkEntry followed by
//! thunks), then switched to read+execute before any thunk address is handed out. No page is
//! ever written again, so creating and releasing a callback never touches page protections.

use backcall_abi::thunks::CodePage;
use backcall_abi::Abi;

use crate::error::Error;

/// One mapped, executable page.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExecPage {
    /// the page's address
    pub base: usize,
    /// address of thunk 0
    pub first_thunk: usize,
    /// how many thunks it holds
    pub thunks: u32,
    /// address of `return_from_context` in this page
    pub return_from_context: usize,
}

/// The host's page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as usize
    } else {
        4096
    }
}

/// Maps one page of `abi`'s code whose thunks carry slot ids `first_slot..`.
pub(crate) fn map_page(abi: Abi, dispatch: usize, first_slot: u32) -> Result<ExecPage, Error> {
    let size = page_size();
    // SAFETY: a fresh anonymous private mapping; no existing memory is affected.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(Error::PoolExhausted(format!(
            "mmap failed: {}",
            std::io::Error::last_os_error()
        )));
    }
    let unmap = |e: Error| {
        // SAFETY: `base` is the mapping made above and nothing refers to it yet.
        unsafe { libc::munmap(base, size) };
        e
    };
    let page = CodePage::build(abi, base as u64, size as u32, dispatch as u64, first_slot)
        .map_err(|e| unmap(Error::Code(e.to_string())))?;
    // SAFETY: the mapping is `size` bytes, writable, and the page's bytes are `size` long.
    unsafe { std::ptr::copy_nonoverlapping(page.bytes.as_ptr(), base.cast::<u8>(), size) };
    flush_icache(base as usize, size);
    // SAFETY: same mapping; from now on it is read+execute only.
    if unsafe { libc::mprotect(base, size, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
        let os = std::io::Error::last_os_error();
        return Err(unmap(Error::PoolExhausted(format!("mprotect(PROT_EXEC) failed: {os}"))));
    }
    Ok(ExecPage {
        base: base as usize,
        first_thunk: base as usize + page.first_thunk as usize,
        thunks: page.thunks,
        return_from_context: base as usize + page.return_from_context as usize,
    })
}

/// Makes freshly written code visible to instruction fetch (a no-op on x86, whose caches are
/// coherent; AArch64 needs explicit maintenance).
fn flush_icache(_start: usize, _len: usize) {
    #[cfg(target_arch = "aarch64")]
    aarch64_flush_icache(_start, _len);
}

#[cfg(target_arch = "aarch64")]
fn aarch64_flush_icache(start: usize, len: usize) {
    // Arm ARM B2.4.4: clean D-cache to the point of unification, invalidate I-cache, then
    // barriers. 64 bytes is the smallest line size in use; CTR_EL0 could refine it.
    const LINE: usize = 64;
    let end = start + len;
    let mut a = start & !(LINE - 1);
    while a < end {
        // SAFETY: `a` lies inside the mapping just written.
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
