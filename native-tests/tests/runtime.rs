//! The native runtime's contract (ARCHITECTURE.md §5) on the host: qsort, nesting, LIFO returns, thread
//! policy, contained panics, stale thunks, W^X.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use backcall::{Callback, CallbackError, Error, ThreadPolicy, Value};
use backcall_native_tests::errors;

type Cmp = extern "C" fn(*const c_void, *const c_void) -> i32;

extern "C" {
    fn qsort(base: *mut c_void, n: usize, size: usize, cmp: Cmp);
}

fn int_cmp() -> Callback {
    Callback::new("int (*)(const void *, const void *)", |args| {
        // SAFETY: qsort passes pointers to two i32 elements.
        let (a, b) = unsafe { (*args.ptr::<i32>(0), *args.ptr::<i32>(1)) };
        a.cmp(&b) as i32
    })
    .unwrap()
}

#[test]
fn qsort_of_100_000_ints_through_a_callback_equals_sort() {
    let mut state = 0x2545_f491_u32;
    let mut values: Vec<i32> = (0..100_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as i32
        })
        .collect();
    let mut expected = values.clone();
    expected.sort();
    let cmp = int_cmp();
    // SAFETY: the comparator matches and outlives the call.
    unsafe { qsort(values.as_mut_ptr().cast(), values.len(), 4, cmp.as_fn()) };
    assert_eq!(values, expected);
    errors::assert_no_rwx_mapping();
}

/// A comparator that, at depth `d`, sorts a two-element array through itself again (C's qsort
/// frames in between), until `max` deep.
fn nest(depth: &'static AtomicUsize, deepest: &'static AtomicUsize, max: usize) -> Callback {
    Callback::new("int (*)(const void *, const void *)", move |args| {
        let d = depth.fetch_add(1, Ordering::SeqCst) + 1;
        deepest.fetch_max(d, Ordering::SeqCst);
        if d < max {
            let mut pair = [2i32, 1];
            let f: Cmp = unsafe { std::mem::transmute(args.thunk()) };
            // SAFETY: the thunk is this live callback; qsort calls it with element pointers.
            unsafe { qsort(pair.as_mut_ptr().cast(), 2, 4, f) };
            assert_eq!(pair, [1, 2], "inner sort at depth {d}");
        }
        depth.fetch_sub(1, Ordering::SeqCst);
        // SAFETY: element pointers from qsort.
        let (a, b) = unsafe { (*args.ptr::<i32>(0), *args.ptr::<i32>(1)) };
        a.cmp(&b) as i32
    })
    .unwrap()
}

#[test]
fn callbacks_nest_1000_deep_through_c() {
    static DEPTH: AtomicUsize = AtomicUsize::new(0);
    static DEEPEST: AtomicUsize = AtomicUsize::new(0);
    let worker = std::thread::Builder::new().stack_size(256 << 20).spawn(|| {
        let cb = nest(&DEPTH, &DEEPEST, 1000);
        let mut pair = [9i32, 3];
        // SAFETY: as in `nest`.
        unsafe { qsort(pair.as_mut_ptr().cast(), 2, 4, cb.as_fn()) };
        assert_eq!(pair, [3, 9]);
        assert!(backcall::current_context().is_none(), "the LIFO chain is empty again");
    });
    worker.unwrap().join().unwrap();
    assert_eq!(DEEPEST.load(Ordering::SeqCst), 1000);
}

#[test]
fn return_from_context_returns_the_written_result_now() {
    let reached_end = Arc::new(AtomicBool::new(false));
    let flag = reached_end.clone();
    let cb = Callback::raw("int (*)(int)", ThreadPolicy::SingleThreaded, move |args| {
        let code = args.write(&Value::Int(args.i64(0) + 1)).unwrap();
        // SAFETY: no frame between here and thunkEntry owns anything that needs dropping
        // beyond what return_from_context releases itself.
        let refused = unsafe { backcall::return_from_context(args.context(), code) };
        flag.store(true, Ordering::SeqCst);
        panic!("return_from_context came back: {refused}");
    })
    .unwrap();
    let f: extern "C" fn(i32) -> i32 = unsafe { cb.as_fn() };
    assert_eq!(f(41), 42);
    assert_eq!(f(-1), 0, "the context chain is consistent for a second call");
    assert!(!reached_end.load(Ordering::SeqCst));
    assert!(backcall::current_context().is_none());
}

#[test]
fn returning_from_an_outer_context_is_refused() {
    let inner_result = Arc::new(std::sync::Mutex::new(None));
    let seen = inner_result.clone();
    let inner = Callback::raw("int (*)(int64_t)", ThreadPolicy::SingleThreaded, move |args| {
        let outer = args.i64(0) as usize as *mut backcall::CallbackContext;
        // SAFETY: refused before any jump: `outer` is not the innermost context.
        let e = unsafe { backcall::return_from_context(outer, backcall::ReturnCode::Word) };
        *seen.lock().unwrap() = Some(e);
        args.write(&Value::Int(7)).unwrap()
    })
    .unwrap();
    let inner_fn: extern "C" fn(i64) -> i32 = unsafe { inner.as_fn() };
    let outer =
        Callback::new("int (*)(void)", move |args| inner_fn(args.context() as usize as i64) + 1)
            .unwrap();
    let outer_fn: extern "C" fn() -> i32 = unsafe { outer.as_fn() };
    assert_eq!(outer_fn(), 8);
    assert_eq!(*inner_result.lock().unwrap(), Some(Error::OutOfOrderReturn));
}

