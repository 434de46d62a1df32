//! A static linker for one relocatable object file at a time (ARCHITECTURE.md §6, "load the real object
//! file ... relocations applied").
//!
//! Layering: [`link`] reads an object with the `object` crate, lays its allocated sections out
//! from a base address (each at its own alignment, then common symbols, then a small GOT),
//! resolves symbols (defined ones to their placed addresses, undefined ones through the caller's
//! `imports`), applies every relocation, and answers an [`Image`]: the bytes to copy to the base
//! address and the symbol table. It knows nothing about Unicorn; the machine copies the image
//! into guest memory.
//!
//! Formats and relocations covered, i.e. what `clang --target=<triple> -c -fno-pic` emits for
//! the six oracle triples:
//!
//! | format | machine | relocations |
//! | --- | --- | --- |
//! | ELF | x86-64 | `64`, `PC32`, `PLT32`, `32`, `32S`, `PC64`, `GOTPCREL`, `(REX_)GOTPCRELX` |
//! | ELF | i386 | `32`, `PC32`, `PLT32` (implicit addends, REL) |
//! | ELF | AArch64 | `ABS64/32`, `PREL64/32`, `ADR_PREL_PG_HI21`, `ADR_PREL_LO21`, `ADD_ABS_LO12_NC`, `LDST{8,16,32,64,128}_ABS_LO12_NC`, `CALL26`, `JUMP26`, `ADR_GOT_PAGE`, `LD64_GOT_LO12_NC` |
//! | COFF | AMD64 | `ADDR64`, `ADDR32`, `ADDR32NB`, `REL32`, `REL32_1`..`REL32_5` |
//! | COFF | I386 | `DIR32`, `DIR32NB`, `REL32` |
//! | Mach-O | ARM64 | `UNSIGNED` (+ `SUBTRACTOR`), `BRANCH26`, `PAGE21`, `PAGEOFF12` (add and every scaled load/store form), `GOT_LOAD_PAGE21`, `GOT_LOAD_PAGEOFF12`, `POINTER_TO_GOT`; `ADDEND` pairs (folded in by `object`) |
//!
//! Unwind tables (`.eh_frame`, `.pdata`/`.xdata`, `__compact_unwind`) and debug sections are not
//! loaded. Symbol names keep their decoration; [`Image::lookup`] finds a C name behind the
//! platform's prefix (`_name` on Mach-O and COFF i386, `_name@N` / `@name@N` for i386
//! stdcall/fastcall).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use object::{
    elf, macho, pe, Architecture, BinaryFormat, Object, ObjectSection, ObjectSymbol, Relocation,
    RelocationFlags, RelocationTarget, SectionFlags, SectionIndex, SectionKind, SymbolIndex,
    SymbolSection,
};

/// Sections that are never loaded even when allocated: unwind tables (the harness never
/// unwinds), kept out so their relocations need no support.
const SKIPPED_SECTIONS: &[&str] =
    &[".eh_frame", ".pdata", ".xdata", "__eh_frame", "__compact_unwind", ".llvm_addrsig"];

/// A linked object: bytes for `base..base + bytes.len()` and its symbols.
#[derive(Clone, Debug)]
pub struct Image {
    /// where the image must be copied
    pub base: u64,
    /// the image: sections, common symbols and GOT, relocated
    pub bytes: Vec<u8>,
    /// the object's format
    pub format: BinaryFormat,
    /// the object's architecture
    pub arch: Architecture,
    /// where each loaded section went
    pub sections: Vec<PlacedSection>,
    /// every named defined symbol (local and global), decorated as in the object
    pub symbols: BTreeMap<String, u64>,
    /// the global defined symbols (what another object may import)
    pub exports: BTreeMap<String, u64>,
    /// how many relocations of each type were applied
    pub relocations: BTreeMap<&'static str, usize>,
}

/// One loaded section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacedSection {
    /// its name in the object (`.text`, `__TEXT,__text` is given as `__text`)
    pub name: String,
    /// its guest address
    pub address: u64,
    /// its size in bytes
    pub size: u64,
}

