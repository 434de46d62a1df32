//! The emulated compiler oracle: for every ABI, a compiler for that ABI (any clang with the
//! ABI's `--target=`, or the platform's GCC) compiles C callers, the object is loaded into that
//! ABI's Unicorn [`Machine`], and the callers call the byte-identical thunk/thunkEntry code
//! with graffiti values. The handler must receive exactly what the compiler passed and the
//! compiled caller must receive exactly what the handler returned, and every call must keep
//! the machine's invariants.
//!
//! The oracle's model is `backcall-oracle`'s: the C text ([`backcall_oracle::callers`]: one
//! caller `bc_case_N(thunk)` per case, results stored into the exported buffers `bc_ret_N`),
//! the graffiti values, the byte comparison ([`compare`]) and the [`Report`] with its failure
//! messages; this module compiles, loads, calls and adds what only a machine can see.
//! [`run_matrix`] runs one batch with several compilers and judges them together
//! ([`backcall_oracle::matrix`]).
//!
//! One run ([`EmuOracle::run`]) takes a batch of [`Case`]s and one level:
//!
//! 1. ONE compile of the whole batch into an object, freestanding and position-dependent
//!    ([`Compiler::compile_object`]). A caller the compiler rejects (a layout
//!    `_Static_assert`) becomes that case's failure and the rest is compiled again.
//! 2. The object is loaded into fresh machines, one per code page's worth of thunks (a
//!    machine's page holds a couple of hundred; the batch is split, never recompiled). The
//!    cases after a failing one get a fresh machine (it may have written anywhere).
//! 3. Per case: a callback with the case's plan (`abi.plan(sig)`) whose handler copies every
//!    argument's bytes ([`Frame::read_arg`]) and writes the result graffiti
//!    ([`Frame::write_result`]); then `bc_case_N(thunk)` is called with [`Machine::call`] (the
//!    caller itself is a plain default-convention function even when the callback is
//!    `__stdcall`/`__fastcall`/`__thiscall`).
//! 4. Checks: the received argument bytes and the caller's result buffer, byte-exact over
//!    non-padding bytes ([`compare`]); the machine's invariants for that call
//!    ([`Violation`]s: canaries in the callee-saved registers around `bc_case_N`, its stack
//!    balance, stack alignment at dispatch); and the **return probe** below.
//!
//! # The return probe
//!
//! A C caller cannot reliably observe `rax` after a call, nor where exactly the stack pointer
//! came back, nor a stray write next to the hidden result object (at `-O2` the object may be a
//! temporary the caller never reads around). So the machine watches the thunk's own return:
//!
//! * a code hook on the thunks sees the thunk entered; it records the stack pointer and the
//!   return address the caller left (`[sp]` on x86, `x30` on AArch64), replaces that return
//!   address with [`PROBE_ADDR`] (a page of its own, mapped by the oracle), snapshots the
//!   caller's stack from its stack pointer at the call up to [`STACK_TOP`], and reads the hidden
//!   result pointer from where the plan says the caller put it;
//! * the thunk's `ret` lands on [`PROBE_ADDR`], before a single caller instruction runs; a code
//!   hook there records the stack pointer, the plan's `returned_in` register and the stack
//!   again, and resumes at the caller's real return address.
//!
//! Checked from those two moments, against the plan of the *caller's* signature (what the
//! caller is entitled to; the callback runs with its own plan, which is the same one unless a
//! test of the oracle deliberately breaks it: see [`EmuOracle::tampered`]):
//!
//! * **return address**: the thunk returned to where the caller's call would have returned;
//! * **stack balance of the thunk itself**: `sp` after its return is the caller's `sp` at the
//!   call plus the plan's `callee_pop` (x86), or equal to it (AArch64). (The whole caller's
//!   balance and canaries are the machine's checks; a caller that restores its stack pointer
//!   from a frame pointer may hide a wrong pop from them, the probe does not.)
//! * **hidden result pointer returned**: where the plan says
//!   `RetPlan::Indirect { returned_in: Some(reg) }` (i386, x86-64 SysV and Win64: `eax`/`rax`),
//!   `reg` holds the pointer the caller passed;
//! * **x87 register stack** (x86): the thunk leaves exactly one more value on it when the plan
//!   returns the result in `st(0)` (i386 `float`/`double`), and none otherwise;
//! * **no stray writes (the poison pad)**: between the thunk's entry and its return, nothing in
//!   the caller's stack above its stack pointer at the call may change except the hidden result
//!   object itself and the callee's own incoming argument area (`plan.stack_bytes` above that
//!   stack pointer: C lets a callee modify its parameters, and Win64's home space is there).
//!   So the bytes around the hidden result object, around every by-value or by-reference
//!   aggregate copy the caller made, the caller's saved registers and its return address are
//!   all a poison pad that must come back intact; the caller's untouched locals serve as the
//!   poison. A hidden result object outside the stack (a global) gets a pad of
//!   [`RESULT_PAD`] bytes on each side, snapshotted the same way.
//!
//! What the probe cannot see: whether a *plan* rule the compiled caller does not depend on is
//! right (clang's callers never read `rax` after a hidden-pointer call, so a plan that forgets
//! `returned_in` is only caught if the rule is stated in the plan). The callee-saved registers
//! are checked by the machine's canaries around the whole `bc_case_N` call.
//!
//! Environment (as the host oracle): `BACKCALL_ORACLE_KEEP=1` keeps the C file and objects (the
//! report names the directory), `BACKCALL_ORACLE_TRACE=1` prints each case before its call,
//! `BACKCALL_CLANG` names the default clang.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use backcall::harness::marshal::{Frame, VaCursor};
use backcall::harness::memory::Memory as _;
use backcall_abi::stubs::{typed_stub, Stub};
use backcall_abi::thunks::CodePage;
use backcall_abi::{Abi, CallPlan, Loc, Reg, RetPlan, Shape, Type};
use backcall_oracle::callers::{
    arg_wide_name, caller_name, env_name, got_name, got_wide_name, result_name, ret_wide_name,
    target_name, widened,
};
use backcall_oracle::compare::{compare, ret_location, Received, Seen};
use backcall_oracle::compile::{compile_dropping_rejected, Compiled};
use backcall_oracle::matrix::{Column, Matrix};
use backcall_oracle::report::Outcome;
pub use backcall_oracle::{Case, Compiler, Failure, Opt, Prepared, Report, RunError, Skip};
use unicorn_engine::{Prot, RegisterX86, Unicorn};

