//! The host compiler oracle (DESIGN §6, natively): the host's C compiler decides whether a
//! callback receives exactly the arguments compiled C passes, and whether compiled C receives
//! exactly the result the handler returns.
//!
//! One run takes a batch of [`Case`]s (a signature each) and one optimisation level:
//!
//! 1. [`c_source`] writes ONE C file (no headers, no libc) with, per case `N`, a caller
//!    `void bc_case_N(void (*fp)(void))` that casts `fp` to the case's function pointer type,
//!    builds every argument from graffiti bytes (a `union { A v; unsigned char b[sizeof(A)]; }`
//!    initialised with `.b = {...}`), calls it, and stores the result's bytes into the exported
//!    buffer `unsigned char bc_ret_N[sizeof(R)]`. `_Static_assert`s pin every type's layout to
//!    backcall's [`Layout`], so a layout disagreement is a compile error naming the case, not a
//!    puzzling byte mismatch.
//! 2. [`Compiler`] compiles it as a shared library (`-shared -fPIC -nostdlib`) into a temporary
//!    directory: one compiler start per batch and level, which is what a run costs.
//! 3. The library is loaded with `dlopen`; for each case a [`backcall::Callback`] is created whose
//!    handler records `args.bytes(i)` of every argument and returns the result graffiti, and
//!    `bc_case_N` is called with the thunk.
//! 4. Every non-padding byte (see [`value_mask`]) of every argument must equal what C passed, and
//!    the non-padding bytes of `bc_ret_N` must equal what the handler returned. A [`Failure`]
//!    names the ABI, the compiler and level, the signature, the argument, both byte strings in
//!    hex, and where the plan says the bytes travel.
//!
//! Values are graffiti ([`graffiti`]): byte `j` of argument `i` is `(i << 4) | j`, so a shifted,
//! truncated or swapped byte shows at once. Results count down from `0xAF` instead.
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

use std::collections::BTreeMap;
use std::ffi::{c_void, CStr, CString};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backcall::{Callback, Error, Value};
use backcall_abi::{Abi, ArgPass, CallPlan, Layout, Scalar, Shape, Signature, Type};

use crate::cgen;

/// Graffiti seed of the result value (its bytes are then inverted in the low nibble, so they
/// count down from `0xAF`: see [`result_graffiti`]).
const RESULT_SEED: u32 = 0xA;

/// Compiler messages kept per rejected case.
const MESSAGE_LINES: usize = 8;

// ------------------------------------------------------------------------------------------
// Graffiti

/// Byte `j` of the raw graffiti for seed `seed` (an argument index): `(seed << 4) | j`.
///
/// Beyond 16 bytes (or 16 arguments) the nibbles repeat, so the higher parts of `j` and `seed`
/// are folded in: a 16-byte shift inside a large struct still shows.
pub fn graffiti_byte(seed: u32, j: u32) -> u8 {
    let base = (seed << 4) | (j & 0xF);
    (base ^ (j >> 4).wrapping_mul(0x35) ^ (seed >> 4).wrapping_mul(0x0B)) as u8
}

/// The graffiti value of argument `index` with layout `layout` on `abi`: raw graffiti made
/// valid for the argument's type (see [`make_valid`]).
pub fn arg_graffiti(abi: Abi, index: usize, layout: &Layout) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..layout.size).map(|j| graffiti_byte(index as u32, j)).collect();
    make_valid(abi, index as u32, layout, &mut bytes);
    bytes
}

/// The graffiti value a handler returns for a result of layout `layout`: `0xAF, 0xAE, ...`.
pub fn result_graffiti(abi: Abi, layout: &Layout) -> Vec<u8> {
    let mut bytes: Vec<u8> =
        (0..layout.size).map(|j| graffiti_byte(RESULT_SEED, j) ^ 0xF).collect();
    make_valid(abi, RESULT_SEED, layout, &mut bytes);
    bytes
}

/// Adjusts raw graffiti so that every scalar inside is a valid value of its type (DESIGN §6):
///
/// * `float`/`double`: the exponent's top bit (bit 6 of the most significant byte) is cleared,
///   so the value is never an infinity or a NaN (which x87 loads and stores could quieten).
/// * `_Bool`: 0 or 1 (alternating with the argument and member index).
/// * a scalar integer narrower than a register: the top bit is set for even seeds and cleared
///   for odd ones, so sign and zero extension give different registers.
pub fn make_valid(abi: Abi, seed: u32, layout: &Layout, bytes: &mut [u8]) {
    let leaves = layout.leaves();
    for leaf in &leaves {
        let msb = (leaf.offset + leaf.size - 1) as usize;
        if leaf.scalar.is_float() {
            bytes[msb] &= !0x40;
        }
    }
    for (k, leaf) in leaves.iter().enumerate() {
        if leaf.scalar == Scalar::Bool {
            bytes[leaf.offset as usize] = u8::from((seed as usize + k) & 1 == 0);
        }
    }
    if let Shape::Scalar(s) = layout.shape {
        let narrow = layout.size < abi.word_size();
        if narrow && !s.is_float() && !matches!(s, Scalar::Bool | Scalar::Pointer) {
            let msb = layout.size as usize - 1;
            if seed & 1 == 0 {
                bytes[msb] |= 0x80;
            } else {
                bytes[msb] &= !0x80;
            }
        }
    }
}

