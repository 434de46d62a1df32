//! backcall against its peers, side by side in one run (`cargo bench -p backcall-native-tests`):
//!
//! * per call, for `i64 (i64, i64)` and `f64 (i32, f64, i64, f32, *const u8, u16, f64, i64)`:
//!   a direct `extern "C" fn`, a [`TypedCallback`], a dynamic [`Callback`] (a closure over
//!   [`Args`](backcall::Args)) and a libffi closure, each called through the same
//!   `black_box`ed function pointer type, in interleaved samples (each round times every kind
//!   once, so that the shared machine's slow stretches hit all alike);
//! * libc `qsort` of 1,000,000 ints with each kind of comparator, interleaved the same way;
//! * creating and releasing a callback (from a [`Prototype`], from a 2- and a repeated 8-argument
//!   signature string, typed, and a libffi closure for comparison), with criterion;
//! * memory per live callback capturing an `i32` with 100,000 live (a counting global
//!   allocator plus the pool's data pages, and the RSS delta as a cross-check);
//! * what the signature limits cost: refusing a signature over `MAX_SIGNATURE_NODES`, and
//!   planning the largest struct the parser accepts;
//! * finding every callback type of `sqlite3.h` (`backcall plan --header`'s extraction).
//!
//! The summary printed at the end gives each kind's median time and its ratio to the direct
//! call. Pass a filter after `--` (`add_i64`, `mix8`, `qsort_1m`, `create_release`, `limits`,
//! `headers`);
//! the summary shows what ran.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use backcall::typed::TypedCallback;
use backcall::{parse_signature, Callback, Prototype, ThreadPolicy};
use backcall_native_tests::alloc_meter::{self, AllocMeter};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};

#[global_allocator]
static GLOBAL: AllocMeter = AllocMeter;

// --- the results the summary prints -----------------------------------------------------------

/// Per benchmark id: nanoseconds per iteration of every sample, in the order measured.
static SAMPLES: Mutex<BTreeMap<String, Vec<f64>>> = Mutex::new(BTreeMap::new());

/// Times `iters` runs of `routine` and records the sample under `id`.
fn timed(id: &str, iters: u64, routine: impl FnOnce(u64)) -> Duration {
    let start = Instant::now();
    routine(iters);
    let elapsed = start.elapsed();
    record(id, iters, elapsed);
    elapsed
}

fn record(id: &str, iters: u64, elapsed: Duration) {
    let ns = elapsed.as_nanos() as f64 / iters.max(1) as f64;
    SAMPLES.lock().unwrap().entry(id.to_string()).or_default().push(ns);
}

/// The median of the last `n` samples of `id` (criterion's measurement; the warm-up runs
/// before them).
fn median(id: &str, n: usize) -> Option<f64> {
    let samples = SAMPLES.lock().unwrap();
    let all = samples.get(id)?;
    let mut last: Vec<f64> = all[all.len().saturating_sub(n)..].to_vec();
    last.sort_by(f64::total_cmp);
    Some(last[last.len() / 2])
}

// --- the functions under test -----------------------------------------------------------------

type Add = extern "C" fn(i64, i64) -> i64;
type Mix = extern "C" fn(i32, f64, i64, f32, *const u8, u16, f64, i64) -> f64;
type Cmp = extern "C" fn(*const c_void, *const c_void) -> i32;

extern "C" {
    fn qsort(base: *mut c_void, n: usize, size: usize, cmp: Cmp);
}

const ADD_SIG: &str = "int64_t (*)(int64_t, int64_t)";
const MIX_SIG: &str =
    "double (*)(int32_t, double, int64_t, float, const uint8_t *, uint16_t, double, int64_t)";
const CMP_SIG: &str = "int (*)(const void *, const void *)";

fn add(a: i64, b: i64) -> i64 {
    a.wrapping_add(b)
}

#[allow(clippy::too_many_arguments)]
fn mix(a: i32, b: f64, c: i64, d: f32, e: *const u8, f: u16, g: f64, h: i64) -> f64 {
    f64::from(a) + b + c as f64 + f64::from(d) + (e as usize & 0xff) as f64 + f64::from(f) + g
        - h as f64
}

