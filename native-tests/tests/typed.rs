//! The typed route on the host: a `TypedCallback` whose signature has a typed stub is called
//! through it (thunk → stub → a monomorphised entry), and keeps the runtime's contract there:
//! results, panics contained, stale calls, foreign threads, serialized calls, releases during
//! a call, and nesting through C. Each case is checked against the same closure on the
//! context route (a dynamic `Callback`).

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use backcall::typed::TypedCallback;
use backcall::{Callback, CallbackError, ThreadPolicy};
use backcall_native_tests::errors;

type Cmp = extern "C" fn(*const c_void, *const c_void) -> i32;

extern "C" {
    fn qsort(base: *mut c_void, n: usize, size: usize, cmp: Cmp);
}

/// The host ABIs backcall has stubs for.
const STUBS: bool = cfg!(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"));

/// Whether an 8-argument signature has a typed stub: not on Win64, whose stubs move at most
/// three positional arguments up (a fourth would have to move to the stack).
const STUBS_FOR_8: bool = STUBS && !cfg!(all(target_arch = "x86_64", windows));

#[test]
fn typed_callbacks_take_the_typed_route_and_agree_with_the_context_route() {
    let two = TypedCallback::<extern "C" fn(i64, i64) -> i64>::new(|a, b| a * 10 + b).unwrap();
    assert_eq!(two.callback().on_typed_route(), STUBS);
    assert_eq!((two.get())(4, 2), 42);

    type Mix = extern "C" fn(i32, f64, i64, f32, *const u8, u16, f64, i64) -> f64;
    let mix = |a: i32, b: f64, c: i64, d: f32, e: *const u8, f: u16, g: f64, h: i64| {
        f64::from(a)
            + b * 2.0
            + c as f64 * 3.0
            + f64::from(d) * 4.0
            + e as usize as f64 * 5.0
            + f64::from(f) * 6.0
            + g * 7.0
            + h as f64 * 8.0
    };
    let typed = TypedCallback::<Mix>::new(mix).unwrap();
    assert_eq!(typed.callback().on_typed_route(), STUBS_FOR_8);
    let dynamic = Callback::new(
        "double (*)(int, double, int64_t, float, void *, unsigned short, double, int64_t)",
        move |a| {
            mix(
                a.i32(0),
                a.f64(1),
                a.i64(2),
                a.f32(3),
                a.ptr::<u8>(4),
                a.u64(5) as u16,
                a.f64(6),
                a.i64(7),
            )
        },
    )
    .unwrap();
    assert!(!dynamic.on_typed_route());
    // SAFETY: the signature above is Mix.
    let d: Mix = unsafe { dynamic.as_fn() };
    for k in [-3i64, 0, 1, 1 << 40] {
        let args = (k as i32, 0.5, k, 1.25f32, 16 as *const u8, k as u16, -2.0, -k);
        let t = (typed.get())(args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7);
        let c = d(args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7);
        assert_eq!(t.to_bits(), c.to_bits(), "k = {k}");
    }

    // Small integers, bool and void results; ten arguments (past the stubs on x86-64: the
    // context route).
    let small = TypedCallback::<extern "C" fn(i8, u16, bool) -> i16>::new(|a, b, c| {
        i16::from(a) - b as i16 + i16::from(c)
    })
    .unwrap();
    assert_eq!((small.get())(-5, 7, true), -11);
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let void = TypedCallback::<extern "C" fn(usize)>::new(move |n| {
        s.store(n, Ordering::SeqCst);
    })
    .unwrap();
    (void.get())(77);
    assert_eq!(seen.load(Ordering::SeqCst), 77);
    type Ten = extern "C" fn(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64) -> i64;
    let ten = TypedCallback::<Ten>::new(|a, b, c, d, e, f, g, h, i, j| {
        a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h + 9 * i + 10 * j
    })
    .unwrap();
    assert_eq!((ten.get())(1, 1, 1, 1, 1, 1, 1, 1, 1, 1), 55);
    assert!(!ten.callback().on_typed_route() || cfg!(target_arch = "x86"), "ten integers spill");
}

#[test]
fn the_typed_route_contains_panics_stale_calls_and_foreign_threads() {
    errors::capture();
    let panicky = TypedCallback::<extern "C" fn(i32) -> i32>::new(|x| {
        if x < 0 {
            panic!("negative");
        }
        x + 1
    })
    .unwrap();
    let thunk = panicky.callback().code_ptr() as usize;
    assert_eq!((panicky.get())(1), 2);
    assert_eq!((panicky.get())(-1), 0, "a panic returns zero");
    assert!(
        matches!(&errors::for_thunk(thunk)[..], [CallbackError::Panicked { message, .. }] if message == "negative")
    );

    let f = panicky.get();
    drop(panicky);
    assert_eq!(f(1), 0, "a stale call returns zero");
    assert_eq!(errors::for_thunk(thunk).last(), Some(&CallbackError::Stale { thunk }));

    let owned = TypedCallback::<extern "C" fn(i32) -> i32>::new(|x| x).unwrap();
    let g = owned.get();
    let t = owned.callback().code_ptr() as usize;
    assert_eq!(std::thread::spawn(move || g(5)).join().unwrap(), -1);
    assert_eq!(errors::for_thunk(t), vec![CallbackError::WrongThread { thunk: t }]);
    let fl = TypedCallback::<extern "C" fn(i32) -> f64>::new(f64::from).unwrap();
    let h = fl.get();
    assert_eq!(std::thread::spawn(move || h(5)).join().unwrap(), 0.0, "floats refuse with 0.0");
}

#[test]
fn serialized_typed_callbacks_take_turns_and_may_release_themselves() {
    let total = Arc::new(AtomicUsize::new(0));
    let sum = total.clone();
    let shared =
        TypedCallback::<extern "C" fn(usize)>::with_policy(ThreadPolicy::Serialized, move |n| {
            sum.fetch_add(n, Ordering::Relaxed);
        })
        .unwrap();
    let f = shared.get();
    let threads: Vec<_> =
        (0..4).map(|_| std::thread::spawn(move || (0..10_000).for_each(|_| f(1)))).collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(total.load(Ordering::Relaxed), 40_000);

    errors::capture();
    let holder: Arc<Mutex<Option<TypedCallback<extern "C" fn() -> i32>>>> = Arc::default();
    let inside = holder.clone();
    let own = TypedCallback::<extern "C" fn() -> i32>::new(move || {
        drop(inside.lock().unwrap().take());
        9
    })
    .unwrap();
    let g = own.get();
    let t = own.callback().code_ptr() as usize;
    *holder.lock().unwrap() = Some(own);
    assert_eq!(g(), 9);
    assert_eq!(g(), 0, "released during its own call, then stale");
    assert_eq!(errors::for_thunk(t), vec![CallbackError::Stale { thunk: t }]);
}

#[test]
fn typed_comparators_nest_through_qsort() {
    // 500 levels of C and Rust frames: a stack of its own, as deep on every system (Windows
    // gives test threads less than Linux does).
    let nest = std::thread::Builder::new().stack_size(64 << 20).spawn(nest_through_qsort);
    nest.unwrap().join().expect("the comparators nested");
}

fn nest_through_qsort() {
    static DEPTH: AtomicUsize = AtomicUsize::new(0);
    static DEEPEST: AtomicUsize = AtomicUsize::new(0);
    static SELF: AtomicUsize = AtomicUsize::new(0);
    let cmp = TypedCallback::<Cmp>::new(|a, b| {
        let d = DEPTH.fetch_add(1, Ordering::SeqCst) + 1;
        DEEPEST.fetch_max(d, Ordering::SeqCst);
        if d < 500 {
            let mut pair = [2i32, 1];
            // SAFETY: SELF holds this live callback's function pointer.
            let me: Cmp = unsafe { std::mem::transmute(SELF.load(Ordering::SeqCst)) };
            // SAFETY: a comparator of ints over two ints.
            unsafe { qsort(pair.as_mut_ptr().cast(), 2, 4, me) };
            assert_eq!(pair, [1, 2]);
        }
        DEPTH.fetch_sub(1, Ordering::SeqCst);
        // SAFETY: element pointers from qsort.
        let (a, b) = unsafe { (*a.cast::<i32>(), *b.cast::<i32>()) };
        a.cmp(&b) as i32
    })
    .unwrap();
    SELF.store(cmp.get() as usize, Ordering::SeqCst);
    let mut v: Vec<i32> = (0..1000).rev().collect();
    // SAFETY: as above.
    unsafe { qsort(v.as_mut_ptr().cast(), v.len(), 4, cmp.get()) };
    assert!(v.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(DEEPEST.load(Ordering::SeqCst), 500);
}

/// The fn pointer types of real bindings: `unsafe extern "C" fn` (libc, bindgen, `-sys`
/// crates), and each target's other conventions.
#[test]
fn unsafe_and_convention_specific_fn_types_are_typed_callbacks() {
    type UnsafeAdd = unsafe extern "C" fn(i64, i64) -> i64;
    let add = TypedCallback::<UnsafeAdd>::new(|a, b| a + b).unwrap();
    assert_eq!(add.callback().on_typed_route(), STUBS);
    // SAFETY: a live callback of this type.
    assert_eq!(unsafe { (add.get())(40, 2) }, 42);

    #[cfg(all(target_arch = "x86_64", unix))]
    {
        let sysv = TypedCallback::<extern "sysv64" fn(i32) -> i32>::new(|x| x * 3).unwrap();
        assert_eq!((sysv.get())(14), 42);
    }

    #[cfg(target_arch = "x86")]
    {
        // stdcall through bc_stub_thiscall and a thiscall entry; the callee pops.
        type Std = extern "stdcall" fn(i32, f64, i64) -> f64;
        let std = TypedCallback::<Std>::new(|a, b, c| f64::from(a) + b + c as f64).unwrap();
        assert!(std.callback().on_typed_route());
        assert_eq!((std.get())(1, 0.5, 40), 41.5);
        // fastcall and thiscall with register arguments take the context route.
        let fast = TypedCallback::<extern "fastcall" fn(i32, i32, i32) -> i32>::new(|a, b, c| {
            a * 100 + b * 10 + c
        })
        .unwrap();
        assert!(!fast.callback().on_typed_route());
        assert_eq!((fast.get())(1, 2, 3), 123);
        let this =
            TypedCallback::<unsafe extern "thiscall" fn(usize, i32) -> usize>::new(|p, k| {
                p + k as usize
            })
            .unwrap();
        // SAFETY: a live callback of this type.
        assert_eq!(unsafe { (this.get())(40, 2) }, 42);
    }
}
