//! The pool maps exactly the generated encoding of `abi/asm/<host abi>/` — the bytes the
//! emulated harness runs too (emu-tests checks its guest pages against the same builder).

use backcall::abi::thunks::{CodePage, THUNK_STRIDE};
use backcall::{host_abi, Callback};

#[test]
fn the_native_pool_maps_the_byte_identical_code_page() {
    let cb = Callback::new("int (*)(int)", |a| a.i32(0)).unwrap();
    let page = cb.code_page();
    let abi = host_abi().unwrap();
    let blob = backcall::abi::blobs::for_abi(abi).unwrap();
    let base = page.as_ptr() as u64;
    let dispatch_at = blob.dispatch_literal as usize;
    let word = abi.word_size() as usize;
    let mut dispatch = [0u8; 8];
    dispatch[..word].copy_from_slice(&page[dispatch_at..dispatch_at + word]);
    let thunk_index = (cb.code_ptr() as u64 - base) as u32;
    let first_thunk = (blob.entry.len() as u32).div_ceil(THUNK_STRIDE) * THUNK_STRIDE;
    let index = (thunk_index - first_thunk) / THUNK_STRIDE;
    let slot_at = (thunk_index + blob.thunk_slot) as usize;
    let slot = u32::from_le_bytes(page[slot_at..slot_at + 4].try_into().unwrap());
    let expected =
        CodePage::build(abi, base, page.len() as u32, u64::from_le_bytes(dispatch), slot - index)
            .unwrap();
    assert_eq!(page, &expected.bytes[..], "the mapped page differs from CodePage::build");
    assert_eq!(&page[..blob.entry.len()][..dispatch_at], &blob.entry[..dispatch_at]);
    assert_ne!(u64::from_le_bytes(dispatch), 0, "the dispatcher address is patched in");
}
