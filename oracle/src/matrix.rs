//! Several compilers' reports of one batch on one ABI at one level, judged together.
//!
//! Compilers disagree, and versions drift: a case's verdict does not come from whichever
//! compiler happens to be installed but from the ABI's *authority*
//! ([`backcall_abi::Authority`]), the compiler that implements the ABI's own document or is the
//! platform's system compiler. Per case:
//!
//! * [`Status::Pass`]: every compiler agrees with backcall;
//! * [`Status::Fail`]: the authority disagrees with backcall (backcall is wrong), or no
//!   authority ran and some compiler disagrees;
//! * [`Status::Disagree`]: the authority agrees, another compiler does not (that compiler
//!   deviates; [`crate::known`] names the upstream issue when the shape matches one);
//! * [`Status::Unsupported`]: backcall has no plan for the signature on this ABI.

use std::fmt;

use backcall_abi::Abi;

use crate::compiler::{self, Compiler, Opt};
use crate::known::{self, KnownIssue};
use crate::report::{Failure, Report, RunError, Skip};

/// The verdict on one case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// every compiler agrees with backcall
    Pass,
    /// the authority agrees; another compiler does not
    Disagree,
    /// the authority (or, with none, any compiler) disagrees with backcall
    Fail,
    /// backcall does not support the signature on this ABI
    Unsupported,
}

impl Status {
    /// The word reports and `--json` use.
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Disagree => "disagree",
            Status::Fail => "fail",
            Status::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// One compiler's run of the batch.
#[derive(Clone, Debug)]
pub struct Column {
    /// the compiler
    pub compiler: Compiler,
    /// what it found, or why the whole run could not happen
    pub report: Result<Report, RunError>,
}

/// One compiler's outcome on one case.
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'a> {
    /// every byte agreed
    Agrees,
    /// bytes differ, or the case could not run with this compiler
    Differs(&'a Failure),
    /// backcall refused the signature
    Skipped(&'a Skip),
    /// the compiler's whole run failed
    NotRun(&'a RunError),
}

/// A compiler that disagrees on a case while the authority agrees (or no authority ran).
#[derive(Clone, Debug)]
pub struct Dissent<'a> {
    /// the compiler
    pub compiler: &'a Compiler,
    /// what differed
    pub failure: &'a Failure,
    /// the known upstream issue whose shape this matches, if any
    pub known: Option<&'static KnownIssue>,
}

/// The verdict on one case, with every compiler's outcome.
#[derive(Clone, Debug)]
pub struct Verdict<'a> {
    /// index of the case in the batch
    pub index: usize,
    /// the verdict
    pub status: Status,
    /// per column, in column order
    pub outcomes: Vec<Outcome<'a>>,
    /// the authority's failure when it disagrees (status `Fail` with an authority)
    pub authority_failure: Option<&'a Failure>,
    /// the other compilers that disagree
    pub dissents: Vec<Dissent<'a>>,
}

/// Every compiler's run of one batch on one ABI at one level.
#[derive(Clone, Debug)]
pub struct Matrix {
    /// the ABI
    pub abi: Abi,
    /// the level
    pub opt: Opt,
    /// how many cases the batch had
    pub cases: usize,
    /// one per compiler
    pub columns: Vec<Column>,
    /// the column of the ABI's authority, if it ran
    pub authority: Option<usize>,
}

impl Matrix {
    /// Judges `columns` (runs of the same batch of `cases` cases on `abi` at `opt`).
    pub fn new(abi: Abi, opt: Opt, cases: usize, columns: Vec<Column>) -> Matrix {
        let compilers: Vec<Compiler> = columns.iter().map(|c| c.compiler.clone()).collect();
        let authority = compiler::authority(abi, &compilers)
            .and_then(|a| columns.iter().position(|c| &c.compiler == a));
        Matrix { abi, opt, cases, columns, authority }
    }

    /// The authority's compiler, if it ran.
    pub fn authority_compiler(&self) -> Option<&Compiler> {
        self.authority.map(|k| &self.columns[k].compiler)
    }

    /// The columns whose whole run failed.
    pub fn run_errors(&self) -> Vec<(&Compiler, &RunError)> {
        self.columns.iter().filter_map(|c| Some((&c.compiler, c.report.as_ref().err()?))).collect()
    }

