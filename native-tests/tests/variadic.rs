//! Variadic callbacks on the host: a handler reads the unnamed arguments one by one
//! (`Args::va_args`), whichever registers and stack slots the host's ABI put them in. (The
//! compiler oracles call the corpus's variadic lines from compiled C; these call from Rust.)

use std::ffi::{c_char, c_void};

use backcall::abi::Scalar;
use backcall::{Callback, CallbackError, Type};
use backcall_native_tests::errors;
use backcall_native_tests::host::CLibrary;
use backcall_oracle::Opt;

/// More unnamed `double`s and `long long`s than any ABI has argument registers, interleaved:
/// every register file runs out, and the rest comes from the stack.
#[test]
fn unnamed_arguments_past_every_register_file() {
    let cb = Callback::new("double (*)(int, ...)", |a| {
        // SAFETY: the caller passes what the loop reads.
        let mut va = unsafe { a.va_args() };
        let mut sum = 0.0;
        for k in 0..a.i32(0) {
            sum += if k % 2 == 0 { va.f64() } else { va.i64() as f64 };
        }
        sum
    })
    .unwrap();
    let f: unsafe extern "C" fn(i32, ...) -> f64 = unsafe { cb.as_fn() };
    // SAFETY: the callback reads what is passed: alternately a double and a long long.
    let got = unsafe {
        f(
            20, 0.5f64, 1i64, 2.5f64, 3i64, 4.5f64, 5i64, 6.5f64, 7i64, 8.5f64, 9i64, 10.5f64,
            11i64, 12.5f64, 13i64, 14.5f64, 15i64, 16.5f64, 17i64, 18.5f64, 19i64,
        )
    };
    // (0 + 1 + ... + 19, and a half for each of the ten doubles)
    assert_eq!(got, 190.0 + 5.0);
}

/// A logging callback as C libraries declare them, with every getter's type.
#[test]
fn a_logging_callback_reads_each_getter_s_type() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let cb = Callback::new("void (*)(void *ctx, int level, const char *fmt, ...)", move |a| {
        // SAFETY: the caller passes what the getters read, in order.
        let mut va = unsafe { a.va_args() };
        let text = unsafe { a.c_str(2) }.map(|s| s.to_string_lossy().into_owned());
        let values =
            (va.i32(), va.u32(), va.long(), va.ulong(), va.size(), va.ptr::<u8>() as usize);
        let diff = va.isize();
        let wide = (va.i64(), va.u64(), va.f64(), va.count());
        record.lock().unwrap().push((a.i32(1), text, values, diff, wide));
    })
    .unwrap();
    type Log = unsafe extern "C" fn(*mut u8, i32, *const std::ffi::c_char, ...);
    let f: Log = unsafe { cb.as_fn() };
    let long: std::ffi::c_long = -5;
    let ulong: std::ffi::c_ulong = 6;
    // SAFETY: the arguments are what the handler reads, in order.
    unsafe {
        f(
            std::ptr::null_mut(),
            3,
            c"%d %u %ld %lu %zu %p %td %lld %llu %f".as_ptr(),
            -1i32,
            2u32,
            long,
            ulong,
            7usize,
            8usize,
            -12isize,
            -9i64,
            10u64,
            11.5f64,
        )
    };
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let (level, text, values, diff, wide) = seen[0].clone();
    assert_eq!(level, 3);
    assert_eq!(text.as_deref(), Some("%d %u %ld %lu %zu %p %td %lld %llu %f"));
    assert_eq!((values, diff), ((-1, 2, -5, 6, 7, 8), -12));
    assert_eq!(wide, (-9, 10, 11.5, 10));
}

/// Any type by its bytes: a struct passed by value among scalars (its field offsets are
/// Rust's `repr(C)` ones, which are the host C compiler's).
#[test]
fn a_struct_passes_by_value_between_scalars() {
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Mixed {
        c: u8,
        d: f64,
        i: i32,
    }
    let mixed = Type::anon_struct([
        Type::scalar(Scalar::UChar),
        Type::scalar(Scalar::Double),
        Type::scalar(Scalar::Int),
    ]);
    let cb = Callback::new("int (*)(int, ...)", move |a| {
        // SAFETY: an int, the struct, an int, as the caller passes them.
        let mut va = unsafe { a.va_args() };
        let before = va.i32();
        let bytes = va.bytes(&mixed).unwrap();
        let after = va.i32();
        let field = |at: usize, n: usize| bytes[at..at + n].to_vec();
        let d = f64::from_le_bytes(field(std::mem::offset_of!(Mixed, d), 8).try_into().unwrap());
        let i = i32::from_le_bytes(field(std::mem::offset_of!(Mixed, i), 4).try_into().unwrap());
        before * 100 + i32::from(bytes[0]) * 10 + d as i32 + i * 10_000 + after * 1000
    })
    .unwrap();
    let f: unsafe extern "C" fn(i32, ...) -> i32 = unsafe { cb.as_fn() };
    // SAFETY: an int, the struct, an int, as the handler reads them.
    let got = unsafe { f(0, 1i32, Mixed { c: 2, d: 3.0, i: 4 }, 5i32) };
    assert_eq!(got, 100 + 20 + 3 + 40_000 + 5000);
}

