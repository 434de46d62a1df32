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
use backcall_abi::Abi;

use crate::error::Error;

// The system's side: reserving, mapping and protecting pages.
#[cfg(unix)]
#[path = "pool/unix.rs"]
mod os;
#[cfg(windows)]
#[path = "pool/windows.rs"]
mod os;

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
    let size = os::page_size();
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
    /// a sealed in-memory file holding `code.bytes`, or none: anonymous pages are written
    /// instead
    file: Option<os::CodeFile>,
}

static TEMPLATE: OnceLock<Result<Template, Error>> = OnceLock::new();

fn template(abi: Abi) -> Result<&'static Template, Error> {
    let t = TEMPLATE.get_or_init(|| {
        let code =
            CodePage::template(abi, page_size() as u32).map_err(|e| Error::Code(e.to_string()))?;
        let file = if std::env::var_os("BACKCALL_NO_MEMFD").is_some() {
            None
        } else {
            os::code_file(&code.bytes)
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

/// Maps one page pair of `abi`'s code whose data page names `dispatch` as the dispatcher.
pub(crate) fn map_page(abi: Abi, dispatch: usize) -> Result<ExecPage, Error> {
    let t = template(abi)?;
    let size = t.code.page_size as usize;
    // Reserve both pages first, so that the code page is followed by its data page.
    let base = os::reserve(2 * size)?;
    let code = match &t.file {
        Some(file) => os::map_code_file(base, size, file),
        None => os::write_then_protect(base, size, &t.code.bytes),
    };
    let data = base + size;
    let mapped = code.and_then(|()| os::make_data(data, size));
    if let Err(e) = mapped {
        // SAFETY: the reservation made above; nothing refers to it yet.
        unsafe { os::release(base, 2 * size) };
        return Err(e);
    }
    // SAFETY: the data page is `size` writable bytes, zeroed by the system.
    let words = unsafe { std::slice::from_raw_parts_mut(data as *mut u8, size) };
    t.code.init_data(words, dispatch as u64);
    debug_assert_eq!(DATA_DISPATCH, 0);
    Ok(ExecPage { base, data, code: &t.code })
}

fn os_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}
