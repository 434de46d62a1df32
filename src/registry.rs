//! The registry: thunk slot id → callback record, in O(1), for every page of the pool.
//!
//! A slot id is `page << shift | index`; the thunk loads it into a scratch register, so the
//! dispatcher finds its record with one shift, one mask and two loads. Records are freed only
//! when no call is in flight through their slot (`inflight` counts calls; the last one out frees
//! a record released meanwhile), so releasing a callback from inside its own handler, or from
//! another thread during a call, never frees memory a call still uses.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;

use backcall_abi::{Abi, CallPlan, Loc, RetPlan, ReturnCode};

use crate::error::Error;
use crate::marshal::Value;
use crate::pool::{self, ExecPage};

/// What runs when a callback is called.
pub(crate) enum Handler {
    /// decoded arguments in, a [`Value`] out
    Dynamic(Box<dyn Fn(&crate::Args) -> Value + Send + Sync>),
    /// the context itself: the handler writes the result and answers the return code
    Raw(Box<dyn Fn(&crate::Args) -> ReturnCode + Send + Sync>),
}

/// Who may call a callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ThreadPolicy {
    /// only the thread that created the callback; a call from any other thread is refused
    /// with a [`crate::CallbackError::WrongThread`] and returns -1 (the seed's `ownVM` failure)
    #[default]
    SingleThreaded,
    /// any thread; calls of all serialized callbacks take turns (one process-wide, reentrant
    /// lock, so a callback may call C that calls another callback on the same thread)
    Serialized,
}

/// A live callback's record.
pub(crate) struct Record {
    pub plan: std::sync::Arc<CallPlan>,
    pub handler: Handler,
    pub policy: ThreadPolicy,
    pub owner: u64,
}

/// One thunk's slot.
pub(crate) struct Slot {
    pub id: u32,
    pub thunk: usize,
    pub page: ExecPage,
    record: AtomicPtr<Record>,
    pending: AtomicPtr<Record>,
    inflight: AtomicU32,
    tombstone: AtomicU64,
}

/// How a stale call through a released slot still returns the way its caller expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tombstone {
    pub code: ReturnCode,
    pub callee_pop: u32,
    /// the hidden result pointer's location and whether it is returned in result register 0
    pub hidden: Option<(Loc, bool)>,
}

impl Tombstone {
    fn of(plan: &CallPlan) -> Tombstone {
        let hidden = match plan.ret {
            RetPlan::Indirect { pointer, returned_in } => Some((pointer, returned_in.is_some())),
            _ => None,
        };
        Tombstone { code: plan.code, callee_pop: plan.callee_pop, hidden }
    }

    fn pack(self) -> u64 {
        let (kind, value, returned) = match self.hidden {
            None => (0u64, 0u64, false),
            Some((Loc::Int(i), r)) => (1, u64::from(i), r),
            Some((Loc::Stack(o), r)) => (2, u64::from(o), r),
            Some((_, r)) => (3, 0, r),
        };
        (self.code as u64)
            | u64::from(self.callee_pop) << 8
            | kind << 24
            | u64::from(returned) << 26
            | value << 32
    }

    fn unpack(v: u64) -> Tombstone {
        let code = match v & 0xff {
            1 => ReturnCode::Word,
            2 => ReturnCode::Word64,
            3 => ReturnCode::Double,
            4 => ReturnCode::Struct,
            5 => ReturnCode::Float,
            6 => ReturnCode::HiddenPointer,
            _ => ReturnCode::Void,
        };
        let returned = v >> 26 & 1 == 1;
        let hidden = match v >> 24 & 3 {
            1 => Some((Loc::Int((v >> 32) as u8), returned)),
            2 => Some((Loc::Stack((v >> 32) as u32), returned)),
            _ => None,
        };
        Tombstone { code, callee_pop: (v >> 8 & 0xffff) as u32, hidden }
    }
}

/// A call in flight through a slot: holds the slot's in-flight count until dropped.
pub(crate) struct InFlight<'a> {
    pub slot: &'a Slot,
    pub record: Option<&'a Record>,
}

impl Slot {
    /// Starts a call: counts it, then looks at the record (null after release).
    pub fn enter(&self) -> InFlight<'_> {
        self.inflight.fetch_add(1, SeqCst);
        let ptr = self.record.load(SeqCst);
        // SAFETY: a non-null record stays allocated while `inflight` counts this call (see
        // `release`: it frees only when no call is in flight, else the last call frees it).
        InFlight { slot: self, record: unsafe { ptr.as_ref() } }
    }

    /// The return protocol of the callback last installed here.
    pub fn tombstone(&self) -> Tombstone {
        Tombstone::unpack(self.tombstone.load(SeqCst))
    }

    /// The record without counting a call; for a caller that already holds a count.
    ///
    /// # Safety
    /// The caller holds an in-flight count on this slot (a skipped [`InFlight`]).
    pub unsafe fn peek_record(&self) -> Option<&Record> {
        // SAFETY: per the contract, the count keeps a non-null record allocated.
        unsafe { self.record.load(SeqCst).as_ref() }
    }

    /// Ends a call whose [`InFlight`] guard was skipped by `return_from_context`.
    pub fn exit_raw(&self) {
        self.exit();
    }

    fn exit(&self) {
        if self.inflight.fetch_sub(1, SeqCst) == 1 {
            self.free_pending();
        }
    }

    fn free_pending(&self) {
        let ptr = self.pending.swap(std::ptr::null_mut(), SeqCst);
        if !ptr.is_null() {
            // SAFETY: `pending` holds a record released by its owner; the swap makes this the
            // only party to free it, and no call is in flight.
            drop(unsafe { Box::from_raw(ptr) });
            registry().recycle(self);
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.slot.exit();
    }
}