/// Which bytes of a value of `layout` belong to some scalar (`true`) and which are padding.
pub fn value_mask(layout: &Layout) -> Vec<bool> {
    let mut mask = vec![false; layout.size as usize];
    for leaf in layout.leaves() {
        mask[leaf.offset as usize..(leaf.offset + leaf.size) as usize].fill(true);
    }
    mask
}

/// The [`Value`] a dynamic handler returns for result bytes `bytes` of layout `layout`.
pub fn value_from_bytes(abi: Abi, layout: &Layout, bytes: &[u8]) -> Value {
    let mut word = [0u8; 8];
    let n = bytes.len().min(8);
    word[..n].copy_from_slice(&bytes[..n]);
    let raw = u64::from_le_bytes(word);
    match layout.shape {
        Shape::Void => Value::Void,
        Shape::Scalar(Scalar::Float) => Value::F32(f32::from_bits(raw as u32)),
        Shape::Scalar(Scalar::Double) => Value::F64(f64::from_bits(raw)),
        Shape::Scalar(s) if backcall_abi::is_signed(abi, s) => {
            let shift = 64 - 8 * n as u32;
            Value::Int(((raw << shift) as i64) >> shift)
        }
        Shape::Scalar(_) => Value::UInt(raw),
        Shape::Aggregate { .. } | Shape::Array { .. } => Value::Bytes(bytes.to_vec()),
    }
}

// ------------------------------------------------------------------------------------------
// Cases and the C text

/// One oracle case: what the C caller is compiled for, and (for tests of the oracle itself)
/// ways to make the callback side deliberately wrong.
#[derive(Clone, Debug)]
pub struct Case {
    /// the signature the C caller calls through
    pub signature: Signature,
    /// the signature the callback is created with; `None`: the same (only tests that check the
    /// oracle can fail set a different one)
    pub callee: Option<Signature>,
    /// a byte of the result the handler flips (XOR 1) before returning it; `None` normally
    pub flip_result_byte: Option<usize>,
}

impl Case {
    /// A case whose callback has the caller's signature and returns the right value.
    pub fn new(signature: Signature) -> Case {
        Case { signature, callee: None, flip_result_byte: None }
    }

    /// The signature the callback is created with.
    pub fn callee(&self) -> &Signature {
        self.callee.as_ref().unwrap_or(&self.signature)
    }

    /// The bytes the case's handler returns for a result of `layout` on `abi`: the result
    /// graffiti, with [`Case::flip_result_byte`] flipped.
    pub fn returned_bytes(&self, abi: Abi, layout: &Layout) -> Vec<u8> {
        let mut returned = result_graffiti(abi, layout);
        if let Some(b) = self.flip_result_byte.and_then(|k| returned.get_mut(k)) {
            *b ^= 1;
        }
        returned
    }
}

/// A case the ABI can lay out, with its layouts (what the C text and the checks need).
#[derive(Clone, Debug)]
pub struct Prepared {
    /// index of the case in the batch given to [`Oracle::run`]
    pub index: usize,
    /// the case
    pub case: Case,
    /// layouts of the arguments the caller passes
    pub args: Vec<Layout>,
    /// layout of the caller's result
    pub ret: Layout,
}

impl Prepared {
    /// Lays out `case` for `abi`, or says why the ABI refuses it.
    pub fn new(abi: Abi, index: usize, case: &Case) -> Result<Prepared, backcall_abi::AbiError> {
        abi.plan(&case.signature)?;
        let args = case.signature.args.iter().map(|t| abi.layout(t)).collect::<Result<_, _>>()?;
        let ret = abi.layout(&case.signature.ret)?;
        Ok(Prepared { index, case: case.clone(), args, ret })
    }