/// A handler that asks a signature without `...` for its unnamed arguments panics, contained
/// at the C boundary like every getter's misuse; a type the ABI cannot pass is an error.
#[test]
fn misuse_is_a_contained_panic_or_an_error() {
    errors::capture();
    // SAFETY: nothing is read: the signature has no `...`.
    let cb = Callback::new("int (*)(int)", |a| unsafe { a.va_args() }.i32()).unwrap();
    let f: extern "C" fn(i32) -> i32 = unsafe { cb.as_fn() };
    assert_eq!(f(7), 0, "the panic returns the zero result");
    let thunk = cb.code_ptr() as usize;
    let reported = errors::for_thunk(thunk);
    assert!(
        matches!(&reported[..], [CallbackError::Panicked { message, .. }]
            if message.contains("`int (*)(int)`, a signature without `...`")),
        "{reported:?}"
    );
    // An array is no argument type on any ABI; i386 has no `__int128` either.
    let refused = Callback::new("int (*)(int, ...)", |a| {
        let array = Type::Array(Box::new(Type::scalar(Scalar::Int)), 2);
        // SAFETY: the reader refuses the types asked for, so nothing is read.
        let mut va = unsafe { a.va_args() };
        #[cfg(target_arch = "x86")]
        assert!(va.bytes(&Type::scalar(Scalar::Int128)).is_err());
        i32::from(va.bytes(&array).is_err() && va.count() == 0)
    })
    .unwrap();
    let g: unsafe extern "C" fn(i32, ...) -> i32 = unsafe { refused.as_fn() };
    // SAFETY: the handler reads no unnamed argument.
    assert_eq!(unsafe { g(0, 1i32) }, 1);
}

/// Compiled C for [`a_va_list_of_the_unnamed_arguments_is_what_c_s_va_arg_reads`]: a caller
/// passing an unnamed tail of every kind, past every register file, and a reader of a
/// `va_list` by C's own `va_arg`.
const VA_LIST_C: &str = r#"
#include <stdarg.h>

struct pair { double x; long long y; };
struct floats { float a, b; };
struct big { long long a, b, c; };

/* The bytes of a long double's value: x87's 80 bits, or the whole type. */
#if defined(__x86_64__) || defined(__i386__)
#define LD_BYTES 10
#else
#define LD_BYTES sizeof(long double)
#endif

/* (Windows: MSVC's long double is a double, mingw-w64 GCC's is x87's; neither is passed.) */
#ifdef _WIN32
#define LONG_DOUBLE(X, n)
#else
#define LONG_DOUBLE(X, n) X(n, 'L', long double, 12.375L)
#endif

/* index, kind, type, value: twelve doubles and fourteen integer-class values, and structs of
   every class between them */
#define VALUES(X) \
    X(0, 'i', int, -7) X(1, 'l', long long, 0x1122334455667788LL) X(2, 'd', double, 1.5) \
    X(3, 'p', void *, (void *)0x1234) X(4, 'F', struct floats, ((struct floats){2.5f, -3.25f})) \
    X(5, 'd', double, -2.75) X(6, 'P', struct pair, ((struct pair){6.5, -99})) \
    X(7, 'i', int, 42) X(8, 'd', double, 3.125) X(9, 'l', long long, -5LL) \
    X(10, 'B', struct big, ((struct big){1, 2, 3})) X(11, 'd', double, 4.0) \
    LONG_DOUBLE(X, 12) X(13, 'i', int, 9) X(14, 'd', double, 5.5) \
    X(15, 'l', long long, 1LL << 40) X(16, 'd', double, 6.25) \
    X(17, 'F', struct floats, ((struct floats){-0.5f, 8.0f})) X(18, 'd', double, 7.75) \
    X(19, 'p', void *, (void *)0x5678) X(20, 'd', double, 8.5) \
    X(21, 'P', struct pair, ((struct pair){-1.0, 123456789})) X(22, 'd', double, 9.0) \
    X(23, 'i', int, -1) X(24, 'd', double, 10.5) X(25, 'l', long long, 77) \
    X(26, 'd', double, 11.25) X(27, 'i', int, 3)

