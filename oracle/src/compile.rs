//! Compiling a batch when the compiler may reject single callers (a layout
//! `_Static_assert`): the rejected cases fail, the rest is compiled again.

use std::collections::BTreeMap;

use backcall_abi::Abi;

use crate::callers::c_source;
use crate::case::Prepared;
use crate::report::{Report, RunError, Skip};

/// Compiler messages kept per rejected case.
const MESSAGE_LINES: usize = 8;

/// What a compiler made of a batch's C file (see [`compile_dropping_rejected`]).
#[derive(Debug)]
pub enum Compiled<T> {
    /// the compiled callers (a library, an object file)
    Output(T),
    /// the compiler refused the file
    Rejected {
        /// the compiler command, as the failure messages name it
        compiler: String,
        /// what the compiler calls the C file in its messages (a path, `<stdin>`)
        file_name: String,
        /// its messages
        stderr: String,
    },
}

/// Compiler message lines quoted when no message names a case.
const BATCH_MESSAGE_LINES: usize = 40;

/// Compiles a batch with `compile`, which gets the C text of [`c_source`]; a case whose caller
/// the compiler rejects (most likely a layout `_Static_assert`) becomes a failure in `report`
/// and the rest is compiled again. `None`: every caller was rejected. Shared by the host oracle
/// and the emulated one (`backcall-emu-tests`).
pub fn compile_dropping_rejected<T>(
    abi: Abi,
    prepared: &mut Vec<Prepared>,
    report: &mut Report,
    mut compile: impl FnMut(&str) -> Result<Compiled<T>, RunError>,
) -> Result<Option<T>, RunError> {
    loop {
        if prepared.is_empty() {
            return Ok(None);
        }
        let (source, lines) = c_source(abi, prepared);
        let (compiler, file_name, stderr) = match compile(&source)? {
            Compiled::Output(output) => return Ok(Some(output)),
            Compiled::Rejected { compiler, file_name, stderr } => (compiler, file_name, stderr),
        };
        if let Some(k) = crashed_on(&stderr, prepared) {
            // A compiler crash is the compiler's bug, not a verdict on backcall: the case is
            // set aside for this compiler (the others still judge it) and the rest compiled
            // again.
            let p = prepared.remove(k);
            let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
            report.crashed.push(Skip {
                index: p.index,
                signature: p.case.signature.clone(),
                reason: format!("`{compiler}` crashed compiling this case's caller: {first}"),
            });
            continue;
        }
        let by_case = attribute_compiler_messages(&stderr, &file_name, &lines);
        if by_case.is_empty() {
            let total = stderr.lines().count();
            let mut head: Vec<String> =
                stderr.lines().take(BATCH_MESSAGE_LINES).map(str::to_string).collect();
            if total > BATCH_MESSAGE_LINES {
                head.push(format!("... ({} more lines)", total - BATCH_MESSAGE_LINES));
            }
            return Err(RunError(format!(
                "`{compiler}` failed on the batch ({file_name}), and no message names a case:\n{}",
                head.join("\n")
            )));
        }
        let mut kept = Vec::with_capacity(prepared.len());
        for (k, p) in prepared.drain(..).enumerate() {
            match by_case.get(&k) {
                None => kept.push(p),
                Some(messages) => report.failures.push(p.could_not(
                    format!(
                        "`{compiler}` rejected the caller; a failed _Static_assert means \
                         backcall's layout of a type differs from the compiler's:\n{}",
                        messages.join("\n")
                    ),
                    None,
                )),
            }
        }
        *prepared = kept;
    }
}