    /// Lays out every case of a batch for `abi`; a case the ABI refuses is skipped in `report`.
    pub fn batch(abi: Abi, cases: &[Case], report: &mut Report) -> Vec<Prepared> {
        let mut prepared = Vec::new();
        for (index, case) in cases.iter().enumerate() {
            match Prepared::new(abi, index, case) {
                Ok(p) => prepared.push(p),
                Err(e) => report.skipped.push(Skip {
                    index,
                    signature: case.signature.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        prepared
    }

    /// The failure of this case when it could not run, for the reason `why`.
    pub fn could_not(&self, why: String, plan: Option<&CallPlan>) -> Failure {
        Failure {
            index: self.index,
            signature: self.case.signature.clone(),
            problems: vec![why],
            plan: plan.map(|pl| pl.to_string()),
        }
    }
}

/// `#define`s that give the i386 convention keywords their GNU C spelling (gcc on Linux knows
/// only `__attribute__((stdcall))` and friends; clang knows both).
pub const CONVENTIONS: &str = "\
#define __cdecl __attribute__((cdecl))
#define __stdcall __attribute__((stdcall))
#define __fastcall __attribute__((fastcall))
#define __thiscall __attribute__((thiscall))
";

/// The C file for a batch on `abi`: [`cgen::PRELUDE`], [`CONVENTIONS`], then one caller per
/// case (see the [module documentation](self)).
///
/// Also answers, per case, the first and last line of its caller (to attribute compiler
/// messages).
pub fn c_source(abi: Abi, cases: &[Prepared]) -> (String, Vec<(usize, usize)>) {
    let mut out = format!(
        "/* backcall host compiler oracle: {} cases for {abi} (generated; see \
         native-tests/src/oracle.rs) */\n",
        cases.len()
    );
    out.push_str(cgen::PRELUDE);
    out.push_str(CONVENTIONS);
    let mut lines = Vec::with_capacity(cases.len());
    let mut line = out.lines().count();
    for p in cases {
        let mut caller = String::from("\n");
        write_caller(abi, p, &mut caller);
        let count = caller.lines().count();
        lines.push((line + 2, line + count));
        line += count;
        out.push_str(&caller);
    }
    (out, lines)
}

/// The name of case `n`'s caller function.
pub fn caller_name(n: usize) -> String {
    format!("bc_case_{n}")
}

/// The name of case `n`'s result buffer.
pub fn result_name(n: usize) -> String {
    format!("bc_ret_{n}")
}

fn hex_list(bytes: &[u8]) -> String {
    let items: Vec<String> = bytes.iter().map(|b| format!("0x{b:02x}")).collect();
    items.join(", ")
}

fn write_caller(abi: Abi, p: &Prepared, out: &mut String) {
    let n = p.index;
    let sig = &p.case.signature;
    let _ = writeln!(out, "/* case {n}: {} */", sig.to_string().replace("*/", "* /"));
    let void_ret = matches!(p.ret.shape, Shape::Void);
    if !void_ret {
        let _ = writeln!(out, "unsigned char {}[{}];", result_name(n), p.ret.size);
    }
    let _ = writeln!(out, "void {}(void (*bc_fp)(void)) {{", caller_name(n));
    // One printer for the function's scope: a tag is defined on its first use only.
    let mut printer = cgen::TypePrinter::new();
    let mut types: Vec<(String, &Type, &Layout)> = Vec::new();
    types.push(("bc_r".into(), &sig.ret, &p.ret));
    for (i, (ty, layout)) in sig.args.iter().zip(&p.args).enumerate() {
        types.push((format!("bc_a{i}"), ty, layout));
    }
    for (name, ty, layout) in &types {
        let _ = writeln!(out, "  typedef {};", printer.declaration(ty, name));
        for fact in cgen::layout_facts(name, layout) {
            let _ = writeln!(out, "  {}", fact.static_assert());
        }
    }
    let conv = sig.conv.keyword().map(|k| format!("{k} ")).unwrap_or_default();
    let params: Vec<String> = (0..sig.args.len()).map(|i| format!("bc_a{i}")).collect();
    let params = if params.is_empty() { "void".to_string() } else { params.join(", ") };
    let _ = writeln!(out, "  typedef bc_r ({conv}*bc_f)({params});");
    for (i, layout) in p.args.iter().enumerate() {
        let bytes = arg_graffiti(abi, i, layout);
        let _ = writeln!(
            out,
            "  union {{ bc_a{i} v; unsigned char b[{}]; }} a{i} = {{ .b = {{ {} }} }};",
            layout.size,
            hex_list(&bytes)
        );
    }
    let call_args: Vec<String> = (0..sig.args.len()).map(|i| format!("a{i}.v")).collect();
    let call = format!("((bc_f)bc_fp)({})", call_args.join(", "));
    if void_ret {
        let _ = writeln!(out, "  {call};");
    } else {
        let size = p.ret.size;
        let _ = writeln!(out, "  union {{ bc_r v; unsigned char b[{size}]; }} r;");
        let _ = writeln!(out, "  r.v = {call};");
        // volatile: a plain copy loop may become a call to memcpy, and this file has no libc.
        let _ = writeln!(
            out,
            "  for (unsigned i = 0; i < {size}; i++) ((volatile unsigned char *){})[i] = r.b[i];",
            result_name(n)
        );
    }
    out.push_str("}\n");
}

// ------------------------------------------------------------------------------------------
// The compiler

/// An optimisation level the callers are compiled at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Opt {
    /// `-O0`: every value goes through memory
    O0,
    /// `-O2`: values are constants folded straight into registers and stack slots
    O2,
}

impl Opt {
    /// Both levels.
    pub const ALL: [Opt; 2] = [Opt::O0, Opt::O2];

    /// The compiler flag.
    pub fn flag(self) -> &'static str {
        match self {
            Opt::O0 => "-O0",
            Opt::O2 => "-O2",
        }
    }
}

impl fmt::Display for Opt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.flag())
    }
}

/// A C compiler command for the host: program and leading arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiler {
    /// the program (`cc`, `aarch64-linux-gnu-gcc`, `clang`)
    pub program: String,
    /// arguments before backcall's own (`-m32`, `--target=...`)
    pub args: Vec<String>,
}

