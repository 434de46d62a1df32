//! Guest C: compiling C for an ABI with any of its compilers
//! ([`backcall_oracle::compiler`]), and the tiny C runtime every guest needs.
//!
//! Code compiled here is freestanding (no headers beyond the compiler's own, no libc), non-PIC,
//! has no unwind tables, stack protector or stack probes, so that [`crate::loader`] meets only
//! the relocations it implements. Compilers still call `memcpy`/`memmove`/`memset` for struct
//! copies (even at `-O0` and with `-ffreestanding`), and Windows objects that touch floating
//! point reference `_fltused`: [`RUNTIME_C`] defines all of them, and
//! [`crate::machine::Machine::load_runtime`] loads it first so later objects import them.
//!
//! Environment: `BACKCALL_CLANG` names the clang of [`compile_c`] (default `clang`).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use backcall_abi::Abi;
pub use backcall_oracle::compiler::CompileError;
use backcall_oracle::compiler::{self, Compiler, INSTALL_HINT};
pub use backcall_oracle::Opt;

/// The default clang for `abi` (`BACKCALL_CLANG`, else `clang`), or the install hint.
pub fn default_compiler(abi: Abi) -> Result<Compiler, CompileError> {
    let program = compiler::default_clang_program();
    Compiler::clang(abi, &program).ok_or_else(|| CompileError {
        command: program.clone(),
        message: format!(
            "`{program}` does not run or is not a clang: {INSTALL_HINT}, or set \
                          BACKCALL_CLANG"
        ),
        not_run: true,
    })
}

/// Compiles C `source` for `abi` at `opt` with the default clang; answers the object file's
/// bytes (ELF, COFF or Mach-O, as the triple implies).
pub fn compile_c(abi: Abi, source: &str, opt: Opt) -> Result<Vec<u8>, CompileError> {
    compile_c_with(abi, source, opt, &[])
}

/// [`compile_c`] with `extra` compiler arguments after the usual ones (a later `-fPIC`
/// overrides `-fno-pic`).
pub fn compile_c_with(
    abi: Abi,
    source: &str,
    opt: Opt,
    extra: &[&str],
) -> Result<Vec<u8>, CompileError> {
    default_compiler(abi)?.compile_object(source, opt, extra)
}

/// The guest's C runtime: what compilers call behind the programmer's back. Byte loops at
/// `-O0` (so that the optimiser cannot turn them back into calls to themselves).
pub const RUNTIME_C: &str = r#"
typedef __SIZE_TYPE__ size_t;

/* Referenced by every Windows object that uses floating point. */
int _fltused;

void *memcpy(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) {
        while (n--) *d++ = *s++;
    } else {
        d += n;
        s += n;
        while (n--) *--d = *--s;
    }
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x < *y ? -1 : 1;
    return 0;
}
"#;

/// [`RUNTIME_C`] compiled by `compiler` (once per process and compiler), so that it links
/// with that compiler's objects (the same object format and symbol decoration).
pub fn runtime_object(compiler: &Compiler) -> Result<Vec<u8>, CompileError> {
    static CACHE: OnceLock<Mutex<HashMap<Compiler, Vec<u8>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(obj) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(compiler) {
        return Ok(obj.clone());
    }
    let obj = compiler.compile_object(RUNTIME_C, Opt::O0, &[])?;
    cache.lock().unwrap_or_else(|p| p.into_inner()).insert(compiler.clone(), obj.clone());
    Ok(obj)
}
