//! What the two command lines (`backcall`, `backcall-harness`) share.

use std::process::ExitCode;

/// The command line parsed as `C`, or the exit code after clap printed why not (2 for a usage
/// error on stderr; 0 for `--help` and `--version`, which clap prints to stdout).
pub fn parse<C: clap::Parser>() -> Result<C, ExitCode> {
    C::try_parse().map_err(|e| {
        let code = if e.use_stderr() { 2 } else { 0 };
        let _ = e.print();
        ExitCode::from(code)
    })
}
