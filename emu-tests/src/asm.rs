//! Encoding `abi/asm/<abi>/{thunk,entry}.s` into the blobs of `abi/src/blobs/` ("two
//! assemblers must agree").
//!
//! Each source is assembled twice, behind the generated constants of its architecture
//! (`abi/asm/constants/<arch>.s`, [`constants_text`]): by keystone (in process) and by clang's
//! integrated assembler (`clang --target=<abi.clang_target()> -c -x assembler`, its `.text`
//! (Mach-O `__text`) and symbols read with the `object` crate from the ELF, COFF or Mach-O
//! object). The bytes must be identical, or encoding fails with both disassemblies. keystone
//! yields bytes only, so the symbol offsets come from clang's object. Symbols are read as
//! written: an assembler label is not decorated, not even in COFF or Mach-O.
//!
//! # What the sources must define
//!
//! * `thunk.s`: `bc_thunk` (offset 0), at most [`THUNK_STRIDE`] bytes, nothing patched.
//! * `entry.s`: `bc_entry` (offset 0), `bc_resume`, `bc_return_from_context`; optionally
//!   `bc_entry_int` and the typed stubs `bc_stub_*` (see [`backcall_abi::thunks`]). Every
//!   `bc_*` label of `entry.s` becomes a named symbol of the blob.
//! * In either, a label `bc_page_ref_<name>` at the END of every instruction that reaches the
//!   data page: its field is assembled for `PAGE_SIZE`, and [`backcall_abi::thunks`] moves it
//!   for other page sizes. capstone confirms the field: on x86 a 32-bit displacement that ends
//!   the instruction, on AArch64 an `adr` or an `ldr` (literal).
//! * Any `CTX_*` / `RC_*` constant is checked against [`ContextLayout`] and [`ReturnCode`]:
//!   the generated header defines them, and a source that redefined one would be caught.
//!
//! **`SAME_AS`.** An ABI whose machine code is another ABI's, byte for byte (its differences
//! are all in the call plans), has no sources of its own: `abi/asm/<abi>/SAME_AS` names the ABI
//! whose directory holds them (`aarch64-apple` → `aarch64-aapcs64`, `i386-win32` →
//! `i386-sysv`). Its blob is generated from those sources, assembled by keystone and by clang
//! for *its own* target (`arm64-apple-macos` Mach-O, `i686-pc-windows-msvc` COFF), and encoding
//! fails unless the bytes, symbols and page references equal those of the named ABI.
//!
//! # keystone (0.9.2, LLVM MC of 2016) traps
//!
//! The sources avoid them; clang's cross-check catches any that come back.
//! * `.text` crashes keystone (segfault): [`keystone_source`] drops `.text` lines, which changes
//!   nothing since everything is in clang's default `.text` anyway. Nothing else is stripped.
//! * Any `ks_option` call, even `KS_OPT_SYNTAX_INTEL`, switches keystone to radix 16
//!   (`[esp + 24]` becomes `[esp + 0x24]`): the engine is used with its defaults (Intel syntax).
//! * In x86 memory operands, arithmetic on a symbol is wrong: `[reg - SYM]` loses the minus,
//!   `[reg + SYM*2]` the scale, and `[reg + SYM + 8]` gets a disp32 where clang uses a disp8.
//!   The sources name every offset with a `.set` constant and use one constant per operand.
//! * `jmp label + 0x100` is refused: the sources `.set` the target first.
//! * No `endbr64`/`endbr32` (written as `.byte`), `.type`, `.size`, `.hidden`; `.inst` is
//!   silently dropped.
//! * AArch64: no `bti` mnemonic (written `hint #34` / `hint #36`). A numeric PC-relative
//!   operand means something else to each assembler: keystone reads `b #0x100` and
//!   `ldr w16, #8` (literal) as absolute addresses, clang as offsets from the instruction
//!   (they agree only at address 0), and the same holds of `adr`. The sources name every
//!   PC-relative target with a label (or a `.set` of one).
//! * AArch64 alignment: both assemblers (like every LLVM) pad code with `nop` even for
//!   `.balign 8, 0`; the sources accept that (the padding is never executed).
//!
//! The AArch64 blob's [`Blob::fill`] is 0 (`udf #0`) and x86's `0xcc` (`int3`): the bytes a
//! code page holds between and after thunks.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use backcall_abi::arch::PageRef;
use backcall_abi::blobs::{Blob, BlobPageRef, BlobPart};
use backcall_abi::context::ContextLayout;
use backcall_abi::thunks::THUNK_STRIDE;
use backcall_abi::{Abi, Arch, ReturnCode};
use capstone::arch::{BuildsCapstone, BuildsCapstoneSyntax};
use capstone::Capstone;
use object::{Object as _, ObjectSection as _, ObjectSymbol as _, SymbolSection};

