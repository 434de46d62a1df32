//! What a refused call returns can be chosen per callback, and a contained panic (a handler's,
//! or a released handler's drop at the end of its call) reaches stderr as one line only.

use backcall::typed::TypedCallback;
use backcall::{CallbackError, Prototype, ThreadPolicy, Value};
use backcall_native_tests::errors;

#[test]
fn a_refused_call_returns_the_chosen_value() {
    errors::capture();
    // A thread start routine: -1 would read as PTHREAD_CANCELED.
    let proto = Prototype::new("void *(*)(void *)").unwrap().refusing(Value::UInt(0)).unwrap();
    let start =
        proto.callback(ThreadPolicy::SingleThreaded, |a| Value::UInt(a.u64(0) + 1)).unwrap();
    // SAFETY: the signature above.
    let f: extern "C" fn(usize) -> usize = unsafe { start.as_fn() };
    assert_eq!(f(41), 42);
    assert_eq!(std::thread::spawn(move || f(41)).join().unwrap(), 0);
    let thunk = start.code_ptr() as usize;
    assert_eq!(errors::for_thunk(thunk), vec![CallbackError::WrongThread { thunk }]);

    let typed = TypedCallback::<extern "C" fn(i32) -> i32>::refusing(-7, |x| x).unwrap();
    let g = typed.get();
    assert_eq!(std::thread::spawn(move || g(1)).join().unwrap(), -7, "on the typed route too");

    let wrong = Prototype::new("int (*)(void)").unwrap().refusing(Value::F64(0.5));
    assert!(matches!(wrong, Err(backcall::Error::BadValue(m)) if m.contains("refusal")));
}

#[test]
fn a_contained_panic_prints_one_line_and_no_backtrace() {
    let out = backcall_native_tests::probe_command(env!("CARGO_BIN_EXE_panic-probe"))
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("the probe runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The handler's panic, then two drops that panic when the end of a call frees the
    // callback its handler released: one line each, and no "thread ... panicked" line.
    assert_eq!(stderr.lines().count(), 3, "{stderr}");
    assert!(stderr.contains("panicked (no negatives here)"), "{stderr}");
    assert!(stderr.contains("the context route's capture dropped"), "{stderr}");
    assert!(stderr.contains("the typed route's capture dropped"), "{stderr}");
    assert_eq!(stderr.matches("dropping released callback").count(), 2, "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    assert!(!stderr.contains("thread 'main'"), "{stderr}");
}
