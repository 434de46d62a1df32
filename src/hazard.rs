//! Per-thread state and the hazard protocol that lets a callback's owner thread call it
//! without a single atomic read-modify-write.
//!
//! A call must keep its callback's handler and plan alive while it runs, even if the callback
//! is released meanwhile (from inside its own handler, or from another thread). A shared
//! in-flight counter does that, but costs two locked instructions per call on x86 (the
//! largest part of a call). Instead, the thread that created a single-threaded callback (the
//! only thread that may run it) announces the call in its own [`ThreadState`]: it writes the
//! slot's address into `hazards[depth]` with a plain store, then reads the slot's state. Whoever
//! frees a released callback first looks for the slot in the hazards:
//!
//! * a release on the owner thread itself needs no fence: its own hazards are in program
//!   order, and no other thread runs the callback;
//! * a release elsewhere (the handle was sent to another thread) first runs a process-wide
//!   memory barrier ([`heavy_barrier`]: Linux `membarrier(PRIVATE_EXPEDITED)`, which runs a
//!   full fence on every CPU running a thread of this process), so that every hazard written
//!   before the slot's state was read is visible, and every state read after it sees the
//!   release. This is the asymmetric Dekker protocol of liburcu-memb and folly's hazard
//!   pointers: the frequent side (calls) pays a compiler fence, the rare side a system call.
//!
//! Without `membarrier` (old kernels, some sandboxes; or `BACKCALL_NO_MEMBARRIER=1`) both
//! sides fall back to a `SeqCst` fence: still correct, about as slow as a counter.
//!
//! Calls from other threads, calls of serialized callbacks and calls nested deeper than
//! [`HAZARDS`] use the slot's shared in-flight counter (see `registry.rs`).

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{compiler_fence, fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::context::CallbackContext;
use crate::registry::Orphan;

/// Calls a thread can have in flight through the hazard path; deeper nesting uses the slot's
/// counter.
pub(crate) const HAZARDS: usize = 16;

/// The owner key of a serialized callback: no thread's key, so no thread takes the hazard
/// path for it.
pub(crate) const SERIALIZED: u32 = u32::MAX;

/// One thread's callback state. Allocated once, never freed; reused by a later thread after
/// its thread exits (with a new key).
pub(crate) struct ThreadState {
    /// the key of the thread using this state: unique for the life of the process (0: none
    /// left, see [`register`]); written when a thread claims the state
    key: AtomicU32,
    /// the slot address of the hazard-path call at each depth; 0 when none
    pub hazards: [AtomicUsize; HAZARDS],
    /// calls in flight on this thread (owner thread only)
    pub depth: Cell<u32>,
    /// the innermost callback context (the LIFO chain; owner thread only)
    pub current: Cell<*mut CallbackContext>,
    /// [`asymmetric`]'s answer, decided before this thread's first call (read by
    /// [`ThreadState::light_fence`] beside the hazards, not from a global)
    asymmetric: Cell<bool>,
    /// the kernel id of the thread using this state (to tell when a retiring one is free)
    tid: std::sync::atomic::AtomicI32,
    /// the thread's thread-locals are being destroyed; the state is still its own
    retiring: AtomicBool,
    /// freed handlers that only this thread may drop (not `Send`), freed by another thread
    orphans: Mutex<Vec<Orphan>>,
    /// whether `orphans` may hold any (checked without the lock)
    any_orphans: AtomicBool,
    in_use: AtomicBool,
}

// SAFETY: the `Cell` fields are touched only by the thread the state is registered to (through
// its thread-local pointer); other threads read only the atomics.
unsafe impl Sync for ThreadState {}

impl ThreadState {
    /// Whether any of this thread's hazard-path calls is through the slot at `slot`.
    pub fn holds(&self, slot: usize) -> bool {
        self.hazards.iter().any(|h| h.load(Ordering::Acquire) == slot)
    }

    /// [`ThreadState::holds`] for the thread's own state, read by that thread: only the
    /// hazards below its depth can be set (a call announces at its depth and withdraws before
    /// the depth drops back), so a release outside any callback scans none.
    pub fn holds_own(&self, slot: usize) -> bool {
        let depth = (self.depth.get() as usize).min(HAZARDS);
        self.hazards[..depth].iter().any(|h| h.load(Ordering::Relaxed) == slot)
    }
}

/// Every state ever allocated (in use or free for reuse).
static STATES: Mutex<Vec<&'static ThreadState>> = Mutex::new(Vec::new());

/// Next thread key; keys are never reused, so a key names one thread for the life of the
/// process (a single-threaded callback's owner).
static NEXT_KEY: AtomicU32 = AtomicU32::new(1);

thread_local! {
    static GUARD: StateGuard = const { StateGuard };
}

/// This thread's state pointer: a thread-local that no destructor resets, so that it stays
/// readable through the thread's whole teardown.
#[cfg(not(windows))]
mod current {
    use super::ThreadState;
    use std::cell::Cell;

    thread_local! {
        static STATE: Cell<*const ThreadState> = const { Cell::new(std::ptr::null()) };
    }

    /// The pointer (null before the thread registers).
    #[inline(always)]
    pub fn get() -> *const ThreadState {
        STATE.try_with(Cell::get).unwrap_or(std::ptr::null())
    }

    pub fn set(state: *const ThreadState) {
        STATE.with(|s| s.set(state));
    }
}

/// Windows: a raw TLS slot (`TlsAlloc`). Rust's thread-locals are destroyed there one by one
/// (and a destroyed one reads as new), which would give a thread's late destructors a new
/// identity; a raw slot has no destructor.
#[cfg(windows)]
mod current {
    use super::ThreadState;
    use std::ffi::c_void;
    use std::sync::OnceLock;

    const TLS_OUT_OF_INDEXES: u32 = u32::MAX;

    #[link(name = "kernel32")]
    extern "system" {
        fn TlsAlloc() -> u32;
        fn TlsGetValue(index: u32) -> *mut c_void;
        fn TlsSetValue(index: u32, value: *mut c_void) -> i32;
    }

    fn index() -> u32 {
        static INDEX: OnceLock<u32> = OnceLock::new();
        // SAFETY: no preconditions. Out of indexes, the process cannot keep thread identities.
        *INDEX.get_or_init(|| match unsafe { TlsAlloc() } {
            TLS_OUT_OF_INDEXES => panic!("backcall: TlsAlloc failed: no TLS index left"),
            i => i,
        })
    }

    /// The pointer (null before the thread registers).
    #[inline(always)]
    pub fn get() -> *const ThreadState {
        // SAFETY: a valid index of this process.
        unsafe { TlsGetValue(index()) }.cast_const().cast()
    }

    pub fn set(state: *const ThreadState) {
        // SAFETY: a valid index; the value is only ever read back by this thread.
        unsafe { TlsSetValue(index(), state.cast_mut().cast()) };
    }
}

/// Marks this thread's state as retiring when the thread's Rust thread-locals are destroyed.
///
/// The state itself stays this thread's, key and all, until the thread is gone: later
/// thread-local destructors, `pthread_key` destructors (a library's cleanup) and, on the main
/// thread, `atexit` handlers still call callbacks as their owner. [`current`] has no destructor, so
/// it stays readable through all of them. A later thread reuses a retiring state once its
/// thread no longer exists ([`register`]).
struct StateGuard;

impl Drop for StateGuard {
    fn drop(&mut self) {
        if let Some(state) = current_state() {
            state.drop_orphans();
            state.retiring.store(true, Ordering::Release);
        }
    }
}

impl ThreadState {
    /// Drops the handlers other threads freed for this thread (see [`hand_to_owner`]).
    #[inline]
    pub fn drop_orphans(&self) {
        // (checked inline: every create and release asks, almost always for nothing)
        if self.any_orphans.load(Ordering::Relaxed) {
            self.drop_orphans_now();
        }
    }

    #[cold]
    #[inline(never)]
    fn drop_orphans_now(&self) {
        self.any_orphans.store(false, Ordering::Relaxed);
        let orphans = std::mem::take(&mut *self.orphans.lock().unwrap_or_else(|p| p.into_inner()));
        for orphan in orphans {
            orphan.drop_here();
        }
    }
}

/// Gives a freed handler that is not `Send` to its owner thread (the thread whose key is
/// `owner`) to drop. If that thread is retiring or gone, the handler is leaked: dropping it
/// elsewhere could break what its captures assume.
pub(crate) fn hand_to_owner(owner: u32, orphan: Orphan) {
    let states = STATES.lock().unwrap_or_else(|p| p.into_inner());
    let alive = states.iter().find(|s| {
        s.key() == owner && s.in_use.load(Ordering::Acquire) && !s.retiring.load(Ordering::Acquire)
    });
    match alive {
        Some(s) => {
            s.orphans.lock().unwrap_or_else(|p| p.into_inner()).push(orphan);
            s.any_orphans.store(true, Ordering::Release);
        }
        None => std::mem::forget(orphan),
    }
}

/// Whether the thread with kernel id `tid` (of this process) has exited. Only Linux can tell;
/// elsewhere a retiring state is never reused (a few hundred bytes per exited thread).
fn thread_gone(tid: i32) -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: tgkill with signal 0 sends nothing; it only checks that the thread exists.
        let r = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, 0) };
        r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = tid;
        false
    }
}

