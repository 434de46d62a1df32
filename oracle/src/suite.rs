//! What the two compiler oracle suites drive their oracle with: `native-tests/tests/oracle.rs`
//! (the host's compiler, natively) and `emu-tests/tests/oracle.rs` (clang per ABI, emulated).
//!
//! * [`corpus_cases`]: the built-in corpus as cases, optionally under one convention;
//! * [`RandomCases`]: `PROPTEST_CASES` (default 256) random calls from
//!   `backcall_abi::arbitrary::any_verified_call()` (some variadic, with unnamed arguments),
//!   run as one batch per level; the first
//!   [`SHRUNK`] failing cases of a batch are run again alone so that proptest shrinks them to
//!   the smallest failing signature. The seed is printed on failure; `PROPTEST_RNG_SEED=<seed>`
//!   replays a run.

use std::time::{Duration, Instant};

use backcall::harness::corpus;
use backcall_abi::arbitrary::any_verified_call;
use backcall_abi::{Convention, Signature};
use proptest::strategy::{BoxedStrategy, Strategy, ValueTree};
use proptest::test_runner::{
    Config, RngAlgorithm, RngSeed, TestCaseError, TestError, TestRng, TestRunner,
};

use crate::case::Case;
use crate::compiler::{Compiler, Opt};
use crate::matrix::{Matrix, Status};
use crate::report::{Report, RunError};

/// Failing random cases shrunk per batch (each shrink step is one compile).
pub const SHRUNK: usize = 2;
/// Shrink steps per failing case, unless `PROPTEST_MAX_SHRINK_ITERS` says otherwise.
pub const SHRINK_STEPS: u32 = 200;
/// Shrinking time per failing case, unless `PROPTEST_MAX_SHRINK_TIME` says otherwise.
pub const SHRINK_TIME: Duration = Duration::from_secs(60);

/// The built-in corpus; with `conv`, every signature under that convention instead of its own.
pub fn corpus_cases(conv: Option<Convention>) -> Vec<Case> {
    corpus::builtin()
        .into_iter()
        .map(|e| {
            let conv = conv.unwrap_or(e.signature.conv);
            Case::written(Signature { conv, ..e.signature }, e.unnamed)
        })
        .collect()
}

/// The seed of this run: `PROPTEST_RNG_SEED`, or one drawn from the clock (and printed).
pub fn seed() -> u64 {
    match Config::default().rng_seed {
        RngSeed::Fixed(seed) => seed,
        RngSeed::Random => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map(|d| d.as_nanos() as u64).unwrap_or(0x5eed)
        }
    }
}

/// proptest's configuration (the environment's) with `seed` and this suite's shrink limits.
pub fn config(seed: u64) -> Config {
    let mut config = Config { rng_seed: RngSeed::Fixed(seed), ..Config::default() };
    if std::env::var_os("PROPTEST_MAX_SHRINK_ITERS").is_none() {
        config.max_shrink_iters = SHRINK_STEPS;
    }
    if std::env::var_os("PROPTEST_MAX_SHRINK_TIME").is_none() {
        config.max_shrink_time = SHRINK_TIME.as_millis() as u32;
    }
    config
}

type Tree = <BoxedStrategy<Case> as Strategy>::Tree;

/// One run's random signatures, kept as proptest value trees so that failing ones can be shrunk,
/// and what the batches run on them found (see the [module documentation](self)).
pub struct RandomCases {
    seed: u64,
    config: Config,
    runner: TestRunner,
    /// per case; `None` once shrunk
    trees: Vec<Option<Tree>>,
    cases: Vec<Case>,
    message: String,
}

impl Default for RandomCases {
    fn default() -> RandomCases {
        RandomCases::new()
    }
}

impl RandomCases {
    /// `PROPTEST_CASES` random calls, seeded by [`seed`].
    pub fn new() -> RandomCases {
        RandomCases::from_cases(any_verified_case())
    }

    /// `PROPTEST_CASES` signatures drawn from `strategy`, seeded by [`seed`].
    pub fn from_strategy(strategy: BoxedStrategy<Signature>) -> RandomCases {
        RandomCases::from_cases(strategy.prop_map(Case::new).boxed())
    }

    /// `PROPTEST_CASES` cases drawn from `strategy`, seeded by [`seed`].
    pub fn from_cases(strategy: BoxedStrategy<Case>) -> RandomCases {
        let seed = seed();
        let config = config(seed);
        let mut runner = TestRunner::new(config.clone());
        let trees: Vec<Option<Tree>> = (0..config.cases)
            .map(|_| Some(strategy.new_tree(&mut runner).expect("a signature")))
            .collect();
        let cases = trees.iter().map(|t| t.as_ref().expect("fresh").current()).collect();
        RandomCases { seed, config, runner, trees, cases, message: String::new() }
    }

    /// The cases, one per signature, in order.
    pub fn cases(&self) -> &[Case] {
        &self.cases
    }

