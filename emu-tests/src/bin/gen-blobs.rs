//! Writes the assembly constants `abi/asm/constants/<arch>.s` (from the context layout) and
//! encodes `abi/asm/<abi>/{thunk,entry}.s`, assembled behind them, into
//! `abi/src/blobs/<abi>.rs`.
//!
//! ```text
//! cargo run -p backcall-emu-tests --bin gen-blobs            # (re)write the blob files
//! cargo run -p backcall-emu-tests --bin gen-blobs -- --check # exit 1 if any file is stale
//! ```
//!
//! Every source is assembled by keystone and by clang's integrated assembler; any difference
//! fails loudly (see `backcall_emu_tests::asm`). An ABI directory holding only a `SAME_AS` file
//! gets its blob from the sources of the ABI it names, assembled for its own target and checked
//! byte-equal (`aarch64-apple`, `i386-win32`). A new ABI directory also needs its module
//! declared and its `BLOB` listed in `abi/src/blobs.rs`; the generator says so when it is not.

use std::process::ExitCode;

use backcall_emu_tests::asm;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = match args.as_slice() {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => {
            eprintln!("usage: gen-blobs [--check]");
            return ExitCode::from(2);
        }
    };
    match run(check) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("gen-blobs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Encodes every ABI; writes (or, with `check`, compares) its file. `Ok(false)`: stale files.
fn run(check: bool) -> Result<bool, String> {
    let root = asm::workspace_root();
    let blobs_rs = std::fs::read_to_string(root.join("abi/src/blobs.rs"))
        .map_err(|e| format!("abi/src/blobs.rs: {e}"))?;
    let mut fresh = true;
    for arch in backcall_abi::Arch::ALL {
        let path = asm::constants_path(arch);
        let shown = path.strip_prefix(&root).unwrap_or(&path).display().to_string();
        fresh &= write_or_check(&path, &shown, &asm::constants_text(arch), check, "")?;
    }
    for abi in asm::abis_with_asm()? {
        let encoded = asm::encode(abi)?;
        let text = asm::render_blob_file(&encoded.blob)?;
        let path = asm::blob_path(abi);
        let shown = path.strip_prefix(&root).unwrap_or(&path).display().to_string();
        let summary = format!(
            " (thunk {} bytes, shared code {} bytes)",
            encoded.blob.thunk.len(),
            encoded.blob.entry.len()
        );
        fresh &= write_or_check(&path, &shown, &text, check, &summary)?;
        let module = asm::module_name(abi);
        let declared = blobs_rs.contains(&format!("mod {module};"));
        if !declared || !blobs_rs.contains(&format!("{module}::BLOB")) {
            println!(
                "abi/src/blobs.rs: declare `mod {module};` and list `{module}::BLOB` in `ALL`"
            );
            fresh = false;
        }
    }
    Ok(fresh)
}

/// Writes `text` to `path` unless it holds it already; with `check`, only says whether it
/// does. `Ok(false)`: stale.
fn write_or_check(
    path: &std::path::Path,
    shown: &str,
    text: &str,
    check: bool,
    summary: &str,
) -> Result<bool, String> {
    let current = std::fs::read_to_string(path).ok();
    if current.as_deref() == Some(text) {
        println!("{shown}: up to date{summary}");
    } else if check {
        println!("{shown}: STALE — run `cargo run -p backcall-emu-tests --bin gen-blobs`");
        return Ok(false);
    } else {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, text).map_err(|e| format!("{shown}: {e}"))?;
        println!("{shown}: written{summary}");
    }
    Ok(true)
}
