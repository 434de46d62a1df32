//! backcall in a process that set `prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)`: the policy
//! is per process and cannot be lifted, so each check runs `src/bin/mdwe-probe.rs` as a child.
//!
//! It needs a kernel with the policy (Linux 6.3 or newer) running this binary natively:
//! qemu-user refuses `PR_SET_MDWE`, so `ci/test.sh` leaves these tests (`mdwe_*`) out of the
//! AArch64 run under qemu and says so; everywhere else a missing policy fails them. The policy
//! is Linux's: on other systems this file holds no test.
#![cfg(target_os = "linux")]

use std::process::{Command, Output};

fn probe(no_memfd: bool, args: &[&str]) -> Output {
    /// `<linux/prctl.h>`
    const PR_GET_MDWE: libc::c_int = 66;
    // SAFETY: prctl with integer arguments; only reads this process's policy.
    let flags = unsafe { libc::prctl(PR_GET_MDWE, 0, 0, 0, 0) };
    assert!(
        flags >= 0,
        "this kernel (or emulator: qemu-user refuses it) has no PR_SET_MDWE: {}",
        std::io::Error::last_os_error()
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mdwe-probe"));
    cmd.args(args);
    if no_memfd {
        cmd.env("BACKCALL_NO_MEMFD", "1");
    } else {
        cmd.env_remove("BACKCALL_NO_MEMFD");
    }
    cmd.output().expect("the probe runs")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Create, call, struct result, nesting, threads and release all work under the policy.
#[test]
fn mdwe_callbacks_work_in_a_process_that_refuses_exec_gain() {
    let out = probe(false, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for step in ["struct result", "nesting 100 deep", "4 threads", "no writable+executable"] {
        assert!(stdout.contains(step), "{step} missing:\n{}", text(&out));
    }
}

/// The write-then-protect fallback cannot work there; it fails with the policy's own error.
#[test]
fn mdwe_without_memfd_the_refusal_is_exec_denied() {
    let out = probe(true, &["--expect-denied"]);
    assert!(out.status.success(), "{}", text(&out));
}