impl Compiler {
    /// `BACKCALL_ORACLE_CC` (split at whitespace) if set, else the compiler for the target this
    /// test binary was built for: `cc`, `cc -m32` (i686) or `aarch64-linux-gnu-gcc`.
    pub fn host() -> Compiler {
        if let Ok(cmd) = std::env::var("BACKCALL_ORACLE_CC") {
            if let Some(c) = Compiler::parse(&cmd) {
                return c;
            }
        }
        let cmd = if cfg!(target_arch = "x86") {
            "cc -m32"
        } else if cfg!(all(target_arch = "aarch64", target_os = "linux"))
            && on_path("aarch64-linux-gnu-gcc")
        {
            // an x86-64 machine running this test binary under qemu-user
            "aarch64-linux-gnu-gcc"
        } else {
            "cc"
        };
        Compiler::parse(cmd).expect("a non-empty command")
    }

    /// `clang --target=<abi's triple>` (DESIGN §6's oracle), if `clang` is on `PATH`.
    pub fn clang(abi: Abi) -> Option<Compiler> {
        on_path("clang")
            .then(|| Compiler::parse(&format!("clang --target={}", abi.clang_target())))?
    }

    /// A command line split at whitespace; `None` if it is empty.
    pub fn parse(cmd: &str) -> Option<Compiler> {
        let mut words = cmd.split_whitespace().map(str::to_string);
        let program = words.next()?;
        Some(Compiler { program, args: words.collect() })
    }

    /// Compiles `source` (at `c_file`) to the shared library `lib` at `opt`.
    pub fn compile_shared(&self, c_file: &Path, lib: &Path, opt: Opt) -> Result<(), String> {
        let output = Command::new(&self.program)
            .args(&self.args)
            .args(["-std=gnu11", opt.flag(), "-shared", "-fPIC", "-nostdlib", "-o"])
            .arg(lib)
            .arg(c_file)
            .output()
            .map_err(|e| format!("cannot run `{self}`: {e} (set BACKCALL_ORACLE_CC)"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }
}

impl fmt::Display for Compiler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.program)?;
        for a in &self.args {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

/// Whether `program` is an executable file in a `PATH` directory.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// A `dlopen`ed shared library, closed on drop.
struct Library {
    handle: *mut c_void,
    path: PathBuf,
    opt: Opt,
}

impl Library {
    fn open(path: &Path, opt: Opt) -> Result<Library, String> {
        let c_path =
            CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: a NUL-terminated path; the library has no initialisers (no libc, -nostdlib).
        let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(format!("dlopen {}: {}", path.display(), dl_error()));
        }
        Ok(Library { handle, path: path.to_path_buf(), opt })
    }

    fn symbol(&self, name: &str) -> Result<*mut c_void, String> {
        let c_name = CString::new(name).map_err(|e| e.to_string())?;
        // SAFETY: a live handle and a NUL-terminated name.
        let sym = unsafe { libc::dlsym(self.handle, c_name.as_ptr()) };
        if sym.is_null() {
            Err(format!("dlsym {name} in {}: {}", self.path.display(), dl_error()))
        } else {
            Ok(sym)
        }
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        // SAFETY: the handle is live and nothing of the library is used after this.
        unsafe { libc::dlclose(self.handle) };
    }
}

fn dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated message.
    let msg = unsafe { libc::dlerror() };
    if msg.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: non-null, NUL-terminated.
        unsafe { CStr::from_ptr(msg) }.to_string_lossy().into_owned()
    }
}

// ------------------------------------------------------------------------------------------
// Running a batch

/// The oracle for this host: its ABI and its C compiler.
#[derive(Clone, Debug)]
pub struct Oracle {
    /// the ABI callbacks are created for (the host's)
    pub abi: Abi,
    /// the compiler of the callers
    pub compiler: Compiler,
}

/// Why a whole run could not happen (as opposed to a case failing).
#[derive(Clone, Debug)]
pub struct RunError(pub String);

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

/// A case the ABI refused (counted, not run).
#[derive(Clone, Debug)]
pub struct Skip {
    /// index in the batch
    pub index: usize,
    /// the signature
    pub signature: Signature,
    /// the ABI's reason
    pub reason: String,
}

/// A case that ran and disagreed with the compiler, or could not be run.
#[derive(Clone, Debug)]
pub struct Failure {
    /// index in the batch
    pub index: usize,
    /// the caller's signature
    pub signature: Signature,
    /// one paragraph per problem (an argument, the result, the compiler's refusal)
    pub problems: Vec<String>,
    /// the callback's plan, printed (when a callback was created)
    pub plan: Option<String>,
}

/// The outcome of one batch at one level.
#[derive(Clone, Debug)]
pub struct Report {
    /// the ABI
    pub abi: Abi,
    /// the compiler, as a command
    pub compiler: String,
    /// the level
    pub opt: Opt,
    /// how many cases the batch had
    pub cases: usize,
    /// cases that ran to the comparison
    pub ran: usize,
    /// cases the ABI refused
    pub skipped: Vec<Skip>,
    /// cases that disagreed or could not run
    pub failures: Vec<Failure>,
    /// time spent compiling
    pub compile_time: Duration,
    /// time spent creating callbacks and calling
    pub call_time: Duration,
    /// where the C file and libraries are kept (`BACKCALL_ORACLE_KEEP=1`)
    pub kept: Option<PathBuf>,
}

