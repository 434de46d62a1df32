//! The `backcall` command line.
//!
//! * `backcall verify ...`: the main job, cross-ABI verification against clang (see USAGE);
//! * `backcall thunks --abi <id>`: the encoded thunk/thunkEntry with disassembly;
//! * `backcall plan --abi <id|all> '<signature>'...`: call plans (`--builtin-corpus`,
//!   `--corpus FILE` plan every signature of a corpus).
//!
//! `verify` and `thunks` need the emulator and assemblers, which are GPL and stay out of this
//! crate: they live in the `backcall-harness` program (crate `backcall-emu-tests`), which this
//! command runs from its own directory (or `PATH`) with the same arguments.
//! Exit codes: 0 success, 1 a verification disagreed, 2 bad input.

use std::process::ExitCode;

use backcall::abi::Abi;
use backcall::{corpus, parse_signature, plan_table};

const USAGE: &str = "\
usage: backcall verify [--abi <id|all>]... [--sig '<signature>']... [--corpus FILE]...
                       [--random N] [--seed S] [--opt 0,2] [--json]
       backcall thunks --abi <id|all>
       backcall plan [--abi <id|all>]... [--builtin-corpus] [--corpus FILE] ['<signature>'...]

ABI ids: i386-sysv i386-win32 x86_64-sysv x86_64-win64 aarch64-aapcs64 aarch64-apple
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("verify" | "thunks")) {
        return harness(&args);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("backcall: {message}");
            ExitCode::from(2)
        }
    }
}

/// Runs `backcall-harness` with `args`, answering its exit code.
fn harness(args: &[String]) -> ExitCode {
    let name = format!("backcall-harness{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe().ok().and_then(|e| Some(e.parent()?.join(&name)));
    let program = beside.filter(|p| p.exists()).unwrap_or_else(|| name.clone().into());
    match std::process::Command::new(&program).args(args).status() {
        Ok(status) => ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8),
        Err(e) => {
            eprintln!(
                "backcall: `{}` needs {name} ({e}); build it with \
                 `cargo build --release -p backcall-emu-tests` (ci/main.sh does)",
                args[0]
            );
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("plan") => plan(&args[1..]),
        Some("-h" | "--help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n{USAGE}")),
    }
}

/// What `backcall plan` was asked for.
#[derive(Default)]
struct PlanRequest {
    abis: Vec<Abi>,
    sources: Vec<(String, String)>,
}

fn plan(args: &[String]) -> Result<(), String> {
    let request = parse_plan_args(args)?;
    let abis = if request.abis.is_empty() { Abi::ALL.to_vec() } else { request.abis };
    for (origin, text) in &request.sources {
        let sig = parse_signature(text).map_err(|e| pointed(origin, text, &e))?;
        if let [abi] = abis[..] {
            let plan = abi.plan(&sig).map_err(|e| format!("{origin}: {e}"))?;
            print!("{plan}");
            println!("{}", plan_table::route_line(&plan));
        } else {
            println!("{}", plan_table::render(&sig, &abis));
        }
    }
    Ok(())
}

fn parse_plan_args(args: &[String]) -> Result<PlanRequest, String> {
    let mut request = PlanRequest::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--abi" => {
                let id = it.next().ok_or("--abi needs an ABI id or `all`")?;
                if id == "all" {
                    request.abis.extend(Abi::ALL);
                } else {
                    request.abis.push(id.parse()?);
                }
            }
            "--builtin-corpus" => add_corpus(&mut request, "built-in corpus", corpus::BUILTIN)?,
            "--corpus" => {
                let path = it.next().ok_or("--corpus needs a file name")?;
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read corpus {path}: {e}"))?;
                add_corpus(&mut request, path, &text)?;
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option `{flag}`")),
            sig => request.sources.push(("signature".into(), sig.into())),
        }
    }
    if request.sources.is_empty() {
        return Err(format!("no signature given\n{USAGE}"));
    }
    Ok(request)
}

fn add_corpus(request: &mut PlanRequest, name: &str, text: &str) -> Result<(), String> {
    let entries = corpus::parse(text).map_err(|e| format!("{name}: {e}"))?;
    request.sources.extend(entries.into_iter().map(|e| (format!("{name}:{}", e.line), e.text)));
    Ok(())
}

/// The parse error with the signature and a caret under the offending byte.
fn pointed(origin: &str, text: &str, e: &backcall::ParseError) -> String {
    let caret = " ".repeat(text[..e.offset.min(text.len())].chars().count());
    format!("{origin}: {e}\n  {text}\n  {caret}^")
}
