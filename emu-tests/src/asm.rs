//! Encoding `abi/asm/<abi>/{thunk,entry}.s` into the blobs of `abi/src/blobs/` (DESIGN §6,
//! "Two assemblers must agree").
//!
//! Each source is assembled twice: by keystone (in process) and by clang's integrated assembler
//! (`clang --target=<abi.clang_target()> -c -x assembler`, its `.text` (Mach-O `__text`) and
//! symbols read with the `object` crate from the ELF, COFF or Mach-O object). The bytes must be
//! identical, or encoding fails with both disassemblies. keystone yields bytes only, so the
//! symbol offsets come from clang's object. Symbols are read as written: an assembler label is
//! not decorated, not even in COFF or Mach-O (the leading `_` there belongs to C identifiers).
//!
//! # What the sources must define
//!
//! * `thunk.s`: `bc_thunk` (offset 0), `bc_thunk_slot`, `bc_thunk_jump`.
//! * `entry.s`: `bc_thunk_entry` (offset 0), `bc_resume`, `bc_return_from_context`,
//!   `bc_dispatch_literal` (word-aligned, the word-sized placeholder 0).
//! * Optional `.set` constants `CTX_<FIELD>` / `CTX_<FIELD>_<i>` (slot `i` of an area) and
//!   `RC_<CODE>`: each is checked against [`ContextLayout`] and [`ReturnCode`], so the
//!   assembly cannot drift from `abi/src/context.rs` and `abi/src/plan.rs`.
//!
//! **Patch fields.** A label cannot point inside an instruction, so `bc_thunk_slot` and
//! `bc_thunk_jump` label the *end* of their 4-byte field: the field is the 4 bytes just before
//! the label ([`field_before`]).
//! * x86: the fields are the last 4 bytes of an instruction (the `imm32` of `mov reg, imm32`
//!   and the `rel32` of `jmp`); capstone confirms that the instruction ending at the label has
//!   exactly that immediate span.
//! * AArch64: `bc_thunk_slot` ends a literal word that an `ldr w<n>, <literal>` of the thunk
//!   loads, and `bc_thunk_jump` ends a `b imm26` instruction, patched whole
//!   ([`Patch::Branch26`]); capstone confirms both.
//!
//! **`SAME_AS`.** An ABI whose machine code is another ABI's, byte for byte (its differences
//! are all in the call plans), has no sources of its own: `abi/asm/<abi>/SAME_AS` names the ABI
//! whose directory holds them (`aarch64-apple` → `aarch64-aapcs64`, `i386-win32` →
//! `i386-sysv`). Its blob is generated from those sources, assembled by keystone and by clang
//! for *its own* target (`arm64-apple-macos` Mach-O, `i686-pc-windows-msvc` COFF), and encoding
//! fails unless the bytes and every patch point equal those of the named ABI.
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
//!   silently dropped (DESIGN §6).
//! * AArch64: no `bti` mnemonic (written `hint #34` / `hint #36`). A numeric PC-relative
//!   operand means something else to each assembler: keystone reads `b #0x100` and
//!   `ldr w16, #8` (literal) as absolute addresses, clang as offsets from the instruction
//!   (they agree only at address 0), and DESIGN §6 reports the same of `adr`. The sources name
//!   every PC-relative target with a label. Checked to agree with clang: `ldr w16, label` and
//!   `ldr x17, label` literal loads, `adr x9, label`, `stp`/`ldp` of `x`, `d` and `q` registers
//!   with `#SYM` offsets, pre/post-index `#-SYM`/`#SYM` writeback, `b label` with the target
//!   `.set` to `label + 0x100`, `//` comments.
//! * AArch64 alignment: both assemblers (like every LLVM) pad code with `nop` even for
//!   `.balign 8, 0`; the sources accept that (the padding is never executed).
//!
//! The AArch64 blob's [`Blob::fill`] is 0 (`udf #0`) and x86's `0xcc` (`int3`): the bytes a
//! code page holds between and after thunks.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use backcall_abi::blobs::{Blob, Patch};
use backcall_abi::context::ContextLayout;
use backcall_abi::{Abi, ReturnCode};
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
    if Isa::of(source) != Isa::of(abi) || source.word_size() != abi.word_size() {
        return Err(format!("{shown}: {source} is another instruction set than {abi}"));
    }
    Ok(source)
}