/// This thread's kernel id (0 where there is none to ask for).
fn current_tid() -> i32 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions.
        unsafe { libc::gettid() }
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// Whether this thread is inside a callback call (without registering the thread).
pub(crate) fn in_callback() -> bool {
    current_state().is_some_and(|st| st.depth.get() > 0)
}

/// This thread's state, if it has called or made a callback before (without registering).
#[inline(always)]
pub(crate) fn current_state() -> Option<&'static ThreadState> {
    // SAFETY: a non-null pointer is a registered, never freed state.
    unsafe { current::get().as_ref() }
}

/// This thread's state (registered on first use).
#[inline(always)]
pub(crate) fn thread_state() -> &'static ThreadState {
    current_state().unwrap_or_else(register)
}

#[cold]
fn register() -> &'static ThreadState {
    // Decide the fence mode before this thread's first call can rely on it.
    let asymmetric = asymmetric();
    // Keys run out after 2^32 - 2 threads; a thread without one (key 0) still calls callbacks
    // (through the counter) but cannot own a single-threaded one.
    let key = NEXT_KEY
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |k| {
            (k < SERIALIZED - 1).then_some(k + 1)
        })
        .unwrap_or(0);
    let mut states = STATES.lock().unwrap_or_else(|p| p.into_inner());
    // A retiring state whose thread is gone is free again (its hazards are all clear: a
    // thread that no longer runs has no call in flight).
    for s in states.iter() {
        let tid = s.tid.load(Ordering::Relaxed);
        if s.retiring.load(Ordering::Acquire) && tid != 0 && thread_gone(tid) {
            s.retiring.store(false, Ordering::Relaxed);
            s.in_use.store(false, Ordering::Release);
        }
    }
    let claimed = states.iter().copied().find(|s| {
        s.in_use.compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    });
    let state = claimed.unwrap_or_else(|| {
        let fresh: &'static ThreadState = Box::leak(Box::new(ThreadState::new()));
        fresh.in_use.store(true, Ordering::Relaxed);
        states.push(fresh);
        fresh
    });
    drop(states);
    state.key.store(key, Ordering::Relaxed);
    state.tid.store(current_tid(), Ordering::Relaxed);
    state.depth.set(0);
    state.current.set(ptr::null_mut());
    state.asymmetric.set(asymmetric);
    current::set(state);
    // Without the guard (thread-local destruction already running) the state is never reused.
    let _ = GUARD.try_with(|_| ());
    state
}

