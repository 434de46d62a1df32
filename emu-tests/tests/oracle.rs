//! The emulated compiler oracle (`backcall_emu_tests::oracle`) on every ABI: each ABI's
//! compilers (the default clang, the ABI's GCC, and its authority) call the real thunks in
//! Unicorn with graffiti values at -O0 and -O2; every byte must arrive both ways and every
//! call must keep the machine's invariants. Cases are judged by the ABI's authority
//! (`backcall_oracle::matrix`): the authority must agree with backcall, and every other
//! compiler must agree too or disagree in a known shape (`backcall_oracle::known`).
//!
//! One test per ABI and kind, named with the ABI id, so a failing ABI shows by name:
//!
//! * `corpus_<abi>`: the built-in corpus (signatures an ABI refuses are counted as skipped);
//! * `conventions_<abi>` (i386 only): the corpus again as `__stdcall`, `__fastcall` and
//!   `__thiscall`;
//! * `random_<abi>`: `PROPTEST_CASES` (default 256) random signatures, one batch (one compile
//!   per compiler) per level, the failing ones shrunk (`backcall_oracle::suite`).
//!   `PROPTEST_RNG_SEED=<seed>` replays a run (the seed is printed);
//! * `wrong_plan_<abi>`: a correct plan with one rule flipped (two arguments' locations
//!   swapped; the hidden result pointer not returned in `eax`/`rax`; the hidden result pointer
//!   read from the wrong place; the callee pop dropped; a `double` not returned in `st(0)`) is
//!   reported by the authority, naming what is wrong.
//!
//! A missing compiler fails with the install hint. `cargo test -p backcall-emu-tests --test
//! oracle -- --nocapture` prints the counts and times. `BACKCALL_CLANG=clang-16` runs the
//! suites with another clang as the default one.

use backcall_abi::{
    Abi, ArgPass, CallPlan, Convention, RetPlan, ReturnCode, Scalar, Signature, Type,
};
use backcall_emu_tests::oracle::{self, Case, Compiler, EmuOracle, Opt, Prepared, Report};
use backcall_oracle::compiler;
use backcall_oracle::suite::{corpus_cases, RandomCases};

/// The compilers of `abi`'s suites (else the test fails with the install hint).
fn compilers(abi: Abi) -> Vec<Compiler> {
    compiler::suite(abi).unwrap_or_else(|hint| panic!("{hint}"))
}

/// The authority of `abi` among its suite's compilers.
fn authority(abi: Abi) -> EmuOracle {
    let all = compilers(abi);
    let judge = compiler::authority(abi, &all).expect("the suite includes the authority");
    EmuOracle::new(judge.clone())
}

/// The default clang for `abi`.
fn ready(abi: Abi) -> bool {
    if let Err(hint) = oracle::require_clang(abi) {
        panic!("{hint}");
    }
    true
}

fn run_with(oracle: &EmuOracle, cases: &[Case], opt: Opt) -> Report {
    let report = oracle.run(cases, opt).unwrap_or_else(|e| panic!("{}: {e}", oracle.abi));
    println!("{}", report.summary());
    report
}

fn run(abi: Abi, cases: &[Case], opt: Opt) -> Report {
    let oracle = EmuOracle::default_for(abi).unwrap_or_else(|e| panic!("{e}"));
    run_with(&oracle, cases, opt)
}

/// Runs `cases` at both levels with every suite compiler; fails with every matrix that is
/// not sound.
fn check_batch(abi: Abi, cases: &[Case], what: &str) {
    let compilers = compilers(abi);
    let mut message = String::new();
    for opt in Opt::ALL {
        let matrix = oracle::run_matrix(abi, &compilers, cases, opt);
        let [pass, disagree, fail, unsupported, unjudged] = matrix.counts();
        println!(
            "{abi} {opt} {what}: {pass} pass, {disagree} disagree, {fail} fail, \
             {unsupported} unsupported, {unjudged} unjudged"
        );
        if !matrix.is_sound() {
            message.push_str(&format!("{what}:\n{matrix}\n"));
        }
    }
    assert!(message.is_empty(), "{message}");
}