/// The instruction set an ABI's code is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// IA-32
    X86,
    /// x86-64
    X86_64,
    /// AArch64 (A64, little endian)
    Aarch64,
}

impl Isa {
    /// The ISA of `abi`.
    pub fn of(abi: Abi) -> Isa {
        match abi {
            Abi::I386Sysv | Abi::I386Win32 => Isa::X86,
            Abi::X86_64Sysv | Abi::X86_64Win64 => Isa::X86_64,
            Abi::Aarch64Aapcs64 | Abi::Aarch64Apple => Isa::Aarch64,
        }
    }

    /// Unicorn's architecture and mode for this ISA (the emulated machine's).
    pub fn unicorn(self) -> (unicorn_engine::Arch, unicorn_engine::Mode) {
        use unicorn_engine::{Arch, Mode};
        match self {
            Isa::X86 => (Arch::X86, Mode::MODE_32),
            Isa::X86_64 => (Arch::X86, Mode::MODE_64),
            Isa::Aarch64 => (Arch::ARM64, Mode::ARM),
        }
    }

    fn keystone(self) -> Result<keystone_engine::Keystone, String> {
        use keystone_engine::{Arch, Keystone, Mode};
        let (arch, mode) = match self {
            Isa::X86 => (Arch::X86, Mode::MODE_32),
            Isa::X86_64 => (Arch::X86, Mode::MODE_64),
            Isa::Aarch64 => (Arch::ARM64, Mode::LITTLE_ENDIAN),
        };
        // No `option()` call: any option switches keystone to radix 16 (see the module docs).
        Keystone::new(arch, mode).map_err(|e| format!("keystone: {e}"))
    }