impl Report {
    /// The report of a batch of `cases` cases on `abi`, before anything ran.
    pub fn new(abi: Abi, compiler: String, opt: Opt, cases: usize) -> Report {
        Report {
            abi,
            compiler,
            opt,
            cases,
            ran: 0,
            skipped: Vec::new(),
            failures: Vec::new(),
            compile_time: Duration::ZERO,
            call_time: Duration::ZERO,
            kept: None,
        }
    }

    /// Counts one case's outcome: `Ok(None)` it ran and agrees, `Ok(Some(_))` it ran and
    /// disagrees, `Err(_)` it could not run.
    pub fn record(&mut self, outcome: Result<Option<Failure>, Failure>) {
        match outcome {
            Ok(None) => self.ran += 1,
            Ok(Some(failure)) => {
                self.ran += 1;
                self.failures.push(failure);
            }
            Err(failure) => self.failures.push(failure),
        }
    }

    /// No failure, and at least one case ran.
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty() && self.ran > 0
    }

    /// Batch indices of the failing cases.
    pub fn failing(&self) -> Vec<usize> {
        self.failures.iter().map(|f| f.index).collect()
    }

    /// One line: counts and times.
    pub fn summary(&self) -> String {
        format!(
            "{} / `{}` {}: {} cases, {} ran, {} skipped by the ABI, {} failed \
             (compile {:.2?}, calls {:.2?})",
            self.abi,
            self.compiler,
            self.opt,
            self.cases,
            self.ran,
            self.skipped.len(),
            self.failures.len(),
            self.compile_time,
            self.call_time
        )
    }

    /// Panics with the whole report unless [`Report::is_ok`].
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(self.is_ok(), "{self}");
    }
}

/// Failures explained in full in a report; the rest are listed by signature.
const EXPLAINED: usize = 5;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary())?;
        if self.ran == 0 && self.failures.is_empty() {
            writeln!(f, "nothing ran: every case was skipped by the ABI")?;
        }
        for fail in self.failures.iter().take(EXPLAINED) {
            writeln!(f)?;
            write_failure(f, self, fail)?;
        }
        if self.failures.len() > EXPLAINED {
            writeln!(f, "\n{} more failing cases:", self.failures.len() - EXPLAINED)?;
            for fail in &self.failures[EXPLAINED..] {
                writeln!(f, "  case {}: {}", fail.index, fail.signature)?;
            }
        }
        if let Some(dir) = &self.kept {
            writeln!(f, "\nthe C file and compiled callers are kept in {}", dir.display())?;
        } else if !self.failures.is_empty() {
            writeln!(
                f,
                "\nBACKCALL_ORACLE_KEEP=1 keeps the generated C (function bc_case_<case>) and \
                 the compiled callers; BACKCALL_ORACLE_CC=<command> (host oracle) or \
                 BACKCALL_CLANG=<clang> (emulated oracle) picks another compiler"
            )?;
        }
        if !self.skipped.is_empty() {
            let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
            for s in &self.skipped {
                *reasons.entry(&s.reason).or_default() += 1;
            }
            writeln!(f, "skipped:")?;
            for (reason, n) in reasons {
                writeln!(f, "  {n} x {reason}")?;
            }
        }
        Ok(())
    }
}

fn write_failure(f: &mut fmt::Formatter<'_>, r: &Report, fail: &Failure) -> fmt::Result {
    writeln!(f, "FAILED: {} / `{}` {}, case {}:", r.abi, r.compiler, r.opt, fail.index)?;
    writeln!(f, "  signature: {}", fail.signature)?;
    for p in &fail.problems {
        for line in p.lines() {
            writeln!(f, "  {line}")?;
        }
    }
    if let Some(plan) = &fail.plan {
        writeln!(f, "  the callback's plan:")?;
        for line in plan.lines() {
            writeln!(f, "    {line}")?;
        }
    }
    Ok(())
}

/// What the handler of one case saw: the bytes of every argument, per call.
type Seen = Arc<Mutex<Vec<Vec<Vec<u8>>>>>;

impl Oracle {
    /// The host's ABI with [`Compiler::host`].
    ///
    /// # Panics
    /// If backcall does not know the host's ABI at all.
    pub fn host() -> Oracle {
        let abi = Abi::host().expect("backcall knows the host ABI");
        Oracle { abi, compiler: Compiler::host() }
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
        let dir = tempfile::Builder::new()
            .prefix("backcall-oracle-")
            .tempdir()
            .map_err(|e| RunError(format!("temporary directory: {e}")))?;
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
        let lib_path = dir.join(format!("oracle{}.so", opt.flag()));
        compile_dropping_rejected(self.abi, prepared, report, |source| {
            std::fs::write(&c_file, source)
                .map_err(|e| RunError(format!("{}: {e}", c_file.display())))?;
            match self.compiler.compile_shared(&c_file, &lib_path, opt) {
                Ok(()) => Library::open(&lib_path, opt).map(Compiled::Output).map_err(RunError),
                Err(stderr) => Ok(Compiled::Rejected {
                    compiler: format!("{} {opt}", self.compiler),
                    file_name: c_file.display().to_string(),
                    stderr,
                }),
            }
        })
    }