/// Why an object cannot be linked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// the bytes are not an object file `object` can read
    Parse(String),
    /// the object is for another machine than the one it is loaded into
    Architecture {
        /// what the machine runs
        expected: Architecture,
        /// what the object contains
        found: Architecture,
    },
    /// an undefined symbol the imports do not provide
    Undefined {
        /// the symbol, as decorated in the object
        symbol: String,
    },
    /// a relocation this linker does not implement
    UnsupportedRelocation {
        /// the section being relocated
        section: String,
        /// offset of the relocated field in that section
        offset: u64,
        /// the relocation type, named
        what: String,
    },
    /// a relocated value does not fit its field (or violates its alignment)
    Overflow {
        /// the relocation type, named
        what: String,
        /// the target symbol
        symbol: String,
        /// the value that did not fit
        value: i64,
    },
    /// anything else the object needs and the linker does not give (TLS, a relocation
    /// against a section that is not loaded, ...)
    Unsupported(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Parse(e) => write!(f, "not a readable object file: {e}"),
            LoadError::Architecture { expected, found } => {
                write!(f, "object is for {found:?}, the machine runs {expected:?}")
            }
            LoadError::Undefined { symbol } => {
                write!(f, "undefined symbol `{symbol}` (not defined by the object or the imports)")
            }
            LoadError::UnsupportedRelocation { section, offset, what } => {
                write!(f, "unsupported relocation {what} at {section}+{offset:#x}")
            }
            LoadError::Overflow { what, symbol, value } => {
                write!(f, "relocation {what} against `{symbol}`: value {value:#x} does not fit")
            }
            LoadError::Unsupported(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for LoadError {}

impl Image {
    /// The address of C symbol `name`, whatever the platform's decoration: `name` itself, then
    /// `_name` (Mach-O, COFF i386 cdecl), then a unique `_name@N` (stdcall) or `@name@N`
    /// (fastcall).
    pub fn lookup(&self, name: &str) -> Option<u64> {
        lookup_decorated(&self.symbols, name)
    }

    /// One past the last byte of the image.
    pub fn end(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }
}

/// [`Image::lookup`] over any symbol table.
pub fn lookup_decorated(table: &BTreeMap<String, u64>, name: &str) -> Option<u64> {
    if let Some(&a) = table.get(name) {
        return Some(a);
    }
    if let Some(&a) = table.get(&format!("_{name}")) {
        return Some(a);
    }
    let stdcall = format!("_{name}@");
    let fastcall = format!("@{name}@");
    let mut found = table.iter().filter(|(k, _)| {
        let rest = k.strip_prefix(&stdcall).or_else(|| k.strip_prefix(&fastcall));
        rest.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    match (found.next(), found.next()) {
        (Some((_, &a)), None) => Some(a),
        _ => None,
    }
}

/// The `object` architecture of objects clang emits for an ABI's triple.
pub fn architecture_of(abi: backcall_abi::Abi) -> Architecture {
    use backcall_abi::Abi;
    match abi {
        Abi::I386Sysv | Abi::I386Win32 => Architecture::I386,
        Abi::X86_64Sysv | Abi::X86_64Win64 => Architecture::X86_64,
        Abi::Aarch64Aapcs64 | Abi::Aarch64Apple => Architecture::Aarch64,
    }
}

/// Links the object in `data` for address `base`. `imports` answers the address of an
/// undefined symbol (by its decorated name) or `None`.
pub fn link(
    data: &[u8],
    base: u64,
    imports: &dyn Fn(&str) -> Option<u64>,
) -> Result<Image, LoadError> {
    let file = object::File::parse(data).map_err(|e| LoadError::Parse(e.to_string()))?;
    Linker::new(&file, base, imports)?.finish()
}

/// What a relocation computes and how it stores the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// `S + A`, 64-bit field
    Abs64,
    /// `S + A`, 32-bit field, must fit unsigned (or, for 32-bit targets, wrap)
    Abs32,
    /// `S + A`, 32-bit field, must fit signed (x86-64 `32S`)
    Abs32S,
    /// `S + A - base`, 32-bit field (COFF image-relative)
    ImageRel32,
    /// `S + A - P + bias`, signed 32-bit field
    Rel32 { bias: i64 },
    /// `S + A - P`, 64-bit field
    Rel64,
    /// AArch64 `adrp`: `Page(S + A) - Page(P)`
    AdrpPage,
    /// AArch64 `adr`: `S + A - P`, 21 bits
    Adr,
    /// AArch64 12-bit low part into an `add` (shift 0) or scaled load/store (shift n)
    Lo12 { shift: u32 },
    /// Mach-O `PAGEOFF12`: the shift is read off the instruction
    Lo12FromInsn,
    /// AArch64 `b`/`bl`: `(S + A - P) >> 2`, 26 bits
    Branch26,
}

/// A decoded relocation: the operation, whether `S` is the symbol's GOT slot, and whether the
/// addend is stored in the field.
#[derive(Clone, Copy, Debug)]
struct Decoded {
    op: Op,
    got: bool,
    implicit: bool,
    name: &'static str,
}

struct Linker<'a, 'data> {
    file: &'a object::File<'data>,
    base: u64,
    imports: &'a dyn Fn(&str) -> Option<u64>,
    bytes: Vec<u8>,
    /// image offset of each loaded section
    placed: HashMap<SectionIndex, u64>,
    common: HashMap<SymbolIndex, u64>,
    got: HashMap<SymbolIndex, u64>,
    sections: Vec<PlacedSection>,
    applied: BTreeMap<&'static str, usize>,
}

impl<'a, 'data> Linker<'a, 'data> {
    fn new(
        file: &'a object::File<'data>,
        base: u64,
        imports: &'a dyn Fn(&str) -> Option<u64>,
    ) -> Result<Linker<'a, 'data>, LoadError> {
        let mut l = Linker {
            file,
            base,
            imports,
            bytes: Vec::new(),
            placed: HashMap::new(),
            common: HashMap::new(),
            got: HashMap::new(),
            sections: Vec::new(),
            applied: BTreeMap::new(),
        };
        l.layout()?;
        Ok(l)
    }

    fn word(&self) -> u64 {
        if self.file.is_64() {
            8
        } else {
            4
        }
    }

    /// Places sections, common symbols and GOT slots; copies section contents.
    fn layout(&mut self) -> Result<(), LoadError> {
        let mut cursor = 0u64;
        // Code and constants first, then what the guest writes, on pages of its own: a store
        // to a page holding translated code makes Unicorn invalidate it mid-block, which can
        // end the emulation early (a caller's result buffer beside its code did).
        let sections: Vec<_> = self.file.sections().filter(loadable).collect();
        let (written, read_only): (Vec<_>, Vec<_>) = sections.into_iter().partition(is_written);
        let first_written = written.first().map(|s| s.index());
        for section in read_only.into_iter().chain(written) {
            if Some(section.index()) == first_written {
                cursor = round_up(cursor, WRITABLE_PAGE);
            }
            if matches!(section.kind(), SectionKind::Tls | SectionKind::UninitializedTls) {
                return Err(LoadError::Unsupported(format!(
                    "thread-local section {} is not supported",
                    section.name().unwrap_or("?")
                )));
            }
            cursor = round_up(cursor, section.align().max(1));
            self.placed.insert(section.index(), cursor);
            self.sections.push(PlacedSection {
                name: section.name().unwrap_or("?").to_string(),
                address: self.base + cursor,
                size: section.size(),
            });
            cursor += section.size();
        }
        cursor = round_up(cursor, WRITABLE_PAGE);
        for symbol in self.file.symbols() {
            if symbol.is_common() {
                // ELF keeps a common symbol's alignment in its value; others: natural, ≤ 16.
                let align = match self.file.format() {
                    BinaryFormat::Elf => symbol.address().max(1),
                    _ => symbol.size().next_power_of_two().clamp(1, 16),
                };
                cursor = round_up(cursor, align);
                self.common.insert(symbol.index(), cursor);
                cursor += symbol.size();
            }
        }
        cursor = round_up(cursor, self.word());
        for section in self.file.sections().filter(|s| self.placed.contains_key(&s.index())) {
            for (_, reloc) in section.relocations() {
                let d = self.decode(&section, 0, &reloc)?;
                if let (true, RelocationTarget::Symbol(sym)) = (d.got, reloc.target()) {
                    if let std::collections::hash_map::Entry::Vacant(e) = self.got.entry(sym) {
                        e.insert(cursor);
                        cursor += self.word();
                    }
                }
            }
        }
        self.bytes = vec![0; cursor as usize];
        for section in self.file.sections() {
            let Some(&at) = self.placed.get(&section.index()) else { continue };
            if section.kind() == SectionKind::UninitializedData {
                continue;
            }
            let data = section.data().map_err(|e| LoadError::Parse(e.to_string()))?;
            self.bytes[at as usize..at as usize + data.len()].copy_from_slice(data);
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Image, LoadError> {
        let got: Vec<(SymbolIndex, u64)> = self.got.iter().map(|(k, v)| (*k, *v)).collect();
        for (sym, at) in got {
            let value = self.symbol_address(sym)?;
            let w = self.word() as usize;
            self.bytes[at as usize..at as usize + w].copy_from_slice(&value.to_le_bytes()[..w]);
        }
        let sections: Vec<_> =
            self.file.sections().filter(|s| self.placed.contains_key(&s.index())).collect();
        for section in &sections {
            for (offset, reloc) in section.relocations() {
                self.relocate(section, offset, &reloc)?;
            }
        }
        let mut symbols = BTreeMap::new();
        let mut exports = BTreeMap::new();
        for symbol in self.file.symbols() {
            let Ok(name) = symbol.name() else { continue };
            if name.is_empty() || !symbol.is_definition() && !symbol.is_common() {
                continue;
            }
            if matches!(symbol.kind(), object::SymbolKind::Section | object::SymbolKind::File) {
                continue;
            }
            let Ok(address) = self.symbol_address(symbol.index()) else { continue };
            symbols.insert(name.to_string(), address);
            if symbol.is_global() {
                exports.insert(name.to_string(), address);
            }
        }
        Ok(Image {
            base: self.base,
            bytes: self.bytes,
            format: self.file.format(),
            arch: self.file.architecture(),
            sections: self.sections,
            symbols,
            exports,
            relocations: self.applied,
        })
    }

    fn symbol_name(&self, index: SymbolIndex) -> String {
        self.file
            .symbol_by_index(index)
            .ok()
            .and_then(|s| s.name().ok().map(str::to_string))
            .unwrap_or_else(|| format!("symbol #{}", index.0))
    }

    /// The guest address of a symbol.
    fn symbol_address(&self, index: SymbolIndex) -> Result<u64, LoadError> {
        let symbol =
            self.file.symbol_by_index(index).map_err(|e| LoadError::Parse(e.to_string()))?;
        let name = symbol.name().unwrap_or("?");
        match symbol.section() {
            SymbolSection::Section(si) => {
                let section =
                    self.file.section_by_index(si).map_err(|e| LoadError::Parse(e.to_string()))?;
                let at = self.placed.get(&si).ok_or_else(|| {
                    LoadError::Unsupported(format!(
                        "symbol `{name}` is in section {}, which is not loaded",
                        section.name().unwrap_or("?")
                    ))
                })?;
                Ok(self.base + at + (symbol.address() - section.address()))
            }
            SymbolSection::Absolute => Ok(symbol.address()),
            SymbolSection::Common => Ok(self.base + self.common[&index]),
            SymbolSection::Undefined if symbol.is_common() => Ok(self.base + self.common[&index]),
            SymbolSection::Undefined => match (self.imports)(name) {
                Some(a) => Ok(a),
                None if symbol.is_weak() => Ok(0),
                None => Err(LoadError::Undefined { symbol: name.to_string() }),
            },
            _ => Err(LoadError::Unsupported(format!("symbol `{name}` has no usable section"))),
        }
    }

    /// Names and classifies a relocation; refuses the ones not implemented.
    fn decode(
        &self,
        section: &object::Section<'_, '_>,
        offset: u64,
        reloc: &Relocation,
    ) -> Result<Decoded, LoadError> {
        let unsupported = |what: String| LoadError::UnsupportedRelocation {
            section: section.name().unwrap_or("?").to_string(),
            offset,
            what,
        };
        let d = |op, name| Decoded { op, got: false, implicit: false, name };
        let g = |op, name| Decoded { op, got: true, implicit: false, name };
        let arch = self.file.architecture();
        let decoded = match (reloc.flags(), arch) {
            (RelocationFlags::Elf { r_type }, Architecture::X86_64) => match r_type {
                elf::R_X86_64_64 => d(Op::Abs64, "R_X86_64_64"),
                elf::R_X86_64_PC32 => d(Op::Rel32 { bias: 0 }, "R_X86_64_PC32"),
                elf::R_X86_64_PLT32 => d(Op::Rel32 { bias: 0 }, "R_X86_64_PLT32"),
                elf::R_X86_64_32 => d(Op::Abs32, "R_X86_64_32"),
                elf::R_X86_64_32S => d(Op::Abs32S, "R_X86_64_32S"),
                elf::R_X86_64_PC64 => d(Op::Rel64, "R_X86_64_PC64"),
                elf::R_X86_64_GOTPCREL => g(Op::Rel32 { bias: 0 }, "R_X86_64_GOTPCREL"),
                elf::R_X86_64_GOTPCRELX => g(Op::Rel32 { bias: 0 }, "R_X86_64_GOTPCRELX"),
                elf::R_X86_64_REX_GOTPCRELX => g(Op::Rel32 { bias: 0 }, "R_X86_64_REX_GOTPCRELX"),
                t => return Err(unsupported(format!("ELF x86-64 type {}", t.0))),
            },
            (RelocationFlags::Elf { r_type }, Architecture::I386) => {
                let mut x = match r_type {
                    elf::R_386_32 => d(Op::Abs32, "R_386_32"),
                    elf::R_386_PC32 => d(Op::Rel32 { bias: 0 }, "R_386_PC32"),
                    elf::R_386_PLT32 => d(Op::Rel32 { bias: 0 }, "R_386_PLT32"),
                    t => return Err(unsupported(format!("ELF i386 type {}", t.0))),
                };
                x.implicit = reloc.has_implicit_addend();
                x
            }
            (RelocationFlags::Elf { r_type }, Architecture::Aarch64) => match r_type {
                elf::R_AARCH64_ABS64 => d(Op::Abs64, "R_AARCH64_ABS64"),
                elf::R_AARCH64_ABS32 => d(Op::Abs32, "R_AARCH64_ABS32"),
                elf::R_AARCH64_PREL64 => d(Op::Rel64, "R_AARCH64_PREL64"),
                elf::R_AARCH64_PREL32 => d(Op::Rel32 { bias: 0 }, "R_AARCH64_PREL32"),
                elf::R_AARCH64_ADR_PREL_PG_HI21 => d(Op::AdrpPage, "R_AARCH64_ADR_PREL_PG_HI21"),
                elf::R_AARCH64_ADR_PREL_LO21 => d(Op::Adr, "R_AARCH64_ADR_PREL_LO21"),
                elf::R_AARCH64_ADD_ABS_LO12_NC => {
                    d(Op::Lo12 { shift: 0 }, "R_AARCH64_ADD_ABS_LO12_NC")
                }
                elf::R_AARCH64_LDST8_ABS_LO12_NC => {
                    d(Op::Lo12 { shift: 0 }, "R_AARCH64_LDST8_ABS_LO12_NC")
                }
                elf::R_AARCH64_LDST16_ABS_LO12_NC => {
                    d(Op::Lo12 { shift: 1 }, "R_AARCH64_LDST16_ABS_LO12_NC")
                }
                elf::R_AARCH64_LDST32_ABS_LO12_NC => {
                    d(Op::Lo12 { shift: 2 }, "R_AARCH64_LDST32_ABS_LO12_NC")
                }
                elf::R_AARCH64_LDST64_ABS_LO12_NC => {
                    d(Op::Lo12 { shift: 3 }, "R_AARCH64_LDST64_ABS_LO12_NC")
                }
                elf::R_AARCH64_LDST128_ABS_LO12_NC => {
                    d(Op::Lo12 { shift: 4 }, "R_AARCH64_LDST128_ABS_LO12_NC")
                }
                elf::R_AARCH64_CALL26 => d(Op::Branch26, "R_AARCH64_CALL26"),
                elf::R_AARCH64_JUMP26 => d(Op::Branch26, "R_AARCH64_JUMP26"),
                elf::R_AARCH64_ADR_GOT_PAGE => g(Op::AdrpPage, "R_AARCH64_ADR_GOT_PAGE"),
                elf::R_AARCH64_LD64_GOT_LO12_NC => {
                    g(Op::Lo12 { shift: 3 }, "R_AARCH64_LD64_GOT_LO12_NC")
                }
                t => return Err(unsupported(format!("ELF AArch64 type {}", t.0))),
            },
            (RelocationFlags::Coff { typ }, Architecture::X86_64) => {
                let mut x = match typ {
                    pe::IMAGE_REL_AMD64_ADDR64 => d(Op::Abs64, "IMAGE_REL_AMD64_ADDR64"),
                    pe::IMAGE_REL_AMD64_ADDR32 => d(Op::Abs32, "IMAGE_REL_AMD64_ADDR32"),
                    pe::IMAGE_REL_AMD64_ADDR32NB => d(Op::ImageRel32, "IMAGE_REL_AMD64_ADDR32NB"),
                    pe::IMAGE_REL_AMD64_REL32 => d(Op::Rel32 { bias: -4 }, "IMAGE_REL_AMD64_REL32"),
                    pe::IMAGE_REL_AMD64_REL32_1 => {
                        d(Op::Rel32 { bias: -5 }, "IMAGE_REL_AMD64_REL32_1")
                    }
                    pe::IMAGE_REL_AMD64_REL32_2 => {
                        d(Op::Rel32 { bias: -6 }, "IMAGE_REL_AMD64_REL32_2")
                    }
                    pe::IMAGE_REL_AMD64_REL32_3 => {
                        d(Op::Rel32 { bias: -7 }, "IMAGE_REL_AMD64_REL32_3")
                    }
                    pe::IMAGE_REL_AMD64_REL32_4 => {
                        d(Op::Rel32 { bias: -8 }, "IMAGE_REL_AMD64_REL32_4")
                    }
                    pe::IMAGE_REL_AMD64_REL32_5 => {
                        d(Op::Rel32 { bias: -9 }, "IMAGE_REL_AMD64_REL32_5")
                    }
                    t => return Err(unsupported(format!("COFF AMD64 type {:#x}", t.0))),
                };
                x.implicit = true;
                x
            }
            (RelocationFlags::Coff { typ }, Architecture::I386) => {
                let mut x = match typ {
                    pe::IMAGE_REL_I386_DIR32 => d(Op::Abs32, "IMAGE_REL_I386_DIR32"),
                    pe::IMAGE_REL_I386_DIR32NB => d(Op::ImageRel32, "IMAGE_REL_I386_DIR32NB"),
                    pe::IMAGE_REL_I386_REL32 => d(Op::Rel32 { bias: -4 }, "IMAGE_REL_I386_REL32"),
                    t => return Err(unsupported(format!("COFF I386 type {:#x}", t.0))),
                };
                x.implicit = true;
                x
            }
            (RelocationFlags::MachO { r_type, r_pcrel, r_length }, Architecture::Aarch64) => {
                match (r_type, r_pcrel, r_length) {
                    (macho::ARM64_RELOC_UNSIGNED, false, 3) => Decoded {
                        implicit: reloc.has_implicit_addend(),
                        ..d(Op::Abs64, "ARM64_RELOC_UNSIGNED")
                    },
                    (macho::ARM64_RELOC_UNSIGNED, false, 2) => Decoded {
                        implicit: reloc.has_implicit_addend(),
                        ..d(Op::Abs32, "ARM64_RELOC_UNSIGNED")
                    },
                    (macho::ARM64_RELOC_BRANCH26, true, 2) => {
                        d(Op::Branch26, "ARM64_RELOC_BRANCH26")
                    }
                    (macho::ARM64_RELOC_PAGE21, true, 2) => d(Op::AdrpPage, "ARM64_RELOC_PAGE21"),
                    (macho::ARM64_RELOC_PAGEOFF12, false, 2) => {
                        d(Op::Lo12FromInsn, "ARM64_RELOC_PAGEOFF12")
                    }
                    (macho::ARM64_RELOC_GOT_LOAD_PAGE21, true, 2) => {
                        g(Op::AdrpPage, "ARM64_RELOC_GOT_LOAD_PAGE21")
                    }
                    (macho::ARM64_RELOC_GOT_LOAD_PAGEOFF12, false, 2) => {
                        g(Op::Lo12 { shift: 3 }, "ARM64_RELOC_GOT_LOAD_PAGEOFF12")
                    }
                    (macho::ARM64_RELOC_POINTER_TO_GOT, true, 2) => {
                        g(Op::Rel32 { bias: 0 }, "ARM64_RELOC_POINTER_TO_GOT")
                    }
                    (t, pc, len) => {
                        return Err(unsupported(format!(
                            "Mach-O ARM64 type {} (pcrel {pc}, length {len})",
                            t.0
                        )))
                    }
                }
            }
            (flags, arch) => {
                return Err(unsupported(format!("{flags:?} for {arch:?}")));
            }
        };
        Ok(decoded)
    }

    /// Applies one relocation at `offset` of `section`.
    fn relocate(
        &mut self,
        section: &object::Section<'_, '_>,
        offset: u64,
        reloc: &Relocation,
    ) -> Result<(), LoadError> {
        let d = self.decode(section, offset, reloc)?;
        *self.applied.entry(d.name).or_default() += 1;
        let field_at = (self.placed[&section.index()] + offset) as usize;
        let p = self.base + field_at as u64;
        let (s, target_name) = match reloc.target() {
            RelocationTarget::Symbol(sym) if d.got => {
                (self.base + self.got[&sym], self.symbol_name(sym))
            }
            RelocationTarget::Symbol(sym) => (self.symbol_address(sym)?, self.symbol_name(sym)),
            RelocationTarget::Section(si) => {
                // Mach-O non-extern: the field holds an address in the object's own layout.
                let target =
                    self.file.section_by_index(si).map_err(|e| LoadError::Parse(e.to_string()))?;
                let at = self.placed.get(&si).ok_or_else(|| {
                    LoadError::Unsupported(format!(
                        "relocation against section {}, which is not loaded",
                        target.name().unwrap_or("?")
                    ))
                })?;
                let s = (self.base + at).wrapping_sub(target.address());
                (s, target.name().unwrap_or("?").to_string())
            }
            RelocationTarget::Absolute => (0, "<absolute>".to_string()),
            other => return Err(LoadError::Unsupported(format!("relocation target {other:?}"))),
        };
        let s = match reloc.subtractor() {
            Some(sub) => s.wrapping_sub(self.symbol_address(sub)?),
            None => s,
        };
        let mut a = match self.file.format() {
            // COFF addends live in the field; `object`'s PC-relative adjustment is in `bias`.
            BinaryFormat::Coff => 0,
            _ => reloc.addend(),
        };
        let field = &mut self.bytes[field_at..];
        if d.implicit {
            a += match d.op {
                Op::Abs64 | Op::Rel64 => i64::from_le_bytes(field[..8].try_into().expect("8")),
                _ => i64::from(i32::from_le_bytes(field[..4].try_into().expect("4"))),
            };
        }
        let overflow = |value: i64| LoadError::Overflow {
            what: d.name.to_string(),
            symbol: target_name.clone(),
            value,
        };
        let sa = s.wrapping_add(a as u64);
        let rel = sa.wrapping_sub(p) as i64;
        match d.op {
            Op::Abs64 => field[..8].copy_from_slice(&sa.to_le_bytes()),
            Op::Rel64 => field[..8].copy_from_slice(&rel.to_le_bytes()),
            Op::Abs32 => {
                // A 32-bit machine wraps; a 64-bit one needs the value to zero-extend.
                if self.file.is_64() && u32::try_from(sa).is_err() {
                    return Err(overflow(sa as i64));
                }
                field[..4].copy_from_slice(&(sa as u32).to_le_bytes());
            }
            Op::Abs32S => {
                let v = i32::try_from(sa as i64).map_err(|_| overflow(sa as i64))?;
                field[..4].copy_from_slice(&v.to_le_bytes());
            }
            Op::ImageRel32 => {
                let v = sa.wrapping_sub(self.base);
                let v = u32::try_from(v).map_err(|_| overflow(v as i64))?;
                field[..4].copy_from_slice(&v.to_le_bytes());
            }
            Op::Rel32 { bias } => {
                let v = rel + bias;
                let v = i32::try_from(v).map_err(|_| overflow(v))?;
                field[..4].copy_from_slice(&v.to_le_bytes());
            }
            Op::AdrpPage => {
                let pages = ((sa & !0xfff) as i64).wrapping_sub((p & !0xfff) as i64) >> 12;
                if !(-(1 << 20)..(1 << 20)).contains(&pages) {
                    return Err(overflow(pages));
                }
                patch_adr_imm(field, pages);
            }
            Op::Adr => {
                if !(-(1 << 20)..(1 << 20)).contains(&rel) {
                    return Err(overflow(rel));
                }
                patch_adr_imm(field, rel);
            }
            Op::Lo12 { shift } => patch_lo12(field, sa, shift).map_err(|_| overflow(sa as i64))?,
            Op::Lo12FromInsn => {
                let insn = u32::from_le_bytes(field[..4].try_into().expect("4"));
                patch_lo12(field, sa, lo12_shift(insn)).map_err(|_| overflow(sa as i64))?;
            }
            Op::Branch26 => {
                if rel % 4 != 0 || !(-(1 << 27)..(1 << 27)).contains(&rel) {
                    return Err(overflow(rel));
                }
                let insn = u32::from_le_bytes(field[..4].try_into().expect("4"));
                let insn = (insn & !0x03ff_ffff) | ((rel >> 2) as u32 & 0x03ff_ffff);
                field[..4].copy_from_slice(&insn.to_le_bytes());
            }
        }
        Ok(())
    }
}

/// Whether a section is placed in guest memory.
fn loadable(section: &object::Section<'_, '_>) -> bool {
    let name = section.name().unwrap_or("");
    if SKIPPED_SECTIONS.contains(&name) {
        return false;
    }
    let allocated = match section.flags() {
        SectionFlags::Elf { sh_flags, .. } => sh_flags.contains(elf::SHF_ALLOC),
        SectionFlags::Coff { characteristics } => {
            !characteristics.intersects(pe::IMAGE_SCN_LNK_REMOVE | pe::IMAGE_SCN_LNK_INFO)
        }
        SectionFlags::MachO { flags, .. } => {
            let segment = section.segment_name().ok().flatten().unwrap_or("");
            !flags.contains(macho::S_ATTR_DEBUG) && segment != "__LD" && segment != "__DWARF"
        }
        _ => false,
    };
    allocated && is_image_kind(section.kind())
}

/// Whether sections of `kind` hold the program's code or data (as opposed to debug info,
/// metadata, notes ...).
pub fn is_image_kind(kind: SectionKind) -> bool {
    matches!(
        kind,
        SectionKind::Text
            | SectionKind::Data
            | SectionKind::ReadOnlyData
            | SectionKind::ReadOnlyDataWithRel
            | SectionKind::ReadOnlyString
            | SectionKind::UninitializedData
            | SectionKind::Tls
            | SectionKind::UninitializedTls
    )
}

/// Writes a 21-bit `adr`/`adrp` immediate: low 2 bits to bits 29–30, the rest to bits 5–23.
fn patch_adr_imm(field: &mut [u8], imm: i64) {
    let insn = u32::from_le_bytes(field[..4].try_into().expect("4"));
    let imm = imm as u32;
    let insn = (insn & !(0x3 << 29) & !(0x7ffff << 5))
        | ((imm & 0x3) << 29)
        | (((imm >> 2) & 0x7ffff) << 5);
    field[..4].copy_from_slice(&insn.to_le_bytes());
}

/// Writes the low 12 bits of `value`, scaled down by `shift`, into bits 10–21.
fn patch_lo12(field: &mut [u8], value: u64, shift: u32) -> Result<(), ()> {
    let lo = value & 0xfff;
    if lo & ((1 << shift) - 1) != 0 {
        return Err(());
    }
    let insn = u32::from_le_bytes(field[..4].try_into().expect("4"));
    let insn = (insn & !(0xfff << 10)) | (((lo >> shift) as u32) << 10);
    field[..4].copy_from_slice(&insn.to_le_bytes());
    Ok(())
}

/// The scale of an AArch64 `add`/load/store (unsigned immediate) instruction's 12-bit field.
fn lo12_shift(insn: u32) -> u32 {
    // Load/store register (unsigned immediate): bits 27–29 = 0b111, bit 24 = 1.
    if insn & 0x3b00_0000 == 0x3900_0000 {
        let size = insn >> 30;
        let vector = insn & (1 << 26) != 0;
        let opc_hi = insn & (1 << 23) != 0;
        if vector && opc_hi && size == 0 {
            4 // 128-bit q register
        } else {
            size
        }
    } else {
        0 // add (immediate)
    }
}

/// The alignment of the written part of an image: the largest guest page size (16 KiB on
/// Apple's AArch64), so that no page holds both code and data.
const WRITABLE_PAGE: u64 = 0x4000;

/// Whether the guest writes to `section` (data, zero-initialised data).
fn is_written(section: &object::Section<'_, '_>) -> bool {
    matches!(section.kind(), SectionKind::Data | SectionKind::UninitializedData)
}

fn round_up(x: u64, align: u64) -> u64 {
    x.div_ceil(align) * align
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_handles_decorations() {
        let mut t = BTreeMap::new();
        t.insert("_f".to_string(), 1);
        t.insert("_g@8".to_string(), 2);
        t.insert("@h@4".to_string(), 3);
        t.insert("plain".to_string(), 4);
        assert_eq!(lookup_decorated(&t, "f"), Some(1));
        assert_eq!(lookup_decorated(&t, "g"), Some(2));
        assert_eq!(lookup_decorated(&t, "h"), Some(3));
        assert_eq!(lookup_decorated(&t, "plain"), Some(4));
        assert_eq!(lookup_decorated(&t, "nope"), None);
    }

    #[test]
    fn lo12_shift_reads_the_access_size() {
        assert_eq!(lo12_shift(0x9100_0000), 0); // add x0, x0, #0
        assert_eq!(lo12_shift(0xf940_0000), 3); // ldr x0, [x0]
        assert_eq!(lo12_shift(0xb940_0000), 2); // ldr w0, [x0]
        assert_eq!(lo12_shift(0x7940_0000), 1); // ldrh w0, [x0]
        assert_eq!(lo12_shift(0x3940_0000), 0); // ldrb w0, [x0]
        assert_eq!(lo12_shift(0x3dc0_0000), 4); // ldr q0, [x0]
        assert_eq!(lo12_shift(0xfd40_0000), 3); // ldr d0, [x0]
    }
}
