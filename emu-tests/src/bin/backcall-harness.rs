//! `backcall-harness`: the harness half of the `backcall` command (`backcall verify`,
//! `backcall thunks`), kept out of the runtime crate because it links the GPL emulator and
//! assembler. `backcall <verify|thunks> ...` runs this program with the same arguments.

use std::process::ExitCode;

use backcall_abi::{blobs, Abi};
use backcall_emu_tests::{asm, verify};
use clap::{Parser, Subcommand};

/// The harness commands of `backcall`.
#[derive(Parser, Debug)]
#[command(name = "backcall", version, about = "backcall's emulated harness")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Verify signatures on every ABI against the compilers for it (the main job). With no
    /// signature options: the built-in corpus plus 64 random signatures, on all ABIs, at -O0
    /// and -O2, with every compiler installed. Exit 0 when no case fails, 1 when the authority
    /// of an ABI disagrees with backcall, 2 for bad input.
    Verify(Box<verify::VerifyArgs>),
    /// Print an ABI's encoded thunk and thunkEntry with disassembly and the context layout.
    Thunks {
        /// An ABI id, or `all`
        #[arg(long = "abi", value_name = "ID|all")]
        abi: String,
    },
}

fn main() -> ExitCode {
    let cli = match backcall::harness::cli::parse::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let code = match cli.command {
        Command::Verify(args) => match args.resolve() {
            Ok(req) => verify::run(&req, &mut std::io::stdout().lock()),
            Err(message) => fail(&message),
        },
        Command::Thunks { abi } => thunks(&abi),
    };
    ExitCode::from(code as u8)
}

fn fail(message: &str) -> i32 {
    eprintln!("backcall: {message}");
    2
}

/// `backcall thunks --abi <id>`: the encoded thunk and thunkEntry with disassembly and the
/// context layout, as the `thunks__<abi>` snapshots show them.
fn thunks(id: &str) -> i32 {
    let abis: Vec<Abi> = match id {
        "all" => Abi::ALL.to_vec(),
        id => match id.parse() {
            Ok(abi) => vec![abi],
            Err(e) => return fail(&e),
        },
    };
    for abi in abis {
        let Some(blob) = blobs::for_abi(abi) else {
            return fail(&format!("no thunk code is assembled for ABI {abi} yet"));
        };
        match asm::describe_blob(blob) {
            Ok(text) => println!("{text}"),
            Err(e) => return fail(&e),
        }
    }
    0
}
