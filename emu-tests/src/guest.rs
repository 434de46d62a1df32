//! Guest C: compiling C for an ABI's triple with clang (the oracle of DESIGN §6), and the tiny
//! C runtime every guest needs.
//!
//! Code compiled here is freestanding (no headers beyond clang's own, no libc), non-PIC, has no
//! unwind tables, stack protector or stack probes, so that [`crate::loader`] meets only the
//! relocations it implements. clang still calls `memcpy`/`memmove`/`memset` for struct copies
//! (even at `-O0` and with `-ffreestanding`), and Windows objects that touch floating point
//! reference `_fltused`: [`RUNTIME_C`] defines all of them, and
//! [`crate::machine::Machine::load_runtime`] loads it first so later objects import them.
//!
//! Environment: `BACKCALL_CLANG` names the clang to run (default `clang`).

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use backcall_abi::Abi;

/// An optimisation level the oracle compiles at (the host oracle's: one set of levels for
/// both). At `-O0` struct copies call `memcpy`; at `-O2` calls may become tail calls.
pub use backcall_native_tests::oracle::Opt;

/// clang failed (or could not be started).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// the ABI compiled for
    pub abi: Abi,
    /// the full command line
    pub command: String,
    /// clang's messages (or why it did not start)
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "compiling for {} failed: `{}`:\n{}", self.abi, self.command, self.message)
    }
}

impl std::error::Error for CompileError {}

/// The clang arguments (after the program name) that compile C from stdin to an object file on
/// stdout for `abi`.
pub fn clang_args(abi: Abi, opt: Opt) -> Vec<String> {
    let mut args: Vec<String> = [
        &format!("--target={}", abi.clang_target()),
        opt.flag(),
        "-c",
        "-ffreestanding",
        "-fno-pic",
        "-fno-asynchronous-unwind-tables",
        "-fno-unwind-tables",
        "-fno-stack-protector",
        "-fno-common",
        "-Werror=implicit-function-declaration",
        "-x",
        "c",
        "-",
        "-o",
        "-",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if matches!(abi, Abi::I386Win32 | Abi::X86_64Win64) {
        // Frames over a page would call `__chkstk`, which the guest does not have.
        args.push("-mno-stack-arg-probe".to_string());
    }
    args
}

/// Compiles C `source` for `abi` at `opt`; answers the object file's bytes (ELF, COFF or
/// Mach-O, as the triple implies).
pub fn compile_c(abi: Abi, source: &str, opt: Opt) -> Result<Vec<u8>, CompileError> {
    compile_c_with(abi, source, opt, &[])
}

/// [`compile_c`] with `extra` clang arguments after the usual ones (a later `-fPIC` overrides
/// `-fno-pic`).
pub fn compile_c_with(
    abi: Abi,
    source: &str,
    opt: Opt,
    extra: &[&str],
) -> Result<Vec<u8>, CompileError> {
    let program = std::env::var("BACKCALL_CLANG").unwrap_or_else(|_| "clang".to_string());
    let mut args = clang_args(abi, opt);
    args.extend(extra.iter().map(|s| s.to_string()));
    let command = format!("{program} {}", args.join(" "));
    let err = |message: String| CompileError { abi, command: command.clone(), message };
    let mut child = Command::new(&program)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("cannot run {program}: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let text = source.to_string();
    // Written from another thread: clang may fill its stdout pipe before reading all input.
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let output = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    let _ = writer.join();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(err(format!("{}\n--- source ---\n{source}", stderr.trim_end())));
    }
    Ok(output.stdout)
}

/// The guest's C runtime: what clang calls behind the programmer's back. Byte loops at `-O0`
/// (so that the optimiser cannot turn them back into calls to themselves).
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

/// [`RUNTIME_C`] compiled for `abi` (once per process and ABI).
pub fn runtime_object(abi: Abi) -> Result<Vec<u8>, CompileError> {
    static CACHE: OnceLock<Mutex<HashMap<Abi, Vec<u8>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(obj) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&abi) {
        return Ok(obj.clone());
    }
    let obj = compile_c(abi, RUNTIME_C, Opt::O0)?;
    cache.lock().unwrap_or_else(|p| p.into_inner()).insert(abi, obj.clone());
    Ok(obj)
}
