//! The native marshalling fast path: a [`CallPlan`] turned, once per prototype, into byte
//! offsets into the live [`CallbackContext`] (or its stack argument area), so that reading a
//! scalar argument is one address computation and one load, and writing a scalar result is one
//! store.
//!
//! Only what the fast form expresses exactly takes it: a scalar argument whose pieces are
//! adjacent in memory (one register, one stack slot, or consecutive register slots), and a
//! scalar result whose pieces are adjacent in the result areas. Everything else (aggregates,
//! hidden result pointers, split values) goes through the generic [`Frame`], which stays the
//! reference: the fast path computes the same addresses from the same plan and the same
//! [`HOST_LAYOUT`], and the tests compare the two (`fast_locations_agree_with_the_frame`).

use crate::registry::{Route, Tombstone};
use std::sync::Arc;

use backcall_abi::{ArgPass, CallPlan, Extend, Loc, RetPlan, ReturnCode, Scalar, Shape};

use crate::context::{CallbackContext, HOST_LAYOUT};
use crate::marshal::{extend, Frame};
use crate::memory::NativeMemory;

/// A plan plus its precomputed native locations; shared by every callback of a prototype.
#[derive(Clone, Debug)]
pub(crate) struct PlanInfo {
    /// the plan (what [`crate::Callback::plan`] answers)
    pub plan: Arc<CallPlan>,
    /// the first [`INLINE_ARGS`] entries of `args`, inline (one load less per argument, and a
    /// constant index needs no bounds check); default (not fast) past the last argument
    first: [ArgLoc; INLINE_ARGS],
    /// per argument: where a scalar argument's bytes are, if the fast form expresses it
    pub args: Box<[ArgLoc]>,
    /// where a scalar result goes, if the fast form expresses it
    pub ret: RetLoc,
    /// where the thunk of a callback of this plan jumps on the context route (the entry that
    /// spills float registers only when an argument travels in one) ...
    pub context_route: Route,
    /// ... and on the typed route (the context route's, without a stub)
    pub typed_route: Route,
    /// the return protocol a stale call keeps (`Tombstone::pack`)
    pub tomb: u64,
    /// what a refused call (a foreign thread's) returns instead of -1 (see
    /// [`crate::Prototype::refusing`])
    pub refusal: Option<crate::Value>,
}

/// A scalar argument's location. `size == 0`: not expressible; use the generic [`Frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ArgLoc {
    /// the scalar (meaningless when `size == 0`)
    pub scalar: Scalar,
    /// byte offset from the context (a spilled register) or from `stack_args` (the stack)
    pub offset: u32,
    /// whether `offset` is relative to `stack_args`
    pub stack: bool,
    /// the scalar's size: 1, 2, 4 or 8 (0: not a fast argument)
    pub size: u8,
    /// whether reading it sign-extends (signed integers; never floats)
    pub signed: bool,
    /// `size` and `signed` as one load instruction
    pub kind: LoadKind,
}

/// How a fast argument is loaded and extended to 64 bits, and what its bits mean: one jump
/// on it both loads an argument and converts it for an accessor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoadKind {
    /// not a fast argument
    Slow,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    /// a `float`'s 4 bytes
    F32,
    /// a `double`'s 8 bytes
    F64,
}

impl LoadKind {
    fn of(scalar: Scalar, size: u8, signed: bool) -> LoadKind {
        match (scalar, size, signed) {
            (Scalar::Float, 4, _) => LoadKind::F32,
            (Scalar::Double, 8, _) => LoadKind::F64,
            (_, 1, true) => LoadKind::I8,
            (_, 1, false) => LoadKind::U8,
            (_, 2, true) => LoadKind::I16,
            (_, 2, false) => LoadKind::U16,
            (_, 4, true) => LoadKind::I32,
            (_, 4, false) => LoadKind::U32,
            (_, 8, true) => LoadKind::I64,
            (_, 8, false) => LoadKind::U64,
            _ => LoadKind::Slow,
        }
    }
}

impl Default for ArgLoc {
    fn default() -> ArgLoc {
        ArgLoc {
            scalar: Scalar::Int,
            offset: 0,
            stack: false,
            size: 0,
            signed: false,
            kind: LoadKind::Slow,
        }
    }
}

