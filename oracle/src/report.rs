//! What one run of a batch found: cases that ran, were skipped by the ABI, or failed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use backcall_abi::{Abi, Signature};

use crate::compare::Mismatch;
use crate::compiler::{Compiler, Opt};

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
    /// the unnamed arguments the caller passed (a variadic signature's)
    pub unnamed: Vec<backcall_abi::Type>,
    /// one paragraph per problem (an argument, the result, the compiler's refusal)
    pub problems: Vec<String>,
    /// the values whose bytes differ (empty when the case could not run)
    pub mismatches: Vec<Mismatch>,
    /// the callback's plan, printed (when a callback was created)
    pub plan: Option<String>,
}

impl Failure {
    /// The type of every argument the caller passed: the named ones, then the unnamed ones.
    pub fn arg_types(&self) -> Vec<&backcall_abi::Type> {
        self.signature.args.iter().chain(&self.unnamed).collect()
    }

    /// The call as `--sig` writes it: the signature, then `| ` and the unnamed arguments.
    pub fn call_text(&self) -> String {
        crate::case::call_text(&self.signature, &self.unnamed)
    }

    /// The plan of the call the caller made on `abi`.
    pub fn call_plan(&self, abi: Abi) -> Result<backcall_abi::CallPlan, backcall_abi::AbiError> {
        abi.plan_call(&self.signature, &self.unnamed)
    }
}

/// One case's outcome: `Ok(None)` it ran and agrees, `Ok(Some(_))` it ran and disagrees,
/// `Err(_)` it could not run.
pub type Outcome = Result<Option<Failure>, Box<Failure>>;

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
    /// cases the compiler crashed on (its bug; they neither pass nor fail with this compiler)
    pub crashed: Vec<Skip>,
    /// cases that disagreed or could not run
    pub failures: Vec<Failure>,
    /// failures set aside as a known deviation of a compiler that is not the ABI's authority
    /// ([`Report::excuse_known`]), with the deviation
    pub known: Vec<Skip>,
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
            crashed: Vec::new(),
            failures: Vec::new(),
            known: Vec::new(),
            compile_time: Duration::ZERO,
            call_time: Duration::ZERO,
            kept: None,
        }
    }

    /// Counts one case's outcome: `Ok(None)` it ran and agrees, `Ok(Some(_))` it ran and
    /// disagrees, `Err(_)` it could not run.
    pub fn record(&mut self, outcome: Outcome) {
        match outcome {
            Ok(None) => self.ran += 1,
            Ok(Some(failure)) => {
                self.ran += 1;
                self.failures.push(failure);
            }
            Err(failure) => self.failures.push(*failure),
        }
    }

    /// Sets aside the failures that `compiler`, when it is not the ABI's authority, is known to
    /// deviate in ([`crate::known`]): a deviation from the authority is no evidence against
    /// backcall. Every failure of the authority itself stands.
    pub fn excuse_known(&mut self, compiler: &Compiler) {
        if compiler.may_judge_its_abi() {
            return;
        }
        for failure in std::mem::take(&mut self.failures) {
            match crate::known::matching(self.abi, compiler, &failure) {
                Some(k) => self.known.push(Skip {
                    index: failure.index,
                    signature: failure.signature,
                    reason: format!("a known deviation ({}: {})", k.upstream, k.summary),
                }),
                None => self.failures.push(failure),
            }
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
        let mut set_aside = match self.crashed.len() {
            0 => String::new(),
            n => format!(", {n} crashed the compiler"),
        };
        if !self.known.is_empty() {
            set_aside.push_str(&format!(", {} known deviations of the compiler", self.known.len()));
        }
        format!(
            "{} / `{}` {}: {} cases, {} ran, {} skipped by the ABI, {} failed{set_aside} \
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
                writeln!(f, "  case {}: {}", fail.index, fail.call_text())?;
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
        for c in self.crashed.iter().chain(&self.known) {
            writeln!(f, "case {} ({}): {}", c.index, c.signature, c.reason)?;
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
    writeln!(f, "  signature: {}", fail.call_text())?;
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
