//! The native dispatcher: what thunkEntry calls with the context it built.
//!
//! Order of work (as in OpenSmalltalk's callbacks: thunk → entry → owner check → invoke → result):
//! slot lookup → announce the call (a hazard on the owner thread, else the slot's in-flight
//! counter; see `registry.rs`) → stale check → thread policy → push the context on this
//! thread's LIFO chain → run the handler (panics stopped here) → result written by the plan →
//! pop → end the call → return code. The owner thread's call of a live callback runs inline;
//! every other outcome leaves for a cold function.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use backcall_abi::context::{RESULT_FLOAT_SLOTS, RESULT_INT_SLOTS};
use backcall_abi::{Loc, ReturnCode};

use crate::context::{CallbackContext, FLOAT_SLOT_U64S};
use crate::error::{report, CallbackError, Error};
use crate::hazard::{current_state, thread_state, ThreadState, SERIALIZED};
use crate::native::Native;
use crate::registry::{registry, Live, SerialLock, Slot, HAZARDS};
use crate::Args;

/// The address thunkEntry calls (the first word of every data page).
pub(crate) fn entry_address() -> usize {
    dispatch as extern "C" fn(*mut CallbackContext) -> u32 as usize
}

/// Called by the entries. Never unwinds: every failure becomes a defined result and a report.
extern "C" fn dispatch(ctx: *mut CallbackContext) -> u32 {
    let outcome = catch_unwind(AssertUnwindSafe(|| dispatch_inner(ctx)));
    // A panic outside the handler (a bug in backcall itself) still must not reach C: the call
    // returns zeros the way the callback's caller expects, as a stale call does.
    let code = outcome.unwrap_or_else(|panic| {
        // SAFETY: the entry's live context; the panic left no reference to it behind.
        let c = unsafe { &mut *ctx };
        let (slot, thunk) = record_slot(c.record);
        report(CallbackError::Panicked {
            thunk,
            message: format!("inside backcall: {}", crate::error::panic_message(&*panic)),
        });
        zeros(c, slot)
    });
    code as u32
}

/// The slot a context's record names, and its thunk's address (a page before the record).
#[inline(always)]
fn record_slot(record: usize) -> (&'static Slot, usize) {
    // SAFETY: a record's first word is its thunk's slot, in a page that is never freed.
    let slot = unsafe { &*(*(record as *const *const Slot)) };
    (slot, record - crate::pool::page_size_cached())
}

#[inline(always)]
fn dispatch_inner(ctx: *mut CallbackContext) -> ReturnCode {
    // SAFETY: the entry passes the context it built in its own live frame.
    let c = unsafe { &mut *ctx };
    let (slot, thunk) = record_slot(c.record);
    c.thunk = thunk;
    call(slot, ContextSite(c))
}