    /// Runs one compiled case: `Ok(None)` when it agrees, `Ok(Some(_))` when it ran and
    /// disagrees, `Err(_)` when it could not run.
    fn run_case(&self, lib: &Library, p: &Prepared) -> Result<Option<Failure>, Failure> {
        let n = p.index;
        let callee = p.case.callee().clone();
        let could_not = |why: String| p.could_not(why, None);
        let ret_layout = self.abi.layout(&callee.ret).map_err(|e| could_not(e.to_string()))?;
        let returned = p.case.returned_bytes(self.abi, &ret_layout);
        let value = value_from_bytes(self.abi, &ret_layout, &returned);
        let seen: Seen = Arc::default();
        let record = seen.clone();
        let callback = Callback::new(&callee.to_string(), move |args| {
            let bytes = (0..args.len()).map(|i| args.bytes(i)).collect();
            record.lock().unwrap_or_else(|e| e.into_inner()).push(bytes);
            value.clone()
        })
        .map_err(|e: Error| could_not(format!("Callback::new(\"{callee}\") failed: {e}")))?;
        let plan = callback.plan();

        let caller = lib.symbol(&caller_name(n)).map_err(could_not)?;
        let ret_buf = if matches!(p.ret.shape, Shape::Void) {
            None
        } else {
            Some(lib.symbol(&result_name(n)).map_err(could_not)?)
        };
        if std::env::var_os("BACKCALL_ORACLE_TRACE").is_some() {
            eprintln!("oracle: {} {}: case {n}: {}", self.abi, p.case.signature, caller_name(n));
        }
        let _in_flight = crash_note::enter(format!(
            "{} / `{}` {}, case {n} ({}): {}\n{plan}",
            self.abi,
            self.compiler,
            lib.opt,
            caller_name(n),
            p.case.signature
        ));
        // SAFETY: bc_case_N is `void (void (*)(void))` and casts its argument to the function
        // pointer type of the case's signature, which the callback was created for.
        let caller: extern "C" fn(*const c_void) = unsafe { std::mem::transmute(caller) };
        caller(callback.code_ptr());
        let received = ret_buf.map(|buf| {
            // SAFETY: bc_ret_N is an exported array of exactly the result's size.
            unsafe { std::slice::from_raw_parts(buf as *const u8, p.ret.size as usize) }.to_vec()
        });
        drop(callback);

        let calls = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
        let problems = compare(self.abi, p, &plan, &calls, received.as_deref(), &returned);
        Ok((!problems.is_empty()).then(|| Failure {
            index: n,
            signature: p.case.signature.clone(),
            problems,
            plan: Some(plan.to_string()),
        }))
    }
}

/// Compares what one case's handler received (`calls`: the bytes of every argument, per call)
/// with what the C caller passed, and the result bytes the caller stored (`received_ret`) with
/// what the handler returned; answers one paragraph per problem (empty: the case agrees).
///
/// `returned` is what the handler actually wrote (it names the source of misplaced bytes).
/// Shared by the host oracle and the emulated one (`backcall-emu-tests`).
pub fn compare(
    abi: Abi,
    p: &Prepared,
    plan: &CallPlan,
    calls: &[Vec<Vec<u8>>],
    received_ret: Option<&[u8]>,
    returned: &[u8],
) -> Vec<String> {
    let [args] = calls else {
        return vec![format!(
            "the handler ran {} times for one call from C (expected once)",
            calls.len()
        )];
    };
    let passed: Vec<Vec<u8>> =
        p.args.iter().enumerate().map(|(i, l)| arg_graffiti(abi, i, l)).collect();
    let mut problems = Vec::new();
    for (i, (layout, sent)) in p.args.iter().zip(&passed).enumerate() {
        let ty = &p.case.signature.args[i];
        let Some(got) = args.get(i) else {
            problems.push(format!(
                "argument {i} ({ty}): the handler received no argument {i} (it got {})",
                args.len()
            ));
            continue;
        };
        let mask = value_mask(layout);
        let Some(diff) = differing(&mask, sent, got) else { continue };
        let mut text = format!(
            "argument {i} ({ty}, {} bytes): received bytes differ at {}\n  \
             passed by C: {}\n  received:    {}",
            layout.size,
            ranges(&diff),
            hex_masked(sent, &mask),
            hex_masked(got, &mask),
        );
        if got.len() != sent.len() {
            let _ = write!(text, "\n  (received {} bytes, C passed {})", got.len(), sent.len());
        }
        if let Some(origin) = guess_origin(got, &diff, &passed, returned) {
            let _ = write!(text, "\n  received {origin}");
        }
        if let Some(loc) = arg_location(plan, i, &diff) {
            let _ = write!(text, "\n  the callback's plan: {loc}");
        }
        problems.push(text);
    }
    if args.len() > p.args.len() {
        problems.push(format!(
            "the handler received {} arguments; C passed {}",
            args.len(),
            p.args.len()
        ));
    }
    if let Some(got) = received_ret {
        let mask = value_mask(&p.ret);
        let expected = result_graffiti(abi, &p.ret);
        if let Some(diff) = differing(&mask, &expected, got) {
            let flipped = if p.case.flip_result_byte.is_some() {
                " (this case's handler deliberately returns a wrong byte)"
            } else {
                ""
            };
            let mut text = format!(
                "result ({}, {} bytes): C received bytes that differ at {}{flipped}\n  \
                 handler returned: {}\n  C received:       {}\n  the callback's plan: {}",
                p.case.signature.ret,
                p.ret.size,
                ranges(&diff),
                hex_masked(&expected, &mask),
                hex_masked(got, &mask),
                ret_location(plan)
            );
            if let Some(origin) = guess_origin(got, &diff, &passed, &expected) {
                let _ = write!(text, "\n  received {origin}");
            }
            problems.push(text);
        }
    }
    if !problems.is_empty() && p.case.callee.is_some() {
        let note = format!("(deliberately) the callback was created for `{}`", p.case.callee());
        problems.insert(0, note);
    }
    problems
}

