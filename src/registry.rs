//! The registry: every thunk's slot, and the callback installed in it.
//!
//! Thunk `i` of a page pair has slot `i` of that page, for the life of the process: the first
//! word of the thunk's record (in the data page) is the slot's address, so the dispatcher
//! reaches its slot with one load. A slot id (`page << shift | index`) names it for the
//! handles. A slot holds its callback inline (no allocation beyond the handler's own
//! captures): the handler's data pointer and vtable, the plan, the owner and the return
//! protocol a stale call still needs. The record's second word, the target, is the entry (or
//! typed stub) the installed callback's plan needs.
//!
//! ## Reuse
//!
//! A released slot is reused only after [`Registry::quarantine`] other releases (the pool
//! grows instead, unless it is full), and preferably by a callback with the same *return
//! protocol* (return code, callee pop, hidden result pointer, result size) and the same
//! target: a stale call through an old function pointer then still returns the way its
//! caller expects. What remains: a stale call after its slot was reused by a callback of the
//! same protocol runs the new callback's handler with the old caller's arguments; after reuse
//! by another protocol (only when the pool is full), it may return the wrong way.
//!
//! ## Lifetime: release, in-flight calls, free
//!
//! A slot's `state` is `0` (free), `vtable | LIVE`, or `vtable | RELEASED` (released, not yet
//! freed). Releasing flips LIVE to RELEASED, so every later call is stale; the handler and plan
//! are *freed* (and the slot recycled) only when no call is in flight through the slot, by
//! whoever notices last: the releaser, or the call that ends last. A call is "in flight" in one
//! of two ways:
//!
//! * the owner thread of a single-threaded callback, nested at most [`HAZARDS`] deep, announces
//!   it in its thread's hazards (no atomic read-modify-write; see `hazard.rs` for the
//!   asymmetric fence that makes this sound against a release from another thread);
//! * every other call (another thread, a serialized callback, deep nesting) counts itself in the
//!   slot's `inflight` counter (`SeqCst` read-modify-write, the classic protocol).
//!
//! [`Registry::try_free`] frees only when the counter is zero and no hazard names the slot, and
//! each party that may have blocked a free (a call ending, a counter reaching zero) calls it
//! again, so exactly one party frees (a compare-exchange on `state` decides), and never while a
//! call can still touch the handler or the plan.
//!
//! A freed slot may keep its last plan (a reference to the shared `PlanInfo`, never read
//! again) until the slot is reused: a prototype's callbacks then come and go without touching
//! its reference count. A slot keeps at most one plan, so the plans kept never outnumber the
//! slots, whose live callbacks held at least as many.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use backcall_abi::{Abi, CallPlan, Loc, RetPlan, ReturnCode};

use crate::error::Error;
use crate::hazard::{self, SERIALIZED};
use crate::native::PlanInfo;
use crate::pool::{self, ExecPage};
use crate::pool_lock::{PoolGuard, PoolLock};

pub(crate) use crate::hazard::HAZARDS;

/// Who may call a callback.
#[derive(Clone, Debug, Default)]
pub enum ThreadPolicy {
    /// only the thread that created the callback; a call from any other thread is refused
    /// with a [`crate::CallbackError::WrongThread`] and returns -1
    #[default]
    SingleThreaded,
    /// any thread; the callback's calls take turns (its own reentrant lock: a call may reach
    /// C that calls it again on the same thread)
    Serialized,
    /// any thread; the calls of every callback of the group take turns (one reentrant lock
    /// for the group). A call that waits for another thread which needs the same group
    /// deadlocks, as with any lock.
    SerializedWith(SerialGroup),
}