/// The workspace root (`emu-tests/..`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("emu-tests has a parent").to_path_buf()
}

/// `abi/asm/<id>/`.
pub fn asm_dir(abi: Abi) -> PathBuf {
    workspace_root().join("abi/asm").join(abi.id())
}

/// The Rust module name of `abi`'s generated blob (`x86_64_sysv`).
pub fn module_name(abi: Abi) -> String {
    abi.id().replace('-', "_")
}

/// `abi/src/blobs/<module>.rs`.
pub fn blob_path(abi: Abi) -> PathBuf {
    workspace_root().join("abi/src/blobs").join(format!("{}.rs", module_name(abi)))
}

/// Every ABI whose directory under `abi/asm/` has both `thunk.s` and `entry.s`, or a
/// [`SAME_AS`] file, in [`Abi::ALL`] order. A directory that is not an ABI id is an error.
pub fn abis_with_asm() -> Result<Vec<Abi>, String> {
    let root = workspace_root().join("abi/asm");
    let entries = std::fs::read_dir(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let mut abis = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", root.display()))?.path();
        if !path.is_dir() {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name == CONSTANTS_DIR {
            continue;
        }
        let abi: Abi = name.parse().map_err(|e| format!("{}: {e}", path.display()))?;
        let sources = path.join("thunk.s").is_file() && path.join("entry.s").is_file();
        if sources || path.join(SAME_AS).is_file() {
            abis.push(abi);
        }
    }
    abis.sort();
    Ok(abis)
}

/// The file in `abi/asm/<abi>/` that names the ABI whose sources `abi` shares (see the module
/// documentation): one line, an ABI id; lines starting with `#` are comments.
pub const SAME_AS: &str = "SAME_AS";

/// The ABI whose `abi/asm/` directory holds `abi`'s sources: `abi` itself, or the one its
/// [`SAME_AS`] file names. That ABI must have its own sources (no chains), the same
/// instruction set and word size, and `abi`'s directory no `.s` files of its own.
pub fn source_abi(abi: Abi) -> Result<Abi, String> {
    let dir = asm_dir(abi);
    let file = dir.join(SAME_AS);
    if !file.is_file() {
        return Ok(abi);
    }
    let shown = format!("abi/asm/{}/{SAME_AS}", abi.id());
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{shown}: {e}"))?;
    let mut ids = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    let (Some(id), None) = (ids.next(), ids.next()) else {
        return Err(format!("{shown}: expected exactly one ABI id"));
    };
    let source: Abi = id.parse().map_err(|e| format!("{shown}: {e}"))?;
    for name in ["thunk.s", "entry.s"] {
        if dir.join(name).exists() {
            return Err(format!("{shown}: abi/asm/{}/{name} exists too", abi.id()));
        }
        if !asm_dir(source).join(name).is_file() {
            return Err(format!("{shown}: abi/asm/{source}/{name} does not exist"));
        }
    }
    if source == abi || asm_dir(source).join(SAME_AS).exists() {
        return Err(format!("{shown}: names {source}, which has no sources of its own"));
    }
    if source.arch() != abi.arch() {
        return Err(format!("{shown}: {source} is another instruction set than {abi}"));
    }
    Ok(source)
}

/// The directory under `abi/asm/` that holds the generated constants, one file per
/// architecture.
pub const CONSTANTS_DIR: &str = "constants";

/// `abi/asm/constants/<arch>.s`.
pub fn constants_path(arch: Arch) -> PathBuf {
    workspace_root().join("abi/asm").join(CONSTANTS_DIR).join(format!("{arch}.s"))
}

/// The generated constants every source of `arch` is assembled behind: the context layout's
/// offsets, the record's words, the page size and the return codes
/// ([`ContextLayout::asm_constants`]).
pub fn constants_text(arch: Arch) -> String {
    ContextLayout::for_word(arch.word_size()).asm_constants(arch)
}

/// What the harness needs of an architecture beyond [`Arch`]: the emulator's, the assembler's
/// and the disassembler's views of it.
pub trait ArchTools {
    /// Unicorn's architecture and mode (the emulated machine's).
    fn unicorn(self) -> (unicorn_engine::Arch, unicorn_engine::Mode);
    /// A keystone assembler.
    fn keystone(self) -> Result<keystone_engine::Keystone, String>;
    /// A capstone disassembler (x86: Intel syntax), with instruction details.
    fn capstone(self) -> Capstone;
}

impl ArchTools for Arch {
    fn unicorn(self) -> (unicorn_engine::Arch, unicorn_engine::Mode) {
        use unicorn_engine::{Arch as U, Mode};
        match self {
            Arch::X86 => (U::X86, Mode::MODE_32),
            Arch::X86_64 => (U::X86, Mode::MODE_64),
            Arch::Aarch64 => (U::ARM64, Mode::ARM),
        }
    }

    fn keystone(self) -> Result<keystone_engine::Keystone, String> {
        use keystone_engine::{Arch as K, Keystone, Mode};
        let (arch, mode) = match self {
            Arch::X86 => (K::X86, Mode::MODE_32),
            Arch::X86_64 => (K::X86, Mode::MODE_64),
            Arch::Aarch64 => (K::ARM64, Mode::LITTLE_ENDIAN),
        };
        // No `option()` call: any option switches keystone to radix 16 (see the module docs).
        Keystone::new(arch, mode).map_err(|e| format!("keystone: {e}"))
    }

    fn capstone(self) -> Capstone {
        use capstone::arch::x86::{ArchMode, ArchSyntax};
        let mode = match self {
            Arch::X86 => ArchMode::Mode32,
            Arch::X86_64 => ArchMode::Mode64,
            Arch::Aarch64 => {
                return Capstone::new()
                    .arm64()
                    .mode(capstone::arch::arm64::ArchMode::Arm)
                    .detail(true)
                    .build()
                    .expect("capstone supports AArch64");
            }
        };
        Capstone::new()
            .x86()
            .mode(mode)
            .syntax(ArchSyntax::Intel)
            .detail(true)
            .build()
            .expect("capstone supports x86")
    }
}

/// One assembled source: its `.text` bytes, its labels (offsets in `.text`) and its absolute
/// `.set` constants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assembled {
    /// the `.text` bytes (identical from both assemblers)
    pub bytes: Vec<u8>,
    /// every symbol defined in `.text`, by name
    pub labels: BTreeMap<String, u32>,
    /// every absolute symbol (`.set NAME, value`), by name
    pub constants: BTreeMap<String, u64>,
}