use crate::guest;
use crate::loader::Image;
use crate::machine::{
    catch_panic, reg_id, Machine, MachineError, Violation, CODE_BASE, CODE_PAGE_SIZE, HOOK_SKIPPED,
    STACK_TOP, STOPPED_EARLY,
};

/// Where the probe page is mapped; the thunk's return address is replaced with this address.
pub const PROBE_ADDR: u64 = 0x0018_0000;
/// Bytes of poison pad checked on each side of a hidden result object outside the stack.
pub const RESULT_PAD: u64 = 32;
/// The longest one case's call may run, in wall time: generous, because the machine shares
/// two cores with compilers and other machines (a case takes milliseconds of CPU), and only a
/// case that loops forever reaches it.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Changed byte runs described per stray-write problem.
const STRAY_RUNS: usize = 4;

/// What to change in a callback's plan before it is registered: tests of the oracle itself
/// make one rule wrong and check that the oracle says so.
pub type Tamper = dyn Fn(&Prepared, &mut CallPlan) + Send + Sync;

/// Runs `cases` on `abi` at `opt` with the default clang (see the
/// [module documentation](self)).
pub fn run(abi: Abi, cases: &[Case], opt: Opt) -> Result<Report, RunError> {
    EmuOracle::default_for(abi)?.run(cases, opt)
}

/// Whether the default clang runs for `abi`; the error is the install hint.
pub fn require_clang(abi: Abi) -> Result<Compiler, String> {
    guest::default_compiler(abi).map_err(|e| e.message)
}

/// Runs `cases` on `abi` at `opt` once per compiler (in parallel, two at a time per core) and
/// judges the runs together.
pub fn run_matrix(abi: Abi, compilers: &[Compiler], cases: &[Case], opt: Opt) -> Matrix {
    run_matrix_on(Route::Context, abi, compilers, cases, opt)
}

/// [`run_matrix`] on `route`.
pub fn run_matrix_on(
    route: Route,
    abi: Abi,
    compilers: &[Compiler],
    cases: &[Case],
    opt: Opt,
) -> Matrix {
    let columns = std::thread::scope(|scope| {
        let runs: Vec<_> = compilers
            .iter()
            .map(|c| {
                scope
                    .spawn(move || EmuOracle { route, ..EmuOracle::new(c.clone()) }.run(cases, opt))
            })
            .collect();
        runs.into_iter()
            .zip(compilers)
            .map(|(run, compiler)| Column {
                compiler: compiler.clone(),
                report: run.join().unwrap_or_else(|_| Err(RunError("the run panicked".into()))),
            })
            .collect()
    });
    Matrix::new(abi, opt, cases.len(), columns)
}

/// One installed case, ready to be called and judged (see `Bench::call_and_judge`).
struct Call<'a> {
    /// the thunk the caller calls
    thunk: u64,
    /// the callee's plan (the context route's callback; the caller's plan on the typed route)
    plan: &'a CallPlan,
    /// the plan of the caller's signature, which the return probe checks against
    expect: &'a Rc<CallPlan>,
    /// the result bytes the callee returns
    returned: &'a [u8],
    /// whether the result travels by the plan (context route) or by the compiler's rules
    results_by_plan: bool,
}

/// The typed stub of case `p` on `abi` in `page`, or why it takes the context route.
fn typed_stub_for_case(abi: Abi, p: &Prepared, page: &CodePage) -> Result<Stub, String> {
    let plan = abi.plan(&p.case.signature).map_err(|e| e.to_string())?;
    typed_stub(&plan, page)
}

/// The largest stack pop the emulator returns from correctly: Unicorn's x86 (QEMU's decoder)
/// reads the count of `ret imm16` as a signed word, so a callee popping more returns to a
/// stack pointer 64 KiB too low. backcall's own entries pop with `add esp, ecx`; only a
/// compiled C target of the typed route's proof (a callee-pops convention on i386) uses it.
const EMULATED_RET_POP_LIMIT: u32 = 0x7fff;

/// The bytes case `p`'s typed-route target pops, when the emulator would misread them.
fn pop_the_emulator_misreads(abi: Abi, p: &Prepared) -> Option<u32> {
    let pop = abi.plan(&p.case.signature).ok()?.callee_pop;
    (pop > EMULATED_RET_POP_LIMIT).then_some(pop)
}

/// Which route of the runtime a run proves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Route {
    /// thunk → entry → the dispatcher → a handler over the plan (every signature)
    #[default]
    Context,
    /// thunk → typed stub → a compiled C target `R bc_target_N(void *env, args…)`: no plan and
    /// no runtime rule between the caller and the callee, only the stub's moves. A signature
    /// without a stub is skipped ("takes the context route").
    Typed,
}

/// The emulated oracle for one ABI and one compiler.
pub struct EmuOracle {
    /// the ABI (the machine and the plans)
    pub abi: Abi,
    /// the compiler of the callers
    pub compiler: Compiler,
    /// the route proven
    pub route: Route,
    tamper: Option<Box<Tamper>>,
    /// typed route: replaces the chosen stub (tests that show a wrong stub is caught)
    stub_tamper: Option<fn(Stub) -> Stub>,
}

impl std::fmt::Debug for EmuOracle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmuOracle")
            .field("abi", &self.abi)
            .field("compiler", &self.compiler)
            .field("route", &self.route)
            .field("tampered", &self.tamper.is_some())
            .finish()
    }
}

impl EmuOracle {
    /// The oracle for `compiler`'s ABI with `compiler`, with the plans `abi.plan` computes.
    pub fn new(compiler: Compiler) -> EmuOracle {
        EmuOracle {
            abi: compiler.abi,
            compiler,
            route: Route::Context,
            tamper: None,
            stub_tamper: None,
        }
    }

    /// The same oracle on the typed route (see [`Route::Typed`]).
    pub fn typed(self) -> Self {
        self.on(Route::Typed)
    }

    /// The same oracle on `route`.
    pub fn on(self, route: Route) -> Self {
        EmuOracle { route, ..self }
    }

