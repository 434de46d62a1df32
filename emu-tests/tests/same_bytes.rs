//! One runtime, two machines: the code page the native pool maps on this host and the one the
//! emulator runs for the same ABI are the same bytes, with nothing patched (the thunks find
//! their records and the entries the dispatcher in the data page after it). The i686 and
//! aarch64 native builds check their own pages against the same `CodePage::template`
//! (native-tests/tests/code_bytes.rs).

use backcall::abi::thunks::CodePage;
use backcall::{host_abi, Callback};
use backcall_emu_tests::machine::{Machine, CODE_BASE, CODE_PAGE_SIZE};

#[test]
fn the_native_pool_and_the_emulator_run_the_same_code() {
    let abi = host_abi().expect("the host ABI has a runtime");
    let cb = Callback::new("int (*)(int)", |a| a.i32(0)).unwrap();
    let native = cb.code_page();
    let machine = Machine::new(abi).unwrap();
    let emulated = machine.mem().read_vec(CODE_BASE, CODE_PAGE_SIZE as usize);
    assert_eq!(native.len(), emulated.len(), "this host's pages are 4 KiB like the emulator's");
    assert_eq!(native, &emulated[..], "native and emulated code pages differ");
    let template = CodePage::template(abi, CODE_PAGE_SIZE).unwrap();
    assert_eq!(template.bytes, emulated);
}
