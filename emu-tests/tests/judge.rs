//! The judge of `ci/mutants.sh`: `backcall verify` on the ABIs of one mutated ABI file, with
//! each ABI's authority. A mutant is caught when any case fails (the authority disagrees with
//! the mutated rules) or the oracle cannot run.
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
}