/// What a route does at each outcome of the call protocol ([`call`]): the context route
/// (the dispatcher, over a `CallbackContext`) and the typed route (a typed entry, over its
/// Rust arguments) share the protocol and differ only here.
pub(crate) trait CallSite {
    /// what the call returns
    type Out;
    /// The handler runs (the call is announced and the callback live).
    fn run(self, slot: &'static Slot, live: Live<'_>, me: &ThreadState) -> Self::Out;
    /// The callback was released: a defined zero result, reported.
    fn stale(self, slot: &'static Slot) -> Self::Out;
    /// A single-threaded callback called from another thread: refused (-1), reported.
    fn refused(self, slot: &'static Slot, live: Live<'_>) -> Self::Out;
}

/// One call through `slot`: announce it (a hazard on the owner thread, else the slot's
/// in-flight counter; see `registry.rs`), check that the callback is live and the thread may
/// call it, run it, end the announcement (freeing a callback released meanwhile).
///
/// The owner thread's call of a live callback is the path inlined into every typed entry and
/// the dispatcher; every other case leaves it for a cold function in tail position, so that
/// the inlined path keeps nothing across a call but what the handler itself needs.
#[inline(always)]
pub(crate) fn call<C: CallSite>(slot: &'static Slot, site: C) -> C::Out {
    let Some(me) = current_state() else { return first_call(slot, site) };
    let depth = me.depth.get();
    if depth as usize >= HAZARDS || slot.owner() != me.key() {
        return counted_call_at(slot, me, depth, site);
    }
    let hazard = &me.hazards[depth as usize];
    hazard.store(slot.addr(), Ordering::Relaxed);
    me.light_fence();
    let state = slot.state();
    // Re-checked after reading the state: if the slot was freed and reused by another owner
    // since the first check, this call must not touch its handler (hazard.rs).
    if !Slot::is_live(state) || slot.owner() != me.key() {
        return withdrawn_call(slot, me, depth, site);
    }
    me.depth.set(depth + 1);
    // SAFETY: announced by the hazard, and the callback is this thread's own: the owner,
    // read after the state, is this thread's key (a slot is reused by its new owner only).
    let out = site.run(slot, unsafe { slot.live(state) }, me);
    if withdraw(hazard, me, slot) {
        return free_after(slot, me, depth, out);
    }
    me.depth.set(depth);
    out
}

/// Ends a hazard-path announcement; answers whether the callback was released meanwhile (the
/// call that withdraws the hazard is then the one to free it).
#[inline(always)]
fn withdraw(hazard: &AtomicUsize, me: &ThreadState, slot: &Slot) -> bool {
    hazard.store(0, Ordering::Release);
    me.light_fence();
    slot.released()
}

/// This thread's first call: registers its state, then calls.
#[cold]
#[inline(never)]
fn first_call<C: CallSite>(slot: &'static Slot, site: C) -> C::Out {
    let me = thread_state();
    counted_call_at(slot, me, me.depth.get(), site)
}

/// An owner-thread call that announced itself by a hazard and found the callback released,
/// or reused by another thread: the hazard is withdrawn (freeing what a release left to this
/// call), then the counted call decides (stale, or refused).
#[cold]
#[inline(never)]
fn withdrawn_call<C: CallSite>(
    slot: &'static Slot,
    me: &ThreadState,
    depth: u32,
    site: C,
) -> C::Out {
    // (still inside the call, as on every path: a panicking drop stays quiet)
    me.depth.set(depth + 1);
    if withdraw(&me.hazards[depth as usize], me, slot) {
        registry().try_free(slot);
    }
    counted_call_at(slot, me, depth, site)
}

/// The end of a call through a callback released while it ran: frees it (still inside the
/// call, so that a panic in the handler's drop stays as quiet as the handler's own), then
/// leaves the call's depth and passes `out` on.
#[cold]
#[inline(never)]
fn free_after<T>(slot: &'static Slot, me: &ThreadState, depth: u32, out: T) -> T {
    registry().try_free(slot);
    me.depth.set(depth);
    out
}

/// A call counted in the slot's in-flight counter (any call but the owner thread's own, and
/// calls nested deeper than the hazards), at `depth` (kept for the calls it makes, and for
/// `return_from_context`).
#[inline(never)]
fn counted_call_at<C: CallSite>(
    slot: &'static Slot,
    me: &ThreadState,
    depth: u32,
    site: C,
) -> C::Out {
    me.depth.set(depth + 1);
    slot.enter_counted();
    let state = slot.state_counted();
    let out = if !Slot::is_live(state) {
        site.stale(slot)
    } else {
        // SAFETY: announced by the counter.
        let live = unsafe { slot.live(state) };
        match slot.owner() {
            SERIALIZED => {
                let _turn = SerialTurn::take(me, live);
                site.run(slot, live, me)
            }
            owner if owner == me.key() => site.run(slot, live, me),
            _ => site.refused(slot, live),
        }
    };
    slot.exit_counted();
    me.depth.set(depth);
    out
}

/// The context route: the dispatcher's side of a call, over the context thunkEntry built.
struct ContextSite<'a>(&'a mut CallbackContext);

