//! Handlers that are not `Send` (`Callback::local`) and handlers that borrow (`backcall::scope`):
//! they run on their owner thread only, are dropped there, and a scope's callbacks are all gone
//! (handlers dropped, pointers stale) when it returns.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use backcall::{Callback, CallbackError};
use backcall_native_tests::errors;

/// Records the thread it is dropped on.
struct DropsOn(Arc<Mutex<Vec<ThreadId>>>);

impl Drop for DropsOn {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(std::thread::current().id());
    }
}

#[test]
fn a_local_handler_captures_rc_and_refcell_and_refuses_other_threads() {
    errors::capture();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    let cb = Callback::local("int (*)(int)", move |a| {
        log.borrow_mut().push(a.i32(0));
        a.i32(0) * 2
    })
    .unwrap();
    // SAFETY: the signature above.
    let f: extern "C" fn(i32) -> i32 = unsafe { cb.as_fn() };
    assert_eq!(f(21), 42);
    let thunk = cb.code_ptr() as usize;
    assert_eq!(std::thread::spawn(move || f(5)).join().unwrap(), -1);
    assert_eq!(*seen.borrow(), [21], "the handler never ran on the other thread");
    assert_eq!(errors::for_thunk(thunk), vec![CallbackError::WrongThread { thunk }]);
    drop(cb);
    assert_eq!(Rc::strong_count(&seen), 1, "released on the owner thread: dropped at once");
}

#[test]
fn a_local_handler_is_dropped_on_its_owner_thread_even_when_a_refused_call_ends_last() {
    errors::capture();
    let drops = Arc::new(Mutex::new(Vec::new()));
    let me = std::thread::current().id();
    for _ in 0..200 {
        let guard = DropsOn(drops.clone());
        let cb = Callback::local("int (*)(void)", move |_| {
            let _keep = &guard;
            1
        })
        .unwrap();
        // SAFETY: the signature above.
        let f: extern "C" fn() -> i32 = unsafe { cb.as_fn() };
        let stop = Arc::new(AtomicBool::new(false));
        let hammer = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    assert!(f() == -1 || f() == 0, "refused, or stale");
                }
            })
        };
        std::thread::yield_now();
        drop(cb);
        stop.store(true, Ordering::Relaxed);
        hammer.join().unwrap();
    }
    // A handler freed by the other thread's last call waits for this thread's next create.
    drop(Callback::local("void (*)(void)", |_| ()).unwrap());
    let drops = drops.lock().unwrap();
    assert_eq!(drops.len(), 200);
    assert!(drops.iter().all(|t| *t == me), "every handler dropped on its owner thread");
}

#[test]
fn a_scope_lends_borrowed_state_and_leaves_only_stale_pointers() {
    errors::capture();
    let total = Cell::new(0);
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let guard = DropsOn(dropped.clone());
    let f: extern "C" fn(i32) -> i32 = backcall::scope(|s| {
        let cb = s
            .callback("int (*)(int)", |a| {
                let _keep = &guard;
                total.set(total.get() + a.i32(0));
                total.get()
            })
            .unwrap();
        // SAFETY: the signature above.
        let f: extern "C" fn(i32) -> i32 = unsafe { cb.as_fn() };
        assert_eq!(f(2), 2);
        assert_eq!(f(3), 5);
        f
    });
    assert_eq!(total.get(), 5);
    drop(guard);
    assert_eq!(dropped.lock().unwrap().len(), 1);
    let before = errors::all().len();
    assert_eq!(f(1), 0, "after the scope the pointer is stale");
    // (other tests of this file may report errors meanwhile: only this thunk's count)
    let thunk = f as usize;
    let mine: Vec<CallbackError> =
        errors::all()[before..].iter().filter(|e| e.thunk() == thunk).cloned().collect();
    assert!(matches!(mine[..], [CallbackError::Stale { .. }]), "{mine:?}");
    assert_eq!(total.get(), 5, "the handler did not run");
}

#[test]
fn a_scope_releases_its_callbacks_when_it_unwinds() {
    let dropped = Arc::new(AtomicBool::new(false));
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let flag = Flag(dropped.clone());
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        backcall::scope(|s| {
            let _cb = s
                .callback("void (*)(void)", |_| {
                    let _keep = &flag;
                })
                .unwrap();
            panic!("the scope's body fails");
        })
    }));
    assert!(unwound.is_err());
    drop(flag);
    assert!(dropped.load(Ordering::SeqCst));
}
