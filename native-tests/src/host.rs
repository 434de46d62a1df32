//! The host compiler oracle (natively): the host's C compiler decides whether a callback
//! receives exactly the arguments compiled C passes, and whether compiled C receives exactly
//! the result the handler returns. The oracle's model (cases, graffiti, C text, comparison,
//! reports) is `backcall-oracle`'s; this module compiles a batch into a shared library, loads
//! it with `dlopen` and calls real callbacks through it.
//!
//! One run takes a batch of [`Case`]s (a signature each) and one optimisation level:
//!
//! 1. the batch's C text ([`backcall_oracle::callers`]) is compiled as a shared library
//!    (`-shared -fPIC -nostdlib`) into a temporary directory: one compiler start per batch
//!    and level, which is what a run costs;
//! 2. the library is loaded with `dlopen`; for each case a [`backcall::Callback`] is created
//!    whose handler records `args.bytes(i)` of every argument and returns the result
//!    graffiti, and `bc_case_N` is called with the thunk;
//! 3. every non-padding byte must agree both ways ([`backcall_oracle::compare`]).
//!
//! Environment:
//! * `BACKCALL_ORACLE_CC`: the compiler command, with arguments (`clang -m32`); default `cc`
//!   (`cc -m32` for an i686 test binary, `aarch64-linux-gnu-gcc` for an AArch64 one).
//! * `BACKCALL_ORACLE_KEEP=1`: keep the C file and libraries (their directory is printed).
//! * `BACKCALL_ORACLE_TRACE=1`: print each case before calling it.
//!
//! A case that crashes the process (a runtime reading a wrong pointer, a thunk returning to the
//! wrong place) cannot be contained; a fatal-signal hook prints the cases in flight, with their
//! plans, on the way down (see `crash_note`).

use std::ffi::{c_void, CString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use backcall::{Callback, Error};
use backcall_abi::{Abi, Shape};
use backcall_oracle::callers::{arg_wide_name, caller_name, result_name, ret_wide_name, widened};
use backcall_oracle::compare::{compare, Received, Seen};
use backcall_oracle::compile::{compile_dropping_rejected, Compiled};
use backcall_oracle::graffiti::value_from_bytes;
use backcall_oracle::report::Outcome;
use backcall_oracle::{Case, Compiler, Failure, Opt, Prepared, Report, RunError};

/// The host's C compiler: `BACKCALL_ORACLE_CC` (split at whitespace) if set, else the compiler
/// for the target this test binary was built for: `cc`, `cc -m32` (i686) or
/// `aarch64-linux-gnu-gcc` (an AArch64 binary under qemu-user on an x86-64 machine).
pub fn host_compiler() -> Result<Compiler, RunError> {
    let abi = Abi::host().ok_or_else(|| RunError("backcall knows no ABI for this host".into()))?;
    let cmd = match std::env::var("BACKCALL_ORACLE_CC") {
        Ok(cmd) => cmd,
        Err(_) if cfg!(all(windows, target_env = "gnu", target_arch = "x86_64")) => {
            "x86_64-w64-mingw32-gcc".into()
        }
        Err(_) if cfg!(target_arch = "x86") => "cc -m32".into(),
        Err(_)
            if cfg!(all(target_arch = "aarch64", target_os = "linux"))
                && backcall_oracle::compiler::on_path("aarch64-linux-gnu-gcc") =>
        {
            "aarch64-linux-gnu-gcc".into()
        }
        Err(_) => "cc".into(),
    };
    let mut words = cmd.split_whitespace();
    let program = words.next().ok_or_else(|| RunError("BACKCALL_ORACLE_CC is empty".into()))?;
    let args: Vec<&str> = words.collect();
    Compiler::probe(abi, program, &args).ok_or_else(|| {
        RunError(format!(
            "`{cmd}` does not run or is neither clang nor gcc ({})",
            backcall_oracle::compiler::INSTALL_HINT
        ))
    })
}

/// A loaded shared library, closed on drop: `dlopen`ed, or `LoadLibrary`'s on Windows.
struct Library {
    handle: *mut c_void,
    path: PathBuf,
    opt: Opt,
}

impl Library {
    fn open(path: &Path, opt: Opt) -> Result<Library, String> {
        let handle = dynamic::open(path)?;
        Ok(Library { handle, path: path.to_path_buf(), opt })
    }

    fn symbol(&self, name: &str) -> Result<*mut c_void, String> {
        let c_name = CString::new(name).map_err(|e| e.to_string())?;
        dynamic::symbol(self.handle, &c_name)
            .map_err(|e| format!("symbol {name} in {}: {e}", self.path.display()))
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        // SAFETY: the handle is live and nothing of the library is used after this.
        unsafe { dynamic::close(self.handle) };
    }
}

/// The file name of a shared library the compiler writes.
const LIBRARY_SUFFIX: &str = if cfg!(windows) { "dll" } else { "so" };

#[cfg(unix)]
mod dynamic {
    use std::ffi::{c_void, CStr, CString};
    use std::path::Path;

    pub fn open(path: &Path) -> Result<*mut c_void, String> {
        let c_path =
            CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: a NUL-terminated path; the library has no initialisers (no libc, -nostdlib).
        let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(format!("dlopen {}: {}", path.display(), error()));
        }
        Ok(handle)
    }

    pub fn symbol(handle: *mut c_void, name: &CStr) -> Result<*mut c_void, String> {
        // SAFETY: a live handle and a NUL-terminated name.
        let sym = unsafe { libc::dlsym(handle, name.as_ptr()) };
        if sym.is_null() {
            Err(error())
        } else {
            Ok(sym)
        }
    }

    /// # Safety
    /// `handle` is live and nothing of its library is used after this.
    pub unsafe fn close(handle: *mut c_void) {
        // SAFETY: the caller's contract.
        unsafe { libc::dlclose(handle) };
    }

    fn error() -> String {
        // SAFETY: dlerror returns null or a NUL-terminated message.
        let msg = unsafe { libc::dlerror() };
        if msg.is_null() {
            "unknown error".into()
        } else {
            // SAFETY: non-null, NUL-terminated.
            unsafe { CStr::from_ptr(msg) }.to_string_lossy().into_owned()
        }
    }
}