fn cmp(a: *const c_void, b: *const c_void) -> i32 {
    // SAFETY: qsort passes pointers to two elements of the i32 array.
    let (a, b) = unsafe { (*a.cast::<i32>(), *b.cast::<i32>()) };
    a.cmp(&b) as i32
}

extern "C" fn add_direct(a: i64, b: i64) -> i64 {
    add(a, b)
}

#[allow(clippy::too_many_arguments)]
extern "C" fn mix_direct(
    a: i32,
    b: f64,
    c: i64,
    d: f32,
    e: *const u8,
    f: u16,
    g: f64,
    h: i64,
) -> f64 {
    mix(a, b, c, d, e, f, g, h)
}

extern "C" fn cmp_direct(a: *const c_void, b: *const c_void) -> i32 {
    cmp(a, b)
}

fn add_dynamic() -> Callback {
    Callback::new(ADD_SIG, |args| add(args.i64(0), args.i64(1))).unwrap()
}

fn mix_dynamic() -> Callback {
    Callback::new(MIX_SIG, |args| {
        mix(
            args.i32(0),
            args.f64(1),
            args.i64(2),
            args.f32(3),
            args.ptr::<u8>(4),
            args.u32(5) as u16,
            args.f64(6),
            args.i64(7),
        )
    })
    .unwrap()
}

fn cmp_dynamic() -> Callback {
    Callback::new(CMP_SIG, |args| cmp(args.ptr(0), args.ptr(1))).unwrap()
}

/// A libffi closure of one of the shapes above: the libffi value (which must outlive the
/// pointer) and its code pointer as `F`.
macro_rules! libffi_closure {
    ($closure:ident, $f:ty, $body:expr) => {{
        let callback: &'static _ = Box::leak(Box::new($body));
        let closure = libffi::high::$closure::new(callback);
        // SAFETY: the closure's code pointer has exactly the type `$f` (the same argument and
        // result types; libffi's FnPtr wrapper is repr(transparent) over the fn pointer).
        let f: $f = unsafe { std::mem::transmute_copy(closure.code_ptr()) };
        (closure, f)
    }};
}

// --- per call, interleaved ---------------------------------------------------------------------

/// Samples per kind: each round times every kind once, in a rotating order, so that a slow
/// stretch of the (noisy, shared) machine hits all kinds alike; the summary is the median.
const ROUNDS: usize = 60;
/// Calls per sample.
const CALLS: u64 = 200_000;

/// Times `kinds` interleaved, [`ROUNDS`] samples of `run(kind, CALLS)` each, recorded under
/// `group/kind`.
fn interleaved<F: Copy>(
    group: &str,
    kinds: &[(&str, F)],
    rounds: usize,
    calls: u64,
    run: impl Fn(F, u64),
) {
    for (_, f) in kinds {
        run(*f, calls / 10); // warm up
    }
    for r in 0..rounds {
        for k in 0..kinds.len() {
            let (kind, f) = kinds[(k + r) % kinds.len()];
            timed(&format!("{group}/{kind}"), calls, |n| run(f, n));
        }
    }
}

fn bench_add() {
    let typed = TypedCallback::<Add>::new(add).unwrap();
    let dynamic = add_dynamic();
    let (_ffi, ffi_fn) = libffi_closure!(Closure2, Add, add);
    let kinds: [(&str, Add); 4] = [
        ("direct", add_direct),
        ("typed", typed.get()),
        // SAFETY: the signature string is `Add`'s.
        ("dynamic", unsafe { dynamic.as_fn() }),
        ("libffi", ffi_fn),
    ];
    for (kind, f) in kinds {
        assert_eq!(f(40, 2), 42, "{kind}");
    }
    interleaved("add_i64", &kinds, ROUNDS, CALLS, |f, n| {
        let f = black_box(f);
        for i in 0..n {
            black_box(f(black_box(i as i64), black_box(7)));
        }
    });
}

