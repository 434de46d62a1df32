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