impl CallSite for ContextSite<'_> {
    type Out = ReturnCode;

    #[inline(always)]
    fn run(self, _: &'static Slot, live: Live<'_>, me: &ThreadState) -> ReturnCode {
        let c = self.0;
        let thunk = c.thunk;
        // One raw pointer for the context from here on: the handler reaches it through `args`
        // and `current_context()`, so no `&mut` may be used on it while the handler runs.
        let ctx: *mut CallbackContext = c;
        let previous = me.current.replace(ctx);
        // SAFETY: `ctx` is thunkEntry's live context; this write precedes any use of it.
        unsafe { (*ctx).previous = previous };
        let args = Args { native: Native { ctx, info: live.info }, thunk };
        // SAFETY: `live` is the announced callback; its vtable was made for its data.
        let outcome =
            catch_unwind(AssertUnwindSafe(|| unsafe { (live.vt.call)(live.data, &args) }));
        me.current.set(previous);
        match outcome {
            Ok(code) => code,
            Err(panic) => {
                report(CallbackError::Panicked {
                    thunk,
                    message: crate::error::panic_message(&*panic),
                });
                args.native.frame().write_zero_result()
            }
        }
    }

    #[cold]
    fn stale(self, slot: &'static Slot) -> ReturnCode {
        report(CallbackError::Stale { thunk: self.0.thunk });
        zeros(self.0, slot)
    }

    #[cold]
    fn refused(self, _: &'static Slot, live: Live<'_>) -> ReturnCode {
        report(CallbackError::WrongThread { thunk: self.0.thunk });
        let frame = Native { ctx: self.0, info: live.info }.frame();
        match &live.info.refusal {
            // (checked against the result type when the prototype was made)
            Some(value) => frame.write_value(value).unwrap_or_else(|_| frame.write_default(-1)),
            None => frame.write_default(-1),
        }
    }
}

/// Returns zeros the way the caller of the callback last installed in `slot` expects: the
/// result registers zeroed, a hidden result buffer zeroed and its address returned, the
/// callee's stack arguments popped, the same return code.
#[cold]
fn zeros(c: &mut CallbackContext, slot: &Slot) -> ReturnCode {
    let tomb = slot.tombstone();
    c.callee_pop = tomb.callee_pop as usize;
    c.result_int = [0; RESULT_INT_SLOTS as usize];
    c.result_float = [0; RESULT_FLOAT_SLOTS as usize * FLOAT_SLOT_U64S];
    if let Some((loc, returned)) = tomb.hidden {
        let buffer = match loc {
            Loc::Int(i) => c.int_regs[i as usize],
            // SAFETY: the callback's plan put the hidden pointer at this stack offset.
            Loc::Stack(o) => unsafe { *((c.stack_args + o as usize) as *const usize) },
            _ => 0,
        };
        if buffer != 0 {
            // SAFETY: the caller passed a buffer of the result's size for the hidden result.
            unsafe { std::ptr::write_bytes(buffer as *mut u8, 0, tomb.size as usize) };
        }
        if returned {
            c.result_int[0] = buffer;
        }
    }
    tomb.code
}

/// One turn of a serialized callback's lock (its own, or its group's), released when dropped.
struct SerialTurn<'a>(Option<&'a SerialLock>);

impl<'a> SerialTurn<'a> {
    fn take(me: &ThreadState, live: Live<'a>) -> SerialTurn<'a> {
        // SAFETY: the vtable's `serial` reads the lock of the live, announced handler.
        let lock = live.vt.serial.map(|lock_of| unsafe { &*lock_of(live.data) });
        if let Some(lock) = lock {
            lock.take(me.key());
        }
        SerialTurn(lock)
    }
}

impl Drop for SerialTurn<'_> {
    fn drop(&mut self) {
        if let Some(lock) = self.0 {
            lock.give();
        }
    }
}

/// The innermost callback context of this thread, if a callback is running.
pub fn current_context() -> Option<*mut CallbackContext> {
    let c = thread_state().current.get();
    (!c.is_null()).then_some(c)
}

