//! `backcall-harness`: the harness half of the `backcall` command (`backcall verify`,
//! `backcall thunks`), kept out of the runtime crate because it links the GPL emulator and
//! assembler. `backcall <verify|thunks> ...` runs this program with the same arguments.

use std::process::ExitCode;

use backcall_abi::{blobs, Abi};
use backcall_emu_tests::{asm, verify};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("verify") => match verify::parse_args(&args[1..]) {
            Ok(req) => verify::run(&req, &mut std::io::stdout().lock()),
            Err(message) => fail(&message),
        },
        Some("thunks") => thunks(&args[1..]),
        _ => fail("usage: backcall-harness <verify|thunks> [options]"),
    };
    ExitCode::from(code as u8)
}

fn fail(message: &str) -> i32 {
    eprintln!("backcall: {message}");
    2
}

/// `backcall thunks --abi <id>`: the encoded thunk and thunkEntry with disassembly and the
/// context layout, as the `thunks__<abi>` snapshots show them.
fn thunks(args: &[String]) -> i32 {
    let abis: Vec<Abi> = match args {
        [flag, id] if flag == "--abi" && id == "all" => Abi::ALL.to_vec(),
        [flag, id] if flag == "--abi" => match id.parse() {
            Ok(abi) => vec![abi],
            Err(e) => return fail(&e),
        },
        _ => return fail("usage: backcall thunks --abi <id|all>"),
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
