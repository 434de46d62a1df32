//! One runtime, two machines (DESIGN §1): the code page the native pool maps on this host and
//! the one the emulator runs for the same ABI are the same bytes, except the patch fields that
//! differ by design (the dispatcher's address, the slot ids). The i686 and aarch64 native builds
//! check their own pages against the same `CodePage::build` (native-tests/tests/code_bytes.rs).

use backcall::abi::thunks::{CodePage, THUNK_STRIDE};
use backcall::{host_abi, Callback};
use backcall_emu_tests::machine::{Machine, CODE_BASE, CODE_PAGE_SIZE};

/// `page` with its patch fields zeroed: the dispatcher literal and every thunk's slot id.
fn masked(abi: backcall::abi::Abi, page: &[u8], first_thunk: u32) -> Vec<u8> {
    let blob = backcall::abi::blobs::for_abi(abi).unwrap();
    let mut bytes = page.to_vec();
    let literal = blob.dispatch_literal as usize;
    bytes[literal..literal + abi.word_size() as usize].fill(0);
    let mut at = first_thunk;
    while at + THUNK_STRIDE <= page.len() as u32 {
        let slot = (at + blob.thunk_slot) as usize;
        bytes[slot..slot + 4].fill(0);
        at += THUNK_STRIDE;
    }
    bytes
}

#[test]
fn the_native_pool_and_the_emulator_run_the_same_code() {
    let abi = host_abi().expect("the host ABI has a runtime");
    let cb = Callback::new("int (*)(int)", |a| a.i32(0)).unwrap();
    let native = cb.code_page();
    let machine = Machine::new(abi).unwrap();
    let emulated = machine.mem().read_vec(CODE_BASE, CODE_PAGE_SIZE as usize);
    let first = machine.code_page().unwrap().first_thunk;
    let shared = native.len().min(emulated.len());
    assert_eq!(
        masked(abi, &native[..shared], first),
        masked(abi, &emulated[..shared], first),
        "native and emulated code pages differ outside the patch fields"
    );
    let rebuilt = CodePage::build(abi, CODE_BASE, CODE_PAGE_SIZE, 0, 0).unwrap();
    assert_eq!(masked(abi, &rebuilt.bytes, first), masked(abi, &emulated, first));
}
