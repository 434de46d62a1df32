//! The layout oracle (ARCHITECTURE.md §6): for every ABI, clang decides whether backcall's [`Layout`]s
//! are right.
//!
//! Each test takes a fixed list of types known to differ between ABIs plus `PROPTEST_CASES`
//! (default 256) random aggregates from `backcall_abi::arbitrary::any_aggregate_type()`, and
//! writes ONE C file per batch: for each type a block with `typedef <type> T<i>;` and a
//! `_Static_assert` for its `sizeof`, `_Alignof` and every member's `offsetof` and `sizeof`
//! (array members: the first element in full, the second and last by offset; see
//! `backcall_oracle::cgen`). `clang --target=<abi.clang_target()> -fsyntax-only`
//! accepts the file exactly when backcall and the compiler agree on every type in it.
//!
//! A type the ABI refuses as unsupported (`__int128` on i386, ...) is skipped and
//! counted; an ABI that refuses every type fails. On a disagreement the report names the ABI,
//! the type as C, each fact clang disagrees with and clang's own value for it, clang's
//! message and backcall's layout; the first failing random type is shrunk first.
//! The random seed is printed; `PROPTEST_RNG_SEED=<seed>` replays a run.

use std::fmt::Write as _;
use std::io::Write as _;
use std::ops::Range;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use backcall_abi::arbitrary::any_aggregate_type;
use backcall_abi::{Abi, AbiErrorKind, Aggregate, AggregateKind, Field, Layout, Scalar, Type};
use backcall_oracle::cgen;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngSeed, TestRunner};

/// Types per clang invocation (clang's start-up, ~30 ms, dominates small files).
const BATCH: usize = 512;
/// Compiles, and time, spent shrinking the first failing random type.
const SHRINK_STEPS: u32 = 200;
const SHRINK_TIME: Duration = Duration::from_secs(10);
/// Failing fixed types explained in full in a report (after the shrunk random one).
const EXPLAINED: usize = 3;
/// Lines of facts and of clang messages shown per explained type.
const SHOWN: usize = 12;
/// Further failing types named in a report.
const LISTED: usize = 20;

macro_rules! oracle_tests {
    ($($name:ident => $abi:expr,)*) => {
        /// The ABIs with a test below, in `Abi::ALL` order.
        const TESTED: &[Abi] = &[$($abi),*];
        $(
            #[test]
            fn $name() {
                check_abi($abi);
            }
        )*
    };
}

oracle_tests! {
    layouts_match_clang_i386_sysv => Abi::I386Sysv,
    layouts_match_clang_i386_win32 => Abi::I386Win32,
    layouts_match_clang_x86_64_sysv => Abi::X86_64Sysv,
    layouts_match_clang_x86_64_win64 => Abi::X86_64Win64,
    layouts_match_clang_aarch64_aapcs64 => Abi::Aarch64Aapcs64,
    layouts_match_clang_aarch64_apple => Abi::Aarch64Apple,
}

#[test]
fn every_abi_has_an_oracle_test() {
    assert_eq!(TESTED, Abi::ALL.as_slice(), "add the new ABI to oracle_tests!");
}

// ---------------------------------------------------------------------------------------------
// The types

/// A type written in C (the parser's reading of it is what the oracle checks).
fn parsed(c: &str) -> Type {
    let sig = backcall::parse_signature(&format!("void (*)({c})")).unwrap();
    sig.args[0].clone()
}

fn sc(s: Scalar) -> Type {
    Type::scalar(s)
}

fn st(members: impl IntoIterator<Item = Type>) -> Type {
    Type::anon_struct(members)
}

fn un(members: impl IntoIterator<Item = Type>) -> Type {
    Type::aggregate(AggregateKind::Union, members)
}

fn arr(elem: Type, n: u32) -> Type {
    Type::Array(Box::new(elem), n)
}

