//! Code pages: the encoded thunkEntry and thunk template of an ABI laid out at an address.
//!
//! Both machines build their executable code with [`CodePage::build`]: the native pool copies
//! the bytes into a fresh mapping (then makes it read+execute), the emulated harness copies them
//! into guest memory. Only the patch points differ between the two (the dispatcher's address,
//! slot ids, branch displacements); every other byte is the generated encoding of
//! `abi/asm/<abi>/*.s` (see [`crate::blobs`]).
//!
//! A page holds, in order: thunkEntry (with `return_from_context` and the dispatcher literal),
//! padding to 16 bytes, then as many 16-byte thunks as fit. Thunk `i` of a page loads slot id
//! `first_slot + i` into the ABI's scratch register and branches to thunkEntry.

use crate::blobs::{Blob, Patch};
use crate::Abi;

/// Bytes between consecutive thunks (every ABI's thunk fits in 16 bytes).
pub const THUNK_STRIDE: u32 = 16;

/// A built code page: its bytes and where its entry points are.
#[derive(Clone, Debug)]
pub struct CodePage {
    /// the address the page is built for
    pub base: u64,
    /// the page's bytes (length = the page size asked for)
    pub bytes: Vec<u8>,
    /// offset of the first thunk
    pub first_thunk: u32,
    /// how many thunks the page holds
    pub thunks: u32,
    /// offset of thunkEntry
    pub entry: u32,
    /// offset of `return_from_context(ctx, code)`
    pub return_from_context: u32,
}

/// Why a page cannot be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageError {
    /// no encoded blobs exist for this ABI yet
    NoBlobs(Abi),
    /// the page is too small to hold thunkEntry and one thunk
    TooSmall {
        /// the size asked for
        page_size: u32,
    },
    /// a branch from a thunk to thunkEntry does not fit its displacement field
    OutOfRange,
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::NoBlobs(abi) => write!(f, "no thunk code is assembled for ABI {abi} yet"),
            PageError::TooSmall { page_size } => {
                write!(f, "a {page_size}-byte page cannot hold thunkEntry and a thunk")
            }
            PageError::OutOfRange => f.write_str("thunk branch displacement out of range"),
        }
    }
}

impl std::error::Error for PageError {}

impl CodePage {
    /// Lays out `abi`'s code for address `base`, `page_size` bytes long, with thunks for slot
    /// ids `first_slot..`, calling the dispatcher at `dispatch`.
    pub fn build(
        abi: Abi,
        base: u64,
        page_size: u32,
        dispatch: u64,
        first_slot: u32,
    ) -> Result<CodePage, PageError> {
        let blob = crate::blobs::for_abi(abi).ok_or(PageError::NoBlobs(abi))?;
        let first_thunk = (blob.entry.len() as u32).div_ceil(THUNK_STRIDE) * THUNK_STRIDE;
        if page_size < first_thunk + THUNK_STRIDE {
            return Err(PageError::TooSmall { page_size });
        }
        let mut bytes = vec![blob.fill; page_size as usize];
        bytes[..blob.entry.len()].copy_from_slice(blob.entry);
        patch_word(&mut bytes, blob.dispatch_literal, dispatch, abi.word_size());
        let thunks = (page_size - first_thunk) / THUNK_STRIDE;
        for i in 0..thunks {
            let at = first_thunk + i * THUNK_STRIDE;
            write_thunk(blob, &mut bytes, base, at, first_slot + i)?;
        }
        Ok(CodePage {
            base,
            bytes,
            first_thunk,
            thunks,
            entry: 0,
            return_from_context: blob.return_from_context,
        })
    }

    /// Address of thunk `i` of this page.
    pub fn thunk_address(&self, i: u32) -> u64 {
        self.base + u64::from(self.first_thunk + i * THUNK_STRIDE)
    }
}

fn write_thunk(
    blob: &Blob,
    page: &mut [u8],
    base: u64,
    at: u32,
    slot: u32,
) -> Result<(), PageError> {
    let thunk = &mut page[at as usize..(at + THUNK_STRIDE) as usize];
    thunk[..blob.thunk.len()].copy_from_slice(blob.thunk);
    thunk[blob.thunk_slot as usize..][..4].copy_from_slice(&slot.to_le_bytes());
    let site = base + u64::from(at + blob.thunk_jump);
    let entry = base;
    match blob.jump {
        Patch::Rel32 => {
            // x86 `jmp rel32`: relative to the end of the 4-byte field.
            let rel = entry as i64 - (site as i64 + 4);
            let rel = i32::try_from(rel).map_err(|_| PageError::OutOfRange)?;
            thunk[blob.thunk_jump as usize..][..4].copy_from_slice(&rel.to_le_bytes());
        }
        Patch::Branch26 => {
            // AArch64 `b imm26`: word displacement from the branch instruction itself.
            let words = (entry as i64 - site as i64) / 4;
            if !(-(1 << 25)..(1 << 25)).contains(&words) {
                return Err(PageError::OutOfRange);
            }
            let field = &mut thunk[blob.thunk_jump as usize..][..4];
            let insn = u32::from_le_bytes(field.try_into().expect("4 bytes"));
            let insn = (insn & !0x03ff_ffff) | (words as u32 & 0x03ff_ffff);
            field.copy_from_slice(&insn.to_le_bytes());
        }
    }
    Ok(())
}

fn patch_word(bytes: &mut [u8], at: u32, value: u64, word: u32) {
    let le = value.to_le_bytes();
    bytes[at as usize..(at + word) as usize].copy_from_slice(&le[..word as usize]);
}
