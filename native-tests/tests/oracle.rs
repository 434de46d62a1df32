//! The host compiler oracle (natively; see `backcall_native_tests::host`): the host's C
//! compiler calls callbacks with graffiti values at -O0 and -O2, and every byte must arrive
//! both ways.
//!
//! * the built-in corpus, one batch per level;
//! * `PROPTEST_CASES` (default 256) random signatures (i386 conventions included), one batch
//!   per level, the failing ones shrunk (`backcall_oracle::suite`); `PROPTEST_RNG_SEED=<seed>`
//!   replays a run;
//! * on i386, the corpus again under `__stdcall`, `__fastcall` and `__thiscall`, compiled by
//!   GCC (`cc -m32`), i386 Linux's authority for those conventions;
//! * the corpus again with clang, where clang agrees with the host's authority;
//! * the oracle itself can fail: a wrong result byte, and a callback created for a signature
//!   other than the caller's, are reported.
//!
//! `cargo test -p backcall-native-tests --test oracle -- --nocapture` prints the counts.

use backcall::harness::corpus;
use backcall_abi::arbitrary::any_verified_signature;
use backcall_abi::{Abi, Convention, Scalar, Signature, Type};
use backcall_native_tests::host::{host_compiler, Oracle};
use backcall_oracle::callers::c_source;
use backcall_oracle::graffiti::{arg_graffiti, result_graffiti};
use backcall_oracle::known::{expanded_union_argument, matching};
use backcall_oracle::suite::{config, corpus_cases, seed, RandomCases};
use backcall_oracle::{Case, Compiler, Opt, Prepared, Report};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

fn host() -> Oracle {
    Oracle::host().unwrap_or_else(|e| panic!("{e}"))
}

fn run(cases: &[Case], opt: Opt) -> Report {
    run_with(&host(), cases, opt)
}

fn run_with(oracle: &Oracle, cases: &[Case], opt: Opt) -> Report {
    let report = oracle.run(cases, opt).unwrap_or_else(|e| panic!("{e}"));
    println!("{}", report.summary());
    report
}

/// The oracle with clang (`clang --target=<triple>`), when it is installed and
/// `BACKCALL_ORACLE_CC` does not choose.
fn clang_oracle() -> Option<Oracle> {
    if std::env::var_os("BACKCALL_ORACLE_CC").is_some() {
        return Some(host());
    }
    let abi = Abi::host()?;
    let clang = backcall_oracle::compiler::default_clang_program();
    Compiler::clang(abi, &clang).map(|compiler| Oracle { abi, compiler })
}

#[test]
fn the_corpus_at_o0() {
    run(&corpus_cases(None), Opt::O0).assert_ok();
}

#[test]
fn the_corpus_at_o2() {
    run(&corpus_cases(None), Opt::O2).assert_ok();
}

/// The corpus again with clang: gcc and clang callers differ in what they leave in the upper
/// bits of registers and how they build values. The corpus pins shapes where clang deviates
/// from the host ABI's authority; those must disagree exactly as known
/// (`backcall_oracle::known`), everything else must agree.
#[test]
fn the_corpus_with_clang() {
    let Some(oracle) = clang_oracle() else {
        println!("no clang on PATH: skipped");
        return;
    };
    // clang's i386 fastcall and thiscall are Microsoft's, not GCC's (known): natively a
    // caller of the other reading passes garbage where backcall reads the hidden result
    // pointer, which no process survives. Nor does a stdcall call whose union clang passes as
    // one member (known): the two sides pop different sizes. The emulated oracle covers them.
    let cases: Vec<Case> = corpus_cases(None)
        .into_iter()
        .filter(|c| {
            let sig = &c.signature;
            oracle.abi != Abi::I386Sysv
                || !(matches!(sig.conv, Convention::Fastcall | Convention::Thiscall)
                    || sig.conv == Convention::Stdcall
                        && expanded_union_argument(oracle.abi, c.arg_types()).is_some())
        })
        .collect();
    for opt in Opt::ALL {
        let report = run_with(&oracle, &cases, opt);
        let unexplained: Vec<_> = report
            .failures
            .iter()
            .filter(|f| matching(oracle.abi, &oracle.compiler, f).is_none())
            .collect();
        assert!(report.ran > 0 && unexplained.is_empty(), "{report}");
    }
}

