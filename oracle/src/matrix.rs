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
//! * [`Status::Unsupported`]: backcall has no plan for the signature on this ABI;
//! * [`Status::Unjudged`]: the authority could not compile the case (it crashed) and no
//!   other compiler vouches for it (each one that ran deviates as known).
//!
//! Without the authority's word on a case, a dissent that matches a known upstream issue is
//! not evidence against backcall (that compiler is known to deviate on that shape); an
//! unexplained one fails the case.

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
    /// the authority crashed on the case and no other compiler agrees
    Unjudged,
}

impl Status {
    /// The word reports and `--json` use.
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Disagree => "disagree",
            Status::Fail => "fail",
            Status::Unsupported => "unsupported",
            Status::Unjudged => "unjudged",
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
    /// the compiler crashed on this case's caller (its bug)
    Crashed(&'a Skip),
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
                } else if let Some(c) = r.crashed.iter().find(|c| c.index == index) {
                    Outcome::Crashed(c)
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
        let authority_ran = self
            .authority
            .is_some_and(|k| !matches!(outcomes[k], Outcome::NotRun(_) | Outcome::Crashed(_)));
        let unexplained = verdict.dissents.iter().any(|d| d.known.is_none());
        let vouched = outcomes.iter().any(|o| matches!(o, Outcome::Agrees));
        verdict.status = if verdict.authority_failure.is_some() {
            Status::Fail
        } else if verdict.dissents.is_empty() {
            if vouched {
                Status::Pass
            } else {
                Status::Unjudged
            }
        } else if authority_ran {
            Status::Disagree
        } else if unexplained {
            Status::Fail
        } else if vouched {
            Status::Disagree
        } else {
            Status::Unjudged
        };
        verdict
    }

    /// Every case's verdict, in batch order.
    pub fn verdicts(&self) -> Vec<Verdict<'_>> {
        (0..self.cases).map(|i| self.verdict(i)).collect()
    }

    /// How many cases have each status: `[pass, disagree, fail, unsupported, unjudged]`.
    pub fn counts(&self) -> [usize; 5] {
        let mut counts = [0; 5];
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
        let [pass, disagree, fail, unsupported, unjudged] = self.counts();
        let authority =
            self.authority_compiler().map_or("none ran".to_string(), |c| c.label().to_string());
        writeln!(
            f,
            "{} {}: {} cases, {pass} pass, {disagree} disagree, {fail} fail, {unsupported} \
             unsupported, {unjudged} unjudged (authority: {authority}; compilers: {})",
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
            for c in &report.crashed {
                writeln!(f, "case {}: {}", c.index, c.reason)?;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compiler::{Family, Version};
    use backcall_abi::{Convention, Scalar, Signature, Type};

    const ABI: Abi = Abi::I386Win32;

    fn compiler(family: Family, major: u32) -> Compiler {
        let program = match family {
            Family::Clang => format!("clang-{major}"),
            Family::Gcc => "i686-w64-mingw32-gcc".into(),
        };
        Compiler {
            abi: ABI,
            program,
            args: vec![],
            family,
            version: Version { major, minor: 0, patch: 0 },
        }
    }

    /// A signature under `conv`: clang 16's and mingw GCC's dissents match known issues under
    /// fastcall, none does under cdecl.
    fn signature(conv: Convention) -> Signature {
        let int = Type::scalar(Scalar::Int);
        let mut sig = Signature::new(int.clone(), vec![int]);
        sig.conv = conv;
        sig
    }

    fn failure(conv: Convention) -> Failure {
        Failure {
            index: 0,
            signature: signature(conv),
            unnamed: vec![],
            problems: vec!["differs".into()],
            mismatches: vec![],
            plan: None,
        }
    }

    fn skip() -> Skip {
        Skip { index: 0, signature: signature(Convention::Fastcall), reason: "crashed".into() }
    }

    /// A column that agrees on case 0 (`'a'`), differs as a known issue explains (`'k'`),
    /// differs unexplained (`'u'`) or crashed on it (`'c'`).
    fn column(c: Compiler, outcome: char) -> Column {
        let mut report = Report::new(ABI, c.label(), Opt::O2, 1);
        match outcome {
            'a' => report.ran = 1,
            'k' => report.record(Ok(Some(failure(Convention::Fastcall)))),
            'u' => report.record(Ok(Some(failure(Convention::Cdecl)))),
            'c' => report.crashed.push(skip()),
            other => unreachable!("{other}"),
        }
        Column { compiler: c, report: Ok(report) }
    }

    fn status(columns: Vec<Column>) -> Status {
        Matrix::new(ABI, Opt::O2, 1, columns).verdict(0).status
    }

    /// clang 22 is the authority (clang 19 or newer); clang 16 and mingw GCC are not.
    #[test]
    fn the_authority_decides_and_a_crash_leaves_it_to_the_others() {
        let (auth, old, gcc) =
            (compiler(Family::Clang, 22), compiler(Family::Clang, 16), compiler(Family::Gcc, 12));
        let s = |a, o, g| {
            status(vec![column(auth.clone(), a), column(old.clone(), o), column(gcc.clone(), g)])
        };
        assert_eq!(s('a', 'a', 'a'), Status::Pass);
        assert_eq!(s('k', 'a', 'a'), Status::Fail);
        assert_eq!(s('a', 'k', 'u'), Status::Disagree);
        // The authority crashed: the others judge; a known dissent is no evidence ...
        assert_eq!(s('c', 'a', 'a'), Status::Pass);
        assert_eq!(s('c', 'a', 'k'), Status::Disagree);
        // ... an unexplained one is.
        assert_eq!(s('c', 'u', 'a'), Status::Fail);
        // Nobody vouches for the case: unjudged, not passed.
        assert_eq!(
            status(vec![column(auth.clone(), 'c'), column(gcc.clone(), 'k')]),
            Status::Unjudged
        );
        assert_eq!(status(vec![column(auth, 'c')]), Status::Unjudged);
        let matrix = Matrix::new(ABI, Opt::O2, 1, vec![column(old, 'c'), column(gcc, 'a')]);
        assert!(matrix.is_sound());
        assert!(matrix.to_string().contains("case 0: crashed"), "{matrix}");
    }
}