const MAX_PAGES: usize = 1 << 16;

/// Every page's slots; page `p` is published once, never moved or freed.
pub(crate) struct Registry {
    pages: [AtomicPtr<Box<[Slot]>>; MAX_PAGES],
    shift: AtomicU32,
    state: Mutex<PoolState>,
}

struct PoolState {
    pages: usize,
    free: VecDeque<u32>,
    abi: Option<Abi>,
    limit: usize,
}

static REGISTRY: Registry = Registry {
    pages: [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_PAGES],
    shift: AtomicU32::new(0),
    state: Mutex::new(PoolState { pages: 0, free: VecDeque::new(), abi: None, limit: MAX_PAGES }),
};

/// The process-wide registry.
pub(crate) fn registry() -> &'static Registry {
    &REGISTRY
}

impl Registry {
    /// The slot with this id, if it exists.
    #[inline]
    pub fn slot(&self, id: u32) -> Option<&Slot> {
        let shift = self.shift.load(SeqCst);
        let page = (id >> shift) as usize;
        let ptr = self.pages.get(page)?.load(SeqCst);
        // SAFETY: published pages are leaked boxes, never freed.
        let slots = unsafe { ptr.as_ref() }?;
        slots.get((id & ((1 << shift) - 1)) as usize)
    }

    /// Installs `record` in a free slot (growing the pool by a page if none is free) and
    /// answers the slot.
    pub fn install(&self, abi: Abi, record: Record) -> Result<&Slot, Error> {
        let tomb = Tombstone::of(&record.plan).pack();
        let id = self.take_free(abi)?;
        let slot = self.slot(id).expect("free ids name published slots");
        slot.tombstone.store(tomb, SeqCst);
        slot.record.store(Box::into_raw(Box::new(record)), SeqCst);
        Ok(slot)
    }

    /// Releases the callback in `slot`: later calls are stale; the record is freed now, or by
    /// the last call still in flight.
    pub fn release(&self, slot: &Slot) {
        let ptr = slot.record.swap(std::ptr::null_mut(), SeqCst);
        if ptr.is_null() {
            return;
        }
        slot.pending.store(ptr, SeqCst);
        if slot.inflight.load(SeqCst) == 0 {
            slot.free_pending();
        }
    }

    fn recycle(&self, slot: &Slot) {
        self.lock().free.push_back(slot.id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take_free(&self, abi: Abi) -> Result<u32, Error> {
        let mut state = self.lock();
        if let Some(id) = state.free.pop_front() {
            return Ok(id);
        }
        self.grow(&mut state, abi)?;
        Ok(state.free.pop_front().expect("a new page has free slots"))
    }

    fn grow(&self, state: &mut PoolState, abi: Abi) -> Result<(), Error> {
        if state.abi.is_some_and(|a| a != abi) {
            return Err(Error::Code(format!("the pool holds code for one ABI, not {abi}")));
        }
        if state.pages >= state.limit {
            return Err(Error::PoolExhausted(format!("page limit of {} reached", state.limit)));
        }
        let shift = (pool::page_size() / backcall_abi::thunks::THUNK_STRIDE as usize).ilog2();
        self.shift.store(shift, SeqCst);
        let first = (state.pages as u32) << shift;
        let page = pool::map_page(abi, crate::dispatch::entry_address(), first)?;
        let slots: Box<[Slot]> = (0..page.thunks)
            .map(|i| Slot {
                id: first | i,
                thunk: page.first_thunk + (i * backcall_abi::thunks::THUNK_STRIDE) as usize,
                page,
                record: AtomicPtr::new(std::ptr::null_mut()),
                pending: AtomicPtr::new(std::ptr::null_mut()),
                inflight: AtomicU32::new(0),
                tombstone: AtomicU64::new(0),
            })
            .collect();
        let count = slots.len() as u32;
        self.pages[state.pages].store(Box::into_raw(Box::new(slots)), SeqCst);
        state.free.extend((0..count).map(|i| first | i));
        state.pages += 1;
        state.abi = Some(abi);
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::Tombstone;
    use backcall_abi::{Loc, ReturnCode};

    #[test]
    fn tombstones_round_trip() {
        for t in [
            Tombstone { code: ReturnCode::Double, callee_pop: 12, hidden: None },
            Tombstone {
                code: ReturnCode::HiddenPointer,
                callee_pop: 4,
                hidden: Some((Loc::Stack(0), true)),
            },
            Tombstone {
                code: ReturnCode::HiddenPointer,
                callee_pop: 0,
                hidden: Some((Loc::Int(8), false)),
            },
        ] {
            assert_eq!(Tombstone::unpack(t.pack()), t);
        }
    }
}
