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
    /// turns of the serialized-call lock held (owner thread only)
    pub serial_depth: Cell<u32>,
    /// [`asymmetric`]'s answer, decided before this thread's first call (read by
    /// [`ThreadState::light_fence`] beside the hazards, not from a global)
    asymmetric: Cell<bool>,
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
}

/// Every state ever allocated (in use or free for reuse).
static STATES: Mutex<Vec<&'static ThreadState>> = Mutex::new(Vec::new());

/// Next thread key; keys are never reused, so a key names one thread for the life of the
/// process (a single-threaded callback's owner).
static NEXT_KEY: AtomicU32 = AtomicU32::new(1);

thread_local! {
    static STATE: Cell<*const ThreadState> = const { Cell::new(ptr::null()) };
    static GUARD: StateGuard = const { StateGuard };
}

/// Returns this thread's state to the pool when the thread exits.
struct StateGuard;

impl Drop for StateGuard {
    fn drop(&mut self) {
        let state = STATE.with(|s| s.replace(ptr::null()));
        // SAFETY: states are never freed.
        if let Some(state) = unsafe { state.as_ref() } {
            for h in &state.hazards {
                h.store(0, Ordering::Release);
            }
            state.in_use.store(false, Ordering::Release);
        }
    }
}

/// This thread's state (registered on first use).
#[inline(always)]
pub(crate) fn thread_state() -> &'static ThreadState {
    let state = STATE.with(|s| s.get());
    // SAFETY: a non-null pointer is a registered, never freed state.
    match unsafe { state.as_ref() } {
        Some(state) => state,
        None => register(),
    }
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
    state.depth.set(0);
    state.current.set(ptr::null_mut());
    state.serial_depth.set(0);
    state.asymmetric.set(asymmetric);
    STATE.with(|s| s.set(state));
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
            serial_depth: Cell::new(0),
            asymmetric: Cell::new(false),
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
        // `asymmetric()` was decided before this thread registered.
        if self.asymmetric.get() {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
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

#[cfg(not(target_os = "linux"))]
mod membarrier {
    pub fn register() -> bool {
        false
    }
    pub fn run() -> bool {
        true
    }
}