impl Assembled {
    fn label(&self, file: &Path, name: &str) -> Result<u32, String> {
        self.labels
            .get(name)
            .copied()
            .ok_or_else(|| format!("{}: no label `{name}`", file.display()))
    }
}

/// The source keystone assembles: `src` without its `.text` directives (they crash keystone;
/// everything is in `.text` anyway). Line numbers are kept.
pub fn keystone_source(src: &str) -> String {
    src.lines()
        .map(|line| {
            // Comments: `#` on x86, `//` on AArch64 (where `#` starts an immediate: harmless
            // here, only `.text` lines are looked for).
            let code = line.split("//").next().unwrap_or("");
            let code = code.split('#').next().unwrap_or("").trim();
            if code == ".text" {
                ""
            } else {
                line
            }
        })
        .fold(String::new(), |mut out, line| {
            out.push_str(line);
            out.push('\n');
            out
        })
}

/// Assembles `src` with keystone for `arch` at address 0.
pub fn keystone_assemble(arch: Arch, src: &str) -> Result<Vec<u8>, String> {
    let ks = arch.keystone()?;
    let out = ks.asm(keystone_source(src), 0).map_err(|e| format!("keystone: {e}"))?;
    Ok(out.bytes)
}

/// Assembles the text `src` (shown as `path` in messages) with `clang --target=<abi's triple>`
/// (`$BACKCALL_CLANG`, default `clang`) and reads the object.
pub fn clang_assemble(abi: Abi, src: &str, path: &Path) -> Result<Assembled, String> {
    let program = std::env::var("BACKCALL_CLANG").unwrap_or_else(|_| "clang".to_string());
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let file = dir.path().join(path.file_name().unwrap_or_else(|| "source.s".as_ref()));
    std::fs::write(&file, src).map_err(|e| format!("{}: {e}", file.display()))?;
    let output = Command::new(&program)
        .arg(format!("--target={}", abi.clang_target()))
        .args(["-c", "-x", "assembler"])
        .arg(&file)
        .args(["-o", "-"])
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "clang --target={} failed on {} (behind its constants):\n{}",
            abi.clang_target(),
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    read_object(&output.stdout).map_err(|e| format!("{}: clang's object: {e}", path.display()))
}

