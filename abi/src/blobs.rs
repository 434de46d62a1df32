//! The encoded thunk and thunkEntry code of every ABI that has its assembly written.
//!
//! The files under `abi/src/blobs/` are **generated** from `abi/asm/<abi>/*.s` by
//! `cargo run -p backcall-emu-tests --bin gen-blobs` (keystone, cross-checked against clang's
//! integrated assembler); never edit them by hand. A test re-assembles the sources and fails
//! when a committed blob differs. `aarch64-apple` and `i386-win32` have no sources of their
//! own: `abi/asm/<abi>/SAME_AS` names the ABI whose code they run byte for byte, and their
//! generated files reuse that ABI's blob (its arrays and patch points) with their own `abi`.

use crate::Abi;

mod aarch64_aapcs64;
mod aarch64_apple;
mod i386_sysv;
mod i386_win32;
mod x86_64_sysv;
mod x86_64_win64;

/// Which part of a blob a [`BlobPageRef`] is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobPart {
    /// the shared code (`entry.s`)
    Entry,
    /// the thunk template (`thunk.s`)
    Thunk,
}

/// An instruction that reaches the data page: where it ends and how its field is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobPageRef {
    /// the part it is in
    pub part: BlobPart,
    /// the offset just past the instruction (its label, `bc_page_ref_*`, marks its end)
    pub end: u32,
    /// the field's encoding
    pub kind: crate::arch::PageRef,
}

/// One ABI's encoded code (for [`crate::arch::ASSEMBLED_PAGE_SIZE`]-byte pages).
#[derive(Clone, Copy, Debug)]
pub struct Blob {
    /// the ABI
    pub abi: Abi,
    /// the shared code: the entries, the resume point, `return_from_context`, the typed stubs
    pub entry: &'static [u8],
    /// the named points of `entry` (see the names in [`crate::thunks`])
    pub symbols: &'static [(&'static str, u32)],
    /// the thunk template
    pub thunk: &'static [u8],
    /// every instruction that reaches the data page
    pub page_refs: &'static [BlobPageRef],
    /// the byte that fills gaps (x86 `int3`, AArch64 `udf` zero words)
    pub fill: u8,
}

impl Blob {
    /// The offset of a named point of the shared code.
    pub fn symbol(&self, name: &str) -> Option<u32> {
        self.symbols.iter().find(|(n, _)| *n == name).map(|(_, o)| *o)
    }
}

/// The blob for `abi`, if its assembly exists yet.
pub fn for_abi(abi: Abi) -> Option<&'static Blob> {
    ALL.iter().find(|b| b.abi == abi)
}

/// Every ABI's blob.
pub const ALL: &[Blob] = &[
    x86_64_sysv::BLOB,
    i386_sysv::BLOB,
    x86_64_win64::BLOB,
    i386_win32::BLOB,
    aarch64_aapcs64::BLOB,
    aarch64_apple::BLOB,
];
