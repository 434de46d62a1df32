//! native-tests: the host-native suites and the host front end of the compiler oracle.
//!
//! * [`host`]: the host compiler oracle: callers from `backcall-oracle`, compiled by the
//!   host's C compiler into a shared library, call real callbacks with graffiti values; every
//!   byte is checked both ways.
//! * [`errors`]: the runtime's error reports, collected for assertions.
//! * [`alloc_meter`]: a counting allocator: what one parse or plan allocates at its peak.
//! * [`raw_call`]: calls with a chosen hidden result buffer, and measuring a callee's pop.

pub mod alloc_meter;
pub mod errors;
pub mod host;
pub mod raw_call;

/// A command that runs one of this package's probe binaries (`env!("CARGO_BIN_EXE_<name>")`)
/// as a child process: through `BACKCALL_CHILD_RUNNER` when set (for instance `qemu-aarch64
/// -L /usr/aarch64-linux-gnu`, where the suites themselves run under qemu-user, which does not
/// follow a child's exec), else directly.
pub fn probe_command(binary: &str) -> std::process::Command {
    let runner = std::env::var("BACKCALL_CHILD_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(program) => {
            let mut command = std::process::Command::new(program);
            command.args(words).arg(binary);
            command
        }
        None => std::process::Command::new(binary),
    }
}