fn read_object(data: &[u8]) -> Result<Assembled, String> {
    let file = object::File::parse(data).map_err(|e| e.to_string())?;
    let text = file.section_by_name(".text").ok_or("no .text section")?;
    if text.relocations().next().is_some() {
        return Err(".text has relocations: every symbol must be local and resolved".into());
    }
    for section in file.sections() {
        let name = section.name().unwrap_or("?");
        if crate::loader::is_image_kind(section.kind())
            && section.size() > 0
            && section.index() != text.index()
        {
            return Err(format!("section {name} is not empty: only .text is encoded"));
        }
    }
    let bytes = text.data().map_err(|e| e.to_string())?.to_vec();
    let mut labels = BTreeMap::new();
    let mut constants = BTreeMap::new();
    for sym in file.symbols() {
        let Ok(name) = sym.name() else { continue };
        match sym.section() {
            SymbolSection::Section(index) if index == text.index() => {
                let offset = u32::try_from(sym.address()).map_err(|e| e.to_string())?;
                labels.insert(name.to_string(), offset);
            }
            SymbolSection::Absolute => {
                constants.insert(name.to_string(), sym.address());
            }
            _ => {}
        }
    }
    // `object` answers address 0 for every absolute COFF symbol: read their raw values
    // (32 bits, sign-extended like an ELF `.set` of a negative number).
    if let object::File::Coff(coff) = &file {
        use object::read::coff::Symbol as _;
        for sym in coff.symbols() {
            if let (Ok(name), SymbolSection::Absolute) = (sym.name(), sym.section()) {
                let value = sym.coff_symbol().value() as i32 as i64 as u64;
                constants.insert(name.to_string(), value);
            }
        }
    }
    Ok(Assembled { bytes, labels, constants })
}

/// Assembles `path` behind its architecture's constants with keystone and clang; fails unless
/// both give the same bytes.
pub fn assemble(abi: Abi, path: &Path) -> Result<Assembled, String> {
    let arch = abi.arch();
    let src = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let full = format!("{}\n{src}", constants_text(arch));
    let keystone =
        keystone_assemble(arch, &full).map_err(|e| format!("{}: {e}", path.display()))?;
    let clang = clang_assemble(abi, &full, path)?;
    if keystone != clang.bytes {
        return Err(format!(
            "{}: keystone and clang disagree ({} vs {} bytes)\n{}",
            path.display(),
            keystone.len(),
            clang.bytes.len(),
            disagreement(arch, &keystone, &clang.bytes)
        ));
    }
    Ok(clang)
}

/// Side-by-side disassembly of the instructions where two encodings differ.
fn disagreement(arch: Arch, keystone: &[u8], clang: &[u8]) -> String {
    let lines = |bytes: &[u8]| -> Vec<String> {
        listing(arch, bytes, &[])
            .into_iter()
            .filter_map(|line| match line {
                Line::Code { offset, bytes, text } => {
                    Some(format!("{offset:04x}  {:<24} {text}", hex(&bytes)))
                }
                Line::Label(_) => None,
            })
            .collect()
    };
    let (k, c) = (lines(keystone), lines(clang));
    let mut out = String::from("  clang | keystone, where they differ:\n");
    let mut shown = 0;
    for i in 0..k.len().max(c.len()) {
        let (kl, cl) = (k.get(i).map_or("", |s| s), c.get(i).map_or("", |s| s));
        if kl != cl && shown < 12 {
            let _ = writeln!(out, "  {cl:<60} | {kl}");
            shown += 1;
        }
    }
    out.push_str("  (keystone traps: see emu-tests/src/asm.rs module docs)");
    out
}

/// An ABI's encoded code, checked, with its blob (the byte slices are leaked: one per process).
#[derive(Clone, Debug)]
pub struct Encoded {
    /// the ABI
    pub abi: Abi,
    /// the ABI whose `abi/asm/` sources were assembled ([`source_abi`]: `abi` itself, or the one
    /// its [`SAME_AS`] names)
    pub source: Abi,
    /// `thunk.s`
    pub thunk: Assembled,
    /// `entry.s`
    pub entry: Assembled,
    /// the blob the generated file defines
    pub blob: Blob,
}