    /// A capstone disassembler for this ISA (x86: Intel syntax), with instruction details.
    pub fn capstone(self) -> Capstone {
        use capstone::arch::x86::{ArchMode, ArchSyntax};
        let mode = match self {
            Isa::X86 => ArchMode::Mode32,
            Isa::X86_64 => ArchMode::Mode64,
            Isa::Aarch64 => {
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

    /// How a thunk's branch to thunkEntry is patched.
    pub fn patch(self) -> Patch {
        match self {
            Isa::X86 | Isa::X86_64 => Patch::Rel32,
            Isa::Aarch64 => Patch::Branch26,
        }
    }

    /// The byte that fills gaps: `int3` on x86; on AArch64 0, so a word of it is `udf #0`.
    pub fn fill(self) -> u8 {
        match self {
            Isa::X86 | Isa::X86_64 => 0xcc,
            Isa::Aarch64 => 0x00,
        }
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

/// Assembles `src` with keystone for `isa` at address 0.
pub fn keystone_assemble(isa: Isa, src: &str) -> Result<Vec<u8>, String> {
    let ks = isa.keystone()?;
    let out = ks.asm(keystone_source(src), 0).map_err(|e| format!("keystone: {e}"))?;
    Ok(out.bytes)
}

/// Assembles `path` with `clang --target=<abi.clang_target()>` (`$BACKCALL_CLANG`, default
/// `clang`) and reads the object.
pub fn clang_assemble(abi: Abi, path: &Path) -> Result<Assembled, String> {
    let program = std::env::var("BACKCALL_CLANG").unwrap_or_else(|_| "clang".to_string());
    let output = Command::new(&program)
        .arg(format!("--target={}", abi.clang_target()))
        .args(["-c", "-x", "assembler"])
        .arg(path)
        .args(["-o", "-"])
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "clang --target={} failed on {}:\n{}",
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

/// Assembles `path` with keystone and clang; fails unless both give the same bytes.
pub fn assemble(abi: Abi, path: &Path) -> Result<Assembled, String> {
    let isa = Isa::of(abi);
    let src = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let keystone = keystone_assemble(isa, &src).map_err(|e| format!("{}: {e}", path.display()))?;
    let clang = clang_assemble(abi, path)?;
    if keystone != clang.bytes {
        return Err(format!(
            "{}: keystone and clang disagree ({} vs {} bytes)\n{}",
            path.display(),
            keystone.len(),
            clang.bytes.len(),
            disagreement(isa, &keystone, &clang.bytes)
        ));
    }
    Ok(clang)
}

/// Side-by-side disassembly of the instructions where two encodings differ.
fn disagreement(isa: Isa, keystone: &[u8], clang: &[u8]) -> String {
    let lines = |bytes: &[u8]| -> Vec<String> {
        listing(isa, bytes, &[], None)
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

/// The offset of a 4-byte patch field whose label marks its end.
pub fn field_before(label: u32) -> u32 {
    label - 4
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
            && (a.dispatch_literal, a.return_from_context, a.resume)
                == (b.dispatch_literal, b.return_from_context, b.resume)
            && (a.thunk_slot, a.thunk_jump, a.jump, a.fill)
                == (b.thunk_slot, b.thunk_jump, b.jump, b.fill);
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

/// Assembles and checks `abi/asm/<source>/` as `abi`'s code.
fn encode_sources(abi: Abi, source: Abi) -> Result<Encoded, String> {
    let isa = Isa::of(abi);
    let dir = asm_dir(source);
    let (thunk_path, entry_path) = (dir.join("thunk.s"), dir.join("entry.s"));
    let for_abi = |e: String| if abi == source { e } else { format!("{e} (assembled for {abi})") };
    let thunk = assemble(abi, &thunk_path).map_err(for_abi)?;
    let entry = assemble(abi, &entry_path).map_err(for_abi)?;
    let word = abi.word_size();

    let at_zero = |a: &Assembled, path: &Path, name: &str| -> Result<(), String> {
        match a.label(path, name)? {
            0 => Ok(()),
            other => Err(format!("{}: `{name}` is at {other:#x}, not 0", path.display())),
        }
    };
    at_zero(&thunk, &thunk_path, "bc_thunk")?;
    at_zero(&entry, &entry_path, "bc_thunk_entry")?;
    let thunk_slot = field_before(thunk.label(&thunk_path, "bc_thunk_slot")?);
    let thunk_jump = field_before(thunk.label(&thunk_path, "bc_thunk_jump")?);
    let checked = match isa {
        Isa::X86 | Isa::X86_64 => check_field(isa, &thunk, thunk_slot, "bc_thunk_slot", false)
            .and_then(|()| check_field(isa, &thunk, thunk_jump, "bc_thunk_jump", true)),
        Isa::Aarch64 => check_literal_field(&thunk, thunk_slot, "bc_thunk_slot")
            .and_then(|()| check_branch26_field(&thunk, thunk_jump, "bc_thunk_jump")),
    };
    checked.map_err(|e| format!("{}: {e}", thunk_path.display()))?;
    if thunk.bytes.len() > backcall_abi::thunks::THUNK_STRIDE as usize {
        return Err(format!("{}: the thunk is longer than 16 bytes", thunk_path.display()));
    }

    let literal = entry.label(&entry_path, "bc_dispatch_literal")?;
    let literal_bytes = entry.bytes.get(literal as usize..(literal + word) as usize);
    if literal % word != 0 || literal_bytes.is_none_or(|b| b.iter().any(|&x| x != 0)) {
        return Err(format!(
            "{}: bc_dispatch_literal must be a {word}-aligned, {word}-byte 0 inside .text",
            entry_path.display()
        ));
    }
    check_constants(abi, &entry).map_err(|e| format!("{}: {e}", entry_path.display()))?;
    check_constants(abi, &thunk).map_err(|e| format!("{}: {e}", thunk_path.display()))?;

    let blob = Blob {
        abi,
        entry: Vec::leak(entry.bytes.clone()),
        dispatch_literal: literal,
        return_from_context: entry.label(&entry_path, "bc_return_from_context")?,
        resume: entry.label(&entry_path, "bc_resume")?,
        thunk: Vec::leak(thunk.bytes.clone()),
        thunk_slot,
        thunk_jump,
        jump: isa.patch(),
        fill: isa.fill(),
    };
    Ok(Encoded { abi, source, thunk, entry, blob })
}

/// x86: checks that the instruction ending at `field + 4` keeps its 32-bit immediate (the
/// imm32 or rel32) exactly in `field..field + 4`, and is a jump when `jump`.
fn check_field(isa: Isa, a: &Assembled, field: u32, label: &str, jump: bool) -> Result<(), String> {
    let cs = isa.capstone();
    let insns = cs.disasm_all(&a.bytes, 0).map_err(|e| e.to_string())?;
    let end = u64::from(field) + 4;
    let insn = insns
        .iter()
        .find(|i| i.address() + i.len() as u64 == end)
        .ok_or_else(|| format!("`{label}` does not mark the end of an instruction"))?;
    let detail = cs.insn_detail(insn).map_err(|e| e.to_string())?;
    let arch = detail.arch_detail();
    let x86 = arch.x86().expect("x86 detail");
    let imm = x86.encoding().imm;
    let expected = insn.len() - 4;
    if imm.map(|s| (usize::from(s.offset), s.size)) != Some((expected, 4)) {
        return Err(format!(
            "the instruction before `{label}` ({} {}) does not end in a 4-byte immediate",
            insn.mnemonic().unwrap_or("?"),
            insn.op_str().unwrap_or("")
        ));
    }
    let is_jump =
        detail.groups().iter().any(|g| u32::from(g.0) == capstone::InsnGroupType::CS_GRP_JUMP);
    if is_jump != jump {
        let what = if jump { "must" } else { "must not" };
        return Err(format!("the instruction before `{label}` {what} be a jump"));
    }
    Ok(())
}

/// The A64 word at `offset`, if it is inside `bytes` and 4-aligned.
fn a64_word(bytes: &[u8], offset: u32) -> Option<u32> {
    let b = bytes.get(offset as usize..offset as usize + 4)?;
    offset.is_multiple_of(4).then(|| u32::from_le_bytes(b.try_into().expect("4 bytes")))
}

/// The target of an A64 `ldr w<t>, <literal>` (LDR literal, 32-bit: `0x18` in bits 31..24)
/// at `pc`, if `insn` is one.
pub fn a64_ldr_w_literal_target(insn: u32, pc: u64) -> Option<u64> {
    if insn & 0xff00_0000 != 0x1800_0000 {
        return None;
    }
    let imm19 = ((insn >> 5) & 0x7_ffff) as i64;
    let words = (imm19 << 45) >> 45; // sign-extend 19 bits
    Some(pc.wrapping_add((words * 4) as u64))
}

/// The target of an A64 `b imm26` at `pc`, if `insn` is one.
pub fn a64_branch26_target(insn: u32, pc: u64) -> Option<u64> {
    if insn & 0xfc00_0000 != 0x1400_0000 {
        return None;
    }
    let words = (((insn & 0x03ff_ffff) as i64) << 38) >> 38; // sign-extend 26 bits
    Some(pc.wrapping_add((words * 4) as u64))
}

/// AArch64: checks that `field..field + 4` is a 4-aligned literal word, 0 in the template,
/// loaded by an `ldr w<n>, <literal>` of `a` (capstone agrees), and never executed (it follows
/// an unconditional `b`).
fn check_literal_field(a: &Assembled, field: u32, label: &str) -> Result<(), String> {
    if a64_word(&a.bytes, field) != Some(0) {
        return Err(format!("`{label}` does not end a 4-aligned literal word 0"));
    }
    let cs = Isa::Aarch64.capstone();
    let loads = (0..a.bytes.len() as u32).step_by(4).filter(|&pc| {
        let insn = a64_word(&a.bytes, pc).expect("in range");
        a64_ldr_w_literal_target(insn, u64::from(pc)) == Some(u64::from(field))
    });
    let mut found = false;
    for pc in loads {
        let decoded = cs.disasm_count(&a.bytes[pc as usize..pc as usize + 4], u64::from(pc), 1);
        let text = decoded.ok().and_then(|insns| {
            let insn = insns.iter().next()?;
            Some(format!("{} {}", insn.mnemonic()?, insn.op_str()?))
        });
        match text {
            Some(t) if t.starts_with("ldr w") && t.ends_with(&format!("#{field:#x}")) => {
                found = true;
            }
            other => return Err(format!("capstone reads the load of `{label}` as {other:?}")),
        }
    }
    if !found {
        return Err(format!("no `ldr w<n>, <literal>` loads the word before `{label}`"));
    }
    let before = field.checked_sub(4).and_then(|pc| a64_word(&a.bytes, pc));
    if before.and_then(|insn| a64_branch26_target(insn, 0)).is_none() {
        return Err(format!("the literal before `{label}` must follow an unconditional `b`"));
    }
    Ok(())
}

/// AArch64: checks that `field..field + 4` is a `b imm26` instruction (capstone agrees: a
/// jump).
fn check_branch26_field(a: &Assembled, field: u32, label: &str) -> Result<(), String> {
    let insn = a64_word(&a.bytes, field)
        .ok_or_else(|| format!("`{label}` does not end a 4-aligned word"))?;
    if a64_branch26_target(insn, 0).is_none() {
        return Err(format!("the instruction before `{label}` ({insn:#010x}) is not `b imm26`"));
    }
    let cs = Isa::Aarch64.capstone();
    let bytes = &a.bytes[field as usize..field as usize + 4];
    let insns = cs.disasm_count(bytes, u64::from(field), 1).map_err(|e| e.to_string())?;
    let insn = insns.iter().next().ok_or("capstone cannot decode the branch")?;
    let detail = cs.insn_detail(insn).map_err(|e| e.to_string())?;
    let is_jump =
        detail.groups().iter().any(|g| u32::from(g.0) == capstone::InsnGroupType::CS_GRP_JUMP);
    if insn.mnemonic() != Some("b") || !is_jump {
        return Err(format!("capstone reads the instruction before `{label}` as {insn}"));
    }
    Ok(())
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
/// (`INT_REGS_3`; integer areas have word-sized slots, float areas 8-byte slots).
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
    let slot_size = if name.contains("float") { 8 } else { layout.word };
    (size > slot_size && (slot + 1) * slot_size <= size)
        .then(|| u64::from(offset + slot * slot_size))
}

fn return_code(name: &str) -> Option<u32> {
    use ReturnCode::*;
    let code = match name {
        "VOID" => Void,
        "WORD" => Word,
        "WORD64" => Word64,
        "DOUBLE" => Double,
        "STRUCT" => Struct,
        "FLOAT" => Float,
        "HIDDEN_POINTER" => HiddenPointer,
        _ => return None,
    };
    Some(code as u32)
}

/// One line of a disassembly listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// a symbol at the following offset
    Label(String),
    /// an instruction (or data) at `offset`
    Code {
        /// offset in the blob
        offset: u32,
        /// its bytes
        bytes: Vec<u8>,
        /// capstone's text, or a description of data
        text: String,
    },
}

/// Disassembles `bytes` (at address 0) with capstone, with `labels` inserted before the code at
/// their offsets and `data` (offset, length, description) shown as data.
pub fn listing(
    isa: Isa,
    bytes: &[u8],
    labels: &[(u32, &str)],
    data: Option<(u32, u32, &str)>,
) -> Vec<Line> {
    let cs = isa.capstone();
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
        if let Some((start, size, text)) = data.filter(|d| d.0 == offset) {
            let end = (start + size).min(len);
            let bytes = bytes[start as usize..end as usize].to_vec();
            out.push(Line::Code { offset, bytes, text: text.to_string() });
            offset = end;
            continue;
        }
        let end = data.map(|d| d.0).filter(|&s| s > offset).unwrap_or(len).min(len);
        let code = &bytes[offset as usize..end as usize];
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

/// The labels of a blob's thunk.
pub fn thunk_labels(blob: &Blob) -> Vec<(u32, &'static str)> {
    vec![
        (0, "bc_thunk"),
        (blob.thunk_slot + 4, "bc_thunk_slot"),
        (blob.thunk_jump + 4, "bc_thunk_jump"),
    ]
}

/// The labels of a blob's entry code.
pub fn entry_labels(blob: &Blob) -> Vec<(u32, &'static str)> {
    vec![
        (0, "bc_thunk_entry"),
        (blob.resume, "bc_resume"),
        (blob.return_from_context, "bc_return_from_context"),
        (blob.dispatch_literal, "bc_dispatch_literal"),
    ]
}

fn entry_data(blob: &Blob) -> Option<(u32, u32, &'static str)> {
    Some((blob.dispatch_literal, blob.abi.word_size(), "dispatcher address (patched)"))
}

/// The thunk's data: the AArch64 slot id is a literal word, not an instruction's immediate.
fn thunk_data(blob: &Blob) -> Option<(u32, u32, &'static str)> {
    match blob.jump {
        Patch::Rel32 => None,
        Patch::Branch26 => Some((blob.thunk_slot, 4, "slot id (patched)")),
    }
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
/// another's ([`SAME_AS`]; [`encode`] checked the bytes and patch points equal) reuses that
/// ABI's blob, arrays included, with only its own `abi`.
pub fn render_blob_file(blob: &Blob) -> Result<String, String> {
    let isa = Isa::of(blob.abi);
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
            "//! {id}: the thunk and thunkEntry of {source}, byte for byte (keystone and clang's \
             integrated assembler encode them identically for {}).",
            blob.abi.clang_target()
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "/// The {id} blob: the {source} blob's code and patch points.");
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
        "//! {id}: thunk and thunkEntry, encoded by keystone and clang's integrated assembler \
         (identical)."
    );
    let thunk = listing(isa, blob.thunk, &thunk_labels(blob), thunk_data(blob));
    let entry = listing(isa, blob.entry, &entry_labels(blob), entry_data(blob));
    render_array(&mut out, "THUNK", "The thunk template (`thunk.s`).", &thunk, blob.thunk.len());
    render_array(
        &mut out,
        "ENTRY",
        "thunkEntry, the resume point, `return_from_context`, the dispatcher literal (`entry.s`).",
        &entry,
        blob.entry.len(),
    );
    let patch = match blob.jump {
        Patch::Rel32 => "Rel32",
        Patch::Branch26 => "Branch26",
    };
    let _ = writeln!(out);
    let _ = writeln!(out, "/// The {id} blob.");
    let _ = writeln!(out, "pub const BLOB: super::Blob = super::Blob {{");
    let _ = writeln!(out, "    abi: crate::Abi::{:?},", blob.abi);
    let _ = writeln!(out, "    entry: &ENTRY,");
    let _ = writeln!(out, "    dispatch_literal: {:#x},", blob.dispatch_literal);
    let _ = writeln!(out, "    return_from_context: {:#x},", blob.return_from_context);
    let _ = writeln!(out, "    resume: {:#x},", blob.resume);
    let _ = writeln!(out, "    thunk: &THUNK,");
    let _ = writeln!(out, "    thunk_slot: {:#x},", blob.thunk_slot);
    let _ = writeln!(out, "    thunk_jump: {:#x},", blob.thunk_jump);
    let _ = writeln!(out, "    jump: super::Patch::{patch},");
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

/// A human-readable description of a blob: both listings with their symbols and patch fields,
/// and the context layout of the ABI's word size (the `thunks__<abi>` snapshots).
pub fn describe_blob(blob: &Blob) -> Result<String, String> {
    let isa = Isa::of(blob.abi);
    let mut out = String::new();
    let word = blob.abi.word_size();
    let _ = writeln!(out, "abi {} ({})", blob.abi, provenance(blob.abi)?);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "thunk: {} bytes (stride {}, fill {:#04x})",
        blob.thunk.len(),
        backcall_abi::thunks::THUNK_STRIDE,
        blob.fill
    );
    let _ = writeln!(
        out,
        "  slot id field  {:#06x}..{:#06x} (u32)",
        blob.thunk_slot,
        blob.thunk_slot + 4
    );
    let _ = writeln!(
        out,
        "  jump field     {:#06x}..{:#06x} ({:?} to thunkEntry)",
        blob.thunk_jump,
        blob.thunk_jump + 4,
        blob.jump
    );
    write_listing(&mut out, &listing(isa, blob.thunk, &thunk_labels(blob), thunk_data(blob)));
    let _ = writeln!(out);
    let _ = writeln!(out, "entry: {} bytes", blob.entry.len());
    for (offset, name) in entry_labels(blob) {
        let _ = writeln!(out, "  {name:<24}{offset:#06x}");
    }
    let _ = writeln!(out, "  dispatcher literal: {word} bytes");
    write_listing(&mut out, &listing(isa, blob.entry, &entry_labels(blob), entry_data(blob)));
    let _ = writeln!(out);
    out.push_str(&describe_layout(word));
    Ok(out)
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