fn bench_mix() {
    let typed = TypedCallback::<Mix>::new(mix).unwrap();
    let dynamic = mix_dynamic();
    let (_ffi, ffi_fn) = libffi_closure!(Closure8, Mix, mix);
    let kinds: [(&str, Mix); 4] = [
        ("direct", mix_direct),
        ("typed", typed.get()),
        // SAFETY: the signature string is `Mix`'s.
        ("dynamic", unsafe { dynamic.as_fn() }),
        ("libffi", ffi_fn),
    ];
    let p = 0x1234 as *const u8;
    let want = mix(-3, 0.5, 1 << 40, 1.5, p, 0xfffe, -2.25, 9);
    for (kind, f) in kinds {
        assert_eq!(f(-3, 0.5, 1 << 40, 1.5, p, 0xfffe, -2.25, 9), want, "{kind}");
    }
    interleaved("mix8", &kinds, ROUNDS, CALLS, |f, n| {
        let f = black_box(f);
        for i in 0..n {
            black_box(f(
                black_box(i as i32),
                black_box(0.5),
                black_box(1 << 40),
                black_box(1.5),
                black_box(p),
                black_box(0xfffe),
                black_box(-2.25),
                black_box(9),
            ));
        }
    });
}

// --- qsort ------------------------------------------------------------------------------------

const QSORT_LEN: usize = 1_000_000;
const QSORT_ROUNDS: usize = 8;

fn bench_qsort() {
    let mut state = 0x2545_f491_u32;
    let input: Vec<i32> = (0..QSORT_LEN)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as i32
        })
        .collect();
    let mut sorted = input.clone();
    sorted.sort();

    let typed = TypedCallback::<Cmp>::new(cmp).unwrap();
    let dynamic = cmp_dynamic();
    let (_ffi, ffi_fn) = libffi_closure!(Closure2, Cmp, cmp);
    let kinds: [(&str, Cmp); 4] = [
        ("direct", cmp_direct),
        ("typed", typed.get()),
        // SAFETY: the signature string is `Cmp`'s.
        ("dynamic", unsafe { dynamic.as_fn() }),
        ("libffi", ffi_fn),
    ];
    let work = std::cell::RefCell::new(input.clone());
    interleaved("qsort_1m", &kinds, QSORT_ROUNDS, 1, |f, sorts| {
        for _ in 0..sorts {
            let mut work = work.borrow_mut();
            work.copy_from_slice(&input);
            // SAFETY: `f` compares two i32 elements; `work` outlives the call.
            unsafe { qsort(work.as_mut_ptr().cast(), work.len(), 4, black_box(f)) };
            assert!(*work == sorted, "sorted");
        }
    });
}

// --- creation and release ---------------------------------------------------------------------

/// Criterion settings for creation and the limits: short, many samples (the machine is noisy).
fn per_call<'c>(c: &'c mut Criterion, group: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(group);
    g.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
        .sample_size(PER_CALL_SAMPLES);
    g
}

const PER_CALL_SAMPLES: usize = 40;

fn bench_create(c: &mut Criterion) {
    let proto = Prototype::new("int (*)(int)").unwrap();
    let mut g = per_call(c, "create_release");
    g.bench_function("prototype", |b| {
        b.iter_custom(|iters| {
            timed("create_release/prototype", iters, |n| {
                for _ in 0..n {
                    let cb = proto.callback(ThreadPolicy::SingleThreaded, |a| a.i32(0) + 1);
                    drop(black_box(cb.unwrap()));
                }
            })
        })
    });
    g.bench_function("signature", |b| {
        b.iter_custom(|iters| {
            timed("create_release/signature", iters, |n| {
                for _ in 0..n {
                    let cb = Callback::new(black_box("int (*)(int)"), |a| a.i32(0) + 1);
                    drop(black_box(cb.unwrap()));
                }
            })
        })
    });
    g.bench_function("signature8", |b| {
        b.iter_custom(|iters| {
            timed("create_release/signature8", iters, |n| {
                for _ in 0..n {
                    let cb = Callback::new(black_box(MIX_SIG), |a| a.f64(1));
                    drop(black_box(cb.unwrap()));
                }
            })
        })
    });
    g.bench_function("typed", |b| {
        b.iter_custom(|iters| {
            timed("create_release/typed", iters, |n| {
                for _ in 0..n {
                    let cb = TypedCallback::<extern "C" fn(i32) -> i32>::new(|x| x + 1);
                    drop(black_box(cb.unwrap()));
                }
            })
        })
    });
    g.bench_function("libffi", |b| {
        let inc = |x: i32| x + 1;
        b.iter_custom(|iters| {
            timed("create_release/libffi", iters, |n| {
                for _ in 0..n {
                    drop(black_box(libffi::high::Closure1::new(&inc)));
                }
            })
        })
    });
    g.finish();
}

