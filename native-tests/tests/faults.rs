//! User code that panics where backcall cannot let it unwind: a panicking error hook, and a
//! handler whose captures panic when dropped during `return_from_context`. In its own binary
//! because it installs a panicking process-wide error hook.

use std::sync::{Arc, Mutex};

use backcall::{Callback, ThreadPolicy, Value};

struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("captured value refuses to drop");
    }
}

#[test]
fn user_panics_in_hooks_and_destructors_are_contained() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    backcall::set_error_hook(move |e| {
        log.lock().unwrap().push(e.to_string());
        panic!("the hook itself panics");
    });

    // A stale call reports through the panicking hook; the call still returns zero, and the
    // thread's call bookkeeping is intact afterwards (the pool does not leak slots).
    let cb = Callback::new("int (*)(int)", |a| a.i32(0) + 1).unwrap();
    let f: extern "C" fn(i32) -> i32 = unsafe { cb.as_fn() };
    drop(cb);
    assert_eq!(f(1), 0);
    // (Freed slots wait in a quarantine before reuse: the pool grows until the quarantine is
    // full, then stays.)
    let mut pages = 0;
    for i in 0..6000 {
        let cb = Callback::new("int (*)(int)", move |a| a.i32(0) + i).unwrap();
        let g: extern "C" fn(i32) -> i32 = unsafe { cb.as_fn() };
        assert_eq!(g(1), 1 + i);
        if i == 1000 {
            pages = backcall::pool_pages();
        }
    }
    assert_eq!(backcall::pool_pages(), pages, "slots were freed and reused");

    // A serialized handler drops its own callback (whose captures panic on drop), then returns
    // through return_from_context: the value arrives, the panic is reported, and serialized
    // calls from another thread still get their turn afterwards.
    let holder: Arc<Mutex<Option<Callback>>> = Arc::default();
    let inside = holder.clone();
    let guard = PanicsOnDrop;
    let cb = Callback::raw("int (*)(int)", ThreadPolicy::Serialized, move |args| {
        let _keep = &guard;
        drop(inside.lock().unwrap().take());
        let code = args.write(&Value::Int(args.i64(0) * 3)).unwrap();
        // SAFETY: no frame between here and thunkEntry owns anything needing a drop.
        let e = unsafe { backcall::return_from_context(args.context(), code) };
        panic!("return_from_context came back: {e}");
    })
    .unwrap();
    let h: extern "C" fn(i32) -> i32 = unsafe { cb.as_fn() };
    *holder.lock().unwrap() = Some(cb);
    assert_eq!(h(14), 42);
    let other =
        Callback::with_policy("int (*)(int)", ThreadPolicy::Serialized, |a| a.i32(0) - 1).unwrap();
    let k: extern "C" fn(i32) -> i32 = unsafe { other.as_fn() };
    // The deferred free runs on the next create/release, and reports the destructor's panic.
    drop(Callback::new("void (*)(void)", |_| ()).unwrap());
    assert_eq!(std::thread::spawn(move || k(10)).join().unwrap(), 9);
    let log = seen.lock().unwrap();
    assert!(log.iter().any(|m| m.contains("released")), "{log:?}");
    assert!(log.iter().any(|m| m.contains("refuses to drop")), "{log:?}");
}
