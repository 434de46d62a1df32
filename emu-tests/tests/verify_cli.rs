//! `backcall verify` / `backcall thunks` as a user runs them (through `backcall-harness`, the
//! program the `backcall` command delegates to): exit codes, JSON lines, unsupported cases.

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
    let out = harness(&["verify", "--sig", sig, "--abi", "all", "--opt", "0,2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 6 * 2 + 1);
    for line in &lines[..12] {
        assert_eq!(line["status"], "pass", "{line}");
        assert!(line["abi"].is_string() && line["opt"].is_string());
    }
    assert_eq!(lines[12]["summary"], true);
    assert_eq!(lines[12]["pass"], 12);
}

#[test]
fn an_unsupported_signature_is_reported_as_unsupported_never_as_passed() {
    let out = harness(&[
        "verify",
        "--sig",
        "long double (*)(long double)",
        "--abi",
        "x86_64-sysv",
        "--json",
    ]);
    let lines = json_lines(&out);
    assert!(lines[..2].iter().all(|l| l["status"] == "unsupported"), "{lines:?}");
    assert_eq!(lines[2]["pass"], 0);
    assert_eq!(lines[2]["unsupported"], 2);
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
    assert!(text.contains("bc_thunk_entry") && text.contains("CallbackContext, 8-byte words"));
    assert_eq!(harness(&["thunks", "--abi", "nope"]).status.code(), Some(2));
}