/// Returns from `ctx` with `code` *now*, like OpenSmalltalk's `primReturnAs:fromContext:`: control
/// continues in thunkEntry's resume point, which returns to `ctx`'s C caller. The result must
/// already be in the context (see [`Args::write`](crate::Args::write)).
///
/// Only the most recent context of this thread can be returned from; any other is refused
/// with [`Error::OutOfOrderReturn`].
///
/// # Safety
/// Every Rust frame between the handler and thunkEntry is skipped without running
/// destructors (as with `longjmp`): the caller guarantees none of them owns anything that needs
/// dropping. The serialized-call lock and the call's announcement are released here.
pub unsafe fn return_from_context(ctx: *mut CallbackContext, code: ReturnCode) -> Error {
    if current_context() != Some(ctx) {
        return Error::OutOfOrderReturn;
    }
    // SAFETY: `ctx` is this thread's live innermost context (checked above).
    let c = unsafe { &mut *ctx };
    let (slot, thunk) = record_slot(c.record);
    let me = thread_state();
    // Undo what the skipped frames would have undone: the chain, the serial turn, the call's
    // announcement (a hazard at this depth names the slot exactly when the call took the
    // hazard path), the depth. The owner is unchanged while the call is announced.
    me.current.set(c.previous);
    if slot.owner() == SERIALIZED {
        // The skipped frames held a turn of the callback's lock. The callback is live, or
        // released but not freed (this call is still announced).
        // SAFETY: as above.
        let live = unsafe { slot.live_or_released() };
        drop(SerialTurn(live.vt.serial.map(|lock_of| unsafe { &*lock_of(live.data) })));
    }
    let depth = me.depth.get() - 1;
    let hazard = me.hazards.get(depth as usize);
    match hazard.filter(|h| h.load(Ordering::Relaxed) == slot.addr()) {
        Some(h) => {
            if withdraw(h, me, slot) {
                registry().defer_free(slot);
            }
        }
        None => slot.exit_counted_deferred(),
    }
    me.depth.set(depth);
    // The code page is the thunk's own page: its shared code holds return_from_context.
    let page = thunk & !(crate::pool::page_size_cached() - 1);
    let offset = crate::pool::symbol_offset(backcall_abi::thunks::RETURN_FROM_CONTEXT);
    let jump: extern "C" fn(*mut CallbackContext, u32) -> ! =
        // SAFETY: the page's return_from_context follows this signature (abi/asm/<abi>/entry.s).
        unsafe { std::mem::transmute(page + offset) };
    jump(ctx, code as u32)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc, Barrier, Mutex};

    use crate::{Callback, Prototype, ThreadPolicy};

    /// Sets its flag when dropped (the handler's captures are freed).
    struct DropFlag(Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// The owner is inside a hazard-path call when another thread releases the callback: the
    /// release must not free the handler; the call, ending, frees it.
    #[test]
    fn a_release_from_another_thread_waits_for_the_owners_call() {
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let (entered_tx, entered_rx) = mpsc::channel::<()>();
        let (released_tx, released_rx) = mpsc::channel::<()>();
        let (entered_tx, released_rx) = (Mutex::new(entered_tx), Mutex::new(released_rx));
        let (handle_tx, handle_rx) = mpsc::channel::<Callback>();
        let seen = dropped.clone();
        let releaser = std::thread::spawn(move || {
            let cb = handle_rx.recv().unwrap();
            entered_rx.recv().unwrap();
            drop(cb);
            released_tx.send(()).unwrap();
        });
        let cb = Callback::new("int (*)(int)", move |args| {
            entered_tx.lock().unwrap().send(()).unwrap();
            released_rx.lock().unwrap().recv().unwrap();
            // Released by now, but not freed: the captures are alive.
            assert!(!seen.load(Ordering::SeqCst), "freed during the call");
            let _ = &flag;
            args.i32(0) + 1
        })
        .unwrap();
        let f: extern "C" fn(i32) -> i32 = unsafe { cb.as_fn() };
        handle_tx.send(cb).unwrap();
        assert_eq!(f(41), 42);
        releaser.join().unwrap();
        assert!(dropped.load(Ordering::SeqCst), "the ending call freed the released callback");
    }

    /// A handler releases its own callback, then calls it again: the nested call is stale
    /// (it withdraws its hazard; the outer call's hazard keeps the handler), and the outer
    /// call's end frees it.
    #[test]
    fn a_call_after_releasing_itself_is_stale_and_the_outer_call_frees() {
        let (f, dropped) = held_callback(|args, dropped| {
            release_held();
            // SAFETY: this callback's own thunk, now released (a stale call is defined).
            let f: extern "C" fn(i32) -> i32 = unsafe { std::mem::transmute(args.thunk()) };
            assert_eq!(f(5), 0, "a call through the released callback is stale");
            assert!(!dropped.load(Ordering::SeqCst), "freed while its own call runs");
            args.i32(0) + 1
        });
        assert_eq!(f(1), 2);
        assert!(dropped.load(Ordering::SeqCst), "the outer call's end freed it");
    }

    /// Another thread calls callbacks while their owner releases them, thousands of times (its
    /// calls are counted, racing the releases' frees): a single-threaded handler never runs
    /// there (refused: -1, or stale: 0), a serialized one runs or is stale, and every handler is
    /// dropped once.
    #[test]
    fn foreign_calls_race_owner_releases() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        static RAN_ELSEWHERE: AtomicBool = AtomicBool::new(false);
        struct Counted(std::thread::ThreadId);
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::SeqCst);
            }
        }
        const N: usize = 2000;
        // Every answer must be its own callback's.
        let _no_reuse = NoReuse::hold();
        // The caller stays at most this many callbacks behind, so its calls race the releases
        // rather than all coming long after them.
        const LAG: usize = 64;
        let proto = Prototype::new("int (*)(int)").unwrap();
        let (tx, rx) = mpsc::channel::<(usize, bool)>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let caller = std::thread::spawn(move || {
            let mut answers = Vec::new();
            for (thunk, serialized) in rx {
                // SAFETY: a thunk of `int (*)(int)`, live or released (a stale call is defined).
                let f: extern "C" fn(i32) -> i32 = unsafe { std::mem::transmute(thunk) };
                for _ in 0..3 {
                    answers.push((f(1), serialized));
                }
                let _ = done_tx.send(());
            }
            answers
        });
        for i in 0..N {
            if i >= LAG {
                done_rx.recv().unwrap();
            }
            let serialized = i % 2 == 1;
            let policy =
                if serialized { ThreadPolicy::Serialized } else { ThreadPolicy::SingleThreaded };
            let c = Counted(std::thread::current().id());
            let cb = proto
                .callback(policy, move |a| {
                    if !serialized && std::thread::current().id() != c.0 {
                        RAN_ELSEWHERE.store(true, Ordering::SeqCst);
                    }
                    a.i32(0) + 1
                })
                .unwrap();
            tx.send((cb.code_ptr() as usize, serialized)).unwrap();
            if i % 3 == 0 {
                std::thread::yield_now();
            }
            drop(cb);
        }
        drop(tx);
        let answers = caller.join().unwrap();
        assert!(!RAN_ELSEWHERE.load(Ordering::SeqCst), "a single-threaded handler ran elsewhere");
        for (answer, serialized) in answers {
            let allowed: &[i32] = if serialized { &[2, 0] } else { &[-1, 0] };
            assert!(allowed.contains(&answer), "answer {answer} (serialized: {serialized})");
        }
        assert_eq!(DROPS.load(Ordering::SeqCst), N, "every handler dropped once");
    }

    /// Calls on the owner thread race releases on another thread, thousands of times: every
    /// call answers either its value or zero (stale), and every handler is dropped once.
    #[test]
    fn owner_calls_race_foreign_releases() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        struct Counted;
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::SeqCst);
            }
        }
        const N: usize = 2000;
        // A stale call's zero must not be another callback's answer.
        let _no_reuse = NoReuse::hold();
        let proto = Prototype::new("int (*)(int)").unwrap();
        let (tx, rx) = mpsc::channel::<Callback>();
        let start = Arc::new(Barrier::new(2));
        let go = start.clone();
        let releaser = std::thread::spawn(move || {
            go.wait();
            for cb in rx {
                drop(cb);
            }
        });
        start.wait();
        let mut stale = 0;
        for i in 0..N as i32 {
            let c = Counted;
            let cb = proto
                .callback(ThreadPolicy::SingleThreaded, move |a| {
                    let _ = &c;
                    a.i32(0) + i
                })
                .unwrap();
            let f: extern "C" fn(i32) -> i32 = unsafe { cb.as_fn() };
            tx.send(cb).unwrap();
            for _ in 0..3 {
                match f(1) {
                    0 => stale += 1,
                    v => assert_eq!(v, i + 1),
                }
            }
        }
        drop(tx);
        releaser.join().unwrap();
        // Each handler was dropped exactly once, by the release or by the call that ended last.
        assert_eq!(DROPS.load(Ordering::SeqCst), N, "{stale} stale calls");
    }

    /// Nested deeper than the hazards reach, calls are counted; releasing at the deepest level
    /// frees only when the outermost call ends.
    #[test]
    fn deep_nesting_past_the_hazards_releases_after_the_outermost_call() {
        let (f, dropped) = held_callback(|args, dropped| {
            let d = args.i32(0);
            if d == 0 {
                release_held();
                return 0;
            }
            // SAFETY: this callback's own thunk (`int (*)(int)`).
            let f: extern "C" fn(i32) -> i32 = unsafe { std::mem::transmute(args.thunk()) };
            let r = f(d - 1) + 1;
            assert!(!dropped.load(Ordering::SeqCst), "freed while calls are in flight");
            r
        });
        let depth = super::HAZARDS as i32 * 2;
        assert_eq!(f(depth), depth);
        assert!(dropped.load(Ordering::SeqCst));
    }

    /// While held, no released slot is reused before the pool fills, so a stale thunk keeps
    /// answering zero. The race tests need that: other tests in this process release
    /// callbacks too, so no bound on a test's own lag can keep its stale thunks within the
    /// count-based quarantine. The default comes back when the last holder is done.
    struct NoReuse;

    static NO_REUSE_HOLDERS: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

    impl NoReuse {
        fn hold() -> NoReuse {
            let mut holders = NO_REUSE_HOLDERS.lock().unwrap_or_else(|p| p.into_inner());
            *holders += 1;
            crate::set_reuse_quarantine(u64::MAX);
            NoReuse
        }
    }

    impl Drop for NoReuse {
        fn drop(&mut self) {
            let mut holders = NO_REUSE_HOLDERS.lock().unwrap_or_else(|p| p.into_inner());
            *holders -= 1;
            if *holders == 0 {
                crate::set_reuse_quarantine(crate::registry::DEFAULT_QUARANTINE);
            }
        }
    }

    thread_local! {
        static HELD: std::cell::RefCell<Option<Callback>> = const { std::cell::RefCell::new(None) };
    }

    /// An `int (*)(int)` callback held by this thread (its handler may release it with
    /// [`release_held`]), and the flag its captures set when they are dropped (also handed to
    /// the handler).
    fn held_callback(
        handler: impl Fn(&crate::Args, &AtomicBool) -> i32 + Send + Sync + 'static,
    ) -> (extern "C" fn(i32) -> i32, Arc<AtomicBool>) {
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let seen = dropped.clone();
        let cb = Callback::new("int (*)(int)", move |args| {
            let _ = &flag;
            handler(args, &seen)
        })
        .unwrap();
        // SAFETY: the signature above.
        let f: extern "C" fn(i32) -> i32 = unsafe { cb.as_fn() };
        HELD.with(|s| *s.borrow_mut() = Some(cb));
        (f, dropped)
    }

    /// Releases the callback [`held_callback`] made on this thread.
    fn release_held() {
        HELD.with(|s| drop(s.borrow_mut().take()));
    }
}
