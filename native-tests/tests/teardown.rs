//! A thread keeps its identity until it is gone: its single-threaded callbacks still run when
//! it calls them from its own teardown, from a Rust thread-local's destructor, from a
//! `pthread_key` destructor (a C library's per-thread cleanup) and, on the main thread, from an
//! `atexit` handler (in `src/bin/teardown-probe.rs`, a process of its own).

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

use backcall::Callback;
use backcall_native_tests::errors;

/// Each test counts its own calls: the harness runs tests on parallel threads.
fn counting_callback(ran: &'static AtomicUsize) -> Callback {
    Callback::new("int (*)(int)", move |a| {
        ran.fetch_add(1, Ordering::SeqCst);
        a.i32(0) + 1
    })
    .unwrap()
}

/// Calls its callback when the thread's thread-locals are destroyed.
struct CallsOnDrop(Option<(Callback, extern "C" fn(i32) -> i32)>);

impl Drop for CallsOnDrop {
    fn drop(&mut self) {
        if let Some((cb, f)) = self.0.take() {
            assert_eq!(f(41), 42, "the handler ran during thread teardown");
            drop(cb);
        }
    }
}

thread_local! {
    static BEFORE: RefCell<CallsOnDrop> = const { RefCell::new(CallsOnDrop(None)) };
    static AFTER: RefCell<CallsOnDrop> = const { RefCell::new(CallsOnDrop(None)) };
}

#[test]
fn a_thread_local_destructor_calls_its_threads_callback() {
    errors::capture();
    static RAN: AtomicUsize = AtomicUsize::new(0);
    std::thread::spawn(|| {
        // One thread-local first used before backcall's own state and one after: whichever
        // order thread-locals are destroyed in, one of them outlives backcall's.
        BEFORE.with(|_| ());
        let first = counting_callback(&RAN);
        // SAFETY: the signature above.
        let f: extern "C" fn(i32) -> i32 = unsafe { first.as_fn() };
        assert_eq!(f(1), 2);
        AFTER.with(|_| ());
        let second = counting_callback(&RAN);
        // SAFETY: the signature above.
        let g: extern "C" fn(i32) -> i32 = unsafe { second.as_fn() };
        BEFORE.with(|l| l.borrow_mut().0 = Some((first, f)));
        AFTER.with(|l| l.borrow_mut().0 = Some((second, g)));
    })
    .join()
    .expect("the thread's teardown called the callbacks");
    assert_eq!(RAN.load(Ordering::SeqCst), 3);
    assert!(errors::all()
        .iter()
        .all(|e| !matches!(e, backcall::CallbackError::WrongThread { .. })));
}

/// The callback a thread-exit cleanup calls (the one thread that runs it stores it here), and
/// what that call returned.
static EXIT_CALLBACK: AtomicUsize = AtomicUsize::new(0);
static EXIT_SEEN: AtomicUsize = AtomicUsize::new(0);

/// A C library's per-thread cleanup: calls the thread's callback with the value it kept.
fn exit_cleanup(value: usize) {
    // SAFETY: EXIT_CALLBACK holds a live callback's `int (*)(int)`.
    let f: extern "C" fn(i32) -> i32 =
        unsafe { std::mem::transmute(EXIT_CALLBACK.load(Ordering::SeqCst)) };
    EXIT_SEEN.store(f(value as i32) as usize, Ordering::SeqCst);
}

/// On a new thread that owns a callback, `keep` registers the value 7 with a thread-exit
/// cleanup that passes it to [`exit_cleanup`]; the cleanup's call must reach the handler.
fn a_thread_exit_cleanup_calls_the_callback(keep: impl FnOnce() + Send + 'static) {
    errors::capture();
    static RAN: AtomicUsize = AtomicUsize::new(0);
    std::thread::spawn(move || {
        let cb = counting_callback(&RAN);
        // SAFETY: the signature above.
        let f: extern "C" fn(i32) -> i32 = unsafe { cb.as_fn() };
        EXIT_CALLBACK.store(f as usize, Ordering::SeqCst);
        keep();
        std::mem::forget(cb);
    })
    .join()
    .unwrap();
    assert_eq!(
        EXIT_SEEN.load(Ordering::SeqCst),
        8,
        "the library's cleanup got the handler's result"
    );
}

#[cfg(unix)]
#[test]
fn a_pthread_key_destructor_calls_its_threads_callback() {
    extern "C" fn cleanup(value: *mut libc::c_void) {
        exit_cleanup(value as usize);
    }
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: a fresh key with a destructor that outlives every thread.
    assert_eq!(unsafe { libc::pthread_key_create(&mut key, Some(cleanup)) }, 0);
    a_thread_exit_cleanup_calls_the_callback(move || {
        // SAFETY: a non-null value, so that the destructor runs at thread exit.
        assert_eq!(unsafe { libc::pthread_setspecific(key, 7 as *const libc::c_void) }, 0);
    });
}

/// Windows' counterpart of a `pthread_key` destructor: a fiber-local storage callback, which
/// runs when the thread exits.
#[cfg(windows)]
#[test]
fn a_fiber_local_storage_callback_calls_its_threads_callback() {
    use std::ffi::c_void;
    #[link(name = "kernel32")]
    extern "system" {
        fn FlsAlloc(callback: Option<extern "system" fn(*mut c_void)>) -> u32;
        fn FlsSetValue(index: u32, value: *mut c_void) -> i32;
    }
    const FLS_OUT_OF_INDEXES: u32 = u32::MAX;
    extern "system" fn cleanup(value: *mut c_void) {
        exit_cleanup(value as usize);
    }
    // SAFETY: a fresh index with a callback that outlives every thread.
    let index = unsafe { FlsAlloc(Some(cleanup)) };
    assert_ne!(index, FLS_OUT_OF_INDEXES);
    a_thread_exit_cleanup_calls_the_callback(move || {
        // SAFETY: a non-null value, so that the callback runs at thread exit.
        assert_ne!(unsafe { FlsSetValue(index, 7 as *mut c_void) }, 0);
    });
}

#[test]
fn an_atexit_handler_calls_the_main_threads_callback() {
    let out = backcall_native_tests::probe_command(env!("CARGO_BIN_EXE_teardown-probe"))
        .output()
        .expect("the probe runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    let ran: Vec<&str> = stdout.lines().filter(|l| l.contains("the handler ran")).collect();
    assert_eq!(ran.len(), 2, "once in main, once at exit:\n{stdout}{stderr}");
    let last = stdout.lines().last().unwrap_or("");
    assert!(last.contains("the handler ran"), "the exit call comes last:\n{stdout}");
    assert!(!stderr.contains("foreign thread"), "{stderr}");
}