impl PartialEq for ThreadPolicy {
    fn eq(&self, other: &ThreadPolicy) -> bool {
        match (self, other) {
            (ThreadPolicy::SerializedWith(a), ThreadPolicy::SerializedWith(b)) => {
                Arc::ptr_eq(&a.0, &b.0)
            }
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

/// A lock that serialized callbacks share ([`ThreadPolicy::SerializedWith`]): one call at a
/// time among all of them, reentrant on one thread.
///
/// ```
/// use backcall::{Callback, SerialGroup, ThreadPolicy};
///
/// let group = SerialGroup::new();
/// let log = Callback::with_policy("void (*)(int)", ThreadPolicy::SerializedWith(group.clone()), |_| ())
///     .unwrap();
/// let flush = Callback::with_policy("void (*)(void)", ThreadPolicy::SerializedWith(group), |_| ())
///     .unwrap();
/// # let _ = (log, flush);
/// ```
#[derive(Clone, Debug, Default)]
pub struct SerialGroup(pub(crate) Arc<SerialLock>);

impl SerialGroup {
    /// A new group.
    pub fn new() -> SerialGroup {
        SerialGroup::default()
    }
}

/// The reentrant lock of a [`SerialGroup`]: the thread key holding it, and how many turns.
#[derive(Debug, Default)]
pub(crate) struct SerialLock {
    holder: Mutex<Option<(u32, u32)>>,
    free: std::sync::Condvar,
}

impl SerialLock {
    /// Takes a turn for the thread `key` (again, if it holds it).
    pub fn take(&self, key: u32) {
        let mut holder = self.holder.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match *holder {
                None => {
                    *holder = Some((key, 1));
                    return;
                }
                Some((k, n)) if k == key => {
                    *holder = Some((k, n + 1));
                    return;
                }
                Some(_) => holder = self.free.wait(holder).unwrap_or_else(|p| p.into_inner()),
            }
        }
    }

    /// Ends a turn of the thread holding it.
    pub fn give(&self) {
        let mut holder = self.holder.lock().unwrap_or_else(|p| p.into_inner());
        match *holder {
            Some((k, n)) if n > 1 => *holder = Some((k, n - 1)),
            _ => {
                *holder = None;
                self.free.notify_one();
            }
        }
    }
}

/// How a handler runs: monomorphized per handler type and storage (see `callback.rs`).
/// Aligned to 8 so that a slot's state has three tag bits beside the vtable's address;
/// `repr(C)`: the typed stubs read `typed` (`backcall_abi::context`, `VTABLE_TYPED_ENTRY`).
#[repr(C, align(8))]
pub(crate) struct HandlerVt {
    /// runs the handler (at `data`) on one call, result written, and answers the return code
    pub call: unsafe fn(data: *const (), args: &crate::Args<'_>) -> ReturnCode,
    /// drops the handler at `data` (and its box, when boxed)
    pub drop: unsafe fn(data: *mut ()),
    /// the typed route's entry (a typed stub jumps here with the slot as a new first
    /// argument); the refusing entry for handlers without one
    pub typed: unsafe extern "C" fn(),
    /// the handler is not `Send`: only its owner thread may drop it
    pub local: bool,
    /// for a serialized callback: the lock of its group, from its handler data
    pub serial: Option<unsafe fn(*const ()) -> *const SerialLock>,
    /// `drop` does nothing (a handler stored in place without drop glue): freeing its slot
    /// then skips the contained drop
    pub trivial_drop: bool,
}

/// The state of a free slot: no tag, and a vtable whose typed entry refuses, so that a typed
/// stub reached by a stale call through a freed slot still finds an entry.
static FREE: HandlerVt = HandlerVt {
    call: refuse_call,
    drop: drop_nothing,
    typed: crate::typed::REFUSING_ENTRY,
    local: false,
    serial: None,
    trivial_drop: true,
};

/// # Safety
/// Never called: a free slot's state has no LIVE tag.
unsafe fn refuse_call(_: *const (), args: &crate::Args<'_>) -> ReturnCode {
    args.native.frame().write_zero_result()
}

/// # Safety
/// Nothing to drop.
unsafe fn drop_nothing(_: *mut ()) {}

fn free_state() -> usize {
    &FREE as *const HandlerVt as usize
}

/// A handler: its vtable and its data, either a box's pointer or, for a handler of at most a
/// word (no captures, or one small value), the handler's own bytes (`inline`): then it lives
/// in the slot itself and costs no allocation. Dropping it drops the handler.
pub(crate) struct HandlerBox {
    pub vt: &'static HandlerVt,
    pub data: *mut (),
    pub inline: bool,
}

impl HandlerBox {
    /// Where the handler is: the box, or the word holding it.
    fn at(&mut self) -> *mut () {
        if self.inline {
            (&raw mut self.data).cast()
        } else {
            self.data
        }
    }
}

impl Drop for HandlerBox {
    fn drop(&mut self) {
        // SAFETY: `vt` was made for the handler at `at()`, which is dropped once.
        unsafe { (self.vt.drop)(self.at()) }
    }
}

const LIVE: usize = 1;
const RELEASED: usize = 2;
/// The handler is stored inline in the slot's data word.
const INLINE: usize = 4;
const LIFE: usize = LIVE | RELEASED;
const TAGS: usize = LIFE | INLINE;

/// One thunk's slot. `repr(C)`: the typed stubs read `state`, the first word, from
/// assembly, and jump to its vtable's typed entry.
#[repr(C)]
pub(crate) struct Slot {
    /// free: the address of [`FREE`]; else the handler's vtable with `LIVE` or `RELEASED` and
    /// maybe `INLINE`
    state: AtomicUsize,
    /// the handler's box, or the handler itself (`INLINE`; valid while not free)
    data: UnsafeCell<*mut ()>,
    /// the plan, an `Arc<PlanInfo>` turned raw (valid while not free; a free slot may keep
    /// its last one, read by no call, until it is reused: [`Slot::keep_info`])
    info: UnsafeCell<*const PlanInfo>,
    /// the return protocol of the callback last installed here, for stale calls
    tombstone: AtomicU64,
    /// the owner thread's key, or [`SERIALIZED`]
    owner: AtomicU32,
    /// calls in flight that are not on the hazard path
    inflight: AtomicU32,
}

// SAFETY: `data` and `info` are written only while the slot is free (no call can read them:
// `state` is 0) and published by the Release store of `state`; readers read them only after an
// Acquire load of a LIVE state, under an in-flight count or hazard that keeps them from being
// freed.
unsafe impl Sync for Slot {}

/// A live callback's parts, borrowed for one call.
#[derive(Clone, Copy)]
pub(crate) struct Live<'a> {
    pub vt: &'static HandlerVt,
    pub data: *const (),
    pub info: &'a PlanInfo,
}

/// How a stale call through a released slot still returns the way its caller expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tombstone {
    pub code: ReturnCode,
    pub callee_pop: u32,
    /// the hidden result pointer's location and whether it is returned in result register 0
    pub hidden: Option<(Loc, bool)>,
    /// the result's size (the bytes a stale call zeroes through the hidden pointer)
    pub size: u32,
}

impl Tombstone {
    pub fn of(plan: &CallPlan) -> Tombstone {
        let hidden = match plan.ret {
            RetPlan::Indirect { pointer, returned_in } => Some((pointer, returned_in.is_some())),
            _ => None,
        };
        let size = plan.ret_layout.size;
        Tombstone { code: plan.code, callee_pop: plan.callee_pop, hidden, size }
    }