/// Assembles and checks `abi`'s sources (`abi/asm/<abi>/`, or those its [`SAME_AS`] names,
/// assembled for `abi`'s own target and checked equal to the named ABI's encoding).
pub fn encode(abi: Abi) -> Result<Encoded, String> {
    let source = source_abi(abi)?;
    let encoded = encode_sources(abi, source)?;
    if source != abi {
        let theirs = encode_sources(source, source)?;
        let (a, b) = (&encoded.blob, &theirs.blob);
        let same = a.entry == b.entry
            && a.thunk == b.thunk
            && a.symbols == b.symbols
            && a.page_refs == b.page_refs
            && a.fill == b.fill;
        if !same {
            return Err(format!(
                "abi/asm/{}/{SAME_AS}: abi/asm/{source}/ assembles differently for {} ({}) \
                 than for {source} ({}): give {abi} its own sources",
                abi.id(),
                abi,
                abi.clang_target(),
                source.clang_target()
            ));
        }
    }
    Ok(encoded)
}

/// The prefix of the labels that mark the end of an instruction reaching the data page.
pub const PAGE_REF_PREFIX: &str = "bc_page_ref";

/// Assembles and checks `abi/asm/<source>/` as `abi`'s code.
fn encode_sources(abi: Abi, source: Abi) -> Result<Encoded, String> {
    let arch = abi.arch();
    let dir = asm_dir(source);
    let (thunk_path, entry_path) = (dir.join("thunk.s"), dir.join("entry.s"));
    let for_abi = |e: String| if abi == source { e } else { format!("{e} (assembled for {abi})") };
    let thunk = assemble(abi, &thunk_path).map_err(for_abi)?;
    let entry = assemble(abi, &entry_path).map_err(for_abi)?;

    let at_zero = |a: &Assembled, path: &Path, name: &str| -> Result<(), String> {
        match a.label(path, name)? {
            0 => Ok(()),
            other => Err(format!("{}: `{name}` is at {other:#x}, not 0", path.display())),
        }
    };
    at_zero(&thunk, &thunk_path, "bc_thunk")?;
    at_zero(&entry, &entry_path, backcall_abi::thunks::ENTRY_CONTEXT)?;
    for name in [backcall_abi::thunks::RESUME, backcall_abi::thunks::RETURN_FROM_CONTEXT] {
        entry.label(&entry_path, name)?;
    }
    if thunk.bytes.len() > THUNK_STRIDE as usize {
        return Err(format!(
            "{}: the thunk is longer than {THUNK_STRIDE} bytes",
            thunk_path.display()
        ));
    }
    let mut page_refs = Vec::new();
    for (part, a, path) in
        [(BlobPart::Thunk, &thunk, &thunk_path), (BlobPart::Entry, &entry, &entry_path)]
    {
        for (name, &end) in a.labels.iter().filter(|(n, _)| n.starts_with(PAGE_REF_PREFIX)) {
            let kind = check_page_ref(arch, a, end)
                .map_err(|e| format!("{}: `{name}`: {e}", path.display()))?;
            page_refs.push(BlobPageRef { part, end, kind });
        }
    }
    page_refs.sort_by_key(|r| (r.part == BlobPart::Entry, r.end));
    let mut symbols: Vec<(&'static str, u32)> = entry
        .labels
        .iter()
        .filter(|(n, _)| n.starts_with("bc_") && !n.starts_with(PAGE_REF_PREFIX))
        .map(|(n, &o)| (&*String::leak(n.clone()), o))
        .collect();
    symbols.sort_by_key(|&(n, o)| (o, n));
    check_constants(abi, &entry).map_err(|e| format!("{}: {e}", entry_path.display()))?;
    check_constants(abi, &thunk).map_err(|e| format!("{}: {e}", thunk_path.display()))?;

    let blob = Blob {
        abi,
        entry: Vec::leak(entry.bytes.clone()),
        symbols: Vec::leak(symbols),
        thunk: Vec::leak(thunk.bytes.clone()),
        page_refs: Vec::leak(page_refs),
        fill: arch.fill(),
    };
    Ok(Encoded { abi, source, thunk, entry, blob })
}

/// Checks the instruction that ends at `end` reaches the data page through a field
/// [`backcall_abi::thunks`] can move, and says which kind.
fn check_page_ref(arch: Arch, a: &Assembled, end: u32) -> Result<PageRef, String> {
    let cs = arch.capstone();
    let insns = cs.disasm_all(&a.bytes, 0).map_err(|e| e.to_string())?;
    let insn = insns
        .iter()
        .find(|i| i.address() + i.len() as u64 == u64::from(end))
        .ok_or("it does not mark the end of an instruction")?;
    let text = format!("{} {}", insn.mnemonic().unwrap_or("?"), insn.op_str().unwrap_or(""));
    match arch {
        Arch::X86 | Arch::X86_64 => {
            let detail = cs.insn_detail(insn).map_err(|e| e.to_string())?;
            let arch_detail = detail.arch_detail();
            let x86 = arch_detail.x86().expect("x86 detail");
            let disp = x86.encoding().disp;
            if disp.map(|d| (usize::from(d.offset), d.size)) != Some((insn.len() - 4, 4)) {
                return Err(format!("`{text}` does not end in a 32-bit displacement"));
            }
            Ok(PageRef::Disp32)
        }
        Arch::Aarch64 => {
            let word = u32::from_le_bytes(
                a.bytes[end as usize - 4..end as usize].try_into().expect("4 bytes"),
            );
            if word & 0x9f00_0000 == 0x1000_0000 && text.starts_with("adr ") {
                Ok(PageRef::Adr)
            } else if word & 0xbf00_0000 == 0x1800_0000 && text.starts_with("ldr ") {
                Ok(PageRef::LdrLiteral)
            } else {
                Err(format!("`{text}` is neither `adr` nor `ldr` (literal)"))
            }
        }
    }
}

/// Checks every `CTX_*` and `RC_*` constant against the context layout and the return codes.
pub fn check_constants(abi: Abi, a: &Assembled) -> Result<(), String> {
    let layout = ContextLayout::for_word(abi.word_size());
    for (name, &value) in &a.constants {
        let expected = if let Some(field) = name.strip_prefix("CTX_") {
            Some(context_offset(&layout, field).ok_or_else(|| {
                format!("`{name}` names no CallbackContext field (abi/src/context.rs)")
            })?)
        } else if let Some(code) = name.strip_prefix("RC_") {
            Some(
                return_code(code)
                    .ok_or_else(|| format!("`{name}` names no ReturnCode (abi/src/plan.rs)"))?
                    as u64,
            )
        } else {
            None
        };
        if let Some(expected) = expected {
            if value != expected {
                return Err(format!("`{name}` is {value}, but abi/src says {expected}"));
            }
        }
    }
    Ok(())
}

/// The offset `CTX_<field>` stands for: `SIZE`, a field (`INT_REGS`), or slot `i` of an area
/// (`INT_REGS_3`; [`ContextLayout::slot_size`]).
fn context_offset(layout: &ContextLayout, field: &str) -> Option<u64> {
    if field == "SIZE" {
        return Some(u64::from(layout.size));
    }
    let fields = layout.fields();
    let find = |name: &str| fields.iter().find(|f| f.0.eq_ignore_ascii_case(name));
    if let Some(&(_, offset, _)) = find(field) {
        return Some(u64::from(offset));
    }
    let (area, slot) = field.rsplit_once('_')?;
    let slot: u32 = slot.parse().ok()?;
    let &(name, offset, size) = find(area)?;
    let slot_size = layout.slot_size(name);
    (size > slot_size && (slot + 1) * slot_size <= size)
        .then(|| u64::from(offset + slot * slot_size))
}

fn return_code(name: &str) -> Option<u32> {
    ReturnCode::ALL.into_iter().find(|c| c.asm_name() == name).map(|c| c as u32)
}

/// One line of a disassembly listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// a symbol at the following offset
    Label(String),
    /// an instruction at `offset`
    Code {
        /// offset in the blob
        offset: u32,
        /// its bytes
        bytes: Vec<u8>,
        /// capstone's text
        text: String,
    },
}

