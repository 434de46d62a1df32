//! Runs backcall's core cases in a process that refuses executable memory gains:
//! `prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)`, what systemd's `MemoryDenyWriteExecute=`
//! and hardened services set. Spawned by `tests/mdwe.rs` (a policy cannot be lifted again, so
//! it needs a process of its own).
//!
//! * `mdwe-probe`: callbacks must work (create, call, struct result, nesting through C, threads,
//!   release), with no writable+executable mapping; exit 0.
//! * `mdwe-probe --expect-denied` (run with `BACKCALL_NO_MEMFD=1`): the write-then-protect
//!   fallback is refused, and `Callback::new` must say so with `Error::ExecDenied`; exit 0.
//!
//! Any other outcome prints what went wrong and exits 1; a kernel without MDWE exits 2.
//!
//! Linux only: elsewhere it says so and exits 2, as on a kernel without MDWE.

#[cfg(target_os = "linux")]
mod linux;

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
    #[cfg(not(target_os = "linux"))]
    {
        eprintln!("mdwe-probe: PR_SET_MDWE is Linux's; nothing to probe here");
        std::process::exit(2);
    }
}