    /// One word: code (3 bits), hidden pointer kind (2) and returned flag (1), its register
    /// number or stack offset (8), the callee pop (25) and the result size (25). The plans'
    /// limits keep every field in range: results of at most `MAX_SIZE` (16 MiB), stack
    /// arguments of at most `MAX_STACK_ARGUMENT_BYTES`, and the hidden pointer is the first
    /// argument (register 0 or 1, stack offset 0).
    pub fn pack(self) -> u64 {
        let (kind, value, returned) = match self.hidden {
            None => (0u64, 0u64, false),
            Some((Loc::Int(i), r)) => (1, u64::from(i), r),
            Some((Loc::Stack(o), r)) => (2, u64::from(o), r),
            Some((_, r)) => (3, 0, r),
        };
        debug_assert!(value < 1 << 8 && self.callee_pop < 1 << 25 && self.size < 1 << 25);
        (self.code as u64)
            | kind << 3
            | u64::from(returned) << 5
            | (value & 0xff) << 6
            | u64::from(self.callee_pop & 0x1ff_ffff) << 14
            | u64::from(self.size & 0x1ff_ffff) << 39
    }

    fn unpack(v: u64) -> Tombstone {
        let code = ReturnCode::from_u32((v & 7) as u32).unwrap_or(ReturnCode::Void);
        let returned = v >> 5 & 1 == 1;
        let value = (v >> 6 & 0xff) as u32;
        let hidden = match v >> 3 & 3 {
            1 => Some((Loc::Int(value as u8), returned)),
            2 => Some((Loc::Stack(value), returned)),
            _ => None,
        };
        let callee_pop = (v >> 14 & 0x1ff_ffff) as u32;
        let size = (v >> 39 & 0x1ff_ffff) as u32;
        Tombstone { code, callee_pop, hidden, size }
    }
}

impl Slot {
    fn empty() -> Slot {
        Slot {
            state: AtomicUsize::new(free_state()),
            data: UnsafeCell::new(std::ptr::null_mut()),
            info: UnsafeCell::new(std::ptr::null()),
            tombstone: AtomicU64::new(0),
            owner: AtomicU32::new(0),
            inflight: AtomicU32::new(0),
        }
    }

    /// This slot's address: what a hazard names.
    #[inline(always)]
    pub fn addr(&self) -> usize {
        self as *const Slot as usize
    }

    /// The owner key (for the dispatcher's choice of path).
    #[inline(always)]
    pub fn owner(&self) -> u32 {
        self.owner.load(Ordering::Relaxed)
    }

    /// The state, read after a hazard-path call announced itself (hazard + fence).
    #[inline(always)]
    pub fn state(&self) -> usize {
        self.state.load(Ordering::Acquire)
    }

    /// The state, read after a counted call announced itself (the counter's increment and
    /// this load are `SeqCst`, against the release's swap and `try_free`'s counter read).
    #[inline(always)]
    pub fn state_counted(&self) -> usize {
        self.state.load(Ordering::SeqCst)
    }

    /// Whether a state is a live callback's.
    #[inline(always)]
    pub fn is_live(state: usize) -> bool {
        state & LIVE != 0
    }