/// What kind of scalar result a [`RetLoc`] stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RetKind {
    /// `void`: nothing to store
    Void,
    /// an integer or pointer
    Int,
    /// `_Bool`
    Bool,
    /// `float`
    Float,
    /// `double`
    Double,
    /// anything else: the generic [`Frame`] writes it
    Generic,
}

/// A scalar result's location in the context's result areas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetLoc {
    /// the result kind
    pub kind: RetKind,
    /// byte offset of the first piece from the context
    pub offset: u32,
    /// the scalar's size in bytes
    pub size: u8,
    /// bytes stored: the whole word when the ABI extends a sub-word integer, else `size`
    pub width: u8,
    /// the extension applied when `width > size`
    pub signed: bool,
    /// bytes of stack arguments the callee pops (written to the context on every return)
    pub callee_pop: u32,
    /// the return code
    pub code: ReturnCode,
}

/// Argument locations a [`PlanInfo`] keeps inline.
const INLINE_ARGS: usize = 8;

impl PlanInfo {
    /// Precomputes the fast locations of `plan`.
    pub fn new(plan: CallPlan) -> PlanInfo {
        let args: Box<[ArgLoc]> = (0..plan.args.len()).map(|i| arg_loc(&plan, i)).collect();
        let first = std::array::from_fn(|i| args.get(i).copied().unwrap_or_default());
        let ret = ret_loc(&plan);
        let float_args = plan.uses_float_registers();
        let code = crate::pool::template_for(plan.abi);
        let stub = code
            .as_ref()
            .map_err(|e| e.to_string())
            .and_then(|code| backcall_abi::stubs::typed_stub(&plan, code));
        let context_target = code.as_ref().map_or(0, |c| c.context_entry(float_args));
        let context_route = Route { target: context_target, stack_bytes: 0 };
        // The typed stub a typed callback of this plan takes, if any.
        let typed_route = match (&stub, &code) {
            (Ok(stub), Ok(code)) => match code.symbol(&stub.symbol()) {
                Some(target) => Route { target, stack_bytes: stub.stack_bytes() },
                None => context_route,
            },
            _ => context_route,
        };
        let tomb = Tombstone::of(&plan).pack();
        let refusal = None;
        PlanInfo {
            plan: Arc::new(plan),
            first,
            args,
            ret,
            context_route,
            typed_route,
            tomb,
            refusal,
        }
    }

    /// Argument `i`'s location (panics past the last argument, unless `i` is below
    /// [`INLINE_ARGS`]: then it is a non-fast default, and the generic path panics).
    #[inline(always)]
    pub fn arg(&self, i: usize) -> &ArgLoc {
        match self.first.get(i) {
            Some(a) => a,
            None => &self.args[i],
        }
    }
}

/// The context offset of argument location `loc`, and whether it is relative to `stack_args`.
fn arg_offset(loc: Loc) -> Option<(u32, bool)> {
    let l = HOST_LAYOUT;
    match loc {
        Loc::Int(i) => Some((l.int_regs + u32::from(i) * l.word, false)),
        Loc::Float(i) => Some((l.float_reg(i), false)),
        Loc::Stack(o) => Some((o, true)),
        Loc::X87 => None,
    }
}

/// The context offset of result location `loc`.
fn ret_offset(loc: Loc) -> Option<u32> {
    let l = HOST_LAYOUT;
    match loc {
        Loc::Int(i) => Some(l.result_int + u32::from(i) * l.word),
        Loc::Float(i) => Some(l.result_float_reg(i)),
        Loc::X87 => Some(l.result_float),
        Loc::Stack(_) => None,
    }
}

fn fast_size(size: u32) -> Option<u8> {
    matches!(size, 1 | 2 | 4 | 8).then_some(size as u8)
}