impl ThreadState {
    fn new() -> ThreadState {
        ThreadState {
            key: AtomicU32::new(0),
            hazards: [const { AtomicUsize::new(0) }; HAZARDS],
            depth: Cell::new(0),
            current: Cell::new(ptr::null_mut()),
            asymmetric: Cell::new(false),
            tid: std::sync::atomic::AtomicI32::new(0),
            retiring: AtomicBool::new(false),
            orphans: Mutex::new(Vec::new()),
            any_orphans: AtomicBool::new(false),
            in_use: AtomicBool::new(false),
        }
    }

    /// This thread's key (see [`ThreadState::key`]).
    #[inline(always)]
    pub fn key(&self) -> u32 {
        self.key.load(Ordering::Relaxed)
    }
}

/// Whether any thread's hazard-path call is through the slot at `slot`. The caller has made
/// every hazard written before its release visible ([`heavy_barrier`]).
pub(crate) fn any_holds(slot: usize) -> bool {
    STATES.lock().unwrap_or_else(|p| p.into_inner()).iter().any(|s| s.holds(slot))
}

/// Whether the process-wide barrier is available (decided once, before any thread's first
/// hazard-path call).
fn asymmetric() -> bool {
    static MODE: OnceLock<bool> = OnceLock::new();
    *MODE.get_or_init(membarrier::register)
}