#[cfg(windows)]
mod dynamic {
    use std::ffi::{c_char, c_void, CStr};
    use std::os::windows::ffi::OsStrExt as _;
    use std::path::Path;

    #[link(name = "kernel32")]
    extern "system" {
        fn LoadLibraryW(name: *const u16) -> *mut c_void;
        fn GetProcAddress(module: *mut c_void, name: *const c_char) -> *mut c_void;
        fn FreeLibrary(module: *mut c_void) -> i32;
    }

    pub fn open(path: &Path) -> Result<*mut c_void, String> {
        let wide: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
        // SAFETY: a NUL-terminated wide path.
        let handle = unsafe { LoadLibraryW(wide.as_ptr()) };
        if handle.is_null() {
            return Err(format!(
                "LoadLibrary {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(handle)
    }

    pub fn symbol(handle: *mut c_void, name: &CStr) -> Result<*mut c_void, String> {
        // SAFETY: a live module and a NUL-terminated name.
        let sym = unsafe { GetProcAddress(handle, name.as_ptr()) };
        if sym.is_null() {
            Err(std::io::Error::last_os_error().to_string())
        } else {
            Ok(sym)
        }
    }

    /// # Safety
    /// `handle` is live and nothing of its library is used after this.
    pub unsafe fn close(handle: *mut c_void) {
        // SAFETY: the caller's contract.
        unsafe { FreeLibrary(handle) };
    }
}

/// A fresh temporary directory named `prefix...`, removed on drop.
fn temporary_dir(prefix: &str) -> Result<tempfile::TempDir, RunError> {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir();
    dir.map_err(|e| RunError(format!("temporary directory: {e}")))
}

/// A hand-written C file compiled by [`host_compiler`] into a shared library and loaded: for
/// suites whose outside check is C of their own (C's `va_arg` reading a `va_list`). No C
/// library is linked outside Windows: such C uses compiler headers only (`<stdarg.h>`).
pub struct CLibrary {
    lib: Library,
    _dir: tempfile::TempDir,
}

impl CLibrary {
    /// Compiles `source` at `opt` and loads it.
    pub fn build(source: &str, opt: Opt) -> Result<CLibrary, RunError> {
        let compiler = host_compiler()?;
        let dir = temporary_dir("backcall-c-")?;
        let c_file = dir.path().join("suite.c");
        let lib_path = dir.path().join(format!("suite{}.{LIBRARY_SUFFIX}", opt.flag()));
        std::fs::write(&c_file, source)
            .map_err(|e| RunError(format!("{}: {e}", c_file.display())))?;
        compiler
            .compile_shared(&c_file, &lib_path, opt)
            .map_err(|e| RunError(format!("{compiler} {opt}: {e}")))?;
        let lib = Library::open(&lib_path, opt).map_err(RunError)?;
        Ok(CLibrary { lib, _dir: dir })
    }

    /// The address of the library's symbol `name`.
    pub fn symbol(&self, name: &str) -> Result<*mut c_void, String> {
        self.lib.symbol(name)
    }
}

/// The oracle for this host: its ABI and its C compiler.
#[derive(Clone, Debug)]
pub struct Oracle {
    /// the ABI callbacks are created for (the host's)
    pub abi: Abi,
    /// the compiler of the callers
    pub compiler: Compiler,
}

/// What the handler of one case saw: the bytes of every argument, per call.
type Calls = Arc<Mutex<Vec<Seen>>>;

impl Oracle {
    /// The host's ABI with [`host_compiler`].
    pub fn host() -> Result<Oracle, RunError> {
        let compiler = host_compiler()?;
        Ok(Oracle { abi: compiler.abi, compiler })
    }

    /// Runs `cases` as one batch at `opt`: one C file, one compile, one `dlopen`.
    pub fn run(&self, cases: &[Case], opt: Opt) -> Result<Report, RunError> {
        backcall::host_abi().map_err(|e| {
            RunError(format!("{e}: no thunk code for {} yet (abi/src/blobs/)", self.abi))
        })?;
        let mut report = Report::new(self.abi, self.compiler.to_string(), opt, cases.len());
        let mut prepared = Prepared::batch(self.abi, cases, &mut report);
        if prepared.is_empty() {
            return Ok(report);
        }
        let dir = temporary_dir("backcall-oracle-")?;
        let started = Instant::now();
        let lib = self.compile(dir.path(), opt, &mut prepared, &mut report)?;
        report.compile_time = started.elapsed();
        let started = Instant::now();
        if let Some(lib) = lib {
            for p in &prepared {
                report.record(self.run_case(&lib, p));
            }
        }
        report.call_time = started.elapsed();
        report.failures.sort_by_key(|f| f.index);
        // (mingw-w64 GCC natively on Win64, whose authority is Microsoft's convention as clang
        // implements it)
        report.excuse_known(&self.compiler);
        if std::env::var_os("BACKCALL_ORACLE_KEEP").is_some() {
            report.kept = Some(dir.keep());
        }
        Ok(report)
    }

    /// Compiles the batch into a library in `dir` (see [`compile_dropping_rejected`]).
    fn compile(
        &self,
        dir: &Path,
        opt: Opt,
        prepared: &mut Vec<Prepared>,
        report: &mut Report,
    ) -> Result<Option<Library>, RunError> {
        let c_file = dir.join("oracle.c");
        let lib_path = dir.join(format!("oracle{}.{LIBRARY_SUFFIX}", opt.flag()));
        compile_dropping_rejected(self.abi, prepared, report, |source| {
            std::fs::write(&c_file, source)
                .map_err(|e| RunError(format!("{}: {e}", c_file.display())))?;
            match self.compiler.compile_shared(&c_file, &lib_path, opt) {
                Ok(()) => Library::open(&lib_path, opt).map(Compiled::Output).map_err(RunError),
                Err(e) if e.not_run => Err(RunError(e.to_string())),
                Err(e) => Ok(Compiled::Rejected {
                    compiler: format!("{} {opt}", self.compiler.command()),
                    file_name: c_file.display().to_string(),
                    stderr: e.message,
                }),
            }
        })
    }

    /// Runs one compiled case: `Ok(None)` when it agrees, `Ok(Some(_))` when it ran and
    /// disagrees, `Err(_)` when it could not run.
    fn run_case(&self, lib: &Library, p: &Prepared) -> Outcome {
        let n = p.index;
        let callee = p.case.callee().clone();
        let could_not = |why: String| Box::new(p.could_not(why, None));
        let ret_layout = self.abi.layout(&callee.ret).map_err(|e| could_not(e.to_string()))?;
        let returned = p.case.returned_bytes(self.abi, &ret_layout);
        let value = value_from_bytes(self.abi, &ret_layout, &returned);
        let seen: Calls = Arc::default();
        let record = seen.clone();
        let integers: Vec<bool> = p.args.iter().map(widened).collect();
        let unnamed = p.case.unnamed.clone();
        let callback = Callback::new(&callee.to_string(), move |args| {
            let mut bytes: Vec<Vec<u8>> = (0..args.len()).map(|i| args.bytes(i)).collect();
            // The getter a handler uses for an integer: what C's conversion must equal.
            let integer = |i: usize| integers.get(i).is_some_and(|&w| w);
            let mut values: Vec<Option<u64>> =
                (0..args.len()).map(|i| integer(i).then(|| args.i64(i) as u64)).collect();
            if !unnamed.is_empty() && args.plan().signature.variadic {
                // SAFETY: the case's C caller passes exactly these unnamed arguments.
                let mut va = unsafe { args.va_args() };
                for ty in &unnamed {
                    // (a type the reader refuses leaves the argument missing: the comparison
                    // says so)
                    let Ok(arg) = va.arg(ty) else { break };
                    let value = integer(bytes.len()).then(|| arg.scalar.map(|(_, b)| b));
                    values.push(value.flatten());
                    bytes.push(arg.bytes);
                }
            }
            record.lock().unwrap_or_else(|e| e.into_inner()).push(Seen { bytes, values });
            value.clone()
        })
        .map_err(|e: Error| could_not(format!("Callback::new(\"{callee}\") failed: {e}")))?;
        // (the call's plan, its unnamed arguments included, is what the report shows)
        let plan = if p.case.unnamed.is_empty() {
            callback.plan()
        } else {
            Arc::new(p.case.call_plan(self.abi).map_err(|e| could_not(e.to_string()))?)
        };

        let caller = lib.symbol(&caller_name(n)).map_err(could_not)?;
        let ret_buf = if matches!(p.ret.shape, Shape::Void) {
            None
        } else {
            Some(lib.symbol(&result_name(n)).map_err(could_not)?)
        };
        let arg_wide = if p.args.iter().any(widened) {
            Some(lib.symbol(&arg_wide_name(n)).map_err(could_not)?)
        } else {
            None
        };
        let ret_wide = if widened(&p.ret) {
            Some(lib.symbol(&ret_wide_name(n)).map_err(could_not)?)
        } else {
            None
        };
        if std::env::var_os("BACKCALL_ORACLE_TRACE").is_some() {
            eprintln!("oracle: {} {}: case {n}: {}", self.abi, p.case.signature, caller_name(n));
        }
        let _in_flight = crash_note::enter(format!(
            "{} / `{}` {}, case {n} ({}): {}\n{plan}",
            self.abi,
            self.compiler.command(),
            lib.opt,
            caller_name(n),
            p.case.signature
        ));
        // SAFETY: bc_case_N is `void (void (*)(void))` and casts its argument to the function
        // pointer type of the case's signature, which the callback was created for.
        let caller: extern "C" fn(*const c_void) = unsafe { std::mem::transmute(caller) };
        caller(callback.code_ptr());
        // SAFETY: the exported arrays have exactly these sizes (backcall_oracle::callers).
        let received = unsafe {
            Received {
                result: ret_buf.map(|buf| {
                    std::slice::from_raw_parts(buf as *const u8, p.ret.size as usize).to_vec()
                }),
                // (unaligned reads: a `long long` array is only 4-aligned on i386)
                arg_values: arg_wide.map(|buf| {
                    let words = buf as *const u64;
                    (0..p.args.len()).map(|i| words.add(i).read_unaligned()).collect()
                }),
                result_widened: ret_wide.map(|buf| (buf as *const [u64; 2]).read_unaligned()),
            }
        };
        drop(callback);

        let calls = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
        let compared = compare(self.abi, p, &plan, &calls, &received, &returned);
        Ok((!compared.is_empty()).then(|| Failure {
            index: n,
            signature: p.case.signature.clone(),
            unnamed: p.case.unnamed.clone(),
            problems: compared.problems,
            mismatches: compared.mismatches,
            plan: Some(plan.to_string()),
        }))
    }
}

/// What the process says when a case kills it: the cases in flight, printed by a handler of
/// SIGSEGV, SIGBUS, SIGILL and SIGABRT that then hands the signal to the handler it replaced.
///
/// Everything the handler touches is async-signal-safe: atomics and `write(2)`. (Windows has no
/// such hook here: a crash there ends the process with the system's own report.)
#[cfg(unix)]
mod crash_note {
    use std::ffi::c_int;
    use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
    use std::sync::OnceLock;

    const SLOTS: usize = 32;
    const SIGNALS: [c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGABRT];

    static TEXT: [AtomicPtr<u8>; SLOTS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];
    static LEN: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];

    /// The handlers replaced, per entry of `SIGNALS`.
    struct Previous([libc::sigaction; SIGNALS.len()]);
    // SAFETY: plain data (handler addresses, masks, flags), only read after installation.
    unsafe impl Sync for Previous {}
    unsafe impl Send for Previous {}
    static PREVIOUS: OnceLock<Previous> = OnceLock::new();

    /// A case in flight; leaving the case (dropping this) clears its note.
    pub struct InFlight {
        slot: Option<usize>,
        _text: Box<[u8]>,
    }

    /// Records `text` as in flight until the answer is dropped.
    pub fn enter(text: String) -> InFlight {
        install();
        let mut text = text.into_bytes().into_boxed_slice();
        let ptr = text.as_mut_ptr();
        let slot = (0..SLOTS).find(|&k| {
            TEXT[k]
                .compare_exchange(std::ptr::null_mut(), ptr, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        });
        if let Some(k) = slot {
            LEN[k].store(text.len(), Ordering::SeqCst);
        }
        InFlight { slot, _text: text }
    }

    impl Drop for InFlight {
        fn drop(&mut self) {
            if let Some(k) = self.slot {
                LEN[k].store(0, Ordering::SeqCst);
                TEXT[k].store(std::ptr::null_mut(), Ordering::SeqCst);
            }
        }
    }

    fn install() {
        PREVIOUS.get_or_init(|| {
            // SAFETY: zeroed sigaction structs are valid; sigaction(2) with valid pointers.
            unsafe {
                let mut previous: [libc::sigaction; SIGNALS.len()] = std::mem::zeroed();
                let mut action: libc::sigaction = std::mem::zeroed();
                let handler: extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    on_fatal;
                action.sa_sigaction = handler as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                for (k, &sig) in SIGNALS.iter().enumerate() {
                    libc::sigaction(sig, &action, &mut previous[k]);
                }
                Previous(previous)
            }
        });
    }

    fn say(bytes: &[u8]) {
        // SAFETY: write(2) of a valid buffer; the result is irrelevant on the way down.
        unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
    }

    extern "C" fn on_fatal(sig: c_int, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
        say(b"\n*** the host compiler oracle died (fatal signal) with these cases in flight:\n");
        for k in 0..SLOTS {
            let ptr = TEXT[k].load(Ordering::SeqCst);
            let len = LEN[k].load(Ordering::SeqCst);
            if !ptr.is_null() && len > 0 {
                // SAFETY: the note lives until its case clears the slot.
                say(unsafe { std::slice::from_raw_parts(ptr, len) });
                say(b"\n");
            }
        }
        say(b"*** (the case's C caller is bc_case_<case>; BACKCALL_ORACLE_KEEP=1 keeps it)\n");
        // Hand over: restore the replaced handler; the fault recurs (or abort re-raises).
        if let (Some(previous), Some(k)) = (PREVIOUS.get(), SIGNALS.iter().position(|&s| s == sig))
        {
            // SAFETY: restoring a handler sigaction(2) gave us.
            unsafe { libc::sigaction(sig, &previous.0[k], std::ptr::null_mut()) };
        }
    }
}

#[cfg(not(unix))]
mod crash_note {
    /// A case in flight (noted nowhere).
    pub struct InFlight;

    pub fn enter(_text: String) -> InFlight {
        InFlight
    }
}