#[test]
fn a_single_threaded_callback_refuses_a_foreign_thread_with_minus_one() {
    errors::capture();
    let cb = Callback::new("int (*)(int)", |args| args.i64(0) * 2).unwrap();
    let f: extern "C" fn(i32) -> i32 = unsafe { cb.as_fn() };
    assert_eq!(f(4), 8);
    let from_other = std::thread::spawn(move || f(4)).join().unwrap();
    assert_eq!(from_other, -1);
    let thunk = cb.code_ptr() as usize;
    assert_eq!(errors::for_thunk(thunk), vec![CallbackError::WrongThread { thunk }]);
}

#[test]
fn serialized_callbacks_take_turns_across_threads() {
    static BUSY: AtomicBool = AtomicBool::new(false);
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let cb = Callback::with_policy("int64_t (*)(int64_t)", ThreadPolicy::Serialized, |args| {
        assert!(!BUSY.swap(true, Ordering::SeqCst), "two calls overlapped");
        std::thread::yield_now();
        CALLS.fetch_add(1, Ordering::SeqCst);
        BUSY.store(false, Ordering::SeqCst);
        args.i64(0) + 1
    })
    .unwrap();
    let f: extern "C" fn(i64) -> i64 = unsafe { cb.as_fn() };
    let threads: Vec<_> = (0..4)
        .map(|t| std::thread::spawn(move || (0..500).map(|i| f(t * 1000 + i) - 1).sum::<i64>()))
        .collect();
    let sums: Vec<i64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let expected: Vec<i64> = (0..4).map(|t| (0..500).map(|i| t * 1000 + i).sum()).collect();
    assert_eq!(sums, expected);
    assert_eq!(CALLS.load(Ordering::SeqCst), 2000);
}

#[test]
fn a_panicking_handler_returns_zero_and_is_reported() {
    errors::capture();
    let cb = Callback::new("double (*)(int)", |args| -> f64 {
        if args.i64(0) == 13 {
            panic!("unlucky");
        }
        1.5
    })
    .unwrap();
    let f: extern "C" fn(i32) -> f64 = unsafe { cb.as_fn() };
    assert_eq!(f(1), 1.5);
    assert_eq!(f(13), 0.0);
    assert_eq!(f(2), 1.5, "the callback still works after a contained panic");
    let thunk = cb.code_ptr() as usize;
    assert_eq!(
        errors::for_thunk(thunk),
        vec![CallbackError::Panicked { thunk, message: "unlucky".into() }]
    );
}

#[test]
fn a_call_through_a_released_thunk_is_contained() {
    errors::capture();
    let cb =
        Callback::new("int64_t (*)(int64_t, int64_t)", |args| args.i64(0) + args.i64(1)).unwrap();
    let f: extern "C" fn(i64, i64) -> i64 = unsafe { cb.as_fn() };
    let thunk = cb.code_ptr() as usize;
    assert_eq!(f(1, 2), 3);
    drop(cb);
    assert_eq!(f(1, 2), 0);
    assert_eq!(errors::for_thunk(thunk), vec![CallbackError::Stale { thunk }]);
}

#[test]
fn a_handler_may_release_its_own_callback() {
    errors::capture();
    let holder: Arc<std::sync::Mutex<Option<Callback>>> = Arc::default();
    let inside = holder.clone();
    let cb = Callback::with_policy("int (*)(void)", ThreadPolicy::Serialized, move |_| {
        // Dropping the callback mid-call defers freeing its record to the end of the call.
        drop(inside.lock().unwrap().take());
        5
    })
    .unwrap();
    let f: extern "C" fn() -> i32 = unsafe { cb.as_fn() };
    let thunk = cb.code_ptr() as usize;
    *holder.lock().unwrap() = Some(cb);
    assert_eq!(f(), 5);
    assert!(holder.lock().unwrap().is_none());
    assert_eq!(f(), 0, "released during its own call, then stale");
    assert_eq!(errors::for_thunk(thunk), vec![CallbackError::Stale { thunk }]);
}

#[test]
fn bad_signatures_are_errors_not_pointers() {
    assert!(matches!(Callback::new("int (*)(int", |_| 0), Err(Error::Parse(_))));
    let by_value_flexible = "void (*)(struct { int n; int x[]; })";
    assert!(matches!(Callback::new(by_value_flexible, |_| 0), Err(Error::Abi(_))));
    assert!(matches!(Callback::new("va_list (*)(int)", |_| 0), Err(Error::Abi(_))));
}

#[test]
fn many_live_callbacks_grow_the_pool_without_rwx_pages() {
    let live: Vec<Callback> =
        (0..2000).map(|i| Callback::new("int64_t (*)(void)", move |_| i as i64).unwrap()).collect();
    for (i, cb) in live.iter().enumerate().step_by(97) {
        let f: extern "C" fn() -> i64 = unsafe { cb.as_fn() };
        assert_eq!(f(), i as i64);
    }
    errors::assert_no_rwx_mapping();
}