#define KIND(n, k, t, v) k,
static const char kinds[] = { VALUES(KIND) 0 };

static void put(unsigned char **out, const void *p, unsigned long n) {
    const unsigned char *b = p;
    for (unsigned long i = 0; i < n; i++) *(*out)++ = b[i];
}

#define SIZE(k, t) (k == 'L' ? LD_BYTES : sizeof(t))
#define DECLARE(n, k, t, v) t value_##n = v;
#define WANT(n, k, t, v) put(&w, &value_##n, SIZE(k, t));
#define ARG(n, k, t, v) , value_##n

typedef void (*va_callback)(const char *kinds, unsigned char *got, ...);

/* Calls cb with every value unnamed; writes their bytes to want; answers how many. */
int bc_va_call(va_callback cb, unsigned char *got, unsigned char *want) {
    VALUES(DECLARE)
    unsigned char *w = want;
    VALUES(WANT)
    cb(kinds, got VALUES(ARG));
    return (int)(w - want);
}

#define READ(k, t) case k: { t x = va_arg(ap, t); put(&out, &x, SIZE(k, t)); break; }

/* Reads the values kinds names from ap, in order, as C's va_arg does, into out. */
void bc_va_read(const char *k, va_list ap, unsigned char *out) {
    for (; *k; k++) {
        switch (*k) {
        READ('i', int) READ('l', long long) READ('d', double) READ('p', void *)
        READ('F', struct floats) READ('P', struct pair) READ('B', struct big)
        READ('L', long double)
        }
    }
}
"#;

/// `Args::va_start` makes the `va_list` the host's `va_start` would: C's `va_arg`, compiled
/// by the host compiler at -O0 and -O2, reads from it exactly the unnamed arguments compiled
/// C passed (integers, doubles, pointers, `long double`, and structs of every class, past
/// every register file).
#[test]
fn a_va_list_of_the_unnamed_arguments_is_what_c_s_va_arg_reads() {
    type Read = unsafe extern "C" fn(*const c_char, *mut c_void, *mut u8);
    type Call = unsafe extern "C" fn(*const c_void, *mut u8, *mut u8) -> i32;
    errors::capture();
    for opt in Opt::ALL {
        let lib = CLibrary::build(VA_LIST_C, opt).unwrap();
        // SAFETY: the C above defines both with these types.
        let read: Read = unsafe { std::mem::transmute(lib.symbol("bc_va_read").unwrap()) };
        let call: Call = unsafe { std::mem::transmute(lib.symbol("bc_va_call").unwrap()) };
        let cb = Callback::new("void (*)(const char *kinds, unsigned char *got, ...)", move |a| {
            let mut ap = a.va_start().unwrap();
            // SAFETY: the kinds name the unnamed arguments the caller passed.
            unsafe { read(a.ptr(0), ap.as_ptr(), a.ptr(1)) };
        })
        .unwrap();
        let (mut got, mut want) = ([0u8; 512], [0u8; 512]);
        // SAFETY: the callback has the C caller's callback type; both buffers hold every value.
        let n = unsafe { call(cb.code_ptr(), got.as_mut_ptr(), want.as_mut_ptr()) } as usize;
        let thunk = cb.code_ptr() as usize;
        assert_eq!(errors::for_thunk(thunk), [], "at {opt}");
        assert!(n > 150, "{n} bytes of values at {opt}");
        assert_eq!(got[..n], want[..n], "at {opt}");
    }
}

/// A signature without `...` has no `va_list` of unnamed arguments: an error, not a pointer.
#[test]
fn a_va_list_of_a_signature_without_unnamed_arguments_is_an_error() {
    let cb = Callback::new("int (*)(int)", |a| match a.va_start() {
        Err(e) => i32::from(e.to_string().contains("without `...`")),
        Ok(_) => 2,
    })
    .unwrap();
    let f: extern "C" fn(i32) -> i32 = unsafe { cb.as_fn() };
    assert_eq!(f(0), 1);
}