/// Disassembles `bytes` (at address 0) with capstone, with `labels` inserted before the code at
/// their offsets (a label at the end of an instruction comes before the next one).
pub fn listing(arch: Arch, bytes: &[u8], labels: &[(u32, &str)]) -> Vec<Line> {
    let cs = arch.capstone();
    let mut labels = labels.to_vec();
    labels.sort_by_key(|l| l.0);
    let mut labels = labels.into_iter().peekable();
    let mut out = Vec::new();
    let mut offset = 0u32;
    let len = bytes.len() as u32;
    loop {
        while let Some((_, name)) = labels.next_if(|l| l.0 <= offset) {
            out.push(Line::Label(name.to_string()));
        }
        if offset >= len {
            break;
        }
        let code = &bytes[offset as usize..];
        let decoded = cs.disasm_count(code, u64::from(offset), 1).ok();
        match decoded.as_ref().and_then(|insns| insns.iter().next()) {
            Some(insn) => {
                let text = match insn.op_str() {
                    Some(ops) if !ops.is_empty() => {
                        format!("{} {ops}", insn.mnemonic().unwrap_or("?"))
                    }
                    _ => insn.mnemonic().unwrap_or("?").to_string(),
                };
                out.push(Line::Code { offset, bytes: insn.bytes().to_vec(), text });
                offset += insn.len() as u32;
            }
            None => {
                out.push(Line::Code {
                    offset,
                    bytes: vec![code[0]],
                    text: format!(".byte {:#04x}", code[0]),
                });
                offset += 1;
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// The labels of one part of a blob: its symbols (entry) and its page references.
pub fn labels(blob: &Blob, part: BlobPart) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = match part {
        BlobPart::Thunk => vec![(0, "bc_thunk".to_string())],
        BlobPart::Entry => blob.symbols.iter().map(|&(n, o)| (o, n.to_string())).collect(),
    };
    for r in blob.page_refs.iter().filter(|r| r.part == part) {
        out.push((r.end, format!("(data page reference, {:?}, ends here)", r.kind)));
    }
    out.sort();
    out
}

fn listing_of(blob: &Blob, part: BlobPart) -> Vec<Line> {
    let labels = labels(blob, part);
    let labels: Vec<(u32, &str)> = labels.iter().map(|(o, n)| (*o, n.as_str())).collect();
    let bytes = match part {
        BlobPart::Thunk => blob.thunk,
        BlobPart::Entry => blob.entry,
    };
    listing(blob.abi.arch(), bytes, &labels)
}

/// Where `abi`'s code comes from, as generated files and snapshots say it: `abi/asm/<abi>/`,
/// or `abi/asm/<source>/ via abi/asm/<abi>/SAME_AS`.
fn provenance(abi: Abi) -> Result<String, String> {
    let source = source_abi(abi)?;
    Ok(if source == abi {
        format!("abi/asm/{}/", abi.id())
    } else {
        format!("abi/asm/{}/ via abi/asm/{}/{SAME_AS}", source.id(), abi.id())
    })
}

/// The text of the generated `abi/src/blobs/<module>.rs`. The blob of an ABI whose code is
/// another's ([`SAME_AS`]; [`encode`] checked the bytes, symbols and page references equal)
/// reuses that ABI's blob, arrays included, with only its own `abi`.
pub fn render_blob_file(blob: &Blob) -> Result<String, String> {
    let mut out = String::new();
    let id = blob.abi.id();
    let from = provenance(blob.abi)?;
    let _ = writeln!(
        out,
        "// @generated by `cargo run -p backcall-emu-tests --bin gen-blobs` from {from} \
         — do not edit."
    );
    let source = source_abi(blob.abi)?;
    if source != blob.abi {
        let module = module_name(source);
        let _ = writeln!(
            out,
            "//! {id}: the shared code and thunk of {source}, byte for byte (keystone and clang's \
             integrated assembler encode them identically for {}).",
            blob.abi.clang_target()
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "/// The {id} blob: the {source} blob's code, symbols and page references."
        );
        let head = "pub const BLOB: super::Blob =";
        let value =
            format!("super::Blob {{ abi: crate::Abi::{:?}, ..super::{module}::BLOB }};", blob.abi);
        // As rustfmt lays it out (max_width 100).
        if head.len() + 1 + value.len() <= 100 {
            let _ = writeln!(out, "{head} {value}");
        } else {
            let _ = writeln!(out, "{head}\n    {value}");
        }
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "//! {id}: the thunk and the shared code, encoded by keystone and clang's integrated \
         assembler (identical)."
    );
    render_array(
        &mut out,
        "THUNK",
        "The thunk template (`thunk.s`).",
        &listing_of(blob, BlobPart::Thunk),
        blob.thunk.len(),
    );
    render_array(
        &mut out,
        "ENTRY",
        "The shared code: the entries, the resume point, `return_from_context`, the typed stubs \
         (`entry.s`).",
        &listing_of(blob, BlobPart::Entry),
        blob.entry.len(),
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "/// The named points of `ENTRY`.");
    let _ = writeln!(out, "const SYMBOLS: [(&str, u32); {}] = [", blob.symbols.len());
    for (name, offset) in blob.symbols {
        let _ = writeln!(out, "    (\"{name}\", {offset:#x}),");
    }
    let _ = writeln!(out, "];");
    let _ = writeln!(out);
    let _ = writeln!(out, "/// The instructions that reach the data page (where each ends).");
    let _ = writeln!(out, "#[rustfmt::skip]");
    let _ = writeln!(out, "const PAGE_REFS: [super::BlobPageRef; {}] = [", blob.page_refs.len());
    for r in blob.page_refs {
        let _ = writeln!(out, "    super::BlobPageRef {{");
        let _ = writeln!(out, "        part: super::BlobPart::{:?},", r.part);
        let _ = writeln!(out, "        end: {:#x},", r.end);
        let _ = writeln!(out, "        kind: crate::arch::PageRef::{:?},", r.kind);
        let _ = writeln!(out, "    }},");
    }
    let _ = writeln!(out, "];");
    let _ = writeln!(out);
    let _ = writeln!(out, "/// The {id} blob.");
    let _ = writeln!(out, "pub const BLOB: super::Blob = super::Blob {{");
    let _ = writeln!(out, "    abi: crate::Abi::{:?},", blob.abi);
    let _ = writeln!(out, "    entry: &ENTRY,");
    let _ = writeln!(out, "    symbols: &SYMBOLS,");
    let _ = writeln!(out, "    thunk: &THUNK,");
    let _ = writeln!(out, "    page_refs: &PAGE_REFS,");
    let _ = writeln!(out, "    fill: {:#04x},", blob.fill);
    let _ = writeln!(out, "}};");
    Ok(out)
}

fn render_array(out: &mut String, name: &str, doc: &str, lines: &[Line], len: usize) {
    let width = lines
        .iter()
        .map(|l| match l {
            Line::Code { bytes, .. } => bytes.len() * 6,
            Line::Label(_) => 0,
        })
        .max()
        .unwrap_or(0);
    let _ = writeln!(out);
    let _ = writeln!(out, "/// {doc}");
    let _ = writeln!(out, "#[rustfmt::skip]");
    let _ = writeln!(out, "const {name}: [u8; {len}] = [");
    for line in lines {
        match line {
            Line::Label(label) => {
                let _ = writeln!(out, "    // {label}:");
            }
            Line::Code { offset, bytes, text } => {
                for (i, chunk) in bytes.chunks(16).enumerate() {
                    let literals: String = chunk.iter().map(|b| format!("{b:#04x}, ")).collect();
                    let literals = literals.trim_end();
                    if i == 0 {
                        let _ = writeln!(out, "    {literals:<width$}// {offset:04x}  {text}");
                    } else {
                        let _ = writeln!(out, "    {literals}");
                    }
                }
            }
        }
    }
    let _ = writeln!(out, "];");
}

fn write_listing(out: &mut String, lines: &[Line]) {
    for line in lines {
        match line {
            Line::Label(label) => {
                let _ = writeln!(out, "{label}:");
            }
            Line::Code { offset, bytes, text } => {
                let _ = writeln!(out, "  {offset:04x}  {:<30} {text}", hex(bytes));
            }
        }
    }
}

/// `ContextLayout::for_word(word)` as a table.
pub fn describe_layout(word: u32) -> String {
    let layout = ContextLayout::for_word(word);
    let mut out = format!("CallbackContext, {word}-byte words: {} bytes\n", layout.size);
    for (name, offset, size) in layout.fields() {
        let _ = writeln!(out, "  {offset:#06x}  {name:<14}{size:>3} bytes");
    }
    out
}

/// A human-readable description of a blob: both listings with their symbols and page
/// references, and the context layout of the ABI's word size (the `thunks__<abi>` snapshots).
pub fn describe_blob(blob: &Blob) -> Result<String, String> {
    let mut out = String::new();
    let word = blob.abi.word_size();
    let _ = writeln!(out, "abi {} ({})", blob.abi, provenance(blob.abi)?);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "thunk: {} bytes (stride {THUNK_STRIDE}, fill {:#04x}); its record is at the same \
         offset of the data page (slot word, target)",
        blob.thunk.len(),
        blob.fill
    );
    write_listing(&mut out, &listing_of(blob, BlobPart::Thunk));
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "shared code: {} bytes; the data page's first word is the dispatcher",
        blob.entry.len()
    );
    for (name, offset) in blob.symbols {
        let _ = writeln!(out, "  {name:<24}{offset:#06x}");
    }
    write_listing(&mut out, &listing_of(blob, BlobPart::Entry));
    let _ = writeln!(out);
    out.push_str(&describe_layout(word));
    Ok(out)
}
