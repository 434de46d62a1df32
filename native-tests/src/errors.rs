//! Collects the runtime's [`CallbackError`] reports so tests can assert on them.

use std::sync::{Mutex, Once};

use backcall::CallbackError;

static LOG: Mutex<Vec<CallbackError>> = Mutex::new(Vec::new());

/// Installs the collecting error hook (once per process).
pub fn capture() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        backcall::set_error_hook(|e| LOG.lock().unwrap_or_else(|p| p.into_inner()).push(e.clone()))
    });
}

/// The reports so far that concern `thunk`.
pub fn for_thunk(thunk: usize) -> Vec<CallbackError> {
    let log = LOG.lock().unwrap_or_else(|p| p.into_inner());
    log.iter().filter(|e| e.thunk() == thunk).cloned().collect()
}

/// The mappings of this process that are writable and executable at once (private or
/// shared), as `/proc/self/maps` lines.
pub fn rwx_mappings() -> Vec<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps is readable");
    maps.lines()
        .filter(|l| {
            let perms = l.split_whitespace().nth(1).unwrap_or("").as_bytes();
            perms.get(1) == Some(&b'w') && perms.get(2) == Some(&b'x')
        })
        .map(str::to_string)
        .collect()
}

/// Every error reported so far (after [`capture`]).
pub fn all() -> Vec<CallbackError> {
    LOG.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Asserts that no mapping of this process is writable and executable at once.
pub fn assert_no_rwx_mapping() {
    let rwx = rwx_mappings();
    assert!(rwx.is_empty(), "writable+executable mappings: {rwx:#?}");
}