fn arg_loc(plan: &CallPlan, i: usize) -> ArgLoc {
    let arg = &plan.args[i];
    let Shape::Scalar(s) = arg.layout.shape else { return ArgLoc::default() };
    let (ArgPass::Direct(pieces), Some(size)) = (&arg.pass, fast_size(arg.layout.size)) else {
        return ArgLoc::default();
    };
    let Some((offset, stack)) = pieces.first().and_then(|p| arg_offset(p.loc)) else {
        return ArgLoc::default();
    };
    // Every piece must lie where the first one's address plus its value offset says: then the
    // value's bytes are contiguous, little-endian, starting at `offset`.
    let adjacent = pieces.iter().all(|p| {
        arg_offset(p.loc) == Some((offset + p.offset - pieces[0].offset, stack))
            && p.offset + p.size <= arg.layout.size
    });
    if !adjacent
        || pieces[0].offset != 0
        || pieces.iter().map(|p| p.size).sum::<u32>() != u32::from(size)
    {
        return ArgLoc::default();
    }
    let signed = !s.is_float() && backcall_abi::is_signed(plan.abi, s);
    ArgLoc { scalar: s, offset, stack, size, signed, kind: LoadKind::of(s, size, signed) }
}

fn ret_loc(plan: &CallPlan) -> RetLoc {
    let mut loc = RetLoc {
        kind: RetKind::Generic,
        offset: 0,
        size: 0,
        width: 0,
        signed: false,
        callee_pop: plan.callee_pop,
        code: plan.code,
    };
    let word = HOST_LAYOUT.word;
    match (&plan.ret, plan.ret_layout.shape.clone()) {
        (RetPlan::Void, _) | (_, Shape::Void) => loc.kind = RetKind::Void,
        (RetPlan::Direct { pieces, extend: ext }, Shape::Scalar(s)) => {
            let Some(size) = fast_size(plan.ret_layout.size) else { return loc };
            let Some(offset) = pieces.first().and_then(|p| ret_offset(p.loc)) else { return loc };
            let adjacent = pieces[0].offset == 0
                && pieces.iter().all(|p| ret_offset(p.loc) == Some(offset + p.offset))
                && pieces.iter().map(|p| p.size).sum::<u32>() == u32::from(size);
            if !adjacent {
                return loc;
            }
            // The generic writer extends only a value in one integer register (ARCHITECTURE.md §7).
            let extended = *ext != Extend::None && pieces.len() == 1;
            let extended = extended && matches!(pieces[0].loc, Loc::Int(_));
            loc.kind = match s {
                Scalar::Float => RetKind::Float,
                Scalar::Double => RetKind::Double,
                Scalar::Bool => RetKind::Bool,
                Scalar::LongDouble => return loc,
                _ => RetKind::Int,
            };
            loc.offset = offset;
            loc.size = size;
            loc.width = if extended { word as u8 } else { size };
            loc.signed = *ext == Extend::Sign;
        }
        _ => {}
    }
    loc
}

/// Loads `size` (1, 2, 4 or 8) little-endian bytes at `addr`.
///
/// # Safety
/// `addr..addr+size` is readable.
#[inline(always)]
pub(crate) unsafe fn load(addr: usize, size: u8) -> u64 {
    // SAFETY: per the contract; unaligned reads because stack slots need not be aligned to
    // the value's size on every ABI.
    unsafe {
        match size {
            1 => u64::from(*(addr as *const u8)),
            2 => u64::from((addr as *const u16).read_unaligned()),
            4 => u64::from((addr as *const u32).read_unaligned()),
            _ => (addr as *const u64).read_unaligned(),
        }
    }
}

/// Stores the low `width` (1, 2, 4 or 8) bytes of `bits` at `addr`, little-endian.
///
/// # Safety
/// `addr..addr+width` is writable.
#[inline(always)]
unsafe fn store(addr: usize, bits: u64, width: u8) {
    // SAFETY: per the contract.
    unsafe {
        match width {
            1 => *(addr as *mut u8) = bits as u8,
            2 => (addr as *mut u16).write_unaligned(bits as u16),
            4 => (addr as *mut u32).write_unaligned(bits as u32),
            _ => (addr as *mut u64).write_unaligned(bits),
        }
    }
}

/// One native call as the handler sees it: the live context and the callback's plan.
#[derive(Clone, Copy)]
pub(crate) struct Native<'a> {
    /// the context thunkEntry built for this call
    pub ctx: *mut CallbackContext,
    /// the callback's plan and fast locations
    pub info: &'a PlanInfo,
}