    /// The same oracle on the typed route, every case's stub replaced by `tamper`'s (for tests
    /// that show a wrong stub is caught).
    pub fn typed_with_stub(self, tamper: fn(Stub) -> Stub) -> Self {
        EmuOracle { route: Route::Typed, stub_tamper: Some(tamper), ..self }
    }

    /// The oracle for `abi` with the default clang.
    pub fn default_for(abi: Abi) -> Result<EmuOracle, RunError> {
        let compiler = guest::default_compiler(abi).map_err(|e| RunError(e.to_string()))?;
        Ok(EmuOracle::new(compiler))
    }

    /// The same oracle, but every callback's plan passes through `tamper` first (the C callers
    /// are unchanged): for tests that show a wrong plan is caught.
    pub fn tampered(
        self,
        tamper: impl Fn(&Prepared, &mut CallPlan) + Send + Sync + 'static,
    ) -> Self {
        EmuOracle { tamper: Some(Box::new(tamper)), ..self }
    }

    /// The compiler, as reports name it.
    pub fn compiler_name(&self) -> String {
        format!("{} (emulated)", self.compiler)
    }

    /// Runs `cases` at `opt`. clang compiles one file on one core and is most of the time, so a
    /// large batch is split into one chunk per core, each run as its own batch in parallel;
    /// the report's times are then the chunks' sums (work done, not wall time).
    pub fn run(&self, cases: &[Case], opt: Opt) -> Result<Report, RunError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunks = cores.min(cases.len() / MIN_CHUNK).max(1);
        if chunks == 1 {
            return self.run_batch(cases, opt);
        }
        let size = cases.len().div_ceil(chunks);
        let reports: Vec<Result<Report, RunError>> = std::thread::scope(|scope| {
            let runs: Vec<_> = cases
                .chunks(size)
                .map(|chunk| scope.spawn(move || self.run_batch(chunk, opt)))
                .collect();
            runs.into_iter()
                .map(|r| r.join().unwrap_or_else(|_| Err(RunError("a chunk panicked".into()))))
                .collect()
        });
        let mut merged = Report::new(self.abi, self.compiler_name(), opt, cases.len());
        for (i, report) in reports.into_iter().enumerate() {
            let mut report = report?;
            let offset = i * size;
            merged.ran += report.ran;
            merged.compile_time += report.compile_time;
            merged.call_time += report.call_time;
            merged.skipped.extend(report.skipped.drain(..).map(|mut s| {
                s.index += offset;
                s
            }));
            merged.crashed.extend(report.crashed.drain(..).map(|mut s| {
                s.index += offset;
                s
            }));
            merged.failures.extend(report.failures.drain(..).map(|mut f| {
                f.index += offset;
                f
            }));
            merged.kept = merged.kept.or(report.kept);
        }
        Ok(merged)
    }

    /// Runs `cases` as one batch at `opt`: one C file, one compile, as many machines as the
    /// thunks need.
    fn run_batch(&self, cases: &[Case], opt: Opt) -> Result<Report, RunError> {
        let abi = self.abi;
        let mut report = Report::new(abi, self.compiler_name(), opt, cases.len());
        // The thunks a machine's code page holds (and whether this ABI has thunk code at all).
        let capacity = CodePage::template(abi, CODE_PAGE_SIZE)
            .map_err(|e| RunError(format!("{abi}: {e} (abi/src/blobs/)")))?
            .thunks as usize;
        let capacity = capacity.max(1);
        let mut prepared = Prepared::batch(abi, cases, &mut report);
        if self.route == Route::Typed {
            let page = CodePage::template(abi, CODE_PAGE_SIZE)
                .map_err(|e| RunError(format!("{abi}: {e} (abi/src/blobs/)")))?;
            prepared.retain_mut(|p| {
                let why =
                    match (typed_stub_for_case(abi, p, &page), pop_the_emulator_misreads(abi, p)) {
                        (Ok(_), Some(pop)) => format!(
                            "its compiled C target pops {pop} bytes with `ret imm16`, which the \
                         emulator sign-extends past {EMULATED_RET_POP_LIMIT} (a CPU does not; a \
                         typed callback of at most ten scalars pops 80 bytes at most)"
                        ),
                        (Ok(stub), None) => {
                            p.target = Some(stub.entry_convention(&p.case.signature));
                            return true;
                        }
                        (Err(why), _) => format!("takes the context route: {why}"),
                    };
                let (index, signature) = (p.index, p.case.signature.clone());
                report.skipped.push(backcall_oracle::report::Skip {
                    index,
                    signature,
                    reason: why,
                });
                false
            });
        }
        if prepared.is_empty() {
            return Ok(report);
        }
        let keep = keep_dir(abi, opt);
        let started = Instant::now();
        let object = self.compile(opt, &mut prepared, &mut report, &keep)?;
        report.compile_time = started.elapsed();
        let started = Instant::now();
        if let Some(object) = object {
            // A machine per page of thunks; a failing case may have written anywhere (the
            // loaded code included), so the cases after it get a fresh machine.
            let mut bench: Option<Bench> = None;
            for p in &prepared {
                let fresh = bench.as_ref().is_none_or(|b| b.used >= capacity || b.dirty);
                if fresh {
                    bench = Some(Bench::new(&self.compiler, &object)?);
                }
                let mut outcome = self.run_on(bench.as_mut().expect("a machine"), p);
                if stopped_early(&outcome) {
                    // Unicorn now and then ends an emulation without a fault right after a
                    // hook moved the PC, or runs past a hook: the case runs once more on a
                    // fresh machine, and a second such stop is the case's outcome.
                    let mut again = Bench::new(&self.compiler, &object)?;
                    outcome = self.run_on(&mut again, p);
                    bench = Some(again);
                }
                bench.as_mut().expect("a machine").dirty = !matches!(outcome, Ok(None));
                report.record(outcome);
            }
        }
        report.call_time = started.elapsed();
        report.failures.sort_by_key(|f| f.index);
        report.kept = keep;
        Ok(report)
    }
}

/// Whether a case's call ended without a fault before it returned (see
/// [`MachineError::NotReturned`]), or ran the dispatcher's bytes instead of its hook.
fn stopped_early(outcome: &Outcome) -> bool {
    let failure = match outcome {
        Ok(Some(f)) => f,
        Err(f) => &**f,
        Ok(None) => return false,
    };
    failure.problems.iter().any(|p| p.contains(STOPPED_EARLY) || p.contains(HOOK_SKIPPED))
}

