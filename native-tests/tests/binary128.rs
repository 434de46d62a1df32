//! AArch64 Linux's binary128 `long double`, called the way C calls it: the argument and the
//! result in whole `q` registers (AAPCS64 §6.8.2 C.1, §6.9). The caller is a few lines of
//! assembly (`raw_call::call_binary128`), so the handler's reading (`Args::f64`,
//! `Args::bytes`), its result's encoding and the entries' 128-bit spills and loads are checked
//! together, bit for bit.

#![cfg(all(target_arch = "aarch64", target_os = "linux"))]

use std::ffi::c_void;

use backcall::marshal::{binary128_to_f64, f64_to_binary128};
use backcall::{Callback, Value};
use backcall_native_tests::raw_call::call_binary128;

/// Calls `f` as `long double f(long double x, int n)`.
fn call(f: *const c_void, x: [u8; 16], n: i32) -> [u8; 16] {
    // SAFETY: every callback called here has that signature.
    unsafe { call_binary128(f, x, n) }
}

#[test]
fn a_long_double_is_read_from_q0_and_returned_in_q0() {
    let cb = Callback::new("long double (*)(long double, int)", |a| {
        let raw = a.bytes(0);
        assert_eq!(raw.len(), 16, "AArch64 Linux's long double is 16 bytes");
        let x = binary128_to_f64(raw.try_into().unwrap());
        assert_eq!(x.to_bits(), a.f64(0).to_bits(), "Args::f64 is the nearest double");
        x * f64::from(a.i32(1))
    })
    .unwrap();
    for (x, n) in [(1.5, 3), (-0.1, 7), (1e300, 1_000_000), (5e-324, 2), (0.0, -1)] {
        let result = call(cb.code_ptr(), f64_to_binary128(x), n);
        assert_eq!(result, f64_to_binary128(x * f64::from(n)), "{x} * {n}");
    }
}

#[test]
fn all_128_bits_pass_both_ways() {
    // 1 + 2^-112: no double holds it; its bytes go in and come back unchanged, the high half
    // of q0 included.
    let mut precise = f64_to_binary128(1.0);
    precise[0] = 1;
    let cb = Callback::new("long double (*)(long double, int)", |a| {
        assert_eq!(a.f64(0), 1.0, "the nearest double");
        Value::Bytes(a.bytes(0).to_vec())
    })
    .unwrap();
    assert_eq!(call(cb.code_ptr(), precise, 0), precise);
}
