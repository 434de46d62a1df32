//! The `backcall` command line (feature `cli`).
//!
//! * `backcall verify ...`: the main job, cross-ABI verification against every installed
//!   compiler, judged by each ABI's authority;
//! * `backcall thunks --abi <id>`: the encoded thunk, entries and stubs with disassembly;
//! * `backcall plan --abi <id|all> '<signature>'...`: call plans and the typed route.
//!
//! `verify` and `thunks` need the emulator and assemblers, which are GPL and stay out of this
//! crate: they live in the `backcall-harness` program (crate `backcall-emu-tests`), which this
//! command runs from its own directory (or `PATH`) with the same arguments; `backcall verify
//! --help` is its help. Exit codes: 0 success, 1 a verification disagreed, 2 bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use backcall::abi::Abi;
use backcall::harness::header::{Extracted, HeaderOptions};
use backcall::harness::{corpus, plan_table};
use backcall::Type;
use clap::{Parser, Subcommand};

/// FFI callbacks: a handler plus a C signature becomes a plain C function pointer.
#[derive(Parser, Debug)]
#[command(name = "backcall", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Verify signatures on every ABI against every installed compiler (`backcall-harness`)
    #[command(disable_help_flag = true)]
    Verify {
        /// passed to `backcall-harness verify` (`backcall verify --help` lists them)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print an ABI's encoded thunk, entries and stubs with disassembly (`backcall-harness`)
    #[command(disable_help_flag = true)]
    Thunks {
        /// passed to `backcall-harness thunks`
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print call plans: where every argument and the result live, and the typed route
    Plan(PlanArgs),
}

#[derive(clap::Args, Debug)]
struct PlanArgs {
    /// An ABI id, or `all` (repeatable; default: all)
    #[arg(long = "abi", value_name = "ID|all")]
    abis: Vec<String>,
    /// Plan every signature of the built-in corpus
    #[arg(long)]
    builtin_corpus: bool,
    /// Plan every signature of a corpus file (one per line, `#` comments)
    #[arg(long = "corpus", value_name = "FILE")]
    corpora: Vec<PathBuf>,
    #[command(flatten)]
    header: HeaderOptions,
    /// Signatures to plan
    signatures: Vec<String>,
}

fn main() -> ExitCode {
    let cli = match backcall::harness::cli::parse::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match cli.command {
        Command::Verify { args } => harness("verify", &args),
        Command::Thunks { args } => harness("thunks", &args),
        Command::Plan(args) => match plan(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("backcall: {message}");
                ExitCode::from(2)
            }
        },
    }
}

/// Runs `backcall-harness <command> <args>`, answering its exit code.
fn harness(command: &str, args: &[String]) -> ExitCode {
    let name = format!("backcall-harness{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe().ok().and_then(|e| Some(e.parent()?.join(&name)));
    let program = beside.filter(|p| p.exists()).unwrap_or_else(|| name.clone().into());
    match std::process::Command::new(&program).arg(command).args(args).status() {
        Ok(status) => ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8),
        Err(e) => {
            eprintln!(
                "backcall: `{command}` needs {name} ({e}); build it with \
                 `cargo build --release -p backcall-emu-tests` (ci/main.sh does)"
            );
            ExitCode::from(2)
        }
    }
}

fn plan(args: &PlanArgs) -> Result<(), String> {
    let mut abis = Vec::new();
    for id in &args.abis {
        match id.as_str() {
            "all" => abis.extend(Abi::ALL),
            id => abis.push(id.parse::<Abi>()?),
        }
    }
    if abis.is_empty() {
        abis = Abi::ALL.to_vec();
    }
    let mut sources: Vec<(String, String)> = Vec::new();
    if args.builtin_corpus {
        add_corpus(&mut sources, "built-in corpus", corpus::BUILTIN)?;
    }
    for path in &args.corpora {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read corpus {shown}: {e}"))?;
        add_corpus(&mut sources, &shown, &text)?;
    }
    sources.extend(args.signatures.iter().map(|s| ("signature".to_string(), s.clone())));
    let headers = args.header.extract_all()?;
    if sources.is_empty() && headers.is_empty() {
        return Err("no signature given (see `backcall plan --help`)".into());
    }
    for (origin, text) in &sources {
        let (sig, unnamed) = corpus::parse_call(text).map_err(|e| pointed(origin, text, &e))?;
        print_plan(&sig, &unnamed, &abis).map_err(|e| format!("{origin}: {e}"))?;
    }
    for header in &headers {
        plan_header(header, &abis);
    }
    Ok(())
}

/// One signature's plan on one ABI, or the side-by-side table of several; a variadic one's
/// call with `unnamed` after its named parameters.
fn print_plan(sig: &backcall::Signature, unnamed: &[Type], abis: &[Abi]) -> Result<(), String> {
    if let [abi] = abis[..] {
        let plan = abi.plan_call(sig, unnamed).map_err(|e| e.to_string())?;
        print!("{plan}");
        println!("{}", plan_table::route_line(&plan));
    } else {
        println!("{}", plan_table::render(sig, unnamed, abis));
    }
    Ok(())
}

/// Every callback type of a header: its name, where it is and its plans, or why backcall
/// cannot express or plan it; then how many of each.
fn plan_header(header: &Extracted, abis: &[Abi]) {
    let mut planned = 0;
    for found in &header.callbacks {
        println!("{} ({}): {}", found.name, found.location, found.text);
        // A type backcall cannot express, or an ABI cannot plan (a variadic one), is reported
        // and the header goes on.
        let why = match &found.signature {
            Ok(sig) => print_plan(sig, &[], abis).err(),
            Err(why) => Some(why.clone()),
        };
        if let Some(why) = why {
            println!("  unsupported: {why}\n");
        }
        let sig = found.signature.as_ref();
        planned += usize::from(sig.is_ok_and(|s| abis.iter().all(|abi| abi.plan(s).is_ok())));
    }
    let found = header.callbacks.len();
    println!(
        "{}: {found} callback type{}, {planned} planned on every ABI asked, {} unsupported",
        header.header,
        if found == 1 { "" } else { "s" },
        found - planned
    );
}

fn add_corpus(sources: &mut Vec<(String, String)>, name: &str, text: &str) -> Result<(), String> {
    let entries = corpus::parse(text).map_err(|e| format!("{name}: {e}"))?;
    sources.extend(entries.into_iter().map(|e| (format!("{name}:{}", e.line), e.text)));
    Ok(())
}

/// The parse error with the signature and a caret under the offending byte.
fn pointed(origin: &str, text: &str, e: &backcall::ParseError) -> String {
    let caret = " ".repeat(text[..e.offset.min(text.len())].chars().count());
    format!("{origin}: {e}\n  {text}\n  {caret}^")
}
