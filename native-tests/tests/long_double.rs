//! x87's `long double` on x86-64 Linux, called the way C calls it: the argument in memory on
//! the stack, the result taken from `st(0)` (psABI §3.2.3, class X87). The caller is a few
//! lines of assembly (`raw_call::call_x87`), so the handler's reading (`Args::f64`, `Args::bytes`), its result's
//! encoding and the entry's `fld` are checked against the FPU's own values, and the x87 stack
//! depth after the call against the one before it.

#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use std::ffi::c_void;

use backcall::marshal::{f64_to_x87, x87_to_f64};
use backcall::{Callback, Value};
use backcall_native_tests::raw_call::call_x87;

/// Calls `f` as `long double f(long double x, int n)`: its result and the values the call
/// left on the x87 stack besides it.
fn call(f: *const c_void, x: [u8; 10], n: i32) -> ([u8; 10], u8) {
    let mut stack = [0u8; 32];
    stack[..10].copy_from_slice(&x);
    // SAFETY: every callback called here has that signature.
    let ([result, _], extra) = unsafe { call_x87(f, &stack, n, 1) };
    (result, extra)
}

#[test]
fn a_long_double_is_read_from_memory_and_returned_in_st0() {
    let cb = Callback::new("long double (*)(long double, int)", |a| {
        let raw = a.bytes(0);
        assert_eq!(raw.len(), 16, "x86-64's long double is 16 bytes");
        let x = x87_to_f64(raw[..10].try_into().unwrap());
        assert_eq!(x.to_bits(), a.f64(0).to_bits(), "Args::f64 is the nearest double");
        x * f64::from(a.i32(1))
    })
    .unwrap();
    for (x, n) in [(1.5, 3), (-0.1, 7), (1e300, 1_000_000), (5e-324, 2), (0.0, -1)] {
        let (result, extra) = call(cb.code_ptr(), f64_to_x87(x), n);
        assert_eq!(extra, 0, "the x87 stack holds the result and nothing else");
        assert_eq!(result, f64_to_x87(x * f64::from(n)), "{x} * {n}");
    }
}

#[test]
fn all_80_bits_pass_both_ways() {
    // 1 + 2^-63: no double holds it; its bytes go in and come back unchanged.
    let mut precise = f64_to_x87(1.0);
    precise[0] = 1;
    let cb = Callback::new("long double (*)(long double, int)", |a| {
        let raw = a.bytes(0);
        assert_eq!(a.f64(0), 1.0, "the nearest double");
        Value::Bytes(raw[..10].to_vec())
    })
    .unwrap();
    let (result, extra) = call(cb.code_ptr(), precise, 0);
    assert_eq!((result, extra), (precise, 0));
}

#[test]
fn a_panicking_handler_returns_zero_in_st0() {
    let cb = Callback::new("long double (*)(long double, int)", |_| -> f64 { panic!("contained") })
        .unwrap();
    let (result, extra) = call(cb.code_ptr(), f64_to_x87(2.0), 1);
    assert_eq!((result, extra), ([0; 10], 0));
}

/// Calls `f` as `long double _Complex f(long double _Complex z)`: the result's real and
/// imaginary parts (st(0), st(1)) and the values the call left on the x87 stack besides them.
fn call_complex(f: *const c_void, re: [u8; 10], im: [u8; 10]) -> ([u8; 10], [u8; 10], u8) {
    let mut stack = [0u8; 32];
    stack[..10].copy_from_slice(&re);
    stack[16..26].copy_from_slice(&im);
    // SAFETY: every callback called here has that signature.
    let ([re, im], extra) = unsafe { call_x87(f, &stack, 0, 2) };
    (re, im, extra)
}

#[test]
fn a_long_double_complex_returns_in_st0_and_st1() {
    // The conjugate, from the argument's bytes: real part at 0, imaginary part at 16.
    let cb = Callback::new("long double _Complex (*)(long double _Complex)", |a| {
        let mut z = a.bytes(0);
        assert_eq!(z.len(), 32);
        z[25] ^= 0x80;
        Value::Bytes(z)
    })
    .unwrap();
    let (re, im) = (f64_to_x87(1.25), f64_to_x87(-3.5));
    let (got_re, got_im, extra) = call_complex(cb.code_ptr(), re, im);
    assert_eq!((got_re, got_im, extra), (re, f64_to_x87(3.5), 0));
}
