//! Code pages and data pages: the encoded thunk code of an ABI laid out for a page size.
//!
//! Thunks come in **page pairs**: a code page and, right after it, a data page. The code page
//! is the same for every pair of a process (and for the emulated machine): the shared code of
//! `abi/asm/<abi>/entry.s` (the entries, the resume point, `return_from_context`, the typed
//! stubs) followed by as many copies of the thunk template as fit, one every
//! [`THUNK_STRIDE`] bytes. Nothing in it depends on where it is mapped: every thunk finds its
//! **record** pc-relative, at its own offset in the data page, and the entries find the
//! dispatcher's address at offset 0 of the data page. So a process maps its code pages from
//! one template and never writes (or makes executable) a page it wrote: W^X holds even under
//! Linux's `PR_SET_MDWE`.
//!
//! A record is two words: the callback's *slot word* (the native runtime's slot address, the
//! emulated machine's slot id) and the *target*: the entry or typed stub the thunk jumps to,
//! with the record's address in the ABI's record register ([`crate::Arch::record_register`]).
//!
//! Both machines build their pages here: the native pool maps [`CodePage::template`]'s bytes
//! and writes records into its data pages; the emulated harness copies the same bytes into
//! guest memory and writes its own records.

use crate::arch::{PageRef, ASSEMBLED_PAGE_SIZE};
use crate::blobs::{Blob, BlobPart};
use crate::context::{ContextLayout, RECORD_SLOT};
use crate::Abi;

/// Bytes between consecutive thunks (every ABI's thunk fits in 16 bytes), and between
/// consecutive records.
pub const THUNK_STRIDE: u32 = 16;

/// The data page word (offset 0) that holds the dispatcher's address.
pub const DATA_DISPATCH: u32 = 0;

/// The shared code entry that spills every argument register (integer and float).
pub const ENTRY_CONTEXT: &str = "bc_entry";
/// The entry that spills the integer argument registers only (plans without float register
/// arguments); an ABI without float argument registers has only [`ENTRY_CONTEXT`].
pub const ENTRY_INT: &str = "bc_entry_int";
/// The resume point (where `return_from_context` lands).
pub const RESUME: &str = "bc_resume";
/// `return_from_context(ctx, code)`.
pub const RETURN_FROM_CONTEXT: &str = "bc_return_from_context";
/// The prefix of the typed stubs' names: `bc_stub_shift_<k>` inserts the slot word as a new
/// first argument in front of `k` register arguments and tail-calls the slot's typed entry.
pub const STUB_SHIFT: &str = "bc_stub_shift_";

/// A code page: the encoded code of an ABI laid out for a page size.
#[derive(Clone, Debug)]
pub struct CodePage {
    /// the ABI
    pub abi: Abi,
    /// the page size (code and data pages alike)
    pub page_size: u32,
    /// the page's bytes, the same for every code page of that size
    pub bytes: Vec<u8>,
    /// offset of the first thunk
    pub first_thunk: u32,
    /// how many thunks the page holds
    pub thunks: u32,
    /// the encoding it was built from
    pub blob: &'static Blob,
}

/// Why a page cannot be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageError {
    /// no encoded blobs exist for this ABI yet
    NoBlobs(Abi),
    /// the page is too small to hold the shared code and one thunk, or not a power of two
    BadSize {
        /// the size asked for
        page_size: u32,
    },
    /// a data page reference does not fit its field at this page size
    OutOfRange,
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::NoBlobs(abi) => write!(f, "no thunk code is assembled for ABI {abi} yet"),
            PageError::BadSize { page_size } => write!(
                f,
                "a {page_size}-byte page cannot hold the thunk code (a power of two of at \
                 least 4096 bytes is needed)"
            ),
            PageError::OutOfRange => f.write_str("a data page reference is out of range"),
        }
    }
}

impl std::error::Error for PageError {}

impl CodePage {
    /// `abi`'s code page for pages of `page_size` bytes.
    pub fn template(abi: Abi, page_size: u32) -> Result<CodePage, PageError> {
        let blob = crate::blobs::for_abi(abi).ok_or(PageError::NoBlobs(abi))?;
        let first_thunk = (blob.entry.len() as u32).div_ceil(THUNK_STRIDE) * THUNK_STRIDE;
        if !page_size.is_power_of_two()
            || page_size < ASSEMBLED_PAGE_SIZE
            || page_size < first_thunk + THUNK_STRIDE
        {
            return Err(PageError::BadSize { page_size });
        }
        let delta = i64::from(page_size) - i64::from(ASSEMBLED_PAGE_SIZE);
        let mut entry = blob.entry.to_vec();
        let mut thunk = blob.thunk.to_vec();
        for r in blob.page_refs {
            let code = match r.part {
                BlobPart::Entry => &mut entry,
                BlobPart::Thunk => &mut thunk,
            };
            adjust(code, r.end, r.kind, delta)?;
        }
        let mut bytes = vec![blob.fill; page_size as usize];
        bytes[..entry.len()].copy_from_slice(&entry);
        let thunks = (page_size - first_thunk) / THUNK_STRIDE;
        for i in 0..thunks {
            let at = (first_thunk + i * THUNK_STRIDE) as usize;
            bytes[at..at + thunk.len()].copy_from_slice(&thunk);
        }
        Ok(CodePage { abi, page_size, bytes, first_thunk, thunks, blob })
    }

    /// Offset of thunk `i` in the code page, and of its record in the data page.
    pub fn thunk_offset(&self, i: u32) -> u32 {
        self.first_thunk + i * THUNK_STRIDE
    }

    /// The thunk index of the code page offset `offset`, if a thunk starts there.
    pub fn thunk_at(&self, offset: u32) -> Option<u32> {
        let i = offset.checked_sub(self.first_thunk)? / THUNK_STRIDE;
        (i < self.thunks && self.thunk_offset(i) == offset).then_some(i)
    }