    /// Takes note of `report`, a batch of [`RandomCases::cases`], unless it is ok: the report,
    /// and its first [`SHRUNK`] failing cases shrunk to the smallest failing signature, each
    /// step a run of one case by `run` at the report's level.
    pub fn check(
        &mut self,
        report: &Report,
        run: impl Fn(&[Case], Opt) -> Result<Report, RunError>,
    ) {
        if report.is_ok() {
            return;
        }
        self.message.push_str(&format!("{report}\n"));
        let opt = report.opt;
        for index in report.failing().into_iter().take(SHRUNK) {
            let Some(tree) = self.trees.get_mut(index).and_then(Option::take) else { continue };
            let started = Instant::now();
            let shrunk = match self.runner.run_one(tree, |case| alone(&run, case, opt)) {
                Err(TestError::Fail(why, case)) => format!(
                    "smallest failing signature ({:.1?} shrinking): {case}\n{why}",
                    started.elapsed()
                ),
                Err(TestError::Abort(why)) => format!("shrinking aborted: {why}"),
                Ok(_) => "it passes when run alone (it failed only in the batch)".into(),
            };
            let abi = report.abi;
            self.message.push_str(&format!("\n{abi} case {index} shrunk at {opt}: {shrunk}\n"));
        }
    }

    /// Takes note of `matrix`, every compiler's run of [`RandomCases::cases`] at one level,
    /// unless it is sound ([`Matrix::is_sound`]): the matrix, and its first [`SHRUNK`] problem
    /// cases shrunk, each with the compiler that raised it (the authority for a failure, the
    /// dissenting compiler for an unexplained disagreement), each step a run of one case by
    /// `run`.
    pub fn check_matrix(
        &mut self,
        matrix: &Matrix,
        run: impl Fn(&Compiler, &[Case], Opt) -> Result<Report, RunError>,
    ) {
        if matrix.is_sound() {
            return;
        }
        self.message.push_str(&format!("{matrix}\n"));
        let opt = matrix.opt;
        let problems: Vec<(usize, Compiler, bool)> = matrix
            .verdicts()
            .iter()
            .filter_map(|v| {
                if v.status == Status::Fail {
                    let c =
                        matrix.authority_compiler().or(v.dissents.first().map(|d| d.compiler))?;
                    return Some((v.index, c.clone(), true));
                }
                let d = v.dissents.iter().find(|d| d.known.is_none())?;
                Some((v.index, d.compiler.clone(), false))
            })
            .take(SHRUNK)
            .collect();
        for (index, compiler, strict) in problems {
            let Some(tree) = self.trees.get_mut(index).and_then(Option::take) else { continue };
            let started = Instant::now();
            let judge = |case: Case| {
                let report =
                    run(&compiler, &[case], opt).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let unexplained = report
                    .failures
                    .iter()
                    .any(|f| strict || crate::known::matching(matrix.abi, &compiler, f).is_none());
                if unexplained {
                    Err(TestCaseError::fail(report.to_string()))
                } else {
                    Ok(())
                }
            };
            let shrunk = match self.runner.run_one(tree, judge) {
                Err(TestError::Fail(why, case)) => format!(
                    "smallest failing signature ({:.1?} shrinking): {case}\n{why}",
                    started.elapsed()
                ),
                Err(TestError::Abort(why)) => format!("shrinking aborted: {why}"),
                Ok(_) => "it passes when run alone (it failed only in the batch)".into(),
            };
            let abi = matrix.abi;
            let label = compiler.label();
            self.message
                .push_str(&format!("\n{abi} case {index} ({label}) shrunk at {opt}: {shrunk}\n"));
        }
    }

    /// Panics with every report [`RandomCases::check`] took note of, and how to replay the run.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(
            self.message.is_empty(),
            "{}\nreplay with PROPTEST_RNG_SEED={} PROPTEST_CASES={}",
            self.message,
            self.seed,
            self.config.cases
        );
    }
}

/// Runs `case` alone at `opt` with `run`, as a proptest test case.
fn alone(
    run: &impl Fn(&[Case], Opt) -> Result<Report, RunError>,
    case: Case,
    opt: Opt,
) -> Result<(), TestCaseError> {
    match run(&[case], opt) {
        Ok(report) if report.failures.is_empty() => Ok(()),
        Ok(report) => Err(TestCaseError::fail(report.to_string())),
        Err(e) => Err(TestCaseError::fail(e.to_string())),
    }
}

/// The random cases of the suites and `backcall verify`: [`any_verified_call`]'s.
pub fn any_verified_case() -> BoxedStrategy<Case> {
    any_verified_call().prop_map(|(sig, unnamed)| Case::call(sig, unnamed)).boxed()
}

/// `n` cases of [`any_verified_case`] drawn from `seed` (the same seed always gives the same
/// ones).
pub fn seeded_cases(n: usize, seed: u64) -> Vec<Case> {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = any_verified_case();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).expect("the strategy always generates").current())
        .collect()
}