/// `__stdcall`, `__fastcall`, `__thiscall` on i386 Linux, compiled by the host's GCC, the
/// authority for them (abi/src/i386_sysv.rs).
#[cfg(target_arch = "x86")]
mod i386_conventions {
    use super::*;

    fn check(conv: Convention) {
        for opt in Opt::ALL {
            run(&corpus_cases(Some(conv)), opt).assert_ok();
        }
    }

    #[test]
    fn the_corpus_as_stdcall() {
        check(Convention::Stdcall);
    }

    #[test]
    fn the_corpus_as_fastcall() {
        check(Convention::Fastcall);
    }

    #[test]
    fn the_corpus_as_thiscall() {
        check(Convention::Thiscall);
    }
}

#[test]
fn random_signatures_at_o0_and_o2() {
    let mut random = RandomCases::new();

    // The two levels in parallel: each thread creates and calls its own callbacks.
    let reports: Vec<Report> = std::thread::scope(|s| {
        let handles: Vec<_> = Opt::ALL
            .map(|opt| {
                s.spawn({
                    let cases = random.cases();
                    move || run(cases, opt)
                })
            })
            .into();
        handles.into_iter().map(|h| h.join().expect("the batch thread")).collect()
    });

    for report in &reports {
        random.check(report, |cases, opt| host().run(cases, opt));
    }
    random.assert_ok();
}

// --- the oracle itself ---------------------------------------------------------------------

fn s(scalar: Scalar) -> Type {
    Type::scalar(scalar)
}

#[test]
fn a_wrong_result_byte_is_reported() {
    let sig = Signature::new(
        Type::anon_struct([s(Scalar::Int), s(Scalar::Double)]),
        vec![s(Scalar::Int), s(Scalar::Double)],
    );
    let case = Case { flip_result_byte: Some(1), ..Case::new(sig.clone()) };
    let scalar =
        Case { flip_result_byte: Some(0), ..Case::new(Signature::new(s(Scalar::Short), vec![])) };
    for opt in Opt::ALL {
        let report = host().run(&[case.clone(), Case::new(sig.clone()), scalar.clone()], opt);
        let report = report.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.ran, 3);
        assert_eq!(report.failing(), vec![0, 2], "{report}");
        let text = report.to_string();
        assert!(text.contains("result (struct { int f0; double f1; }, "), "{text}");
        assert!(text.contains("differ at byte 1"), "{text}");
        assert!(text.contains(&format!("{}, case 0", report.opt)), "{text}");
    }
}

#[test]
fn a_callback_for_another_signature_is_reported() {
    let caller = Signature::new(s(Scalar::Int), vec![s(Scalar::Int), s(Scalar::Double)]);
    let callee = Signature::new(s(Scalar::Int), vec![s(Scalar::Double), s(Scalar::Int)]);
    let case = Case { callee: Some(callee), ..Case::new(caller) };
    for opt in Opt::ALL {
        let report = host().run(std::slice::from_ref(&case), opt);
        let report = report.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.failing(), vec![0], "{report}");
        let text = report.to_string();
        // (on i386 argument 0 still arrives: the double read at stack+0 starts with the int)
        for needed in ["argument 1 (double, 8 bytes)", "passed by C", "created for `int (*)(double"]
        {
            assert!(text.contains(needed), "no `{needed}` in:\n{text}");
        }
        assert!(
            text.contains("the callback's plan:") && text.contains(Abi::host().unwrap().id()),
            "{text}"
        );
    }
}

