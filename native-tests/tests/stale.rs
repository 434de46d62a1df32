//! Every failed call returns a defined result the way its caller expects it: a stale call, a
//! panicking handler and a refused thread all zero a hidden result buffer (a caller would read
//! its own uninitialised stack otherwise) and pop what the convention pops.

use std::ffi::c_void;

use backcall::{Callback, CallbackError, Value};
use backcall_native_tests::errors;
use backcall_native_tests::raw_call::call_with_result_buffer;

/// `struct big { long a, b, c; }` is returned through a hidden pointer on every host ABI.
const BIG: &str = "struct big { long a, b, c; } (*)(int)";
const LONG: usize = std::mem::size_of::<std::ffi::c_long>();

fn big(handler: impl Fn(i64) -> Value + Send + Sync + 'static) -> Callback {
    Callback::new(BIG, move |a| handler(a.i64(0))).unwrap()
}

fn longs(n: i64) -> Value {
    Value::Bytes((0..3).flat_map(|k| ((n + k) as std::ffi::c_long).to_ne_bytes()).collect())
}

/// Calls `f` with a result buffer full of 0xAA; answers the buffer afterwards.
fn call(f: *const c_void, arg: i32) -> Vec<u8> {
    let mut buf = vec![0xAAu8; 3 * LONG];
    // SAFETY: `f` is a callback of `BIG`, and the buffer is its result's size.
    let returned = unsafe { call_with_result_buffer(f, buf.as_mut_ptr(), arg) };
    if let Some(p) = returned {
        assert_eq!(p, buf.as_ptr() as usize, "the hidden pointer is returned");
    }
    buf
}

#[test]
fn a_stale_struct_result_is_zeroed() {
    errors::capture();
    let cb = big(longs);
    let f = cb.code_ptr();
    let thunk = f as usize;
    let live = call(f, 5);
    let expected: Vec<u8> = (5..8).flat_map(|n: std::ffi::c_long| n.to_ne_bytes()).collect();
    assert_eq!(live, expected);
    drop(cb);
    assert_eq!(call(f, 5), vec![0; 3 * LONG], "a stale call zeroes the caller's buffer");
    assert_eq!(errors::for_thunk(thunk), vec![CallbackError::Stale { thunk }]);
}

#[test]
fn a_panicking_struct_handler_zeroes_the_result() {
    errors::capture();
    let cb = big(|_| panic!("no result today"));
    assert_eq!(call(cb.code_ptr(), 1), vec![0; 3 * LONG]);
}

#[test]
fn a_refused_thread_gets_a_zeroed_struct_result() {
    errors::capture();
    let cb = big(longs);
    let f = cb.code_ptr() as usize;
    let buf = std::thread::spawn(move || call(f as *const c_void, 1)).join().unwrap();
    assert_eq!(buf, vec![0; 3 * LONG], "refused: no handler ran, the buffer is zeroed");
    assert_eq!(errors::for_thunk(f), vec![CallbackError::WrongThread { thunk: f }]);
}

/// i386 stdcall: the callee pops its arguments, also when the call is stale.
#[cfg(target_arch = "x86")]
#[test]
fn a_stale_stdcall_call_pops_its_arguments() {
    use backcall_native_tests::raw_call::call_stdcall_measuring_pop;
    errors::capture();
    let cb = Callback::new("int (__stdcall *)(int, int)", |a| a.i32(0) * a.i32(1)).unwrap();
    let f = cb.code_ptr();
    // SAFETY: the signature above.
    assert_eq!(unsafe { call_stdcall_measuring_pop(f, 6, 7) }, (42, 8));
    drop(cb);
    // SAFETY: the released thunk still answers with the released callback's protocol.
    assert_eq!(unsafe { call_stdcall_measuring_pop(f, 6, 7) }, (0, 8));
}