/// The position in `prepared` of the case whose caller (or typed-route target) a compiler
/// crashed on, when the crash report names the function: clang's stack dump (`... on function
/// '@bc_case_N'`) or GCC's `In function 'bc_target_N'` (quoted `‘…’` in a UTF-8 locale)
/// before an `internal compiler error`.
pub fn crashed_on(stderr: &str, prepared: &[Prepared]) -> Option<usize> {
    let crashed =
        stderr.contains("PLEASE submit a bug report") || stderr.contains("internal compiler error");
    if !crashed {
        return None;
    }
    let named = |line: &str| -> Option<usize> {
        let start = ["function '", "function ‘"]
            .iter()
            .find_map(|quote| line.find(quote).map(|at| at + quote.len()))?;
        let name = line[start..].trim_start_matches('@');
        let number = name.strip_prefix("bc_case_").or_else(|| name.strip_prefix("bc_target_"))?;
        let digits: String = number.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let index = stderr.lines().find_map(named)?;
    prepared.iter().position(|p| p.index == index)
}

/// Compiler error messages about the file the compiler calls `file_name` (a path, or
/// `<stdin>` for source piped in) grouped by the case (position in the batch) whose caller
/// they point into, through the line ranges [`c_source`] answered; at most a few per case.
pub fn attribute_compiler_messages(
    stderr: &str,
    file_name: &str,
    lines: &[(usize, usize)],
) -> BTreeMap<usize, Vec<String>> {
    let prefix = format!("{file_name}:");
    let mut by_case: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for msg in stderr.lines() {
        let Some(rest) = msg.strip_prefix(&prefix) else { continue };
        if !rest.contains("error") {
            continue;
        }
        let Some(line) = rest.split(':').next().and_then(|l| l.parse::<usize>().ok()) else {
            continue;
        };
        let Some(k) = lines.iter().position(|&(first, last)| (first..=last).contains(&line)) else {
            continue;
        };
        let kept = by_case.entry(k).or_default();
        if kept.len() < MESSAGE_LINES {
            kept.push(format!("oracle.c:{rest}"));
        }
    }
    by_case
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Case;
    use crate::compiler::Opt;
    use backcall_abi::{Scalar, Signature, Type};

    /// A rejected caller becomes its case's failure, the rest is compiled again; a message
    /// that names no case ends the run.
    #[test]
    fn compile_dropping_rejected_fails_the_rejected_cases_only() {
        let abi = Abi::X86_64Sysv;
        let int = Type::scalar(Scalar::Int);
        let cases: Vec<Case> =
            (0..3).map(|n| Case::new(Signature::new(int.clone(), vec![int.clone(); n]))).collect();
        let mut report = Report::new(abi, "cc".into(), Opt::O0, cases.len());
        let mut prepared = Prepared::batch(abi, &cases, &mut report);
        // An error on the first line of case 1's caller.
        let (_, lines) = c_source(abi, &prepared);
        let stderr = format!("x.c:{}:3: error: static assertion failed", lines[1].0);
        let mut compiles = Vec::new();
        let out = compile_dropping_rejected(abi, &mut prepared, &mut report, |source| {
            compiles.push(source.matches("/* case ").count());
            if compiles.len() > 1 {
                return Ok(Compiled::Output("the library"));
            }
            let stderr = stderr.clone();
            Ok(Compiled::Rejected { compiler: "cc -O0".into(), file_name: "x.c".into(), stderr })
        });
        assert_eq!(out.unwrap(), Some("the library"));
        assert_eq!(compiles, [3, 2]);
        assert_eq!(prepared.iter().map(|p| p.index).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(report.failing(), [1]);
        let problem = &report.failures[0].problems[0];
        assert!(problem.starts_with("`cc -O0` rejected the caller"), "{problem}");
        assert!(problem.contains("static assertion failed"), "{problem}");

        let mut prepared = Prepared::batch(abi, &cases, &mut report);
        let stderr = "cc: fatal error: no input files\n".to_string();
        let error = compile_dropping_rejected::<()>(abi, &mut prepared, &mut report, |_| {
            Ok(Compiled::Rejected {
                compiler: "cc".into(),
                file_name: "x.c".into(),
                stderr: stderr.clone(),
            })
        })
        .unwrap_err();
        assert!(
            error.0.contains("no message names a case") && error.0.contains("fatal"),
            "{error}"
        );
    }

    /// A compiler crash that names a caller sets that case aside for the compiler; the rest
    /// is compiled again.
    #[test]
    fn a_compiler_crash_sets_its_case_aside() {
        let abi = Abi::I386Win32;
        let int = Type::scalar(Scalar::Int);
        let cases: Vec<Case> =
            (0..3).map(|n| Case::new(Signature::new(int.clone(), vec![int.clone(); n]))).collect();
        let mut report = Report::new(abi, "cc".into(), Opt::O2, cases.len());
        let mut prepared = Prepared::batch(abi, &cases, &mut report);
        let clang = "PLEASE submit a bug report to https://github.com/llvm/llvm-project/issues/\n\
                     4.\tRunning pass 'X86 DAG->DAG Instruction Selection' on function '@bc_case_2'";
        assert_eq!(crashed_on(clang, &prepared), Some(2));
        let gcc = "<stdin>: In function 'bc_case_1':\n<stdin>:9:1: internal compiler error: x";
        assert_eq!(crashed_on(gcc, &prepared), Some(1));
        let gcc_target = "oracle.c: In function ‘bc_target_2’:\noracle.c:66:1: error: \
                          unrecognizable insn:\noracle.c:66:1: internal compiler error: x";
        assert_eq!(crashed_on(gcc_target, &prepared), Some(2));
        assert_eq!(crashed_on("<stdin>: In function 'bc_case_1':\nerror: x", &prepared), None);
        let mut compiles = 0;
        let out = compile_dropping_rejected(abi, &mut prepared, &mut report, |_| {
            compiles += 1;
            if compiles > 1 {
                return Ok(Compiled::Output("the object"));
            }
            let stderr = clang.to_string();
            Ok(Compiled::Rejected {
                compiler: "clang -O2".into(),
                file_name: "<stdin>".into(),
                stderr,
            })
        });
        assert_eq!(out.unwrap(), Some("the object"));
        assert_eq!(prepared.iter().map(|p| p.index).collect::<Vec<_>>(), [0, 1]);
        assert!(report.failures.is_empty());
        assert_eq!(report.crashed.len(), 1);
        assert_eq!(report.crashed[0].index, 2);
        assert!(
            report.crashed[0].reason.contains("`clang -O2` crashed"),
            "{}",
            report.crashed[0].reason
        );
    }
}