/// Offsets (within `mask`) where `got` differs from `sent` (a missing byte differs).
pub fn differing(mask: &[bool], sent: &[u8], got: &[u8]) -> Option<Vec<usize>> {
    let diff: Vec<usize> =
        (0..mask.len()).filter(|&k| mask[k] && got.get(k) != sent.get(k)).collect();
    (!diff.is_empty()).then_some(diff)
}

/// `0..3, 8, 12..15` for sorted offsets.
pub fn ranges(offsets: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut k = 0;
    while k < offsets.len() {
        let start = offsets[k];
        let mut end = start;
        while k + 1 < offsets.len() && offsets[k + 1] == end + 1 {
            k += 1;
            end += 1;
        }
        out.push(if start == end {
            format!("byte {start}")
        } else {
            format!("bytes {start}..={end}")
        });
        k += 1;
    }
    out.join(", ")
}

/// Hex bytes, `--` for padding (and `..` for missing bytes).
pub fn hex_masked(bytes: &[u8], mask: &[bool]) -> String {
    let len = bytes.len().max(mask.len());
    let items: Vec<String> = (0..len)
        .map(|k| match (bytes.get(k), mask.get(k).copied().unwrap_or(true)) {
            (None, _) => "..".into(),
            (Some(_), false) => "--".into(),
            (Some(b), true) => format!("{b:02x}"),
        })
        .collect();
    items.join(" ")
}

/// Names the value whose graffiti the first run of differing bytes of `got` carries, if any:
/// "bytes 0..=3 are argument 1's bytes 0..=3". Runs shorter than 2 bytes say too little.
fn guess_origin(got: &[u8], diff: &[usize], passed: &[Vec<u8>], result: &[u8]) -> Option<String> {
    let first = *diff.first()?;
    let len = diff.iter().enumerate().take_while(|&(k, &d)| d == first + k).count();
    let len = len.min(got.len().saturating_sub(first));
    if len < 2 {
        return None;
    }
    let needle = &got[first..first + len];
    let sources = passed
        .iter()
        .enumerate()
        .map(|(i, b)| (format!("argument {i}'s"), b.as_slice()))
        .chain(std::iter::once(("the result's".to_string(), result)));
    for (name, hay) in sources {
        if let Some(at) = hay.windows(len).position(|w| w == needle) {
            return Some(format!(
                "bytes {first}..={} are {name} bytes {at}..={}",
                first + len - 1,
                at + len - 1
            ));
        }
    }
    None
}

/// Where argument `i` travels by the plan, and which pieces hold the differing bytes.
fn arg_location(plan: &CallPlan, i: usize, diff: &[usize]) -> Option<String> {
    let arg = plan.args.get(i)?;
    Some(match &arg.pass {
        ArgPass::Direct(pieces) => {
            let parts: Vec<String> = pieces
                .iter()
                .map(|pc| {
                    let range = pc.offset as usize..(pc.offset + pc.size) as usize;
                    let bad =
                        if diff.iter().any(|d| range.contains(d)) { " (differs)" } else { "" };
                    format!(
                        "bytes {}..{} in {}{bad}",
                        range.start,
                        range.end,
                        plan.loc_name(pc.loc, false)
                    )
                })
                .collect();
            parts.join(", ")
        }
        ArgPass::Indirect { pointer } => {
            format!("by reference, the pointer in {}", plan.loc_name(*pointer, false))
        }
    })
}

/// How the plan returns the result, in the Display form's words.
pub fn ret_location(plan: &CallPlan) -> String {
    let text = plan.to_string();
    let line = text.lines().find(|l| l.trim_start().starts_with("ret "));
    let mut out = line.map(|l| l.trim().to_string()).unwrap_or_default();
    let _ = write!(out, "; return code {:?}", plan.code);
    out
}

/// What a compiler made of a batch's C file (see [`compile_dropping_rejected`]).
#[derive(Debug)]
pub enum Compiled<T> {
    /// the compiled callers (a library, an object file)
    Output(T),
    /// the compiler refused the file
    Rejected {
        /// the compiler command, as the failure messages name it
        compiler: String,
        /// what the compiler calls the C file in its messages (a path, `<stdin>`)
        file_name: String,
        /// its messages
        stderr: String,
    },
}

/// Compiler message lines quoted when no message names a case.
const BATCH_MESSAGE_LINES: usize = 40;