impl EmuOracle {
    /// Runs case `p` on `bench` by this oracle's route.
    fn run_on(&self, bench: &mut Bench, p: &Prepared) -> Outcome {
        bench.used += 1;
        match self.route {
            Route::Context => bench.run_case(p, self.tamper.as_deref()),
            Route::Typed => bench.run_typed_case(p, self.stub_tamper),
        }
    }

    /// Compiles the batch into an object (see [`compile_dropping_rejected`]).
    fn compile(
        &self,
        opt: Opt,
        prepared: &mut Vec<Prepared>,
        report: &mut Report,
        keep: &Option<PathBuf>,
    ) -> Result<Option<Vec<u8>>, RunError> {
        compile_dropping_rejected(self.abi, prepared, report, |source| {
            if let Some(dir) = keep {
                let _ = std::fs::write(dir.join("oracle.c"), source);
            }
            match self.compiler.compile_object(source, opt, &[]) {
                Ok(object) => {
                    if let Some(dir) = keep {
                        let _ =
                            std::fs::write(dir.join(format!("oracle{}.o", opt.flag())), &object);
                    }
                    Ok(Compiled::Output(object))
                }
                Err(error) if error.not_run => Err(RunError(error.to_string())),
                Err(error) => Ok(Compiled::Rejected {
                    compiler: error.command,
                    file_name: "<stdin>".into(),
                    stderr: error.message,
                }),
            }
        })
    }
}

/// Cases below which a batch is not split across cores (a compile's fixed cost dominates).
const MIN_CHUNK: usize = 64;

/// `BACKCALL_ORACLE_KEEP=1`: a fresh directory for this run's C file and object.
fn keep_dir(abi: Abi, opt: Opt) -> Option<PathBuf> {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    std::env::var_os("BACKCALL_ORACLE_KEEP")?;
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "backcall-emu-oracle-{}-{abi}{}-{n}",
        std::process::id(),
        opt.flag()
    ));
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}

// ---------------------------------------------------------------------------------------------
// One machine with the object loaded and the return probe installed

/// What the probe saw of the thunk's entry.
#[derive(Clone, Debug)]
struct Entry {
    /// the caller's stack pointer at its call instruction (above the return address on x86)
    sp_at_call: u64,
    /// the return address the caller left
    return_to: u64,
    /// the caller's stack `sp_at_call..STACK_TOP`
    stack: Vec<u8>,
    /// the hidden result pointer, read where the plan says the caller passed it
    hidden: Option<u64>,
    /// a hidden result object outside the stack: its pad `(start, bytes)`, `RESULT_PAD` bytes
    /// on each side of the object
    pad: Option<(u64, Vec<u8>)>,
    /// why a hidden result object's pad could not be read
    pad_unreadable: Option<String>,
    /// x86: the x87 register stack's top (FPU status word bits 11..13)
    x87_top: Option<u8>,
}

/// What the probe saw when the thunk returned (to [`PROBE_ADDR`]).
#[derive(Clone, Debug)]
struct Return {
    sp: u64,
    /// the plan's `returned_in` register, named, and its value
    returned_in: Option<(String, u64)>,
    stack: Vec<u8>,
    pad: Option<Vec<u8>>,
    x87_top: Option<u8>,
}

/// State shared by the probe hooks and the current case's handler.
#[derive(Default)]
struct Probe {
    /// the current case's thunk
    thunk: u64,
    /// the plan of the caller's signature: what the caller expects of the callee (the
    /// callback's own plan is the same unless a test made it differ)
    expect: Option<Rc<CallPlan>>,
    /// what the handler saw, per run
    calls: Vec<Seen>,
    entries: usize,
    entry: Option<Entry>,
    ret: Option<Return>,
    /// a hook failed (a bug of the oracle, or unreadable registers)
    hook_error: Option<String>,
}

struct Bench {
    abi: Abi,
    machine: Machine,
    image: Image,
    probe: Rc<RefCell<Probe>>,
    /// callbacks created (each takes a thunk of the machine's page)
    used: usize,
    /// a case failed on this machine
    dirty: bool,
}

/// The x86 ABIs (an x87 register stack; `int3` fill).
fn is_x86(abi: Abi) -> bool {
    abi.arch() != backcall_abi::Arch::Aarch64
}

fn read_word(uc: &Unicorn<'_, ()>, addr: u64, word: u32) -> Result<u64, String> {
    let mut b = [0u8; 8];
    uc.mem_read(addr, &mut b[..word as usize])
        .map_err(|e| format!("reading {word} bytes at {addr:#x}: {e:?}"))?;
    Ok(u64::from_le_bytes(b))
}

fn read_bytes(uc: &Unicorn<'_, ()>, addr: u64, len: u64) -> Result<Vec<u8>, String> {
    let mut v = vec![0u8; len as usize];
    uc.mem_read(addr, &mut v).map_err(|e| format!("reading {len} bytes at {addr:#x}: {e:?}"))?;
    Ok(v)
}

fn reg(uc: &Unicorn<'_, ()>, reg: Reg) -> Result<u64, String> {
    uc.reg_read(reg_id(reg)).map_err(|e| format!("reading {reg}: {e:?}"))
}

/// Runs a hook body; an error or a panic is recorded, never unwound into Unicorn.
fn guarded(probe: &Rc<RefCell<Probe>>, what: &str, body: impl FnOnce() -> Result<(), String>) {
    let error = match catch_panic(body) {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(message) => format!("it panicked: {message}"),
    };
    let mut p = probe.borrow_mut();
    if p.hook_error.is_none() {
        p.hook_error = Some(format!("the oracle's {what} hook failed: {error}"));
    }
}

