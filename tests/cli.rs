//! The `backcall` command line (feature `cli`; `ci/test.sh` runs the suites with
//! `--all-features`): versions, help, plans with the typed route, and bad input as exit 2.
#![cfg(feature = "cli")]

use std::process::{Command, Output};

fn backcall(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_backcall")).args(args).output().unwrap()
}

#[test]
fn version_and_help() {
    let out = backcall(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("backcall "));
    let out = backcall(&["plan", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("--builtin-corpus"));
    assert_eq!(backcall(&["nonsense"]).status.code(), Some(2));
}

#[test]
fn plan_prints_the_plan_and_the_typed_route() {
    let out = backcall(&["plan", "--abi", "x86_64-sysv", "int64_t (*)(int64_t, int64_t)"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("arg0") && text.contains("rdi"), "{text}");
    assert!(text.contains("typed route: bc_stub_shift_2"), "{text}");
    let out = backcall(&["plan", "--abi", "i386-sysv", "int (__fastcall *)(int, int)"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("typed route: none, the context route"));
}

#[test]
fn a_bad_signature_is_exit_2_with_a_caret() {
    let out = backcall(&["plan", "int (*)(int"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at byte 11") && err.contains('^'), "{err}");
}

#[test]
fn plan_header_plans_every_callback_type_and_reports_the_rest() {
    let header = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/headers/widget.h");
    let out = backcall(&["plan", "--abi", "x86_64-win64", "--header", header]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // `long` is 4 bytes on Win64, returned in rax.
    assert!(text.contains("widget.h:widget_measure_fn (widget.h:18)"), "{text}");
    assert!(text.contains("ret   long (size 4)"), "{text}");
    assert!(text.contains("struct widget_flags { unsigned int visible : 1;"), "{text}");
    assert!(
        text.contains("24 callback types, 22 planned on every ABI asked, 2 unsupported"),
        "{text}"
    );
    let out = backcall(&["plan", "--header", header, "--only", "widget_move_fn"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("aarch64-apple") && text.contains(": 1 callback type, 1 planned"),
        "{text}"
    );
}

#[test]
fn a_header_that_does_not_parse_is_exit_2_with_clangs_first_diagnostic() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/headers/");
    let out = backcall(&["plan", "--header", &format!("{dir}missing_include.h")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'no_such_library.h' file not found") && err.contains("include path"));
    let out = backcall(&["plan", "--header", &format!("{dir}needs_define.h")]);
    assert_eq!(out.status.code(), Some(2));
    let out =
        backcall(&["plan", "--header", &format!("{dir}needs_define.h"), "--define", "WIDGET_API="]);
    assert!(out.status.success());
    let out = backcall(&["plan", "--header", &format!("{dir}absent.h")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}