impl ThreadState {
    /// The call side's fence between announcing a call (or ending one) and reading the slot's
    /// state: a compiler fence when releases run [`heavy_barrier`], else a full fence.
    #[inline(always)]
    pub(crate) fn light_fence(&self) {
        // `asymmetric()` was decided before this thread registered. (Written so that the
        // asymmetric case falls through: no taken branch on the calls' hot path.)
        if !self.asymmetric.get() {
            fence(Ordering::SeqCst);
        }
        compiler_fence(Ordering::SeqCst);
    }
}

/// The release side's fence: after it, every thread's earlier stores (hazards) are visible to
/// this thread, and this thread's earlier stores (a release) to every later load elsewhere.
/// Whether the barrier ran; `false` means other threads' hazards may not be visible, so the
/// caller must treat the callback as still in use (and keep it: a leak, never a use-after-free).
pub(crate) fn heavy_barrier() -> bool {
    if asymmetric() {
        membarrier::run()
    } else {
        fence(Ordering::SeqCst);
        true
    }
}

#[cfg(target_os = "linux")]
mod membarrier {

    const QUERY: libc::c_long = 0;
    const PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    fn call(cmd: libc::c_long) -> libc::c_long {
        // SAFETY: membarrier takes (cmd, flags, cpu_id) and touches no user memory.
        unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0 as libc::c_long, 0 as libc::c_long) }
    }

    /// Registers the process for expedited private barriers; whether that worked.
    /// `BACKCALL_NO_MEMBARRIER=1` in the environment forces the symmetric fallback (to test it).
    pub fn register() -> bool {
        if std::env::var_os("BACKCALL_NO_MEMBARRIER").is_some_and(|v| v == "1") {
            return false;
        }
        let supported = call(QUERY);
        supported >= 0
            && supported & PRIVATE_EXPEDITED != 0
            && call(REGISTER_PRIVATE_EXPEDITED) == 0
    }

    /// Runs the barrier on every CPU running a thread of this process; whether it ran. It can
    /// fail after registration (ENOMEM on some kernels, a seccomp filter denying the barrier):
    /// then the caller keeps the callback rather than free it unprotected.
    pub fn run() -> bool {
        call(PRIVATE_EXPEDITED) == 0
    }
}

/// Windows: `FlushProcessWriteBuffers` is the process-wide barrier (every processor running a
/// thread of the process serializes its stores), available since Vista.
#[cfg(windows)]
mod membarrier {
    #[link(name = "kernel32")]
    extern "system" {
        fn FlushProcessWriteBuffers();
    }

    /// Whether to use it: always, unless `BACKCALL_NO_MEMBARRIER=1` forces the symmetric
    /// fallback (to test it).
    pub fn register() -> bool {
        std::env::var_os("BACKCALL_NO_MEMBARRIER").is_none_or(|v| v != "1")
    }

    /// Runs the barrier; it cannot fail.
    pub fn run() -> bool {
        // SAFETY: no arguments, no preconditions.
        unsafe { FlushProcessWriteBuffers() };
        true
    }
}

#[cfg(not(any(target_os = "linux", windows)))]
mod membarrier {
    pub fn register() -> bool {
        false
    }
    pub fn run() -> bool {
        true
    }
}