impl Bench {
    fn new(compiler: &Compiler, object: &[u8]) -> Result<Bench, RunError> {
        let abi = compiler.abi;
        let fail = |what: &str, e: MachineError| RunError(format!("{abi}: {what}: {e}"));
        let mut machine = Machine::new(abi).map_err(|e| fail("the machine", e))?;
        machine.set_timeout(CALL_TIMEOUT);
        machine.load_runtime_of(compiler).map_err(|e| fail("the guest runtime", e))?;
        let image = machine.load(object).map_err(|e| fail("loading the callers", e))?;
        let page = machine.code_page().cloned().ok_or_else(|| {
            RunError(format!("{abi}: no thunk code (abi/src/blobs/) for the machine"))
        })?;
        let probe: Rc<RefCell<Probe>> = Rc::default();
        let uc = machine.unicorn();
        let fill = if is_x86(abi) { 0xcc } else { 0x00 }; // int3 / udf: never executed
        uc.mem_map(PROBE_ADDR, 0x1000, Prot::READ | Prot::EXEC)
            .and_then(|()| uc.mem_write(PROBE_ADDR, &[fill; 0x1000]))
            .map_err(|e| RunError(format!("{abi}: mapping the probe page: {e:?}")))?;

        let first = CODE_BASE + u64::from(page.thunk_offset(0));
        let last = CODE_BASE + page.bytes.len() as u64 - 1;
        let on_entry = probe.clone();
        uc.add_code_hook(first, last, move |uc, pc, _| {
            if on_entry.borrow().thunk != pc {
                return;
            }
            guarded(&on_entry, "thunk entry", || thunk_entered(uc, abi, &on_entry));
        })
        .map_err(|e| RunError(format!("{abi}: the thunk entry hook: {e:?}")))?;
        let on_return = probe.clone();
        uc.add_code_hook(PROBE_ADDR, PROBE_ADDR, move |uc, _, _| {
            guarded(&on_return, "thunk return", || thunk_returned(uc, abi, &on_return));
        })
        .map_err(|e| RunError(format!("{abi}: the probe hook: {e:?}")))?;
        Ok(Bench { abi, machine, image, probe, used: 0, dirty: false })
    }

    /// `len` bytes of the loaded object's exported symbol `name`, or why not.
    fn read_export(&self, name: &str, len: usize) -> Result<Vec<u8>, String> {
        let at = self.image.lookup(name).ok_or_else(|| format!("{name} is not in the object"))?;
        let mut bytes = vec![0u8; len];
        self.machine
            .mem()
            .try_read(at, &mut bytes)
            .map_err(|e| format!("reading {name}: {e:?}"))?;
        Ok(bytes)
    }

    /// Runs one case on the typed route: the thunk's record points at the case's stub, with a
    /// slot word whose first word is the compiled target's address; the target records what
    /// it received and returns the result graffiti.
    fn run_typed_case(&mut self, p: &Prepared, tamper: Option<fn(Stub) -> Stub>) -> Outcome {
        let abi = self.abi;
        let n = p.index;
        let could_not = |why: String| Box::new(p.could_not(why, None));
        let plan = Rc::new(abi.plan(&p.case.signature).map_err(|e| could_not(e.to_string()))?);
        let page =
            self.machine.code_page().cloned().ok_or_else(|| could_not("no code page".into()))?;
        let stub = typed_stub_for_case(abi, p, &page).map_err(could_not)?;
        let stub = tamper.map_or(stub, |t| t(stub));
        let target = self
            .image
            .lookup(&target_name(n))
            .ok_or_else(|| could_not(format!("{} is not in the object", target_name(n))))?;
        // A slot as the stubs read it: its first word a vtable address with a tag bit set
        // (LIVE), the vtable's VTABLE_TYPED_ENTRY word the target.
        let word = abi.word_size();
        let layout = backcall_abi::context::ContextLayout::for_word(word);
        let slot = self.machine.alloc(32, 8).map_err(|e| could_not(e.to_string()))?;
        let vtable = slot + 8;
        self.machine.mem().write_word(
            slot + u64::from(backcall_abi::context::SLOT_STATE),
            word,
            vtable | 1,
        );
        self.machine.mem().write_word(
            vtable + u64::from(layout.vtable_typed_entry()),
            word,
            target,
        );
        let thunk = self
            .machine
            .add_typed_route((*plan).clone(), slot, stub)
            .map_err(|e| could_not(format!("installing {stub}: {e}")))?;
        let returned = p.case.returned_bytes(abi, &p.ret);
        let total: u32 = p.args.iter().map(|l| l.size).sum();
        let expect = plan.clone();
        let call = Call {
            thunk,
            plan: &plan,
            expect: &expect,
            returned: &returned,
            results_by_plan: false,
        };
        self.call_and_judge(p, call, |bench, _| {
            let mut problems = Vec::new();
            let got = bench.read_export(&got_name(n), total.max(1) as usize).unwrap_or_else(|e| {
                problems.push(e);
                vec![0; total as usize]
            });
            let mut at = 0usize;
            let bytes = p
                .args
                .iter()
                .map(|l| {
                    let b = got[at..at + l.size as usize].to_vec();
                    at += l.size as usize;
                    b
                })
                .collect();
            let wide = bench.read_export(&got_wide_name(n), 8 * p.args.len().max(1)).unwrap_or_default();
            let values = (0..p.args.len())
                .map(|i| {
                    let w = wide.get(8 * i..8 * i + 8)?;
                    widened(&p.args[i]).then(|| u64::from_le_bytes(w.try_into().expect("8")))
                })
                .collect();
            match bench.read_export(&env_name(n), word as usize) {
                Ok(env) => {
                    let mut b = [0u8; 8];
                    b[..env.len()].copy_from_slice(&env);
                    let env = u64::from_le_bytes(b);
                    if env != slot {
                        problems.push(format!(
                            "{stub} passed env {env:#x} to the target; the record's slot word is {slot:#x}"
                        ));
                    }
                }
                Err(e) => problems.push(e),
            }
            (vec![Seen { bytes, values }], problems)
        })
    }