fn check_corpus(abi: Abi) {
    check_batch(abi, &corpus_cases(None), "the corpus");
}

/// i386 only: the corpus under each callee-popping convention.
fn check_conventions(abi: Abi) {
    for conv in [Convention::Stdcall, Convention::Fastcall, Convention::Thiscall] {
        check_batch(abi, &corpus_cases(Some(conv)), &format!("the corpus as {conv:?}"));
    }
}

// --- random signatures ----------------------------------------------------------------------

fn check_random(abi: Abi) {
    let compilers = compilers(abi);
    let mut random = RandomCases::new();
    for opt in Opt::ALL {
        let matrix = oracle::run_matrix(abi, &compilers, random.cases(), opt);
        random.check_matrix(&matrix, |c, cases, opt| EmuOracle::new(c.clone()).run(cases, opt));
    }
    random.assert_ok();
}

// --- the oracle itself: a wrong plan is caught ------------------------------------------------

fn s(scalar: Scalar) -> Type {
    Type::scalar(scalar)
}

/// A struct of `n` `long long`s: returned through a hidden pointer everywhere, and passed by
/// reference where the ABI passes large aggregates so (Win64, AArch64).
fn big(n: usize) -> Type {
    Type::anon_struct(std::iter::repeat_n(s(Scalar::LongLong), n))
}

fn tampered_report(
    abi: Abi,
    sig: Signature,
    opt: Opt,
    tamper: impl Fn(&Prepared, &mut CallPlan) + Send + Sync + 'static,
) -> String {
    let oracle = authority(abi).tampered(tamper);
    let report = run_with(&oracle, &[Case::new(sig)], opt);
    assert_eq!(report.failing(), vec![0], "{abi} {opt}: the wrong plan was not caught:\n{report}");
    report.to_string()
}

fn assert_mentions(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "no `{needle}` in:\n{text}");
    }
}

