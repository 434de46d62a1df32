//! The judge of `ci/mutants.sh`: `backcall verify` on the ABIs of one mutated ABI file, with
//! each ABI's authority. A mutant is caught when any case fails (the authority disagrees with
//! the mutated rules) or the oracle cannot run.
//!
//! A mutant is caught too when it refuses a case the unmutated rules plan (and the compilers
//! then proved): `ci/mutants.sh` first runs the judge on the unmutated tree with
//! `BACKCALL_JUDGE_RECORD=1`, which writes the planned cases to `BACKCALL_JUDGE_PLANNED`, and
//! every mutant's run checks them against that file.
//!
//! Ignored in ordinary runs; `ci/mutants.sh` runs it with `--include-ignored` and
//! `BACKCALL_JUDGE_ABIS` (comma-separated ids), `BACKCALL_JUDGE_RANDOM` (random signatures,
//! default 200) and `BACKCALL_JUDGE_SEED` (default 7).

use backcall_abi::Abi;
use backcall_emu_tests::verify::{self, Request};
use backcall_oracle::compiler;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[test]
#[ignore = "the judge of ci/mutants.sh"]
fn verify_judges_the_abi_rules() {
    let ids = std::env::var("BACKCALL_JUDGE_ABIS").expect("BACKCALL_JUDGE_ABIS names the ABIs");
    // Only the authorities judge: another compiler's disagreement never fails a case.
    let abis = ids
        .split(',')
        .map(|id| {
            let abi: Abi = id.parse().unwrap_or_else(|e| panic!("{e}"));
            let all = compiler::available(abi);
            let judge = compiler::authority(abi, &all)
                .unwrap_or_else(|| panic!("no authority for {abi}: {}", compiler::INSTALL_HINT));
            (abi, vec![judge.clone()])
        })
        .collect();
    let random = env_or("BACKCALL_JUDGE_RANDOM", "200").parse().expect("a count");
    let seed = env_or("BACKCALL_JUDGE_SEED", "7").parse().expect("a seed");
    let request = Request::default_job(abis, random, seed);
    let mut out = Vec::new();
    let code = verify::run(&request, &mut out);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
    check_planned(&request);
}

/// Each case of `request` the ABI plans, a line each: `<abi> <source>`.
fn planned(request: &Request) -> Vec<String> {
    let mut lines = Vec::new();
    for (abi, _) in &request.abis {
        for (source, case) in &request.signatures {
            if case.call_plan(*abi).is_ok() {
                lines.push(format!("{abi} {source}"));
            }
        }
    }
    lines
}

/// Records the planned cases (unmutated tree), or checks that a mutant still plans them all.
fn check_planned(request: &Request) {
    let Ok(path) = std::env::var("BACKCALL_JUDGE_PLANNED") else { return };
    let now = planned(request);
    if std::env::var_os("BACKCALL_JUDGE_RECORD").is_some() {
        std::fs::write(&path, now.join("\n")).unwrap_or_else(|e| panic!("{path}: {e}"));
        return;
    }
    let recorded = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let now: std::collections::HashSet<&str> = now.iter().map(String::as_str).collect();
    let lost: Vec<&str> = recorded.lines().filter(|l| !now.contains(l)).collect();
    assert!(
        lost.is_empty(),
        "{} case(s) the unmutated rules plan are refused now, e.g. {}",
        lost.len(),
        lost.iter().take(3).copied().collect::<Vec<_>>().join("; ")
    );
}