    /// Runs one case: `Ok(None)` agrees, `Ok(Some(_))` ran and disagrees, `Err(_)` could not
    /// run.
    fn run_case(&mut self, p: &Prepared, tamper: Option<&Tamper>) -> Outcome {
        let abi = self.abi;
        let could_not = |why: String, plan: Option<&CallPlan>| Box::new(p.could_not(why, plan));
        let callee = p.case.callee();
        let mut plan = abi
            .plan(callee)
            .map_err(|e| could_not(format!("no plan for the callback `{callee}`: {e}"), None))?;
        if let Some(tamper) = tamper {
            tamper(p, &mut plan);
        }
        let returned = p.case.returned_bytes(abi, &plan.ret_layout);
        let plan = Rc::new(plan);
        let expect = match p.case.call_plan(abi) {
            Ok(caller_plan) if caller_plan == *plan => plan.clone(),
            Ok(caller_plan) => Rc::new(caller_plan),
            Err(e) => return Err(could_not(format!("no plan for the caller: {e}"), Some(&plan))),
        };
        let record = self.probe.clone();
        let value = returned.clone();
        let integers: Vec<bool> = p.args.iter().map(widened).collect();
        let unnamed = p.case.unnamed.clone();
        let thunk = self
            .machine
            .add_callback((*plan).clone(), move |frame: &Frame<'_>| {
                let seen = read_arguments(frame, &unnamed, &integers);
                record.borrow_mut().calls.push(seen);
                frame.write_result(&value)
            })
            .map_err(|e| could_not(format!("creating the callback failed: {e}"), Some(&plan)))?;
        // (the call's plan, its unnamed arguments included, is what the report shows)
        let plan = if p.case.unnamed.is_empty() { plan } else { expect.clone() };
        let call = Call {
            thunk,
            plan: &plan,
            expect: &expect,
            returned: &returned,
            results_by_plan: true,
        };
        self.call_and_judge(p, call, |_, probe| (probe.calls.clone(), vec![]))
    }

    /// Calls case `p`'s caller with `thunk`, then judges: what the callee saw (`collect`: the
    /// calls it recorded and any problem of its own), the result the caller stored, the
    /// return probe (against `expect`, the plan of the caller's signature) and the machine's
    /// violations.
    fn call_and_judge(
        &mut self,
        p: &Prepared,
        call: Call<'_>,
        collect: impl FnOnce(&Self, &Probe) -> (Vec<Seen>, Vec<String>),
    ) -> Outcome {
        let Call { thunk, plan, expect, returned, results_by_plan } = call;
        let abi = self.abi;
        let n = p.index;
        let void = matches!(p.ret.shape, Shape::Void);
        let could_not = |why: String| Box::new(p.could_not(why, Some(plan)));
        let Some(caller) = self.image.lookup(&caller_name(n)) else {
            return Err(could_not(format!("{} is not in the object", caller_name(n))));
        };
        *self.probe.borrow_mut() =
            Probe { thunk, expect: Some(expect.clone()), ..Probe::default() };
        let _ = self.machine.take_violations();
        if std::env::var_os("BACKCALL_ORACLE_TRACE").is_some() {
            eprintln!("emu oracle: {abi} case {n}: {}", p.case.signature);
        }

        let outcome = self.machine.call(caller, &[thunk]);
        let violations = self.machine.take_violations();
        let mut probe = std::mem::take(&mut *self.probe.borrow_mut());
        let (calls, extra) =
            if outcome.is_ok() { collect(self, &probe) } else { (probe.calls.clone(), vec![]) };
        probe.calls = calls;
        let mut problems = Vec::new();
        let mut mismatches = Vec::new();
        let received = match &outcome {
            Err(e) => {
                problems.push(format!(
                    "the call of {}(thunk) failed: {e}\n  ({})",
                    caller_name(n),
                    probe_story(&probe)
                ));
                None
            }
            Ok(_) if void => None,
            Ok(_) => match self.read_export(&result_name(n), p.ret.size as usize) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    problems.push(e);
                    None
                }
            },
        };
        let words = |name: String, count: usize| -> Option<Vec<u64>> {
            let bytes = self.read_export(&name, count * 8).ok()?;
            Some(bytes.chunks(8).map(|w| u64::from_le_bytes(w.try_into().expect("8"))).collect())
        };
        let received = Received {
            result: received,
            arg_values: if p.args.iter().any(widened) && outcome.is_ok() {
                words(arg_wide_name(n), p.args.len())
            } else {
                None
            },
            result_widened: if widened(&p.ret) && outcome.is_ok() {
                words(ret_wide_name(n), 2).map(|w| [w[0], w[1]])
            } else {
                None
            },
        };
        if outcome.is_err() && probe.calls.is_empty() {
            // Nothing to compare: the handler never ran.
        } else {
            let mut compared = compare(abi, p, plan, &probe.calls, &received, returned);
            if outcome.is_err() && !void {
                // The caller never stored a result; only the arguments say something.
                compared.drop_result();
            }
            problems.extend(compared.problems);
            mismatches = compared.mismatches;
        }
        if outcome.is_ok() || probe.ret.is_some() {
            // (after a fault, what the probe saw at the thunk's return may explain it)
            problems.extend(probe_problems(abi, expect, &probe, results_by_plan));
        }
        problems.extend(extra);
        if !problems.is_empty() && plan != &**expect {
            problems.push(format!(
                "(the callback's plan differs from the plan of the caller's signature, which \
                 the return probe checks against:\n{})",
                expect.to_string().trim_end()
            ));
        }
        for v in &violations {
            problems.push(describe_violation(v, caller, n));
        }
        if problems.is_empty() {
            return Ok(None);
        }
        let failure = Failure {
            index: n,
            signature: p.case.signature.clone(),
            unnamed: p.case.unnamed.clone(),
            problems,
            mismatches,
            plan: Some(plan.to_string()),
        };
        if outcome.is_err() && probe.calls.is_empty() {
            Err(Box::new(failure))
        } else {
            Ok(Some(failure))
        }
    }
}

/// What a callback's handler reads of one call as the runtime reads it: every named argument
/// by the callback's plan, then each of the `unnamed` types by a `va_arg`-like cursor; and the
/// 64-bit reading (what `Args` getters give) of those marked in `integers`.
fn read_arguments(frame: &Frame<'_>, unnamed: &[Type], integers: &[bool]) -> Seen {
    let named = frame.plan.args.len();
    let mut bytes = Vec::with_capacity(named + unnamed.len());
    let mut values = Vec::with_capacity(named + unnamed.len());
    for i in 0..named {
        let mut b = vec![0u8; frame.plan.args[i].layout.size as usize];
        frame.read_arg(i, &mut b);
        bytes.push(b);
        let integer = integers.get(i).is_some_and(|&w| w);
        values.push(integer.then(|| frame.scalar_bits(i).map(|(_, b)| b)).flatten());
    }
    let mut cursor = VaCursor::new();
    for (k, ty) in unnamed.iter().enumerate() {
        // (a type the cursor refuses leaves the argument missing: the comparison says so)
        let Ok(arg) = cursor.next(frame, ty) else { break };
        bytes.push(arg.bytes);
        let integer = integers.get(named + k).is_some_and(|&w| w);
        values.push(integer.then(|| arg.scalar.map(|(_, b)| b)).flatten());
    }
    Seen { bytes, values }
}

