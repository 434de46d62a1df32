//! Fuzzes the signature parser and the planner for a bounded time: arbitrary bytes, soups of
//! C tokens, valid signatures with one edit, and the shapes known to be expensive (stacked
//! typedefs, huge arrays). Every input must be answered without a panic, within
//! [`CPU_LIMIT`] of the thread's CPU time and [`MEMORY_LIMIT`] at the peak; a signature that parses must plan (or be
//! refused) on every ABI, and print back to itself.
//!
//! `cargo run --release -p backcall-native-tests --bin fuzz-signatures -- [--seconds N]
//! [--seed S]` (or `-- --input TEXT` for one input); exits 1 with the (shrunk) input on a
//! finding. `ci/test.sh` runs it for 60 s.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use backcall::{parse_signature, Prototype};
use backcall_abi::arbitrary::any_signature;
use backcall_abi::Abi;
use backcall_native_tests::alloc_meter::{peak_during, AllocMeter};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

#[global_allocator]
static METER: AllocMeter = AllocMeter;

/// The most CPU time one input may take (parse, plan on six ABIs, print, parse again). The
/// costliest inputs found take about 40 ms; the limit leaves room for a busy machine's slower
/// caches, and catches what grows out of bounds (the stacked-typedef attack took seconds). CPU
/// time, not wall time: a machine busy with other work must not make a finding.
const CPU_LIMIT: Duration = Duration::from_millis(250);
/// The most memory one input may hold at once.
const MEMORY_LIMIT: usize = 64 << 20;
/// Inputs per proptest run (a fresh seed each).
const BATCH: u32 = 2000;

const TOKENS: &[&str] = &[
    "int",
    "char",
    "short",
    "long",
    "unsigned",
    "signed",
    "float",
    "double",
    "void",
    "_Bool",
    "struct",
    "union",
    "enum",
    "typedef",
    "const",
    "volatile",
    "__stdcall",
    "__fastcall",
    "__thiscall",
    "__cdecl",
    "size_t",
    "int64_t",
    "...",
    "(",
    ")",
    "*",
    "[",
    "]",
    "{",
    "}",
    ";",
    ",",
    "x",
    "t",
    "s",
    "u",
    "0",
    "1",
    "3",
    "16777216",
    "16777217",
    "4294967296",
    "-1",
    "_Complex",
    "long double",
    "\0",
    "/*",
    "*/",
    "#",
    "\u{fffd}",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|t| t.join(" "))
}

fn arbitrary_bytes() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..300)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// A valid signature's text with one token deleted, duplicated or replaced.
fn edited_signature() -> impl Strategy<Value = String> {
    (any_signature(), any::<prop::sample::Index>(), 0..3u8, prop::sample::select(TOKENS)).prop_map(
        |(sig, at, edit, token)| {
            let text = sig.to_string();
            let mut words: Vec<&str> = text.split(' ').collect();
            let i = at.index(words.len().max(1)).min(words.len().saturating_sub(1));
            match edit {
                0 if !words.is_empty() => {
                    words.remove(i);
                }
                1 if !words.is_empty() => words.insert(i, words[i]),
                _ => words.insert(i, token),
            }
            words.join(" ")
        },
    )
}

/// Stacked typedefs (each a struct or array of the previous) used by many parameters, and
/// multi-dimensional arrays: small text, potentially huge types.
fn expensive_shapes() -> impl Strategy<Value = String> {
    (1..24usize, 1..300usize, 1..5u32, prop::bool::ANY).prop_map(
        |(levels, params, width, arrays)| {
            let mut text = String::from("typedef struct { double d; int i; } t0; ");
            for i in 1..=levels {
                let prev = i - 1;
                if arrays {
                    text.push_str(&format!(
                        "typedef struct {{ t{prev} a[{}]; }} t{i}; ",
                        1 << width
                    ));
                } else {
                    let members: Vec<String> =
                        (0..width).map(|m| format!("t{prev} m{m};")).collect();
                    text.push_str(&format!("typedef struct {{ {} }} t{i}; ", members.join(" ")));
                }
            }
            let args = vec![format!("t{levels}"); params].join(", ");
            text + &format!("t{levels} (*)({args})")
        },
    )
}

fn any_input() -> impl Strategy<Value = String> {
    prop_oneof![arbitrary_bytes(), token_soup(), edited_signature(), expensive_shapes()]
}

/// Everything one input goes through; an `Err` is a finding.
fn exercise(text: &str) -> Result<(), String> {
    let Ok(sig) = parse_signature(text) else { return Ok(()) };
    for abi in Abi::ALL {
        let _ = abi.plan(&sig);
    }
    let printed = sig.to_string();
    match parse_signature(&printed) {
        Ok(again) if again == sig => {}
        Ok(again) => return Err(format!("prints as {printed:?}, which parses as {again}")),
        Err(e) => return Err(format!("prints as {printed:?}, which does not parse: {e}")),
    }
    let _ = Prototype::new(text);
    Ok(())
}

/// This thread's CPU time (elsewhere than Unix, the time since the first call).
#[cfg(not(unix))]
fn thread_cpu_time() -> Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

/// This thread's CPU time.
#[cfg(unix)]
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec to write; the clock id is a constant the kernel knows.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn judge(text: &str) -> Result<(), TestCaseError> {
    let started = thread_cpu_time();
    let (peak, outcome) = peak_during(|| catch_unwind(AssertUnwindSafe(|| exercise(text))));
    let took = thread_cpu_time().saturating_sub(started);
    let fail = |why: String| Err(TestCaseError::fail(why));
    match outcome {
        Err(_) => return fail("panicked".into()),
        Ok(Err(why)) => return fail(why),
        Ok(Ok(())) => {}
    }
    if took > CPU_LIMIT {
        return fail(format!("took {took:?} of CPU time (limit {CPU_LIMIT:?})"));
    }
    if peak > MEMORY_LIMIT {
        return fail(format!("held {} MiB at the peak (limit 64 MiB)", peak >> 20));
    }
    Ok(())
}

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1)?.parse().ok()
}

fn main() {
    if let Some(at) = std::env::args().position(|a| a == "--input") {
        // One input, judged and explained (to reproduce a finding).
        let text = std::env::args().nth(at + 1).unwrap_or_default();
        match judge(&text) {
            Ok(()) => println!("fuzz-signatures: ok"),
            Err(e) => {
                eprintln!("fuzz-signatures: FINDING: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let seconds = arg("--seconds").unwrap_or(30);
    let seed = arg("--seed").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    // Quiet: a panic is caught, reported as a finding with its input.
    std::panic::set_hook(Box::new(|_| {}));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut inputs, mut batch) = (0u64, 0u64);
    while Instant::now() < deadline {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        bytes[8..16].copy_from_slice(&batch.to_le_bytes());
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
        let config = Config { cases: BATCH, failure_persistence: None, ..Config::default() };
        let mut runner = TestRunner::new_with_rng(config, rng);
        if let Err(e) = runner.run(&any_input(), |text| judge(&text)) {
            eprintln!("fuzz-signatures: FINDING (seed {seed}, batch {batch}): {e}");
            std::process::exit(1);
        }
        inputs += u64::from(BATCH);
        batch += 1;
    }
    println!(
        "fuzz-signatures: {inputs} inputs in {seconds} s (seed {seed}): no panic, none over \
         {CPU_LIMIT:?} of CPU time or {} MiB",
        MEMORY_LIMIT >> 20
    );
}