    /// The live callback of a live state read by [`Slot::state`] or [`Slot::state_counted`].
    ///
    /// # Safety
    /// `state` is live; the caller announced its call before reading it (a hazard on the
    /// owner thread of this very callback, or the in-flight counter) and keeps it announced
    /// while it uses the answer.
    #[inline(always)]
    pub unsafe fn live(&self, state: usize) -> Live<'_> {
        debug_assert!(Slot::is_live(state));
        // SAFETY: a LIVE state was stored (Release) after `data` and `info` were written; the
        // announced call keeps them from being freed.
        unsafe {
            let data = if state & INLINE != 0 {
                self.data.get() as *const ()
            } else {
                *self.data.get() as *const ()
            };
            Live { vt: &*((state & !TAGS) as *const HandlerVt), data, info: &**self.info.get() }
        }
    }

    /// The callback of a call still announced, live or released since (not freed: the call
    /// keeps it).
    ///
    /// # Safety
    /// The caller's call through this slot is announced.
    pub unsafe fn live_or_released(&self) -> Live<'_> {
        let state = self.state.load(Ordering::Acquire);
        // SAFETY: an announced call keeps the slot from being freed; `live` reads the same
        // fields whether the tag says LIVE or RELEASED.
        unsafe { self.live(state | LIVE) }
    }

    /// Whether the callback in the slot was released and waits to be freed.
    #[inline(always)]
    pub fn released(&self) -> bool {
        self.state.load(Ordering::SeqCst) & RELEASED != 0
    }

    /// The return protocol of the callback last installed here.
    pub fn tombstone(&self) -> Tombstone {
        Tombstone::unpack(self.tombstone.load(Ordering::Acquire))
    }

    /// Counts a call that is not on the hazard path.
    #[inline]
    pub fn enter_counted(&self) {
        self.inflight.fetch_add(1, Ordering::SeqCst);
    }

    /// Ends a counted call; the last one out frees a callback released meanwhile.
    #[inline]
    pub fn exit_counted(&'static self) {
        if self.inflight.fetch_sub(1, Ordering::SeqCst) == 1 && self.released() {
            registry().try_free(self);
        }
    }

    /// [`Slot::exit_counted`] for `return_from_context`, whose handler frame is still on the
    /// stack: the free is deferred (see [`Registry::defer_free`]).
    pub fn exit_counted_deferred(&'static self) {
        if self.inflight.fetch_sub(1, Ordering::SeqCst) == 1 && self.released() {
            registry().defer_free(self);
        }
    }

    /// Makes `info` the slot's plan, and answers the plan it held before when that is
    /// another (a freed slot keeps its last plan while someone else holds it too, so that
    /// creating callbacks of one prototype in a row takes no reference count: two atomic
    /// read-modify-writes of the roughly seven a create and release cost).
    ///
    /// # Safety
    /// The slot is free and taken by the caller (off the free lists, no LIVE tag).
    unsafe fn keep_info(&self, info: &Arc<PlanInfo>) -> Option<Arc<PlanInfo>> {
        // SAFETY: only the caller, which took the free slot, reads or writes the field.
        let held = unsafe { &mut *self.info.get() };
        if std::ptr::eq(*held, Arc::as_ptr(info)) {
            return None;
        }
        let previous = std::mem::replace(held, Arc::into_raw(Arc::clone(info)));
        // SAFETY: a non-null field owns one reference (from `into_raw`).
        (!previous.is_null()).then(|| unsafe { Arc::from_raw(previous) })
    }

    /// The plan of a callback being freed, if the slot should give it up now: when no one
    /// else holds it. (Whoever else held it may let go later, a thread's prototype cache at
    /// the thread's exit say: the slot then keeps the plan alone until it is reused, one plan
    /// per slot at most.)
    ///
    /// # Safety
    /// The caller frees the slot under the pool lock.
    unsafe fn let_go_of_info(&self) -> Option<Arc<PlanInfo>> {
        // SAFETY: the caller frees the slot; no one else reads or writes the field.
        let held = unsafe { &mut *self.info.get() };
        // SAFETY: a live callback's field owns one reference, looked at here, not taken. (A
        // plain load: a reference count may change under it, which only decides when the plan
        // is dropped.)
        let alone =
            Arc::strong_count(&std::mem::ManuallyDrop::new(unsafe { Arc::from_raw(*held) })) == 1;
        // SAFETY: the field's reference, taken once (the field is left null).
        alone.then(|| unsafe { Arc::from_raw(std::mem::replace(held, std::ptr::null())) })
    }

    /// The live callback's plan, for a caller holding the live handle.
    pub fn live_info(&self) -> &PlanInfo {
        // SAFETY: the caller (a `Callback`) has not released the slot, so it is not freed.
        unsafe { &**self.info.get() }
    }
}

const MAX_PAGES: usize = 1 << 16;

/// Releases a freed slot waits for, by default, before it is reused ([`Registry::quarantine`]).
pub const DEFAULT_QUARANTINE: u64 = 256;

/// One mapped page pair of thunks and their slots.
pub(crate) struct Page {
    pub exec: ExecPage,
    slots: Box<[Slot]>,
}