/// The entry hook: record, snapshot, and redirect the thunk's return to the probe.
fn thunk_entered(
    uc: &mut Unicorn<'_, ()>,
    abi: Abi,
    probe: &Rc<RefCell<Probe>>,
) -> Result<(), String> {
    let word = abi.word_size();
    let regs = abi.spec().registers();
    let sp = reg(uc, regs.stack_pointer)?;
    // The return address: pushed by x86's `call`, in the link register on AArch64.
    let (sp_at_call, return_to) = match regs.link_register {
        None => {
            let return_to = read_word(uc, sp, word)?;
            uc.mem_write(sp, &PROBE_ADDR.to_le_bytes()[..word as usize])
                .map_err(|e| format!("redirecting the return address: {e:?}"))?;
            (sp + u64::from(word), return_to)
        }
        Some(lr) => {
            let return_to = reg(uc, lr)?;
            uc.reg_write(reg_id(lr), PROBE_ADDR).map_err(|e| format!("writing {lr}: {e:?}"))?;
            (sp, return_to)
        }
    };
    let stack = read_bytes(uc, sp_at_call, STACK_TOP.saturating_sub(sp_at_call))?;
    let plan = probe.borrow().expect.clone().ok_or("no plan for the caller")?;
    let mut hidden = None;
    let (mut pad, mut pad_unreadable) = (None, None);
    if let RetPlan::Indirect { pointer, .. } = plan.ret {
        let dst = match pointer {
            Loc::Int(_) => {
                let r = plan.loc_reg(pointer, false).ok_or("the plan names no such register")?;
                reg(uc, r)?
            }
            Loc::Stack(off) => read_word(uc, sp_at_call + u64::from(off), word)?,
            other => return Err(format!("a hidden result pointer in {other}")),
        };
        hidden = Some(dst);
        let size = u64::from(plan.ret_layout.size);
        let outside = dst < sp_at_call || dst.saturating_add(size) > STACK_TOP;
        if outside {
            let start = dst.saturating_sub(RESULT_PAD);
            match read_bytes(uc, start, size + 2 * RESULT_PAD) {
                Ok(bytes) => pad = Some((start, bytes)),
                Err(e) => pad_unreadable = Some(e),
            }
        }
    }
    let x87_top = x87_top(uc, abi)?;
    let mut p = probe.borrow_mut();
    p.entries += 1;
    p.entry = Some(Entry { sp_at_call, return_to, stack, hidden, pad, pad_unreadable, x87_top });
    Ok(())
}

/// The probe hook: the thunk returned; record, and resume at the caller's return address.
fn thunk_returned(
    uc: &mut Unicorn<'_, ()>,
    abi: Abi,
    probe: &Rc<RefCell<Probe>>,
) -> Result<(), String> {
    let (entry, plan) = {
        let p = probe.borrow();
        (p.entry.clone(), p.expect.clone())
    };
    let entry = entry.ok_or("the probe was reached without a thunk entry")?;
    let plan = plan.ok_or("no plan for the caller")?;
    let sp = reg(uc, abi.spec().registers().stack_pointer)?;
    let returned_in = match plan.ret {
        RetPlan::Indirect { returned_in: Some(loc), .. } => {
            let name = plan.loc_name(loc, true);
            let r = plan.loc_reg(loc, true).ok_or_else(|| format!("no register {name}"))?;
            let value = reg(uc, r)?;
            let mask = if abi.word_size() == 4 { 0xffff_ffff } else { u64::MAX };
            Some((name, value & mask))
        }
        _ => None,
    };
    let stack = read_bytes(uc, entry.sp_at_call, STACK_TOP.saturating_sub(entry.sp_at_call))?;
    let pad = match &entry.pad {
        Some((start, before)) => Some(read_bytes(uc, *start, before.len() as u64)?),
        None => None,
    };
    let x87_top = x87_top(uc, abi)?;
    probe.borrow_mut().ret = Some(Return { sp, returned_in, stack, pad, x87_top });
    uc.set_pc(entry.return_to).map_err(|e| format!("resuming the caller: {e:?}"))
}

/// x86: the top of the x87 register stack (a push decrements it, modulo 8).
fn x87_top(uc: &Unicorn<'_, ()>, abi: Abi) -> Result<Option<u8>, String> {
    if !is_x86(abi) {
        return Ok(None);
    }
    let fpsw = uc.reg_read(RegisterX86::FPSW).map_err(|e| format!("reading fpsw: {e:?}"))?;
    Ok(Some(((fpsw >> 11) & 7) as u8))
}

/// What the probe saw, in a few words (for a failed call).
fn probe_story(probe: &Probe) -> String {
    match (&probe.entry, &probe.ret, probe.calls.len()) {
        (None, _, _) => "the thunk was never entered".to_string(),
        (Some(_), None, 0) => "the thunk was entered, the handler never ran, the thunk never \
                               returned to its caller"
            .to_string(),
        (Some(_), None, k) => {
            format!("the thunk was entered, the handler ran {k} time(s), the thunk never returned")
        }
        (Some(e), Some(r), k) => format!(
            "the handler ran {k} time(s) and the thunk returned to its caller at {:#x} with sp \
             {:#x} (sp at the call {:#x}); the caller failed afterwards",
            e.return_to, r.sp, e.sp_at_call
        ),
    }
}

