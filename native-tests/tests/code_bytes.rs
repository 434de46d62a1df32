//! The pool maps exactly the generated encoding of `abi/asm/<host abi>/`, laid out by
//! `CodePage::template` for the host's page size — the bytes the emulated harness runs too
//! (emu-tests checks its guest pages against the same template). Every code page of the
//! process is the same; the data page after it holds the dispatcher and each thunk's record.

use backcall::abi::thunks::{CodePage, DATA_DISPATCH};
use backcall::{host_abi, Callback};

#[test]
fn the_native_pool_maps_the_byte_identical_code_page() {
    let cb = Callback::new("int (*)(int)", |a| a.i32(0)).unwrap();
    let page = cb.code_page();
    let abi = host_abi().unwrap();
    let expected = CodePage::template(abi, page.len() as u32).unwrap();
    assert_eq!(page, &expected.bytes[..], "the mapped page differs from CodePage::template");

    // The data page: the dispatcher's address first; the thunk's record names the thunk's
    // slot and the entry its plan needs (no float argument: the integer-only entry).
    let base = page.as_ptr() as usize;
    let data = base + page.len();
    let word = |at: usize| {
        // SAFETY: the data page is mapped read+write for the life of the process.
        unsafe { std::ptr::read((data + at) as *const usize) }
    };
    assert_ne!(word(DATA_DISPATCH as usize), 0, "the dispatcher's address is in the data page");
    let thunk = cb.code_ptr() as usize - base;
    let i = expected.thunk_at(thunk as u32).expect("the callback's address is a thunk");
    let (_, target) = (word(thunk), word(thunk + std::mem::size_of::<usize>()));
    assert_eq!(target - base, expected.context_entry(false) as usize, "record {i}'s target");
    let other = Callback::new("int (*)(int)", |a| a.i32(0)).unwrap();
    assert_eq!(other.code_page(), page, "every code page holds the same bytes");
}