    /// Offset of a named point of the shared code ([`ENTRY_CONTEXT`], [`RESUME`], ...).
    pub fn symbol(&self, name: &str) -> Option<u32> {
        self.blob.symbol(name)
    }

    /// The entry of the context route for a plan with (`floats`) or without float register
    /// arguments.
    pub fn context_entry(&self, floats: bool) -> u32 {
        let full = self.symbol(ENTRY_CONTEXT).expect("every blob has bc_entry");
        if floats {
            full
        } else {
            self.symbol(ENTRY_INT).unwrap_or(full)
        }
    }

    /// The typed stub that shifts `k` register arguments, if the ABI has one.
    pub fn stub_shift(&self, k: u32) -> Option<u32> {
        self.symbol(&format!("{STUB_SHIFT}{k}"))
    }

    fn layout(&self) -> ContextLayout {
        ContextLayout::for_word(self.abi.word_size())
    }

    fn put_word(&self, data: &mut [u8], at: u32, value: u64) {
        let w = self.abi.word_size() as usize;
        data[at as usize..at as usize + w].copy_from_slice(&value.to_le_bytes()[..w]);
    }

    /// Writes the data page's fixed words: the dispatcher's address.
    pub fn init_data(&self, data: &mut [u8], dispatch: u64) {
        self.put_word(data, DATA_DISPATCH, dispatch);
    }

    /// Writes thunk `i`'s record: its slot word, the absolute address of its target and, on
    /// 32-bit machines, the stack bytes `bc_stub_copy` copies.
    pub fn write_record(&self, data: &mut [u8], i: u32, slot: u64, target: u64, stack_bytes: u32) {
        let at = self.thunk_offset(i);
        self.put_word(data, at + RECORD_SLOT, slot);
        self.put_word(data, at + self.layout().record_target(), target);
        if self.abi.word_size() == 4 {
            self.put_word(data, at + crate::context::RECORD_STACK_BYTES, u64::from(stack_bytes));
        }
    }

    /// The words of a record: `(slot, target)`.
    pub fn read_record(&self, data: &[u8], i: u32) -> (u64, u64) {
        let w = self.abi.word_size() as usize;
        let at = self.thunk_offset(i) as usize;
        let word = |o: usize| {
            let mut b = [0u8; 8];
            b[..w].copy_from_slice(&data[at + o..at + o + w]);
            u64::from_le_bytes(b)
        };
        (word(RECORD_SLOT as usize), word(self.layout().record_target() as usize))
    }
}

/// Moves the data page reference of the instruction ending at `end` by `delta` bytes.
fn adjust(code: &mut [u8], end: u32, kind: PageRef, delta: i64) -> Result<(), PageError> {
    if delta == 0 {
        return Ok(());
    }
    let at = end as usize - 4;
    let field: &mut [u8; 4] = (&mut code[at..at + 4]).try_into().expect("4 bytes");
    let word = u32::from_le_bytes(*field);
    let new = match kind {
        PageRef::Disp32 => {
            let disp = i64::from(word as i32) + delta;
            i32::try_from(disp).map_err(|_| PageError::OutOfRange)? as u32
        }
        PageRef::Adr => {
            let imm = (((word >> 5) & 0x7_ffff) << 2) | ((word >> 29) & 3);
            let imm = ((i64::from(imm) << 43) >> 43) + delta;
            if !(-(1 << 20)..(1 << 20)).contains(&imm) {
                return Err(PageError::OutOfRange);
            }
            let imm = imm as u32 & 0x1f_ffff;
            (word & !((0x7_ffff << 5) | (3 << 29))) | ((imm >> 2) << 5) | ((imm & 3) << 29)
        }
        PageRef::LdrLiteral => {
            let words = ((i64::from((word >> 5) & 0x7_ffff) << 45) >> 45) + delta / 4;
            if !(-(1 << 18)..(1 << 18)).contains(&words) {
                return Err(PageError::OutOfRange);
            }
            (word & !(0x7_ffff << 5)) | ((words as u32 & 0x7_ffff) << 5)
        }
    };
    field.copy_from_slice(&new.to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a64_references_move_with_the_page_size() {
        // adr x16, #4092 (at offset 4 of a thunk: its record 4096 bytes after the thunk)
        let encode = |imm: u32| 0x1000_0000 | (((imm >> 2) & 0x7_ffff) << 5) | ((imm & 3) << 29);
        let adr: u32 = encode(4092) | 16;
        let mut code = adr.to_le_bytes().to_vec();
        adjust(&mut code, 4, PageRef::Adr, 16384 - 4096).unwrap();
        let word = u32::from_le_bytes(code.try_into().unwrap());
        let imm = (((word >> 5) & 0x7_ffff) << 2) | ((word >> 29) & 3);
        assert_eq!(imm, 16380);
        assert_eq!(word & 0x1f, 16, "the register is kept");
        // ldr x17, #4096 (literal): 1024 words
        let ldr: u32 = 0x5800_0000 | (1024 << 5) | 17;
        let mut code = ldr.to_le_bytes().to_vec();
        adjust(&mut code, 4, PageRef::LdrLiteral, 65536 - 4096).unwrap();
        let word = u32::from_le_bytes(code.try_into().unwrap());
        assert_eq!((word >> 5) & 0x7_ffff, 65536 / 4);
        let mut code = (4096i32 - 11).to_le_bytes().to_vec();
        adjust(&mut code, 4, PageRef::Disp32, 8192 - 4096).unwrap();
        assert_eq!(i32::from_le_bytes(code.try_into().unwrap()), 8192 - 11);
    }
}