/// Compiles a batch with `compile`, which gets the C text of [`c_source`]; a case whose caller
/// the compiler rejects (most likely a layout `_Static_assert`) becomes a failure in `report`
/// and the rest is compiled again. `None`: every caller was rejected. Shared by the host oracle
/// and the emulated one (`backcall-emu-tests`).
pub fn compile_dropping_rejected<T>(
    abi: Abi,
    prepared: &mut Vec<Prepared>,
    report: &mut Report,
    mut compile: impl FnMut(&str) -> Result<Compiled<T>, RunError>,
) -> Result<Option<T>, RunError> {
    loop {
        if prepared.is_empty() {
            return Ok(None);
        }
        let (source, lines) = c_source(abi, prepared);
        let (compiler, file_name, stderr) = match compile(&source)? {
            Compiled::Output(output) => return Ok(Some(output)),
            Compiled::Rejected { compiler, file_name, stderr } => (compiler, file_name, stderr),
        };
        let by_case = attribute_compiler_messages(&stderr, &file_name, &lines);
        if by_case.is_empty() {
            let total = stderr.lines().count();
            let mut head: Vec<String> =
                stderr.lines().take(BATCH_MESSAGE_LINES).map(str::to_string).collect();
            if total > BATCH_MESSAGE_LINES {
                head.push(format!("... ({} more lines)", total - BATCH_MESSAGE_LINES));
            }
            return Err(RunError(format!(
                "`{compiler}` failed on the batch ({file_name}), and no message names a case:\n{}",
                head.join("\n")
            )));
        }
        let mut kept = Vec::with_capacity(prepared.len());
        for (k, p) in prepared.drain(..).enumerate() {
            match by_case.get(&k) {
                None => kept.push(p),
                Some(messages) => report.failures.push(p.could_not(
                    format!(
                        "`{compiler}` rejected the caller; a failed _Static_assert means \
                         backcall's layout of a type differs from the compiler's:\n{}",
                        messages.join("\n")
                    ),
                    None,
                )),
            }
        }
        *prepared = kept;
    }
}

/// Compiler error messages about the file the compiler calls `file_name` (a path, or
/// `<stdin>` for source piped in) grouped by the case (position in the batch) whose caller
/// they point into, through the line ranges [`c_source`] answered; at most a few per case.
pub fn attribute_compiler_messages(
    stderr: &str,
    file_name: &str,
    lines: &[(usize, usize)],
) -> BTreeMap<usize, Vec<String>> {
    let prefix = format!("{file_name}:");
    let mut by_case: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for msg in stderr.lines() {
        let Some(rest) = msg.strip_prefix(&prefix) else { continue };
        if !rest.contains("error") {
            continue;
        }
        let Some(line) = rest.split(':').next().and_then(|l| l.parse::<usize>().ok()) else {
            continue;
        };
        let Some(k) = lines.iter().position(|&(first, last)| (first..=last).contains(&line)) else {
            continue;
        };
        let kept = by_case.entry(k).or_default();
        if kept.len() < MESSAGE_LINES {
            kept.push(format!("oracle.c:{rest}"));
        }
    }
    by_case
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rejected caller becomes its case's failure, the rest is compiled again; a message
    /// that names no case ends the run.
    #[test]
    fn compile_dropping_rejected_fails_the_rejected_cases_only() {
        let abi = Abi::X86_64Sysv;
        let int = Type::scalar(Scalar::Int);
        let cases: Vec<Case> =
            (0..3).map(|n| Case::new(Signature::new(int.clone(), vec![int.clone(); n]))).collect();
        let mut report = Report::new(abi, "cc".into(), Opt::O0, cases.len());
        let mut prepared = Prepared::batch(abi, &cases, &mut report);
        // An error on the first line of case 1's caller.
        let (_, lines) = c_source(abi, &prepared);
        let stderr = format!("x.c:{}:3: error: static assertion failed", lines[1].0);
        let mut compiles = Vec::new();
        let out = compile_dropping_rejected(abi, &mut prepared, &mut report, |source| {
            compiles.push(source.matches("/* case ").count());
            if compiles.len() > 1 {
                return Ok(Compiled::Output("the library"));
            }
            let stderr = stderr.clone();
            Ok(Compiled::Rejected { compiler: "cc -O0".into(), file_name: "x.c".into(), stderr })
        });
        assert_eq!(out.unwrap(), Some("the library"));
        assert_eq!(compiles, [3, 2]);
        assert_eq!(prepared.iter().map(|p| p.index).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(report.failing(), [1]);
        let problem = &report.failures[0].problems[0];
        assert!(problem.starts_with("`cc -O0` rejected the caller"), "{problem}");
        assert!(problem.contains("static assertion failed"), "{problem}");

        let mut prepared = Prepared::batch(abi, &cases, &mut report);
        let stderr = "cc: fatal error: no input files\n".to_string();
        let error = compile_dropping_rejected::<()>(abi, &mut prepared, &mut report, |_| {
            Ok(Compiled::Rejected {
                compiler: "cc".into(),
                file_name: "x.c".into(),
                stderr: stderr.clone(),
            })
        })
        .unwrap_err();
        assert!(
            error.0.contains("no message names a case") && error.0.contains("fatal"),
            "{error}"
        );
    }
}

/// What the process says when a case kills it: the cases in flight, printed by a handler of
/// SIGSEGV, SIGBUS, SIGILL and SIGABRT that then hands the signal to the handler it replaced.
///
/// Everything the handler touches is async-signal-safe: atomics and `write(2)`.
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