    /// Case `index`'s outcome in `column`.
    pub fn outcome(&self, column: usize, index: usize) -> Outcome<'_> {
        match &self.columns[column].report {
            Err(e) => Outcome::NotRun(e),
            Ok(r) => {
                if let Some(s) = r.skipped.iter().find(|s| s.index == index) {
                    Outcome::Skipped(s)
                } else if let Some(f) = r.failures.iter().find(|f| f.index == index) {
                    Outcome::Differs(f)
                } else {
                    Outcome::Agrees
                }
            }
        }
    }

    /// The verdict on case `index`.
    pub fn verdict(&self, index: usize) -> Verdict<'_> {
        let outcomes: Vec<Outcome<'_>> =
            (0..self.columns.len()).map(|k| self.outcome(k, index)).collect();
        let mut verdict = Verdict {
            index,
            status: Status::Pass,
            outcomes: outcomes.clone(),
            authority_failure: None,
            dissents: Vec::new(),
        };
        if outcomes.iter().any(|o| matches!(o, Outcome::Skipped(_))) {
            verdict.status = Status::Unsupported;
            return verdict;
        }
        for (k, outcome) in outcomes.iter().enumerate() {
            let Outcome::Differs(failure) = *outcome else { continue };
            if Some(k) == self.authority {
                verdict.authority_failure = Some(failure);
                continue;
            }
            let compiler = &self.columns[k].compiler;
            let known = known::matching(self.abi, compiler, failure);
            verdict.dissents.push(Dissent { compiler, failure, known });
        }
        let authority_not_run =
            self.authority.is_some_and(|k| matches!(outcomes[k], Outcome::NotRun(_)));
        verdict.status = if verdict.authority_failure.is_some() {
            Status::Fail
        } else if self.authority.is_none() || authority_not_run {
            if verdict.dissents.is_empty() {
                Status::Pass
            } else {
                Status::Fail
            }
        } else if verdict.dissents.is_empty() {
            Status::Pass
        } else {
            Status::Disagree
        };
        verdict
    }

    /// Every case's verdict, in batch order.
    pub fn verdicts(&self) -> Vec<Verdict<'_>> {
        (0..self.cases).map(|i| self.verdict(i)).collect()
    }

    /// How many cases have each status: `(pass, disagree, fail, unsupported)`.
    pub fn counts(&self) -> [usize; 4] {
        let mut counts = [0; 4];
        for v in self.verdicts() {
            counts[v.status as usize] += 1;
        }
        counts
    }

    /// Whether the matrix holds up in a test suite: no run error, no failure, and every
    /// disagreement explained by a known upstream issue (an unexplained one is news to
    /// investigate: a new compiler deviation, or a backcall bug the authority shares).
    pub fn is_sound(&self) -> bool {
        self.run_errors().is_empty()
            && self
                .verdicts()
                .iter()
                .all(|v| v.status != Status::Fail && v.dissents.iter().all(|d| d.known.is_some()))
    }
}

impl fmt::Display for Matrix {
    /// The problems in full: run errors, failures, then disagreements (known ones in a line).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [pass, disagree, fail, unsupported] = self.counts();
        let authority =
            self.authority_compiler().map_or("none ran".to_string(), |c| c.label().to_string());
        writeln!(
            f,
            "{} {}: {} cases, {pass} pass, {disagree} disagree, {fail} fail, {unsupported} \
             unsupported (authority: {authority}; compilers: {})",
            self.abi,
            self.opt,
            self.cases,
            self.columns.iter().map(|c| c.compiler.label()).collect::<Vec<_>>().join(", ")
        )?;
        for (compiler, e) in self.run_errors() {
            writeln!(f, "\n{} could not run the batch: {e}", compiler.label())?;
        }
        for column in &self.columns {
            let Ok(report) = &column.report else { continue };
            let failing: Vec<&Failure> = report
                .failures
                .iter()
                .filter(|fl| {
                    let v = self.verdict(fl.index);
                    v.status == Status::Fail || v.dissents.iter().any(|d| d.known.is_none())
                })
                .collect();
            if failing.is_empty() {
                continue;
            }
            let mut shown = report.clone();
            shown.failures = failing.into_iter().cloned().collect();
            writeln!(f, "\n{shown}")?;
        }
        for v in self.verdicts() {
            for d in v.dissents.iter().filter(|d| d.known.is_some()) {
                let k = d.known.expect("filtered");
                writeln!(
                    f,
                    "case {}: {} disagrees as known ({}: {})",
                    v.index,
                    d.compiler.label(),
                    k.upstream,
                    k.summary
                )?;
            }
        }
        Ok(())
    }
}