fn check_wrong_plans(abi: Abi) {
    let untouched = authority(abi);
    for opt in Opt::ALL {
        // 1. Two arguments' locations swapped: both are named, with the bytes each received.
        let sig = Signature::new(s(Scalar::Int), vec![s(Scalar::Int); 4]);
        run_with(&untouched, &[Case::new(sig.clone())], opt).assert_ok();
        let text = tampered_report(abi, sig, opt, |_, plan| {
            let loc = |plan: &CallPlan, i: usize| match &plan.args[i].pass {
                ArgPass::Direct(pieces) => pieces[0].loc,
                ArgPass::Indirect { pointer } => *pointer,
            };
            let (a, b) = (loc(plan, 1), loc(plan, 2));
            for (i, to) in [(1, b), (2, a)] {
                if let ArgPass::Direct(pieces) = &mut plan.args[i].pass {
                    pieces[0].loc = to;
                }
            }
        });
        assert_mentions(
            &text,
            &[
                &format!("FAILED: {abi} /"),
                &format!("{opt}, case 0"),
                "argument 1 (int, 4 bytes): received bytes differ at bytes 0..=3",
                "argument 2 (int, 4 bytes): received bytes differ at bytes 0..=3",
                "received bytes 0..=3 are argument 2's bytes 0..=3",
                "passed by C: 10 11 12 13",
                "the callback's plan:",
            ],
        );
        assert!(!text.contains("argument 0 ("), "argument 0 arrived:\n{text}");
        assert!(!text.contains("argument 3 ("), "argument 3 arrived:\n{text}");

        // A large struct result: through a hidden pointer on every ABI.
        let sig = Signature::new(big(5), vec![big(5), s(Scalar::Int)]);
        run_with(&untouched, &[Case::new(sig.clone())], opt).assert_ok();
        let plan = abi.plan(&sig).expect("a plan");
        let RetPlan::Indirect { returned_in, .. } = plan.ret else {
            panic!("{abi}: a 40-byte struct is returned through a hidden pointer:\n{plan}")
        };

        // 2. The hidden result pointer not returned in eax/rax where the ABI says so.
        if let Some(reg) = returned_in {
            let name = plan.loc_name(reg, true);
            let text = tampered_report(abi, sig.clone(), opt, |_, plan| {
                if let RetPlan::Indirect { returned_in, .. } = &mut plan.ret {
                    *returned_in = None;
                }
            });
            assert_mentions(
                &text,
                &["hidden result pointer not returned", &format!("the plan returns it in {name}")],
            );
        }

        // 3. The hidden result pointer taken from the wrong place: the by-reference copy of
        // argument 0 (Win64, AArch64) receives the result, which the probe sees as stray writes
        // into the caller's frame and C as a wrong result.
        if let ArgPass::Indirect { pointer } = plan.args[0].pass {
            let text = tampered_report(abi, sig.clone(), opt, move |_, plan| {
                if let RetPlan::Indirect { pointer: p, .. } = &mut plan.ret {
                    *p = pointer;
                }
            });
            assert_mentions(
                &text,
                &["result (struct {", "C received bytes that differ", "stray writes"],
            );
        }

        // 4. i386: the callee pop of a `__stdcall` callback dropped.
        if abi.word_size() == 4 {
            let sig = Signature {
                conv: Convention::Stdcall,
                ..Signature::new(s(Scalar::Int), vec![s(Scalar::Int); 3])
            };
            run_with(&untouched, &[Case::new(sig.clone())], opt).assert_ok();
            let text = tampered_report(abi, sig, opt, |_, plan| plan.callee_pop = 0);
            assert_mentions(
                &text,
                &[
                    "stack pointer after the thunk returned",
                    "the plan's callee pop is 12 bytes",
                    "(-12 bytes)",
                ],
            );

            // 5. i386: a `double` result returned by the wrong code (in eax, not st(0)).
            let sig = Signature::new(s(Scalar::Double), vec![s(Scalar::Int)]);
            let text = tampered_report(abi, sig, opt, |_, plan| plan.code = ReturnCode::Word);
            assert_mentions(
                &text,
                &[
                    "result (double, 8 bytes): C received bytes that differ",
                    "x87 register stack: the thunk left 0 more value(s) on it",
                    "the plan returns 1 value(s) there",
                ],
            );
        }

        // 6. x87's `long double _Complex` (x86-64: st(0) and st(1)) returned by the code of a
        // plain `long double`: one value pushed where C pops two.
        if abi == Abi::X86_64Sysv {
            let sig = Signature::new(Type::Complex(Scalar::LongDouble), vec![s(Scalar::Int)]);
            run_with(&untouched, &[Case::new(sig.clone())], opt).assert_ok();
            let text = tampered_report(abi, sig, opt, |_, plan| plan.code = ReturnCode::LongDouble);
            assert_mentions(
                &text,
                &[
                    "C received bytes that differ",
                    "x87 register stack: the thunk left 1 more value(s) on it",
                    "the plan returns 2 value(s) there",
                ],
            );
        }
    }
}

// --- per ABI --------------------------------------------------------------------------------

#[test]
fn corpus_i386_sysv() {
    check_corpus(Abi::I386Sysv);
}

#[test]
fn corpus_i386_win32() {
    check_corpus(Abi::I386Win32);
}

#[test]
fn corpus_x86_64_sysv() {
    check_corpus(Abi::X86_64Sysv);
}

#[test]
fn corpus_x86_64_win64() {
    check_corpus(Abi::X86_64Win64);
}

#[test]
fn corpus_aarch64_aapcs64() {
    check_corpus(Abi::Aarch64Aapcs64);
}

#[test]
fn corpus_aarch64_apple() {
    check_corpus(Abi::Aarch64Apple);
}

#[test]
fn conventions_i386_sysv() {
    check_conventions(Abi::I386Sysv);
}

#[test]
fn conventions_i386_win32() {
    check_conventions(Abi::I386Win32);
}

#[test]
fn random_i386_sysv() {
    check_random(Abi::I386Sysv);
}

#[test]
fn random_i386_win32() {
    check_random(Abi::I386Win32);
}

#[test]
fn random_x86_64_sysv() {
    check_random(Abi::X86_64Sysv);
}

#[test]
fn random_x86_64_win64() {
    check_random(Abi::X86_64Win64);
}