#[test]
fn a_repeated_signature_string_shares_its_plan_until_evicted() {
    let text = "double (*)(int, double, int64_t, float, void *, unsigned short, double, int64_t)";
    let first = backcall::Prototype::new(text).unwrap();
    assert!(first.shares_plan_with(&backcall::Prototype::new(text).unwrap()));
    // Past the cache's size, the least recently used signature is planned afresh.
    for n in 0..backcall::PROTOTYPE_CACHE {
        let args = vec!["int"; n + 1].join(", ");
        backcall::Prototype::new(&format!("void (*)({args})")).unwrap();
    }
    assert!(!first.shares_plan_with(&backcall::Prototype::new(text).unwrap()));
}

#[test]
fn pointer_shaped_arguments_read_without_undefined_behaviour_on_null() {
    use std::ffi::{c_char, CString};
    let cb = Callback::new("int (*)(char **, const void *, long)", |a| {
        // SAFETY: the caller passes a NULL-ended argv and a (pointer, length) pair.
        let (argv, bytes) = unsafe { (a.ptr_array::<c_char>(0), a.bytes_at(1, 2)) };
        let words = argv.map_or(-1, |v| v.len() as i64);
        let sum = bytes.map_or(-1, |b| b.iter().map(|&x| i64::from(x)).sum::<i64>());
        (words * 1000 + sum) as i32
    })
    .unwrap();
    // SAFETY: the signature above.
    let f: extern "C" fn(*const *const c_char, *const u8, i64) -> i32 = unsafe { cb.as_fn() };
    let words: Vec<CString> =
        ["a", "bc", "def"].iter().map(|w| CString::new(*w).unwrap()).collect();
    let mut argv: Vec<*const c_char> = words.iter().map(|w| w.as_ptr()).collect();
    argv.push(std::ptr::null());
    let data = [1u8, 2, 3];
    assert_eq!(f(argv.as_ptr(), data.as_ptr(), 3), 3006);
    assert_eq!(f(std::ptr::null(), data.as_ptr(), 0), -1000, "null argv; empty bytes");
    assert_eq!(f(argv.as_ptr(), std::ptr::null(), 0), 3000, "null data of length 0 is empty");
    assert_eq!(f(argv.as_ptr(), std::ptr::null(), 5), 2999, "null data with a length: None");
    assert_eq!(f(argv.as_ptr(), data.as_ptr(), -1), 2999, "a negative length: None");
}

/// Serialized callbacks take turns per callback (or per named group), not process-wide: one
/// waiting inside its handler for another serialized callback on another thread is no
/// deadlock; the callbacks of one group never overlap.
#[test]
fn serialization_is_per_callback_or_per_group() {
    use std::sync::mpsc;
    use std::time::Duration;
    let (tx, rx) = mpsc::channel();
    let (a_tx, a_rx) = mpsc::sync_channel::<()>(0);
    let a_rx = std::sync::Mutex::new(a_rx);
    let a = Callback::with_policy("void (*)(void)", ThreadPolicy::Serialized, move |_| {
        // Waits for `b` to run on another thread while holding `a`'s turn.
        a_rx.lock().unwrap().recv_timeout(Duration::from_secs(10)).expect("b ran meanwhile");
    })
    .unwrap();
    let b = Callback::with_policy("void (*)(void)", ThreadPolicy::Serialized, move |_| {
        a_tx.send(()).unwrap();
    })
    .unwrap();
    // SAFETY: the signatures above.
    let (fa, fb): (extern "C" fn(), extern "C" fn()) = unsafe { (a.as_fn(), b.as_fn()) };
    let ta = std::thread::spawn(move || {
        fa();
        tx.send(()).unwrap();
    });
    std::thread::sleep(Duration::from_millis(20));
    std::thread::spawn(move || fb()).join().unwrap();
    rx.recv_timeout(Duration::from_secs(10)).expect("no deadlock between two callbacks");
    ta.join().unwrap();

    let group = backcall::SerialGroup::new();
    let inside = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let make = |inside: Arc<AtomicUsize>, overlaps: Arc<AtomicUsize>| {
        Callback::with_policy(
            "void (*)(void)",
            ThreadPolicy::SerializedWith(group.clone()),
            move |_| {
                if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::yield_now();
                inside.fetch_sub(1, Ordering::SeqCst);
            },
        )
        .unwrap()
    };
    let (c, d) = (make(inside.clone(), overlaps.clone()), make(inside, overlaps.clone()));
    // SAFETY: the signatures above.
    let (fc, fd): (extern "C" fn(), extern "C" fn()) = unsafe { (c.as_fn(), d.as_fn()) };
    let threads: Vec<_> = (0..4)
        .map(|k| {
            std::thread::spawn(move || (0..2000).for_each(|_| if k % 2 == 0 { fc() } else { fd() }))
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(overlaps.load(Ordering::SeqCst), 0, "one group, one call at a time");
}
