//! The native dispatcher: what thunkEntry calls with the context it built.
//!
//! Order of work (the seed's `thunkEntry` → `ownVM` → `invokeCallbackContext` → result):
//! slot lookup (stale check) → thread policy → push the context on this thread's LIFO chain →
//! run the handler (panics stopped here) → result written by the plan → pop → return code.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex};

use backcall_abi::{Loc, ReturnCode};

use crate::context::{CallbackContext, HOST_LAYOUT};
use crate::error::{report, CallbackError, Error};
use crate::marshal::Frame;
use crate::memory::NativeMemory;
use crate::registry::{registry, Handler, InFlight, Record, Slot, ThreadPolicy};
use crate::Args;

/// The address thunkEntry calls (patched into every code page).
pub(crate) fn entry_address() -> usize {
    dispatch as extern "C" fn(*mut CallbackContext) -> u32 as usize
}

thread_local! {
    static THREAD_ID: u64 = next_thread_id();
    static CURRENT: Cell<*mut CallbackContext> = const { Cell::new(std::ptr::null_mut()) };
    static SERIAL_DEPTH: Cell<u32> = const { Cell::new(0) };
}

fn next_thread_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// This thread's id as the thread policy sees it.
pub(crate) fn thread_id() -> u64 {
    THREAD_ID.with(|t| *t)
}

/// Called by thunkEntry. Never unwinds: every failure becomes a defined result and a report.
extern "C" fn dispatch(ctx: *mut CallbackContext) -> u32 {
    let outcome = catch_unwind(AssertUnwindSafe(|| dispatch_inner(ctx)));
    // A panic outside the handler (a bug in backcall itself) still must not reach C.
    outcome.unwrap_or(ReturnCode::Void) as u32
}

fn dispatch_inner(ctx: *mut CallbackContext) -> ReturnCode {
    // SAFETY: thunkEntry passes the context it built in its own live frame.
    let c = unsafe { &mut *ctx };
    let Some(slot) = registry().slot(c.slot as u32) else {
        return ReturnCode::Void;
    };
    c.thunk = slot.thunk;
    let call = slot.enter();
    let Some(record) = call.record else {
        return stale(c, slot);
    };
    let frame =
        Frame { mem: &NativeMemory, layout: HOST_LAYOUT, ctx: ctx as u64, plan: &record.plan };
    match record.policy {
        ThreadPolicy::SingleThreaded if record.owner != thread_id() => {
            report(CallbackError::WrongThread { thunk: slot.thunk });
            frame.write_default(-1)
        }
        ThreadPolicy::SingleThreaded => run(c, &call, record, frame),
        ThreadPolicy::Serialized => {
            let _turn = SerialTurn::take();
            run(c, &call, record, frame)
        }
    }
}

fn run(
    c: &mut CallbackContext,
    call: &InFlight<'_>,
    record: &Record,
    frame: Frame<'_>,
) -> ReturnCode {
    c.previous = CURRENT.with(|cur| cur.replace(c));
    let _pop = PopOnExit(c.previous);
    let args = Args { frame, slot: call.slot };
    let outcome = catch_unwind(AssertUnwindSafe(|| match &record.handler {
        Handler::Dynamic(h) => {
            let value = h(&args);
            frame.write_value(&value).map_err(|message| (message, false))
        }
        Handler::Raw(h) => Ok(h(&args)),
    }));
    let thunk = call.slot.thunk;
    match outcome {
        Ok(Ok(code)) => code,
        Ok(Err((message, _))) => {
            report(CallbackError::BadResult { thunk, message });
            frame.write_zero_result()
        }
        Err(panic) => {
            report(CallbackError::Panicked { thunk, message: panic_message(&panic) });
            frame.write_zero_result()
        }
    }
}

/// Restores the LIFO chain however the handler ends (normal return or contained panic).
struct PopOnExit(*mut CallbackContext);