impl<'a> Native<'a> {
    /// The generic marshaller over the same context.
    pub fn frame(&self) -> Frame<'a> {
        Frame {
            mem: &NativeMemory,
            layout: HOST_LAYOUT,
            ctx: self.ctx as u64,
            plan: &self.info.plan,
        }
    }

    /// The address of fast argument `a`'s bytes.
    #[inline(always)]
    pub fn arg_addr(&self, a: &ArgLoc) -> usize {
        // Both bases read, one picked by index: no branch on the hot path of every argument.
        // SAFETY: the context is live for the call (thunkEntry's frame, which sets stack_args).
        let bases = [self.ctx as usize, unsafe { (*self.ctx).stack_args }];
        bases[usize::from(a.stack)] + a.offset as usize
    }

    /// Argument `i`'s bits, extended to 64 bits from its size, if it is a fast scalar.
    #[inline(always)]
    pub fn fast_bits(&self, i: usize) -> Option<u64> {
        let a = self.info.arg(i);
        // SAFETY: as in `fast_i64`.
        unsafe {
            Some(match a.kind {
                LoadKind::F32 => u64::from((self.arg_addr(a) as *const u32).read_unaligned()),
                LoadKind::F64 => (self.arg_addr(a) as *const u64).read_unaligned(),
                _ => self.fast_i64(i)? as u64,
            })
        }
    }

    /// Argument `i` as a signed 64-bit integer (a float truncated), if it is a fast scalar:
    /// loaded and converted in one jump on its kind (the dynamic accessors' hot path).
    #[inline(always)]
    pub fn fast_i64(&self, i: usize) -> Option<i64> {
        let a = self.info.arg(i);
        let at = self.arg_addr(a);
        // SAFETY: the plan placed argument `i`'s bytes (`kind` says how many) at this address
        // of the live call; unaligned reads because stack slots need not be aligned to the
        // value's size on every ABI.
        unsafe {
            Some(match a.kind {
                LoadKind::Slow => return None,
                LoadKind::I8 => i64::from(*(at as *const i8)),
                LoadKind::U8 => i64::from(*(at as *const u8)),
                LoadKind::I16 => i64::from((at as *const i16).read_unaligned()),
                LoadKind::U16 => i64::from((at as *const u16).read_unaligned()),
                LoadKind::I32 => i64::from((at as *const i32).read_unaligned()),
                LoadKind::U32 => i64::from((at as *const u32).read_unaligned()),
                LoadKind::I64 | LoadKind::U64 => (at as *const i64).read_unaligned(),
                LoadKind::F32 => (at as *const f32).read_unaligned() as i64,
                LoadKind::F64 => (at as *const f64).read_unaligned() as i64,
            })
        }
    }

    /// Argument `i`'s bits as a `float`, if it is a fast `float` (anything else converts
    /// through `double`).
    #[inline(always)]
    pub fn fast_f32(&self, i: usize) -> Option<f32> {
        let a = self.info.arg(i);
        // SAFETY: as in `fast_i64`.
        (a.kind == LoadKind::F32)
            .then(|| unsafe { (self.arg_addr(a) as *const f32).read_unaligned() })
    }

    /// Argument `i` as a `double` (an integer converted by its signedness), if it is a fast
    /// scalar.
    #[inline(always)]
    pub fn fast_f64(&self, i: usize) -> Option<f64> {
        let a = self.info.arg(i);
        let at = self.arg_addr(a);
        // SAFETY: as in `fast_i64`.
        unsafe {
            Some(match a.kind {
                LoadKind::Slow => return None,
                LoadKind::F32 => f64::from((at as *const f32).read_unaligned()),
                LoadKind::F64 => (at as *const f64).read_unaligned(),
                LoadKind::U64 => (at as *const u64).read_unaligned() as f64,
                _ => self.fast_i64(i)? as f64,
            })
        }
    }

    /// Stores a typed result (see [`Native::store_bits`]) whose size, `size`, is known at
    /// compile time.
    #[inline(always)]
    pub fn store_sized(&self, bits: u64, size: u8) -> Option<ReturnCode> {
        let r = &self.info.ret;
        match r.kind {
            RetKind::Generic => return None,
            RetKind::Void => {}
            _ => {
                debug_assert_eq!(r.size, size);
                let value = extend(bits, u32::from(size), r.signed);
                // SAFETY: as in `store_bits`.
                unsafe { store(self.ctx as usize + r.offset as usize, value, r.width) };
            }
        }
        Some(self.finish())
    }

    /// Stores a scalar result given as bits (an integer's value, a float's bit pattern), if the
    /// result is a fast scalar: truncated to the result's size, extended to the register as
    /// the ABI requires. Answers the return code, or `None` for the generic path.
    #[inline(always)]
    pub fn store_bits(&self, bits: u64) -> Option<ReturnCode> {
        let r = &self.info.ret;
        match r.kind {
            RetKind::Generic => return None,
            RetKind::Void => {}
            _ => {
                let value = extend(bits, u32::from(r.size), r.signed);
                // SAFETY: the result areas of the live context hold at least `width` bytes at
                // `offset` (computed from the plan's pieces and the host layout).
                unsafe { store(self.ctx as usize + r.offset as usize, value, r.width) };
            }
        }
        Some(self.finish())
    }

    /// Records the callee-pop count and answers the return code (after a result is stored).
    #[inline(always)]
    pub fn finish(&self) -> ReturnCode {
        let r = &self.info.ret;
        // SAFETY: the context is live for the call.
        unsafe { (*self.ctx).callee_pop = r.callee_pop as usize };
        r.code
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus;

    fn context(stack: &mut [u8]) -> CallbackContext {
        // SAFETY: every field is an integer or a raw pointer; all-zero is a valid value.
        let mut c: CallbackContext = unsafe { std::mem::zeroed() };
        for (i, r) in c.int_regs.iter_mut().enumerate() {
            *r = (0x8070_6050_4030_2010u64.rotate_left(8 * i as u32) as usize) | 0x80;
        }
        for (i, r) in c.float_regs.iter_mut().enumerate() {
            *r = 0xc1b1_a191_8171_6151u64.rotate_left(8 * i as u32);
        }
        for (i, b) in stack.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37) ^ 0x80;
        }
        c.stack_args = stack.as_ptr() as usize;
        c
    }

    /// Every fast argument reads what the generic frame reads, and every fast result store
    /// leaves the context exactly as the generic frame's write does, for the whole corpus.
    #[test]
    fn fast_paths_agree_with_the_frame() {
        let abi = crate::host_abi().unwrap();
        let (mut fast_args, mut fast_rets) = (0, 0);
        for entry in corpus::builtin() {
            let Ok(plan) = abi.plan(&entry.signature) else { continue };
            let info = PlanInfo::new(plan.clone());
            let mut stack = vec![0u8; 4096];
            let mut c = context(&mut stack);
            let n = Native { ctx: &mut c, info: &info };
            for i in 0..plan.args.len() {
                if let Some(bits) = n.fast_bits(i) {
                    fast_args += 1;
                    let generic = n.frame().scalar_bits(i).map(|(_, b)| b);
                    assert_eq!(Some(bits), generic, "{}: argument {i}", entry.text);
                    // The one-jump accessors convert as the generic route does.
                    let args = crate::Args { native: n, thunk: 0 };
                    assert_eq!(args.i64(i), args.i64_slow(i), "{}: i64 {i}", entry.text);
                    let (f, g) = (args.f64(i), args.f64_slow(i));
                    assert_eq!(f.to_bits(), g.to_bits(), "{}: f64 {i}", entry.text);
                    let (f, g) = (args.f32(i), args.f32_slow(i));
                    assert_eq!(f.to_bits(), g.to_bits(), "{}: f32 {i}", entry.text);
                }
            }
            for bits in [0x8182_8384_8586_8788u64, 1, u64::MAX, 0x7f, 0x3ff0_0000_0000_0000] {
                let (mut fast, mut generic) = (context(&mut stack), context(&mut stack));
                let Some(code) = (Native { ctx: &mut fast, info: &info }).store_bits(bits) else {
                    continue;
                };
                fast_rets += 1;
                let g = Native { ctx: &mut generic, info: &info };
                let size = plan.ret_layout.size as usize;
                let want = g.frame().write_result(&bits.to_le_bytes()[..size.min(8)]);
                assert_eq!(code, want, "{}", entry.text);
                assert_eq!(fast.result_int, generic.result_int, "{} {bits:#x}", entry.text);
                assert_eq!(fast.result_float, generic.result_float, "{} {bits:#x}", entry.text);
                assert_eq!(fast.callee_pop, generic.callee_pop, "{}", entry.text);
            }
        }
        assert!(
            fast_args > 20 && fast_rets > 20,
            "{fast_args} fast arguments, {fast_rets} results"
        );
    }
}
