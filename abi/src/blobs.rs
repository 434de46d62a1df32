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

/// How a thunk's branch to thunkEntry is patched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Patch {
    /// x86 `jmp rel32`: a 32-bit displacement from the end of the field
    Rel32,
    /// AArch64 `b imm26`: a 26-bit word displacement from the instruction
    Branch26,
}

/// One ABI's encoded code and its patch points (byte offsets).
#[derive(Clone, Copy, Debug)]
pub struct Blob {
    /// the ABI
    pub abi: Abi,
    /// thunkEntry, the resume point, `return_from_context` and the dispatcher literal
    pub entry: &'static [u8],
    /// offset in `entry` of the word-sized dispatcher address literal
    pub dispatch_literal: u32,
    /// offset in `entry` of `return_from_context(ctx, code)`
    pub return_from_context: u32,
    /// offset in `entry` of the resume point (where `return_from_context` lands)
    pub resume: u32,
    /// the thunk template
    pub thunk: &'static [u8],
    /// offset in `thunk` of the 32-bit slot id
    pub thunk_slot: u32,
    /// offset in `thunk` of the branch field to patch
    pub thunk_jump: u32,
    /// how the branch is patched
    pub jump: Patch,
    /// the byte that fills gaps (x86 `int3`, AArch64 `udf` zero words)
    pub fill: u8,
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