/// The return probe's checks (see the module documentation) against `plan`, the plan of the
/// caller's signature.
/// `results_by_plan`: whether the result travels by `plan` (the context route) or between two
/// compiled functions by their compiler's rules (the typed route: only the stack balance,
/// the callee-saved registers and stray writes are the stub's business).
fn probe_problems(abi: Abi, plan: &CallPlan, probe: &Probe, results_by_plan: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(e) = &probe.hook_error {
        problems.push(e.clone());
    }
    let Some(entry) = &probe.entry else {
        problems.push("the C caller never entered the thunk".to_string());
        return problems;
    };
    if probe.entries != 1 {
        problems.push(format!("the thunk was entered {} times for one call", probe.entries));
    }
    let Some(ret) = &probe.ret else {
        problems.push(format!(
            "the thunk did not return to the address its caller's call left ({:#x})",
            entry.return_to
        ));
        return problems;
    };
    // Stack balance of the thunk itself.
    let pop = if is_x86(abi) { u64::from(plan.callee_pop) } else { 0 };
    let expected = entry.sp_at_call + pop;
    if ret.sp != expected {
        problems.push(format!(
            "stack pointer after the thunk returned: {:#x}; the caller's sp at the call was \
             {:#x} and the plan's callee pop is {} bytes, so it should be {expected:#x} \
             ({:+} bytes)",
            ret.sp,
            entry.sp_at_call,
            plan.callee_pop,
            ret.sp as i64 - expected as i64
        ));
    }
    // The hidden result pointer, returned where the plan says.
    if let (true, Some((name, value)), Some(dst)) =
        (results_by_plan, &ret.returned_in, entry.hidden)
    {
        if *value != dst {
            problems.push(format!(
                "hidden result pointer not returned: the plan returns it in {name}, which holds \
                 {value:#x} after the thunk returned; the caller passed {dst:#x} ({})",
                ret_location(plan)
            ));
        }
    }
    // The x87 register stack: one value more (st(0)) for a result in st(0), two for a
    // `long double _Complex` (st(0), st(1)), else as the caller left it.
    if let (true, Some(before), Some(after)) = (results_by_plan, entry.x87_top, ret.x87_top) {
        let x87_bytes: u32 = match &plan.ret {
            RetPlan::Direct { pieces, .. } => {
                pieces.iter().filter(|pc| pc.loc == Loc::X87).map(|pc| pc.size).sum()
            }
            _ => 0,
        };
        let expected = match x87_bytes {
            0 => 0,
            1..=16 => 1,
            _ => 2,
        };
        let pushed = before.wrapping_sub(after) & 7;
        if pushed != expected {
            problems.push(format!(
                "x87 register stack: the thunk left {pushed} more value(s) on it than the \
                 caller had (top {before} -> {after}); the plan returns {expected} value(s) \
                 there"
            ));
        }
    }
    // Stray writes into the caller's stack (the poison pad).
    let size = u64::from(plan.ret_layout.size);
    let allowed = |addr: u64| {
        let in_args = addr < entry.sp_at_call + u64::from(plan.stack_bytes);
        let in_result = entry.hidden.is_some_and(|dst| addr >= dst && addr < dst + size);
        in_args || in_result
    };
    let changed: Vec<u64> = (0..entry.stack.len().min(ret.stack.len()))
        .filter(|&k| entry.stack[k] != ret.stack[k])
        .map(|k| entry.sp_at_call + k as u64)
        .filter(|&a| !allowed(a))
        .collect();
    if !changed.is_empty() {
        let before = |a: u64| entry.stack[(a - entry.sp_at_call) as usize];
        let after = |a: u64| ret.stack[(a - entry.sp_at_call) as usize];
        problems.push(stray_writes(
            "the caller's stack",
            &changed,
            before,
            after,
            entry,
            size,
            &format!(
                "outside the hidden result object and the callee's argument area (sp at the \
                 call {:#x} + {} bytes)",
                entry.sp_at_call, plan.stack_bytes
            ),
        ));
    }
    if let (Some((start, before)), Some(after)) = (&entry.pad, &ret.pad) {
        let dst = entry.hidden.unwrap_or(0);
        let changed: Vec<u64> = (0..before.len())
            .filter(|&k| before[k] != after[k])
            .map(|k| start + k as u64)
            .filter(|&a| a < dst || a >= dst + size)
            .collect();
        if !changed.is_empty() {
            problems.push(stray_writes(
                "the pad around the hidden result object",
                &changed,
                |a| before[(a - start) as usize],
                |a| after[(a - start) as usize],
                entry,
                size,
                &format!("within {RESULT_PAD} bytes of the object"),
            ));
        }
    }
    if let Some(why) = &entry.pad_unreadable {
        problems.push(format!(
            "the hidden result pointer {:#x} ({}) does not point at readable memory: {why}",
            entry.hidden.unwrap_or(0),
            ret_location(plan)
        ));
    }
    problems
}

/// A stray-write problem: the changed addresses in runs, with old and new bytes, and where
/// they are relative to the hidden result object.
fn stray_writes(
    region: &str,
    changed: &[u64],
    before: impl Fn(u64) -> u8,
    after: impl Fn(u64) -> u8,
    entry: &Entry,
    result_size: u64,
    what: &str,
) -> String {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &a in changed {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == a => *end = a,
            _ => runs.push((a, a)),
        }
    }
    let mut text =
        format!("stray writes: the callback changed {} byte(s) of {region} {what}", changed.len());
    for &(start, end) in runs.iter().take(STRAY_RUNS) {
        let old: Vec<String> = (start..=end).map(|a| format!("{:02x}", before(a))).collect();
        let new: Vec<String> = (start..=end).map(|a| format!("{:02x}", after(a))).collect();
        let _ = write!(
            text,
            "\n  {start:#x}..={end:#x} (caller sp at the call + {})",
            start as i64 - entry.sp_at_call as i64
        );
        if let Some(dst) = entry.hidden {
            if end < dst {
                let _ = write!(text, ", {} byte(s) before the hidden result object", dst - end);
            } else if start >= dst + result_size {
                let _ = write!(
                    text,
                    ", {} byte(s) past the end of the hidden result object",
                    start - (dst + result_size) + 1
                );
            }
        }
        let _ = write!(text, "\n    before: {}\n    after:  {}", old.join(" "), new.join(" "));
    }
    if runs.len() > STRAY_RUNS {
        let _ = write!(text, "\n  ... and {} more runs", runs.len() - STRAY_RUNS);
    }
    text
}

fn describe_violation(v: &Violation, caller: u64, n: usize) -> String {
    let text = v
        .to_string()
        .replace(&format!("{caller:#x}"), &format!("{} ({caller:#x})", caller_name(n)));
    format!("machine invariant broken: {text}")
}