impl Page {
    /// Thunk `i`'s record, as words (slot word, target, and on 32-bit machines the stack bytes
    /// of `bc_stub_copy`).
    fn record(&self, i: u32) -> &[AtomicUsize] {
        let words = if cfg!(target_pointer_width = "32") { 3 } else { 2 };
        // SAFETY: the data page is read+write for the life of the process; the record is
        // 16 bytes at a 16-aligned offset; every access to it is atomic.
        unsafe { std::slice::from_raw_parts(self.exec.record(i) as *const AtomicUsize, words) }
    }

    /// Points thunk `i` at the code page offset `target`.
    fn set_route(&self, i: u32, target: u32, stack_bytes: u32) {
        let record = self.record(i);
        if let Some(bytes) = record.get(2) {
            bytes.store(stack_bytes as usize, Ordering::Relaxed);
        }
        record[1].store(self.exec.base + target as usize, Ordering::Release);
    }

    /// Thunk `i`'s target, as an offset in the code page.
    fn target(&self, i: u32) -> usize {
        self.record(i)[1].load(Ordering::Relaxed) - self.exec.base
    }
}

/// Every page's slots; page `p` is published once, never moved or freed.
pub(crate) struct Registry {
    pages: [AtomicPtr<Page>; MAX_PAGES],
    shift: AtomicU32,
    state: PoolLock<PoolState>,
    /// released slots (addresses) whose free waits for a safe point
    deferred: Mutex<Vec<usize>>,
    /// whether `deferred` may hold any (checked without the lock on every create and release)
    any_deferred: AtomicBool,
}

/// What a freed slot may be reused for without surprising a stale caller: the return protocol
/// (with the result size), the record's target, and the handler's typed entry. A typed stub
/// reads the slot's vtable before its call is announced, and the typed entry it jumps to then
/// takes the slot's handler data for its own closure type: a slot reused meanwhile must hold
/// the same type (the same typed entry), never another typed or a dynamic handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Class {
    tomb: u64,
    target: usize,
    typed: usize,
}

impl PoolState {
    /// The freed slots of `class` (a handful of classes in practice: a list, no hashing).
    fn queue(&mut self, class: Class) -> &mut VecDeque<(u32, u64)> {
        let at = match self.freed.iter().position(|(c, _)| *c == class) {
            Some(at) => at,
            None => {
                self.freed.push((class, VecDeque::new()));
                self.freed.len() - 1
            }
        };
        &mut self.freed[at].1
    }
}

struct PoolState {
    pages: usize,
    /// slots never used
    fresh: VecDeque<u32>,
    /// released slots by class, each with the release count at its release
    freed: Vec<(Class, VecDeque<(u32, u64)>)>,
    /// releases so far
    releases: u64,
    /// releases a freed slot waits for before reuse
    quarantine: u64,
    /// each page's slot array: its first slot's address, and the page's first slot id
    slot_arrays: std::collections::BTreeMap<usize, u32>,
    abi: Option<Abi>,
    limit: usize,
}

static REGISTRY: Registry = Registry {
    pages: [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_PAGES],
    shift: AtomicU32::new(0),
    state: PoolLock::new(PoolState {
        pages: 0,
        fresh: VecDeque::new(),
        freed: Vec::new(),
        releases: 0,
        quarantine: DEFAULT_QUARANTINE,
        slot_arrays: std::collections::BTreeMap::new(),
        abi: None,
        limit: MAX_PAGES,
    }),
    deferred: Mutex::new(Vec::new()),
    any_deferred: AtomicBool::new(false),
};

/// The process-wide registry.
#[inline(always)]
pub(crate) fn registry() -> &'static Registry {
    &REGISTRY
}

/// A freed callback's handler and plan, waiting to be dropped on the right thread.
pub(crate) struct Orphan {
    handler: HandlerBox,
    /// the plan, when the freed slot gave it up
    info: Option<Arc<PlanInfo>>,
    thunk: usize,
}

// SAFETY: an orphan whose handler is not `Send` is only moved to its owner thread's list and
// dropped there (`hazard::hand_to_owner`, `ThreadState::drop_orphans`), or leaked.
unsafe impl Send for Orphan {}

impl Orphan {
    /// Drops the handler and the plan. The handler's captures may run arbitrary code: no lock
    /// is held, and a panic there is reported, never unwound into the dispatcher's bookkeeping
    /// or into C.
    pub fn drop_here(self) {
        let Orphan { handler, info, thunk } = self;
        crate::error::contain_drop(
            || thunk,
            move || {
                drop(info);
                drop(handler);
            },
        );
    }
}

/// Where a callback's thunk jumps: a code page offset (an entry of the context route, or a
/// typed stub) and the record's stack-bytes word (`bc_stub_copy`'s). Resolved once per plan
/// (see `native.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    pub target: u32,
    pub stack_bytes: u32,
}