#[test]
fn random_aarch64_aapcs64() {
    check_random(Abi::Aarch64Aapcs64);
}

#[test]
fn random_aarch64_apple() {
    check_random(Abi::Aarch64Apple);
}

#[test]
fn wrong_plan_i386_sysv() {
    check_wrong_plans(Abi::I386Sysv);
}

#[test]
fn wrong_plan_i386_win32() {
    check_wrong_plans(Abi::I386Win32);
}

#[test]
fn wrong_plan_x86_64_sysv() {
    check_wrong_plans(Abi::X86_64Sysv);
}

#[test]
fn wrong_plan_x86_64_win64() {
    check_wrong_plans(Abi::X86_64Win64);
}

#[test]
fn wrong_plan_aarch64_aapcs64() {
    check_wrong_plans(Abi::Aarch64Aapcs64);
}

#[test]
fn wrong_plan_aarch64_apple() {
    check_wrong_plans(Abi::Aarch64Apple);
}

// --- the oracle's own plumbing ----------------------------------------------------------------

/// A wrong result byte and an every-case-skipped batch are reported like the host oracle's.
#[test]
fn wrong_results_and_empty_runs_are_reported() {
    let abi = Abi::X86_64Sysv;
    if !ready(abi) {
        return;
    }
    let sig = Signature::new(big(5), vec![s(Scalar::Int)]);
    let flipped = Case { flip_result_byte: Some(9), ..Case::new(sig.clone()) };
    let short = Case {
        flip_result_byte: Some(0),
        ..Case::new(Signature::new(s(Scalar::Short), vec![s(Scalar::Double)]))
    };
    for opt in Opt::ALL {
        let report = run(abi, &[flipped.clone(), Case::new(sig.clone()), short.clone()], opt);
        assert_eq!((report.ran, report.failing()), (3, vec![0, 2]), "{report}");
        assert_mentions(&report.to_string(), &["differ at byte 9", "deliberately returns"]);
    }
    // (a variadic callback without a named parameter: C11 callers cannot call it)
    let variadic = Signature { variadic: true, ..Signature::new(s(Scalar::Int), vec![]) };
    let report = run(abi, &[Case::new(variadic)], Opt::O0);
    assert_eq!((report.ran, report.skipped.len()), (0, 1));
    assert!(!report.is_ok() && report.to_string().contains("every case was skipped"));
}

/// More cases than one machine's code page has thunks: the batch is split over machines.
#[test]
fn a_batch_larger_than_a_code_page_runs() {
    let abi = Abi::X86_64Sysv;
    if !ready(abi) {
        return;
    }
    let thunks =
        backcall_abi::thunks::CodePage::template(abi, backcall_emu_tests::machine::CODE_PAGE_SIZE)
            .expect("a code page")
            .thunks as usize;
    let cases: Vec<Case> = (0..thunks + 3)
        .map(|i| {
            let args = vec![s(if i % 2 == 0 { Scalar::Int } else { Scalar::Double }); i % 7];
            Case::new(Signature::new(s(Scalar::Long), args))
        })
        .collect();
    let report = run(abi, &cases, Opt::O2);
    report.assert_ok();
    assert_eq!(report.ran, cases.len());
}

/// A large batch is split into one chunk per core: a failure in a later chunk must still be
/// reported under its index in the whole batch.
#[test]
fn a_split_batch_reports_failures_under_their_batch_index() {
    let abi = Abi::X86_64Sysv;
    // The authority: the corpus pins shapes where other compilers deviate.
    let oracle = authority(abi);
    let mut cases: Vec<Case> = corpus_cases(None).into_iter().chain(corpus_cases(None)).collect();
    let target = (cases.len() * 3 / 4..cases.len())
        .find(|&i| {
            !matches!(cases[i].signature.ret, Type::Void) && abi.plan(&cases[i].signature).is_ok()
        })
        .expect("a corpus case with a result");
    cases[target].flip_result_byte = Some(0);
    let report = run_with(&oracle, &cases, Opt::O0);
    assert_eq!(report.cases, cases.len());
    assert_eq!(report.failing(), vec![target], "{report}");
    assert_eq!(report.ran + report.skipped.len(), cases.len());
}
