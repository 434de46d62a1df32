//! The instruction set architectures backcall's ABIs run on, as data: everything about an
//! architecture that is not a calling-convention rule (word size, the register that carries a
//! thunk's record, how code references its data page, instruction-cache maintenance, the byte
//! that fills code gaps) is stated here once, and every other place (the thunk pages, the
//! native pool, the emulated machine, the assembler and loader of the harness) derives from it.

use std::fmt;

/// An instruction set architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    /// IA-32
    X86,
    /// x86-64
    X86_64,
    /// AArch64 (A64, little endian)
    Aarch64,
}

/// How an instruction reaches the data page beside its code page: the field to adjust when a
/// page is not [`ASSEMBLED_PAGE_SIZE`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageRef {
    /// x86: a 32-bit displacement, the last 4 bytes of the instruction
    Disp32,
    /// A64 `adr`: a 21-bit byte offset (immlo bits 29..31, immhi bits 5..24)
    Adr,
    /// A64 `ldr` (literal): a 19-bit word offset (bits 5..24)
    LdrLiteral,
}

/// The page size the thunk code is assembled for; other page sizes adjust every [`PageRef`].
pub const ASSEMBLED_PAGE_SIZE: u32 = 4096;

impl Arch {
    /// Every architecture.
    pub const ALL: [Arch; 3] = [Arch::X86, Arch::X86_64, Arch::Aarch64];

    /// The name assembly directories and reports use.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86 => "x86",
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// Bytes in a pointer / general register.
    pub fn word_size(self) -> u32 {
        match self {
            Arch::X86 => 4,
            Arch::X86_64 | Arch::Aarch64 => 8,
        }
    }

    /// The byte that fills gaps in code: `int3` on x86; 0 on AArch64, so that a word of it is
    /// `udf #0`.
    pub fn fill(self) -> u8 {
        match self {
            Arch::X86 | Arch::X86_64 => 0xcc,
            Arch::Aarch64 => 0x00,
        }
    }

    /// The assembly comment leader (`#` on x86, `//` on AArch64, where `#` starts an
    /// immediate).
    pub fn comment(self) -> &'static str {
        match self {
            Arch::X86 | Arch::X86_64 => "#",
            Arch::Aarch64 => "//",
        }
    }

    /// The register a thunk leaves its record's address in (for a report; the assembly
    /// names it).
    pub fn record_register(self) -> crate::Reg {
        match self {
            Arch::X86 => crate::Reg::Eax,
            Arch::X86_64 => crate::Reg::R10,
            Arch::Aarch64 => crate::Reg::X16,
        }
    }

    /// Whether freshly written code must be made visible to instruction fetch explicitly
    /// (AArch64 does not keep its instruction cache coherent with data writes; x86 does).
    pub fn needs_icache_flush(self) -> bool {
        self == Arch::Aarch64
    }

    /// The architecture this process runs on, if backcall knows it.
    pub fn host() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "x86") {
            Some(Arch::X86)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