// --- what the signature limits cost ----------------------------------------------------------

/// `levels` stacked typedefs of two-member structs used by `params` parameters.
fn stacked_typedefs(levels: usize, params: usize) -> String {
    let mut text = String::from("typedef struct { int a, b; } t0; ");
    for i in 1..=levels {
        text.push_str(&format!("typedef struct {{ t{} a, b; }} t{i}; ", i - 1));
    }
    let last = format!("t{levels}");
    text + &format!("void (*)({})", vec![last.as_str(); params].join(", "))
}

/// The refusal of 64 parameters of a 65,535-node struct (once 896 MiB and 1.1 s), and the plan
/// of one such parameter on the host.
fn bench_limits(c: &mut Criterion) {
    let attack = stacked_typedefs(14, 64);
    let one = stacked_typedefs(14, 1);
    let mut g = per_call(c, "limits");
    g.bench_function("refuse_64_huge_params", |b| {
        b.iter_custom(|iters| {
            timed("limits/refuse_64_huge_params", iters, |n| {
                for _ in 0..n {
                    assert!(parse_signature(black_box(&attack)).is_err());
                }
            })
        })
    });
    g.bench_function("plan_one_huge_param", |b| {
        b.iter_custom(|iters| {
            timed("limits/plan_one_huge_param", iters, |n| {
                for _ in 0..n {
                    // Parsed and planned every time (`Prototype::new` would answer from its cache).
                    let sig = parse_signature(black_box(&one)).unwrap();
                    drop(black_box(Prototype::from_signature(&sig).unwrap()));
                }
            })
        })
    });
    g.finish();
}

/// Finding every callback type of `sqlite3.h` (about 13,000 lines): clang's parse and the
/// replay of its declarations.
fn bench_headers(c: &mut Criterion) {
    let header = std::path::Path::new("/usr/include/sqlite3.h");
    assert!(header.is_file(), "install libsqlite3-dev (ci/install-deps.sh does)");
    let options = backcall::harness::header::HeaderOptions::default();
    let mut g = c.benchmark_group("headers");
    g.sample_size(10);
    g.bench_function("extract_sqlite3_h", |b| {
        b.iter_custom(|iters| {
            timed("headers/extract_sqlite3_h", iters, |n| {
                for _ in 0..n {
                    let found = backcall::harness::header::extract(&options, header).unwrap();
                    assert!(found.callbacks.len() > 150);
                }
            })
        })
    });
    g.finish();
}

// --- memory per live callback -----------------------------------------------------------------

const LIVE_CALLBACKS: usize = 100_000;

/// Resident set size in bytes (/proc/self/statm, field 2, in pages).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * page_size()
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// What 100,000 live callbacks cost.
struct MemoryReport {
    heap: isize,
    pool_pages: usize,
    rss: isize,
    libffi_rss: isize,
}

impl MemoryReport {
    fn per_callback(&self) -> f64 {
        (self.heap as f64 + (self.pool_pages * page_size()) as f64) / LIVE_CALLBACKS as f64
    }
}