/// Types whose layouts are known to differ between ABIs (ARCHITECTURE.md §3, §7), checked on every run.
fn fixed_types() -> Vec<Type> {
    use Scalar::*;
    let fields = vec![Field::new("x", sc(Float)), Field::new("y", sc(Float))];
    let point = Aggregate::new(AggregateKind::Struct, Some("point".into()), fields);
    let point = Type::Aggregate(Arc::new(point));
    vec![
        // i386 SysV aligns double and 8-byte integers to 4 inside structs; MSVC to 8.
        st([sc(Char), sc(Double)]),
        st([sc(Char), sc(LongLong)]),
        st([sc(Char), sc(ULongLong), sc(Char)]),
        st([sc(Char), sc(I64)]),
        st([sc(U8), sc(U64), sc(U16)]),
        st([sc(Double), sc(Char)]),
        st([sc(Int), sc(Double), sc(Int)]),
        st([sc(Char), un([sc(Int), sc(Double)])]),
        // padding and tail padding
        st([sc(Short), arr(sc(Char), 3)]),
        st([sc(Char)]),
        st([sc(Bool), sc(Short), sc(Bool)]),
        st([sc(I8), sc(I16), sc(I32), sc(I64), sc(U8)]),
        st([arr(sc(Double), 3), sc(Char)]),
        st([st([sc(Char), sc(Double)]), sc(Char)]),
        // unions
        un([arr(sc(Char), 5), sc(Int)]),
        un([sc(Double), arr(sc(Char), 9)]),
        un([sc(Float), st([sc(Char), sc(Char), sc(Char)])]),
        // long, size_t and pointers: ILP32, LP64 and LLP64 (Win64: long is 4 bytes)
        st([sc(Char), sc(Long)]),
        st([sc(Long), sc(Char)]),
        st([sc(Int), sc(ULong), sc(Short)]),
        st([sc(Char), sc(Pointer)]),
        st([arr(sc(Pointer), 3), sc(Char)]),
        st([sc(Char), sc(SizeT), sc(Char), sc(SSizeT)]),
        st([sc(Char), sc(IntPtr), sc(UIntPtr)]),
        // float-only nests (x86-64 SSE eightbytes, AArch64 HFAs)
        st([st([sc(Float), sc(Float)]), sc(Float)]),
        st([st([sc(Double)]), arr(sc(Float), 2)]),
        st([arr(st([sc(Float)]), 4)]),
        st([sc(Float), sc(Double)]),
        // nesting, multi-dimensional arrays, a tag used twice
        st([st([st([st([sc(Char)])])])]),
        st([sc(Char), arr(arr(st([sc(Int), sc(Char)]), 3), 2)]),
        st([point.clone(), point, sc(Char)]),
        // GNU layout attributes: packed records and members, aligned records and members
        parsed("struct __attribute__((packed)) { char c; int i; double d; }"),
        parsed("union __attribute__((packed)) { char c[3]; double d; }"),
        parsed("struct { char c; int i __attribute__((aligned(16))); }"),
        parsed("struct { char c; _Alignas(8) short s; char t; }"),
        parsed("struct { char c; } __attribute__((aligned(32)))"),
        parsed("struct { char c; double d __attribute__((packed)); int i; }"),
        parsed("struct __attribute__((packed)) { char c; int i __attribute__((aligned(4))); }"),
        parsed("struct { char c; struct __attribute__((packed)) { int a; short b; } in; }"),
        parsed("struct __attribute__((packed, aligned(4))) { char c; long long l; }"),
        parsed("struct { char c; struct { char d; } __attribute__((aligned(8))) in[3]; }"),
        // MSVC: what `aligned` requires survives `packed`; GCC: `packed` wins
        parsed("struct __attribute__((packed)) { char c; struct { short a; } __attribute__((aligned(1))) s; }"),
        parsed("struct __attribute__((packed)) { char c; struct { int a; } __attribute__((aligned(2))) s; }"),
        parsed("struct __attribute__((packed)) { char c; int i __attribute__((aligned(1))); }"),
        parsed("struct __attribute__((packed)) { char c; struct { char c; int i __attribute__((aligned(2))); } n; }"),
        // `#pragma pack(N)`: no member above N; GCC's rules cap a member's `aligned(N)` too,
        // MSVC's keep what it requires; no bit-field moves to avoid a crossing
        parsed(r#"_Pragma("pack(push, 2)") struct { char c; int i; double d; long long l; }"#),
        parsed(r#"_Pragma("pack(1)") struct { char c; long long l; short s; }"#),
        parsed(r#"_Pragma("pack(4)") union { char c[5]; double d; }"#),
        parsed(r#"_Pragma("pack(16)") struct { char c; double d; }"#),
        parsed(r#"_Pragma("pack(2)") struct { char c; int i __attribute__((aligned(8))); }"#),
        parsed(r#"_Pragma("pack(2)") struct { char c; struct { char d; } __attribute__((aligned(8))) in; }"#),
        parsed(r#"_Pragma("pack(4)") struct __attribute__((aligned(16))) { char c; double d; }"#),
        parsed(r#"_Pragma("pack(4)") struct __attribute__((packed)) { char c; double d; }"#),
        parsed(r#"_Pragma("pack(2)") struct { char c; int a : 20; int b : 20; short s : 3; }"#),
        parsed(r#"_Pragma("pack(2)") struct { char c : 7; int x : 30; char d; }"#),
        parsed(r#"_Pragma("pack(2)") struct { char c; int : 0; char d; long long e : 3; }"#),
        parsed(r#"_Pragma("pack(1)") struct { char c; _Pragma("pack(push)") _Pragma("pack()") struct { char d; int i; } in _Pragma("pack(pop)"); short s; }"#),
        parsed(r#"struct { char c; _Pragma("pack(push, 2)") struct { char d; double x; } in _Pragma("pack(pop)"); }"#),
        // `long double`: x87's on i386 and x86-64 SysV, binary128 on AArch64 Linux, `double`
        // on Windows and Apple arm64; a complex: a struct of two
        st([sc(Char), sc(LongDouble)]),
        st([sc(Char), Type::Complex(Float)]),
        st([sc(Short), Type::Complex(LongDouble), sc(LongDouble)]),
    ]
}

/// The seed of this process's random types: `PROPTEST_RNG_SEED`, or a fresh random one.
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| match Config::default().rng_seed {
        RngSeed::Fixed(seed) => seed,
        RngSeed::Random => {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(std::process::id())
        }
    })
}

// ---------------------------------------------------------------------------------------------
// clang

/// What clang said about one file.
struct Clang {
    success: bool,
    stderr: String,
}

impl Clang {
    /// `(line, message)` of every diagnostic of `severity` (`error`, `warning`) in `<stdin>`.
    fn diagnostics(&self, severity: &str) -> Vec<(usize, &str)> {
        let marker = format!(" {severity}: ");
        self.stderr
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("<stdin>:")?;
                let (line, rest) = rest.split_once(':')?;
                let at = rest.find(&marker)?;
                Some((line.parse().ok()?, &rest[at + marker.len()..]))
            })
            .collect()
    }

    /// Every `<stdin>` line of the error diagnostics, verbatim.
    fn error_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with("<stdin>:") && l.contains("error:")).collect()
    }
}

/// Compiles C `source` for `abi` with `clang -fsyntax-only` (warnings silenced unless asked).
fn clang(abi: Abi, source: &str, warnings: bool) -> Clang {
    let target = format!("--target={}", abi.clang_target());
    let mut cmd = Command::new("clang");
    cmd.args([target.as_str(), "-fsyntax-only", "-ferror-limit=0", "-x", "c", "-"]);
    if !warnings {
        cmd.arg("-w");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run clang ({e}): the layout oracle needs clang; run ci/install-deps.sh")
        });
    let mut stdin = child.stdin.take().expect("piped stdin");
    let output = std::thread::scope(|s| {
        s.spawn(move || stdin.write_all(source.as_bytes()).expect("write C source to clang"));
        child.wait_with_output().expect("wait for clang")
    });
    Clang {
        success: output.status.success(),
        stderr: String::from_utf8_lossy(&output.stderr).into(),
    }
}

/// C text that records the 1-based line each piece starts on.
#[derive(Default)]
struct Source {
    text: String,
    lines: usize,
}

impl Source {
    fn new() -> Source {
        let mut source = Source::default();
        source.push(cgen::PRELUDE);
        source
    }

    /// Appends `text` (whole lines); answers the lines it occupies.
    fn push(&mut self, text: &str) -> Range<usize> {
        let start = self.lines + 1;
        self.text.push_str(text);
        if !text.ends_with('\n') {
            self.text.push('\n');
        }
        self.lines += text.lines().count();
        start..self.lines + 1
    }
}

// ---------------------------------------------------------------------------------------------
// Checking

/// What the oracle concluded about one type on one ABI.
#[derive(Debug)]
enum Verdict {
    /// clang accepts every fact of backcall's layout
    Agrees,
    /// the ABI refuses the type as unsupported
    Refused,
    /// clang rejects some fact, or backcall calls this valid C invalid
    Differs,
}

/// Checks `types` on `abi` with one clang run.
fn check_batch(abi: Abi, types: &[&Type]) -> Vec<Verdict> {
    let mut verdicts = Vec::with_capacity(types.len());
    let mut laid_out = Vec::new();
    for (i, ty) in types.iter().enumerate() {
        match abi.layout(ty) {
            Ok(layout) => {
                laid_out.push((i, *ty, layout));
                verdicts.push(Verdict::Agrees);
            }
            Err(e) if e.kind == AbiErrorKind::Unsupported => verdicts.push(Verdict::Refused),
            Err(_) => verdicts.push(Verdict::Differs),
        }
    }
    let items: Vec<_> = laid_out.iter().map(|(_, ty, layout)| (*ty, layout)).collect();
    for ((i, _, _), errors) in laid_out.iter().zip(compile_checks(abi, &items)) {
        if !errors.is_empty() {
            verdicts[*i] = Verdict::Differs;
        }
    }
    verdicts
}

/// Compiles the layout checks of all `items` as one file; answers clang's errors per item.
fn compile_checks(abi: Abi, items: &[(&Type, &Layout)]) -> Vec<Vec<String>> {
    let mut errors = vec![Vec::new(); items.len()];
    if items.is_empty() {
        return errors;
    }
    let mut source = Source::new();
    let blocks: Vec<Range<usize>> = items
        .iter()
        .enumerate()
        .map(|(i, (ty, layout))| source.push(&cgen::layout_check(&format!("T{i}"), ty, layout)))
        .collect();
    let out = clang(abi, &source.text, false);
    let diagnostics = out.diagnostics("error");
    assert_eq!(
        out.success,
        diagnostics.is_empty(),
        "clang --target={} exited {} with errors {diagnostics:?}:\n{}",
        abi.clang_target(),
        if out.success { "0" } else { "non-zero" },
        out.stderr
    );
    for (line, message) in diagnostics {
        let Some(i) = blocks.iter().position(|lines| lines.contains(&line)) else {
            panic!("clang error outside every type's block (a cgen bug?):\n{}", out.stderr);
        };
        errors[i].push(message.to_string());
    }
    errors
}

fn differs(abi: Abi, ty: &Type) -> bool {
    matches!(check_batch(abi, &[ty])[0], Verdict::Differs)
}

/// The fixed types, then `PROPTEST_CASES` random ones; made once per test process.
fn cases() -> &'static [(String, Type)] {
    static CASES: OnceLock<Vec<(String, Type)>> = OnceLock::new();
    CASES.get_or_init(|| {
        let fixed = fixed_types().into_iter().enumerate().map(|(i, t)| (format!("fixed #{i}"), t));
        let trees = random_trees(proptest_config().cases as usize);
        let random = trees.iter().enumerate().map(|(i, t)| (format!("random #{i}"), t.current()));
        fixed.chain(random).collect()
    })
}

fn proptest_config() -> Config {
    Config { rng_seed: RngSeed::Fixed(seed()), ..Config::default() }
}

/// The value trees of the first `count` random types: the same trees on every call of a
/// process, so a failing type can be generated again and shrunk.
fn random_trees(count: usize) -> Vec<impl ValueTree<Value = Type>> {
    let mut runner = TestRunner::new(proptest_config());
    let strategy = any_aggregate_type();
    (0..count)
        .map(|_| strategy.new_tree(&mut runner).expect("generate a random aggregate"))
        .collect()
}

fn check_abi(abi: Abi) {
    let cases = cases();
    let types: Vec<&Type> = cases.iter().map(|(_, ty)| ty).collect();
    let verdicts: Vec<Verdict> = types.chunks(BATCH).flat_map(|b| check_batch(abi, b)).collect();
    let refused = verdicts.iter().filter(|v| matches!(v, Verdict::Refused)).count();
    let failed: Vec<usize> =
        (0..verdicts.len()).filter(|&i| matches!(verdicts[i], Verdict::Differs)).collect();
    let checked = cases.len() - refused;
    let summary = format!(
        "{abi} (clang --target={}): {} types: {checked} checked, {refused} refused as \
         unsupported, {} differ from clang; random seed {} (replay: PROPTEST_RNG_SEED={})",
        abi.clang_target(),
        cases.len(),
        failed.len(),
        seed(),
        seed()
    );
    eprintln!("{summary}");
    assert!(checked > 0, "{summary}\n{abi} refused every type: nothing was checked");
    if failed.is_empty() {
        return;
    }

    // Explain the smallest failures: the first random one shrunk, and the fixed ones.
    let mut report = format!("layout oracle: {summary}\n");
    let fixed_count = fixed_types().len();
    if let Some(&first) = failed.iter().find(|&&i| i >= fixed_count) {
        let mut trees = random_trees(first - fixed_count + 1);
        let (shrunk, steps) = shrink(abi, trees.last_mut().expect("the failing type's tree"));
        let label = format!("{} shrunk in {steps} steps", cases[first].0);
        report.push_str(&explain(abi, &label, &shrunk));
    }
    let explained: Vec<usize> =
        failed.iter().copied().filter(|&i| i < fixed_count).take(EXPLAINED).collect();
    for &i in &explained {
        report.push_str(&explain(abi, &cases[i].0, &cases[i].1));
    }
    let rest: Vec<&str> =
        failed.iter().filter(|i| !explained.contains(i)).map(|&i| cases[i].0.as_str()).collect();
    if !rest.is_empty() {
        let more = rest.len().saturating_sub(LISTED);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        let named = rest[..rest.len().min(LISTED)].join(", ");
        let _ = writeln!(report, "\nalso differing: {named}{more}");
    }
    panic!("{report}");
}

/// Shrinks a failing random type the proptest way: simplify while it still fails, complicate
/// when a simplification passes. Answers the smallest failing type and the compiles spent.
fn shrink(abi: Abi, tree: &mut impl ValueTree<Value = Type>) -> (Type, u32) {
    let start = Instant::now();
    let mut smallest = tree.current();
    let mut steps = 0;
    if !tree.simplify() {
        return (smallest, steps);
    }
    while steps < SHRINK_STEPS && start.elapsed() < SHRINK_TIME {
        steps += 1;
        let candidate = tree.current();
        if differs(abi, &candidate) {
            smallest = candidate;
            if !tree.simplify() {
                break;
            }
        } else if !tree.complicate() {
            break;
        }
    }
    (smallest, steps)
}

/// A failing type in full: its C text, the facts clang disagrees with (and clang's values),
/// clang's messages and backcall's layout.
fn explain(abi: Abi, label: &str, ty: &Type) -> String {
    match abi.layout(ty) {
        Ok(layout) => explain_layout(abi, label, ty, &layout),
        Err(e) => format!("\n--- {label} on {abi}:\n    {}\n{e}\n", cgen::typedef(ty, "T")),
    }
}

/// [`explain`] for a given layout of `ty`.
fn explain_layout(abi: Abi, label: &str, ty: &Type, layout: &Layout) -> String {
    let mut out = format!("\n--- {label} on {abi}:\n    {}\n", cgen::typedef(ty, "T"));
    let facts = cgen::layout_facts("T", layout);
    let values = clang_values(abi, ty, &facts);
    let wrong: Vec<String> = facts
        .iter()
        .zip(&values)
        .filter(|(fact, value)| **value != Some(u64::from(fact.expected)))
        .map(|(fact, value)| {
            let value = value.map_or("?".to_string(), |v| v.to_string());
            format!("{}: backcall {}, clang {value}", fact.expr, fact.expected)
        })
        .collect();
    out.push_str("facts clang disagrees with:\n");
    push_some(&mut out, &wrong);
    let mut check = Source::new();
    check.push(&cgen::layout_check("T", ty, layout));
    out.push_str("clang says:\n");
    push_some(&mut out, &clang(abi, &check.text, false).error_lines());
    let _ = write!(out, "backcall's layout: {}", cgen::describe_layout(layout));
    out
}

/// Appends the first [`SHOWN`] lines, indented, and how many more there are.
fn push_some(out: &mut String, lines: &[impl AsRef<str>]) {
    for line in lines.iter().take(SHOWN) {
        let _ = writeln!(out, "    {}", line.as_ref());
    }
    if lines.len() > SHOWN {
        let _ = writeln!(out, "    ... and {} more", lines.len() - SHOWN);
    }
}

/// clang's value of each fact's expression, read from the type of a pointer it warns about:
/// `char (*p)[EXPR] = 1;` draws "initializing 'char (*)[N]' with an expression of type 'int'".
fn clang_values(abi: Abi, ty: &Type, facts: &[cgen::LayoutFact]) -> Vec<Option<u64>> {
    let mut source = Source::new();
    source.push(&format!("void probe_T(void) {{\n  {}", cgen::typedef(ty, "T")));
    let lines: Vec<usize> = facts
        .iter()
        .enumerate()
        .map(|(i, f)| source.push(&format!("  char (*probe{i})[{}] = 1;", f.expr)).start)
        .collect();
    source.push("}");
    let out = clang(abi, &source.text, true);
    let mut diags = out.diagnostics("warning");
    diags.extend(out.diagnostics("error"));
    lines
        .iter()
        .map(|line| {
            diags.iter().filter(|(l, _)| l == line).find_map(|(_, message)| {
                let rest = message.split_once("'char (*)[")?.1;
                rest.split_once("]'")?.0.parse().ok()
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The oracle can fail

#[test]
fn clang_rejects_a_wrong_layout() {
    let abi = Abi::X86_64Sysv;
    let ty = st([sc(Scalar::Char), sc(Scalar::Double)]);
    let good = abi.layout(&ty).expect("x86-64 lays out struct { char; double; }");
    assert_eq!((good.size, good.align), (16, 8), "the control layout is clang's");

    let mut wrong_size = good.clone();
    wrong_size.size += 1;
    let mut wrong_align = good.clone();
    wrong_align.align *= 2;
    let mut wrong_offset = good.clone();
    if let backcall_abi::Shape::Aggregate { fields, .. } = &mut wrong_offset.shape {
        fields[1].offset -= 4;
    }
    let check = |layout: &Layout| {
        let mut source = Source::new();
        source.push(&cgen::layout_check("T", &ty, layout));
        clang(abi, &source.text, false)
    };

    let control = check(&good);
    assert!(control.success, "clang rejects the right layout:\n{}", control.stderr);
    for (layout, failed) in [
        (&wrong_size, "sizeof(T) == 17"),
        (&wrong_align, "_Alignof(T) == 16"),
        (&wrong_offset, "__builtin_offsetof(T, f1) == 4"),
    ] {
        let out = check(layout);
        assert!(!out.success, "clang accepts a wrong layout ({failed})");
        let errors = out.diagnostics("error");
        assert_eq!(errors.len(), 1, "exactly `{failed}` fails:\n{}", out.stderr);
        assert!(errors[0].1.contains(failed), "the message names `{failed}`:\n{}", out.stderr);
    }

    // The report reads clang's own values back and names the failed assertion.
    let report = explain_layout(abi, "size+1", &ty, &wrong_size);
    assert!(report.contains("sizeof(T): backcall 17, clang 16\n"), "{report}");
    assert!(!report.contains("_Alignof(T): backcall"), "{report}");
    assert!(report.contains("error: static"), "{report}");
    assert!(report.contains("struct: size 17, align 8"), "{report}");
}

#[test]
fn a_batch_pins_each_error_on_its_type() {
    let abi = Abi::X86_64Sysv;
    let ty = st([sc(Scalar::Int), st([sc(Scalar::Char), sc(Scalar::Double)])]);
    let good = abi.layout(&ty).expect("x86-64 lays out the type");
    let mut wrong = good.clone();
    wrong.align = 4;
    let errors = compile_checks(abi, &[(&ty, &good), (&ty, &wrong), (&ty, &good)]);
    assert!(errors[0].is_empty() && errors[2].is_empty(), "{errors:?}");
    assert_eq!(errors[1].len(), 1, "{errors:?}");
    assert!(errors[1][0].contains("_Alignof(T1) == 4"), "{errors:?}");
}