#[test]
fn a_run_with_every_case_skipped_fails() {
    // (a variadic signature without a named parameter: C11 callers cannot call it)
    let case = Case::new(Signature { variadic: true, ..Signature::new(s(Scalar::Int), vec![]) });
    let report = host().run(&[case], Opt::O0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((report.ran, report.skipped.len()), (0, 1));
    assert!(!report.is_ok());
    assert!(report.to_string().contains("every case was skipped"), "{report}");
}

// --- the generated C, without calling anything ----------------------------------------------

#[test]
fn graffiti_is_valid_for_its_types() {
    let abi = Abi::host().unwrap();
    let float = abi.layout(&s(Scalar::Float)).unwrap();
    let double = abi.layout(&s(Scalar::Double)).unwrap();
    for i in 0..24 {
        let f = f32::from_le_bytes(arg_graffiti(abi, i, &float).try_into().unwrap());
        let d = f64::from_le_bytes(arg_graffiti(abi, i, &double).try_into().unwrap());
        assert!(f.is_finite() && d.is_finite(), "argument {i}: {f} {d}");
    }
    let b = abi
        .layout(&Type::anon_struct([s(Scalar::Bool), s(Scalar::Bool), s(Scalar::Char)]))
        .unwrap();
    let bytes = arg_graffiti(abi, 3, &b);
    assert!(bytes[0] <= 1 && bytes[1] <= 1 && bytes[0] != bytes[1], "{bytes:x?}");
    assert_eq!(bytes[2], 0x32);
    let short = abi.layout(&s(Scalar::Short)).unwrap();
    assert_eq!(arg_graffiti(abi, 0, &short), [0x00, 0x81]);
    assert_eq!(arg_graffiti(abi, 1, &short), [0x10, 0x11]);
    let int = abi.layout(&s(Scalar::Int)).unwrap();
    assert_eq!(arg_graffiti(abi, 2, &int)[..3], [0x20, 0x21, 0x22]);
    assert_eq!(result_graffiti(abi, &int)[..3], [0xaf, 0xae, 0xad]);
    let big = abi.layout(&Type::anon_struct([Type::Array(Box::new(s(Scalar::Char)), 40)])).unwrap();
    let bytes = arg_graffiti(abi, 1, &big);
    assert_ne!(bytes[..16], bytes[16..32], "a 16-byte shift shows");
}

/// The callers compile for the corpus and for random signatures (no callback involved: this
/// checks the C text and backcall's layouts against the compiler).
#[test]
fn the_generated_callers_compile() {
    let abi = Abi::host().unwrap();
    let mut runner = TestRunner::new(config(seed()));
    let strategy = any_verified_signature();
    let random = (0..64).map(|_| strategy.new_tree(&mut runner).unwrap().current());
    let sigs: Vec<Signature> =
        corpus::builtin().into_iter().map(|e| e.signature).chain(random).collect();
    let prepared: Vec<Prepared> = sigs
        .iter()
        .enumerate()
        .filter_map(|(i, sig)| Prepared::new(abi, i, &Case::new(sig.clone())).ok())
        .collect();
    assert!(prepared.len() > sigs.len() / 2, "most signatures plan on {abi}");
    let (source, lines) = c_source(abi, &prepared);
    assert_eq!(lines.len(), prepared.len());
    let text: Vec<&str> = source.lines().collect();
    for (p, &(first, last)) in prepared.iter().zip(&lines) {
        // 1-based line numbers, as compilers print them
        assert!(text[first - 1].starts_with(&format!("/* case {}: ", p.index)), "{first}");
        assert_eq!(text[last - 1], "}", "case {} ends at line {last}", p.index);
    }
    let dir = tempfile::tempdir().unwrap();
    let c_file = dir.path().join("oracle.c");
    std::fs::write(&c_file, &source).unwrap();
    // The ABI's authority judges the layouts: the host's compiler where it is one (GCC on
    // Linux), else clang (mingw-w64 GCC lays out some packed records its own way on Win64).
    let host = host_compiler().unwrap_or_else(|e| panic!("{e}"));
    let compiler = if host.may_judge_its_abi() {
        host
    } else {
        clang_oracle().expect("clang, the authority of this ABI").compiler
    };
    for opt in Opt::ALL {
        let lib = dir.path().join(format!("oracle{opt}.lib"));
        if let Err(stderr) = compiler.compile_shared(&c_file, &lib, opt) {
            let kept = dir.keep();
            panic!(
                "`{compiler}` {opt} rejects the callers (kept in {}):\n{stderr}",
                kept.display()
            );
        }
    }
    if std::env::var_os("BACKCALL_ORACLE_KEEP").is_some() {
        println!("the C file and libraries are kept in {}", dir.keep().display());
    }
}