impl Drop for PopOnExit {
    fn drop(&mut self) {
        CURRENT.with(|cur| cur.set(self.0));
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_string()
    }
}

/// A call through a released thunk: return zeros the way the released callback's caller
/// expects (same return code, callee pops, hidden pointer returned), and report it.
fn stale(c: &mut CallbackContext, slot: &Slot) -> ReturnCode {
    report(CallbackError::Stale { thunk: slot.thunk });
    let tomb = slot.tombstone();
    c.callee_pop = tomb.callee_pop as usize;
    if let Some((loc, true)) = tomb.hidden {
        c.result_int[0] = match loc {
            Loc::Int(i) => c.int_regs[i as usize],
            // SAFETY: the released callback's plan put the hidden pointer at this stack offset.
            Loc::Stack(o) => unsafe { *((c.stack_args + o as usize) as *const usize) },
            _ => 0,
        };
    }
    tomb.code
}

/// One turn of the process-wide reentrant lock of serialized callbacks.
struct SerialTurn;

static SERIAL: Mutex<Option<u64>> = Mutex::new(None);
static SERIAL_FREE: Condvar = Condvar::new();

impl SerialTurn {
    fn take() -> SerialTurn {
        if SERIAL_DEPTH.with(|d| d.get()) == 0 {
            let me = thread_id();
            let mut owner = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
            while owner.is_some() {
                owner = SERIAL_FREE.wait(owner).unwrap_or_else(|p| p.into_inner());
            }
            *owner = Some(me);
        }
        SERIAL_DEPTH.with(|d| d.set(d.get() + 1));
        SerialTurn
    }
}

impl Drop for SerialTurn {
    fn drop(&mut self) {
        let depth = SERIAL_DEPTH.with(|d| {
            d.set(d.get() - 1);
            d.get()
        });
        if depth == 0 {
            *SERIAL.lock().unwrap_or_else(|p| p.into_inner()) = None;
            SERIAL_FREE.notify_one();
        }
    }
}

/// The innermost callback context of this thread, if a callback is running.
pub fn current_context() -> Option<*mut CallbackContext> {
    let c = CURRENT.with(|c| c.get());
    (!c.is_null()).then_some(c)
}

/// Returns from `ctx` with `code` *now*, like the seed's `primReturnAs:fromContext:`: control
/// continues in thunkEntry's resume point, which returns to `ctx`'s C caller. The result must
/// already be in the context (see [`Args::write`](crate::Args::write)).
///
/// Only the most recent context of this thread can be returned from; any other is refused
/// with [`Error::OutOfOrderReturn`].
///
/// # Safety
/// Every Rust frame between the handler and thunkEntry is skipped without running
/// destructors (as with `longjmp`): the caller guarantees none of them owns anything that needs
/// dropping. The serialized-call lock and the in-flight count are released here.
pub unsafe fn return_from_context(ctx: *mut CallbackContext, code: ReturnCode) -> Error {
    if current_context() != Some(ctx) {
        return Error::OutOfOrderReturn;
    }
    // SAFETY: `ctx` is this thread's live innermost context (checked above).
    let c = unsafe { &mut *ctx };
    let Some(slot) = registry().slot(c.slot as u32) else {
        return Error::OutOfOrderReturn;
    };
    // Undo what the skipped frames would have undone: the chain, the serial turn, the count.
    CURRENT.with(|cur| cur.set(c.previous));
    // SAFETY: the record is live: this call holds an in-flight count on its slot.
    let serialized =
        matches!(unsafe { slot.peek_record() }.map(|r| r.policy), Some(ThreadPolicy::Serialized));
    if serialized {
        drop(SerialTurn);
    }
    slot.exit_raw();
    let jump: extern "C" fn(*mut CallbackContext, u32) -> ! =
        // SAFETY: the page's return_from_context follows this signature (abi/asm/<abi>/entry.s).
        unsafe { std::mem::transmute(slot.page.return_from_context) };
    jump(ctx, code as u32)
}