// A slot is 40 bytes on 64-bit machines: with its 16-byte record and its share of the data page,
// under 64 bytes per callback whose handler fits a word.
const _: () = assert!(std::mem::size_of::<Slot>() <= 40);
// What the typed stubs read (abi/asm/<abi>/entry.s; backcall_abi::context).
const _: () = {
    let layout =
        backcall_abi::context::ContextLayout::for_word(std::mem::size_of::<usize>() as u32);
    assert!(std::mem::offset_of!(Slot, state) == backcall_abi::context::SLOT_STATE as usize);
    assert!(TAGS == backcall_abi::context::SLOT_TAGS as usize);
    assert!(std::mem::offset_of!(HandlerVt, typed) == layout.vtable_typed_entry() as usize);
};

impl Registry {
    /// The page and index of slot `id`, if the page exists.
    #[inline(always)]
    fn locate(&'static self, id: u32) -> Option<(&'static Page, u32)> {
        let shift = self.shift.load(Ordering::Acquire);
        let ptr = self.pages.get((id >> shift) as usize)?.load(Ordering::Acquire);
        // SAFETY: published pages are leaked boxes, never freed.
        let page = unsafe { ptr.as_ref() }?;
        Some((page, id & ((1 << shift) - 1)))
    }

    /// The slot with this id, if it exists.
    #[inline(always)]
    pub fn slot(&'static self, id: u32) -> Option<&'static Slot> {
        let (page, i) = self.locate(id)?;
        page.slots.get(i as usize)
    }

    /// The page slot `id` lives in.
    pub fn page(&'static self, id: u32) -> &'static ExecPage {
        &self.locate(id).expect("a slot id names a published page").0.exec
    }

    /// Whether slot `id`'s thunk jumps to a typed stub.
    pub fn on_typed_route(&'static self, id: u32) -> bool {
        let (page, i) = self.locate(id).expect("a slot id names a published page");
        let target = page.target(i) as u32;
        page.exec.code.context_entry(true) != target
            && page.exec.code.context_entry(false) != target
    }

    /// The thunk address of slot `id` (C's function pointer).
    #[inline(always)]
    pub fn thunk(&'static self, id: u32) -> usize {
        let (page, i) = self.locate(id).expect("a slot id names a published page");
        page.exec.thunk(i)
    }

    /// Installs a callback in a free slot (growing the pool by a page if none fits) and
    /// answers the slot id. `owner` is the owner thread's key or [`SERIALIZED`]; `route` the
    /// thunk's target (a typed stub jumps to the handler's vtable's typed entry).
    pub fn install(
        &'static self,
        abi: Abi,
        info: &Arc<PlanInfo>,
        owner: u32,
        handler: HandlerBox,
        route: Route,
    ) -> Result<u32, Error> {
        crate::error::quiet_contained_panics();
        self.free_deferred();
        hazard::thread_state().drop_orphans();
        let tomb = info.tomb;
        let Route { target, stack_bytes } = route;
        let class = Class { tomb, target: target as usize, typed: handler.vt.typed as usize };
        let id = self.take_free(abi, class)?;
        let (page, i) = self.locate(id).expect("free ids name published slots");
        let slot = &page.slots[i as usize];
        let vt = handler.vt as *const HandlerVt as usize;
        debug_assert_eq!(vt & TAGS, 0, "vtables are 8-aligned");
        let inline = if handler.inline { INLINE } else { 0 };
        // SAFETY: the slot is free (off the free lists, no LIVE tag): no call reads these.
        let previous = unsafe {
            *slot.data.get() = handler.data;
            slot.keep_info(info)
        };
        std::mem::forget(handler);
        slot.tombstone.store(tomb, Ordering::Release);
        slot.owner.store(owner, Ordering::Relaxed);
        page.set_route(i, target, stack_bytes);
        // Publishes data, info, tombstone, owner and route (hazard.rs: the owner re-check
        // after this Acquire-read state relies on the owner store coming first).
        slot.state.store(vt | inline | LIVE, Ordering::Release);
        drop(previous);
        Ok(id)
    }

    /// Releases the callback in slot `id`: later calls are stale; it is freed now, or by the
    /// last call still in flight.
    pub fn release(&'static self, id: u32) {
        hazard::thread_state().drop_orphans();
        let slot = self.slot(id).expect("a live callback's slot");
        let state = slot.state.load(Ordering::Relaxed);
        if state & LIVE == 0 {
            return;
        }
        // SeqCst: ordered before the in-flight counter read in `try_free` (Dekker with the
        // counted calls' increment-then-read).
        slot.state.swap(state ^ LIFE, Ordering::SeqCst);
        self.free(slot, Some(id));
        self.free_deferred();
    }

    /// Waits until the callback released in slot `id` is freed (its handler dropped): the
    /// calls still in flight through it are refused ones from other threads, which end at
    /// once, or the owner's own, which end before its scope does.
    pub fn wait_until_freed(&'static self, id: u32) {
        let slot = self.slot(id).expect("a scope's slot");
        while slot.state.load(Ordering::SeqCst) & RELEASED != 0 {
            self.free(slot, Some(id));
            if slot.state.load(Ordering::SeqCst) & RELEASED != 0 {
                std::thread::yield_now();
            }
        }
    }

    /// Frees the released callback in `slot` if no call is in flight through it.
    ///
    /// Runs under the pool lock: a slot is freed and reused only under it, so the
    /// installation checked here cannot be freed, reused and released again (the same state
    /// value) by another party before this one decides.
    pub fn try_free(&'static self, slot: &'static Slot) {
        self.free(slot, None);
    }

    /// [`Registry::try_free`], with the slot's id when the caller knows it.
    fn free(&'static self, slot: &'static Slot, id: Option<u32>) {
        let mut pool = self.lock();
        let state = slot.state.load(Ordering::SeqCst);
        if state & RELEASED == 0 || slot.inflight.load(Ordering::SeqCst) != 0 {
            return;
        }
        let me = hazard::thread_state();
        let owner = slot.owner();
        if owner == SERIALIZED {
            // No thread takes the hazard path for a serialized callback.
        } else if owner == me.key() {
            // Only this thread takes the hazard path for this callback, and its own hazards
            // are in program order. (Another thread's hazard on this slot belongs to a call
            // that will find it is not the owner and never touch the handler.)
            if me.holds_own(slot.addr()) {
                return;
            }
        } else {
            if !hazard::heavy_barrier() || hazard::any_holds(slot.addr()) {
                return;
            }
        }
        let id = id.unwrap_or_else(|| id_of(&pool, slot));
        slot.state.store(free_state(), Ordering::Relaxed);
        // SAFETY: this party freed the state under the lock; no call is in flight; the fields
        // are the released callback's, taken exactly once (the slot is reused only after the
        // id is pushed below).
        let (handler, info) = unsafe {
            let handler = HandlerBox {
                vt: &*((state & !TAGS) as *const HandlerVt),
                data: *slot.data.get(),
                inline: state & INLINE != 0,
            };
            (handler, slot.let_go_of_info())
        };
        let class = Class {
            tomb: slot.tombstone.load(Ordering::Relaxed),
            target: self.locate(id).map_or(0, |(page, i)| page.target(i)),
            typed: handler.vt.typed as usize,
        };
        let seq = pool.releases;
        pool.releases += 1;
        pool.queue(class).push_back((id, seq));
        drop(pool);
        if info.is_none() && handler.vt.trivial_drop {
            // Nothing to drop, on any thread: no handler code runs, nothing to contain.
            std::mem::forget(handler);
            return;
        }
        let orphan = Orphan { handler, info, thunk: self.thunk(id) };
        if orphan.handler.vt.local && owner != me.key() {
            // A handler that is not `Send` is dropped by its owner thread (at its next create,
            // release or its exit), never here.
            hazard::hand_to_owner(owner, orphan);
        } else {
            orphan.drop_here();
        }
    }

    /// Frees, at a later safe point, a released callback whose handler frame is still on the
    /// stack (`return_from_context` jumps over it: freeing its closure under it would pull
    /// memory from under a live `&self`).
    pub fn defer_free(&self, slot: &'static Slot) {
        self.deferred.lock().unwrap_or_else(|p| p.into_inner()).push(slot.addr());
        self.any_deferred.store(true, Ordering::Release);
    }

    /// Frees what [`Registry::defer_free`] put aside (called on create and release).
    #[inline]
    fn free_deferred(&'static self) {
        // A plain load first, inline: the swap is a locked instruction, and nothing is
        // deferred almost always.
        if self.any_deferred.load(Ordering::Relaxed) {
            self.free_deferred_now();
        }
    }

    #[cold]
    #[inline(never)]
    fn free_deferred_now(&'static self) {
        if !self.any_deferred.swap(false, Ordering::Acquire) {
            return;
        }
        let slots = std::mem::take(&mut *self.deferred.lock().unwrap_or_else(|p| p.into_inner()));
        for addr in slots {
            // SAFETY: deferred addresses are of slots, which are never freed.
            self.try_free(unsafe { &*(addr as *const Slot) });
        }
    }

    /// The thunk address of `slot` (for reports on cold paths).
    pub fn thunk_of(&'static self, slot: &Slot) -> usize {
        let id = id_of(&self.lock(), slot);
        self.thunk(id)
    }

    fn lock(&self) -> PoolGuard<'_, PoolState> {
        self.state.lock()
    }

    /// A slot for a callback of `class`: a fresh one; else a freed one of the same class past
    /// its quarantine; else a new page's; else (the pool is full) the same class's freed slot
    /// released longest ago, else any class's.
    fn take_free(&self, abi: Abi, class: Class) -> Result<u32, Error> {
        let mut state = self.lock();
        if let Some(id) = state.fresh.pop_front() {
            return Ok(id);
        }
        let (releases, quarantine) = (state.releases, state.quarantine);
        let queue = state.queue(class);
        if queue.front().is_some_and(|&(_, seq)| releases - seq >= quarantine) {
            return Ok(queue.pop_front().expect("a front").0);
        }
        // Full: the same class's oldest, still in quarantine; else the oldest of any class with
        // the same typed entry (see [`Class`]).
        let reusable = |c: &Class| c.typed == class.typed;
        match self.grow(&mut state, abi) {
            Ok(()) => return Ok(state.fresh.pop_front().expect("a new page has slots")),
            Err(Error::PoolExhausted(_))
                if state.freed.iter().any(|(c, q)| reusable(c) && !q.is_empty()) => {}
            Err(e) => return Err(e),
        }
        let same = !state.queue(class).is_empty();
        let oldest = if same {
            class
        } else {
            state
                .freed
                .iter()
                .filter(|(c, _)| reusable(c))
                .filter_map(|(c, q)| q.front().map(|&(_, seq)| (seq, *c)))
                .min_by_key(|&(seq, _)| seq)
                .map(|(_, c)| c)
                .expect("a non-empty class")
        };
        Ok(state.queue(oldest).pop_front().expect("a front").0)
    }

    fn grow(&self, state: &mut PoolState, abi: Abi) -> Result<(), Error> {
        if state.abi.is_some_and(|a| a != abi) {
            return Err(Error::Code(format!("the pool holds code for one ABI, not {abi}")));
        }
        if state.pages >= state.limit {
            return Err(Error::PoolExhausted(format!("page limit of {} reached", state.limit)));
        }
        let shift = (pool::page_size() / backcall_abi::thunks::THUNK_STRIDE as usize).ilog2();
        self.shift.store(shift, Ordering::Release);
        let first = (state.pages as u32) << shift;
        let exec = pool::map_page(abi, crate::dispatch::entry_address())?;
        let count = exec.code.thunks;
        let slots: Box<[Slot]> = (0..count).map(|_| Slot::empty()).collect();
        state.slot_arrays.insert(slots.as_ptr() as usize, first);
        let page = Box::new(Page { exec, slots });
        let default = page.exec.code.context_entry(true);
        for i in 0..count {
            // The slot word never changes: thunk i always names slot i.
            page.record(i)[0]
                .store(&page.slots[i as usize] as *const Slot as usize, Ordering::Relaxed);
            page.set_route(i, default, 0);
        }
        let page = Box::into_raw(page);
        self.pages[state.pages].store(page, Ordering::Release);
        state.fresh.extend((0..count).map(|i| first | i));
        state.pages += 1;
        state.abi = Some(abi);
        Ok(())
    }

    /// Sets the releases a freed slot waits for before reuse (see the module documentation).
    pub fn set_quarantine(&self, releases: u64) {
        self.lock().quarantine = releases;
    }

    /// Caps the pool at `pages` pages (tests of exhaustion; default: no practical cap).
    pub fn set_page_limit(&self, pages: usize) {
        self.lock().limit = pages.min(MAX_PAGES);
    }

    /// Pages mapped so far.
    pub fn pages(&self) -> usize {
        self.lock().pages
    }
}

/// The id of `slot`, from the slot arrays' addresses (a slot does not store its id: the pool
/// lock is held wherever it is needed, off the call path).
fn id_of(pool: &PoolState, slot: &Slot) -> u32 {
    let addr = slot.addr();
    let (&start, &first) =
        pool.slot_arrays.range(..=addr).next_back().expect("a slot lies in a slot array");
    first + ((addr - start) / std::mem::size_of::<Slot>()) as u32
}

/// The owner key a new callback of `policy` gets on this thread.
pub(crate) fn owner_key(policy: &ThreadPolicy) -> Result<u32, Error> {
    match policy {
        ThreadPolicy::Serialized | ThreadPolicy::SerializedWith(_) => Ok(SERIALIZED),
        ThreadPolicy::SingleThreaded => match hazard::thread_state().key() {
            0 => Err(Error::ThreadKeys),
            key => Ok(key),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::Tombstone;
    use backcall_abi::{Loc, ReturnCode};

    #[test]
    fn tombstones_round_trip() {
        for t in [
            Tombstone { code: ReturnCode::Double, callee_pop: 12, hidden: None, size: 8 },
            Tombstone {
                code: ReturnCode::HiddenPointer,
                callee_pop: 1 << 20,
                hidden: Some((Loc::Stack(0), true)),
                size: (1 << 24) - 1,
            },
            Tombstone {
                code: ReturnCode::HiddenPointer,
                callee_pop: 0,
                hidden: Some((Loc::Int(8), false)),
                size: 1 << 24,
            },
        ] {
            assert_eq!(Tombstone::unpack(t.pack()), t);
        }
    }
}
