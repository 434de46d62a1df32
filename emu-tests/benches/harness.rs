//! Throughput of the emulated harness (`cargo bench -p backcall-emu-tests`): oracle-verified
//! cases per second per ABI, with the compiler oracle (clang compile + load + emulated calls +
//! byte comparison) and without it (emulated calls and comparison only, the object already
//! compiled). Random signatures from the suites' strategy, 256 per ABI at -O2. "With oracle" is
//! wall time (the oracle compiles a large batch in one chunk per core); "calls only" is the
//! emulated calls' own time.

use std::time::Duration;

use backcall_abi::Abi;
use backcall_emu_tests::{oracle, verify};
use backcall_oracle::{Case, Opt};

const CASES: usize = 256;

fn main() {
    // `cargo test --benches` runs bench targets with `--bench` absent: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = if quick { 16 } else { CASES };
    let cases: Vec<Case> =
        verify::random_cases(n, 2026).into_iter().map(|(_, case)| case).collect();
    println!("emulated harness throughput, {n} random signatures per ABI at -O2");
    println!(
        "{:<17} {:>14} {:>14} {:>12} {:>12}",
        "ABI", "with oracle/s", "calls only/s", "compile(sum)", "calls(sum)"
    );
    for abi in Abi::ALL {
        let started = std::time::Instant::now();
        let report = oracle::run(abi, &cases, Opt::O2).expect("the oracle runs");
        let total = started.elapsed();
        assert!(report.failures.is_empty(), "{report}");
        let rate = |d: Duration| report.ran as f64 / d.as_secs_f64().max(1e-9);
        println!(
            "{:<17} {:>14.0} {:>14.0} {:>12.2?} {:>12.2?}",
            abi.id(),
            rate(total),
            rate(report.call_time),
            report.compile_time,
            report.call_time
        );
    }
}