/// Runs first, on a fresh pool: handles are stored in a vector allocated beforehand (the
/// caller's memory, not the runtime's); each handler captures an `i32`.
fn measure_memory() -> MemoryReport {
    let proto = Prototype::new("int (*)(int)").unwrap();
    let mut live: Vec<Callback> = Vec::with_capacity(LIVE_CALLBACKS);
    let (pages0, rss0, heap0) = (backcall::pool_pages(), rss(), alloc_meter::live());
    for k in 0..LIVE_CALLBACKS as i32 {
        live.push(proto.callback(ThreadPolicy::SingleThreaded, move |a| a.i32(0) + k).unwrap());
    }
    let report_heap = alloc_meter::live() as isize - heap0 as isize;
    let (pages1, rss1) = (backcall::pool_pages(), rss());
    let f: extern "C" fn(i32) -> i32 = unsafe { live[LIVE_CALLBACKS / 2].as_fn() };
    assert_eq!(f(41), 41 + LIVE_CALLBACKS as i32 / 2);
    drop(live);

    // libffi, for comparison (its allocations bypass Rust's allocator: RSS only).
    let mut closures = Vec::with_capacity(LIVE_CALLBACKS);
    let rss2 = rss();
    for k in 0..LIVE_CALLBACKS as i32 {
        let inc: &'static _ = Box::leak(Box::new(move |x: i32| x + k));
        closures.push(libffi::high::Closure1::new(inc));
    }
    let rss3 = rss();
    drop(closures);
    MemoryReport {
        heap: report_heap,
        pool_pages: pages1 - pages0,
        rss: rss1 as isize - rss0 as isize,
        libffi_rss: rss3 as isize - rss2 as isize,
    }
}

// --- the summary ------------------------------------------------------------------------------

fn summary(memory: &MemoryReport) {
    let mut out = String::from("\n==== summary (medians of interleaved samples) ====\n");
    out.push_str(&format!("{:<28} {:>14} {:>10}\n", "benchmark", "ns/call", "x direct"));
    for (group, samples, unit, scale) in [
        ("add_i64", ROUNDS, "ns/call", 1.0),
        ("mix8", ROUNDS, "ns/call", 1.0),
        ("qsort_1m", QSORT_ROUNDS, "ms/sort", 1e-6),
    ] {
        let Some(direct) = median(&format!("{group}/direct"), samples) else { continue };
        for kind in ["direct", "typed", "dynamic", "libffi"] {
            if let Some(t) = median(&format!("{group}/{kind}"), samples) {
                let name = format!("{group}/{kind}");
                out.push_str(&format!(
                    "{name:<28} {:>9.2} {unit} {:>9.2}x\n",
                    t * scale,
                    t / direct
                ));
            }
        }
    }
    for kind in ["prototype", "signature", "signature8", "typed", "libffi"] {
        if let Some(t) = median(&format!("create_release/{kind}"), PER_CALL_SAMPLES) {
            out.push_str(&format!("{:<28} {t:>9.1} ns/pair\n", format!("create_release/{kind}")));
        }
    }
    for kind in ["refuse_64_huge_params", "plan_one_huge_param"] {
        if let Some(t) = median(&format!("limits/{kind}"), PER_CALL_SAMPLES) {
            out.push_str(&format!("{:<28} {:>9.1} us\n", format!("limits/{kind}"), t / 1e3));
        }
    }
    if let Some(t) = median("headers/extract_sqlite3_h", 10) {
        out.push_str(&format!("{:<28} {:>9.1} ms\n", "headers/extract_sqlite3_h", t / 1e6));
    }
    out.push_str(&format!(
        "memory, {LIVE_CALLBACKS} live callbacks capturing an i32: {:.1} bytes/callback \
         (heap {} B + {} data pages of {} B; the code pages all map one physical page); \
         RSS delta {:.1} B/callback; libffi closures: RSS delta {:.1} B/closure\n",
        memory.per_callback(),
        memory.heap,
        memory.pool_pages,
        page_size(),
        memory.rss as f64 / LIVE_CALLBACKS as f64,
        memory.libffi_rss as f64 / LIVE_CALLBACKS as f64,
    ));
    print!("{out}");
}

/// Whether the command line's filter (the first argument that is not an option) selects
/// `group`; no filter selects all.
fn selected(group: &str) -> bool {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    filter.is_none_or(|f| group.contains(&f))
}

fn main() {
    let memory = measure_memory();
    if selected("add_i64") {
        bench_add();
    }
    if selected("mix8") {
        bench_mix();
    }
    if selected("qsort_1m") {
        bench_qsort();
    }
    let mut c = Criterion::default().configure_from_args();
    bench_create(&mut c);
    bench_limits(&mut c);
    bench_headers(&mut c);
    c.final_summary();
    summary(&memory);
}
