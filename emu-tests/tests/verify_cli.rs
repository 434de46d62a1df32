//! `backcall verify` / `backcall thunks` as a user runs them (through `backcall-harness`, the
//! program the `backcall` command delegates to): exit codes, JSON lines, unsupported cases.

use backcall_abi::Abi;
use std::process::{Command, Output};

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_backcall-harness")).args(args).output().unwrap()
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn bad_input_exits_2_with_what_and_where() {
    let out = harness(&["verify", "--abi", "sparc-sysv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown ABI `sparc-sysv`"));

    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.txt");
    std::fs::write(&corpus, "int (*)(int)\n# comment\n\nint (*)(int,)\n").unwrap();
    let out = harness(&["verify", "--corpus", corpus.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 4") && err.contains("expected a type"), "{err}");
}

#[test]
fn json_lines_report_each_case_then_a_summary() {
    let sig = "struct { float x, y, z; } (*)(double, struct { char c; double d; }, short)";
    let args = ["verify", "--sig", sig, "--abi", "all", "--opt", "0,2", "--route", "context"];
    let out = harness(&[&args[..], &["--json"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 6 * 2 + 1);
    for line in &lines[..12] {
        assert_eq!(line["status"], "pass", "{line}");
        assert!(line["abi"].is_string() && line["opt"].is_string());
        assert_eq!(line["route"], "context", "{line}");
    }
    assert_eq!(lines[12]["summary"], true);
    assert_eq!(lines[12]["pass"], 12);
}

#[test]
fn an_unsupported_signature_is_reported_as_unsupported_never_as_passed() {
    let out = harness(&[
        "verify",
        "--sig",
        "int (__stdcall *)(const char *, ...)",
        "--abi",
        "i386-win32",
        "--json",
    ]);
    let lines = json_lines(&out);
    // Both levels on both routes.
    assert!(lines[..4].iter().all(|l| l["status"] == "unsupported"), "{lines:?}");
    assert_eq!(lines[4]["pass"], 0);
    assert_eq!(lines[4]["unsupported"], 4);
}

/// `--route typed`: the thunk, the typed stub and a compiled C target, on every ABI; a
/// signature without a stub is unsupported there (it takes the context route), never passed.
#[test]
fn the_typed_route_is_verified_and_a_signature_without_a_stub_is_unsupported() {
    let two = "int64_t (*)(int64_t, int64_t)";
    let six = "int (*)(int, int, int, int, int, int)";
    let args = ["verify", "--route", "typed", "--opt", "2", "--json"];
    let out = harness(&[&args[..], &["--sig", two, "--sig", six, "--abi", "all"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&out);
    let find = |abi: &str, sig: &str| {
        lines
            .iter()
            .find(|l| l["abi"] == abi && l["signature"] == sig)
            .unwrap_or_else(|| panic!("no line for {abi} {sig}: {lines:?}"))
    };
    for abi in Abi::ALL {
        let line = find(abi.id(), two);
        assert_eq!(line["status"], "pass", "{line}");
        assert_eq!(line["route"], "typed", "{line}");
    }
    let line = find("x86_64-sysv", six);
    assert_eq!(line["status"], "unsupported", "{line}");
    let details =
        line["compilers"].as_object().unwrap().values().next().unwrap()["details"].clone();
    assert!(details.as_str().unwrap().contains("takes the context route"), "{line}");
}

#[test]
fn the_matrix_has_a_row_per_abi_and_level() {
    let out = harness(&["verify", "--random", "8", "--sig", "int (*)(int)", "--abi", "i386-win32"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().next().unwrap().contains("unsupported"), "{text}");
    let row = |opt: &str| text.lines().any(|l| l.starts_with("i386-win32") && l.contains(opt));
    assert!(row("-O0") && row("-O2"), "{text}");
}

#[test]
fn thunks_prints_the_snapshot_view() {
    let out = harness(&["thunks", "--abi", "x86_64-win64"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bc_entry") && text.contains("CallbackContext, 8-byte words"), "{text}");
    assert_eq!(harness(&["thunks", "--abi", "nope"]).status.code(), Some(2));
}

/// The x86-64 union that every clang passes 4 bytes of (llvm-project#83388): the authority,
/// GCC, agrees with backcall, so the case is `disagree` (exit 0), with each clang named and
/// the upstream issue given; GCC's column agrees.
#[test]
fn a_clang_deviation_is_a_disagreement_not_a_failure() {
    let sig = "double (*)(union { double d; struct { float f; long l; } s; })";
    let out = harness(&["verify", "--sig", sig, "--abi", "x86_64-sysv", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&out);
    // Both levels, on the context route and on the typed route (the clang caller and the clang
    // target share the deviation, which still shows against the graffiti).
    for line in &lines[..4] {
        assert_eq!(line["status"], "disagree", "{line}");
        let gcc = line["authority"].as_str().unwrap();
        assert!(gcc.starts_with("gcc-"), "{line}");
        let compilers = line["compilers"].as_object().unwrap();
        assert_eq!(compilers[gcc]["status"], "agree", "{line}");
        // clang 13 still passed all 8 bytes; the regression came with clang 14.
        let clangs: Vec<_> = compilers
            .iter()
            .filter(|(k, v)| {
                let version = v["version"].as_str().unwrap();
                let major: u32 = version.split('.').next().unwrap().parse().unwrap();
                k.starts_with("clang-") && major >= 14
            })
            .map(|(k, _)| k)
            .collect();
        assert!(!clangs.is_empty(), "{line}");
        for c in clangs {
            assert_eq!(compilers[c]["status"], "differ", "{c}: {line}");
            assert_eq!(compilers[c]["known"]["upstream"], "llvm-project#83388", "{line}");
        }
    }
    assert_eq!(lines[4]["disagree"], 4);
}

/// A compiler asked for but missing is bad input (exit 2) with the install hint; one that
/// compiles for none of the ABIs asked is too.
#[test]
fn a_missing_compiler_exits_2_with_the_install_hint() {
    let out = harness(&["verify", "--sig", "int (*)(int)", "--compiler", "clang-99"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`clang-99` not found") && err.contains("install-deps.sh"), "{err}");
    let args = ["verify", "--sig", "int (*)(int)", "--abi", "x86_64-sysv"];
    let out = harness(&[&args[..], &["--compiler", "aarch64-linux-gnu-gcc"]].concat());
    assert_eq!(out.status.code(), Some(2));
}

/// `--junit` writes a test case per signature, ABI, level and compiler; the authority's
/// disagreement is a failure, another compiler's is rendered as skipped. `--markdown` writes
/// the matrix.
#[test]
fn junit_and_markdown_reports_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("verify.xml");
    let md = dir.path().join("verify.md");
    let sigs = ["int (*)(int)", "double (*)(union { double d; struct { float f; long l; } s; })"];
    let out = harness(&[
        "verify",
        "--sig",
        sigs[0],
        "--sig",
        sigs[1],
        "--abi",
        "x86_64-sysv",
        "--opt",
        "2",
        "--compiler",
        "clang,gcc",
        "--route",
        "context",
        "--junit",
        junit.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 4, "{xml}");
    assert!(xml.contains("failures=\"0\""), "{xml}");
    assert!(xml.contains("llvm-project#83388"), "{xml}");
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("| `x86_64-sysv` | context | -O2 | 1 | 1 | 0 | 0 |"), "{md}");
}

#[test]
fn verify_header_names_each_type_and_exits_2_on_a_header_that_does_not_parse() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/headers/");
    let header = format!("{dir}widget.h");
    let args = ["verify", "--header", &header, "--only", "widget_vtable.keys.accept"];
    let out = harness(&[&args[..], &["--abi", "x86_64-win64", "--opt", "0", "--json"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&out);
    let case = &lines[0];
    assert_eq!(case["name"], "widget.h:widget_vtable.keys.accept");
    assert_eq!(case["location"], "widget.h:32");
    assert_eq!(case["status"], "pass");
    assert_eq!(lines.last().unwrap()["headers"][0]["found"], 1);
    let out = harness(&["verify", "--header", &format!("{dir}missing_include.h")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_library.h"));
    let out = harness(&["verify", "--header", &format!("{dir}absent.h")]);
    assert_eq!(out.status.code(), Some(2));
}
