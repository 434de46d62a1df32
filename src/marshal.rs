//! Marshalling by a precomputed [`CallPlan`]: reading arguments out of a `CallbackContext` and
//! writing the result back, over any [`Memory`].
//!
//! Nothing here classifies the named arguments: every location comes from the plan, computed
//! once when the callback was created. No allocation happens on a call unless the handler asks
//! for an aggregate as a `Vec`, or reads a variadic call's unnamed arguments: [`VaCursor`]
//! plans the call so far for each one it reads (reading `k` of them plans `k` times).

use backcall_abi::context::ContextLayout;
use backcall_abi::{
    is_signed, ArgPass, CallPlan, Extend, Loc, RetPlan, ReturnCode, Scalar, Shape, Type, VaStart,
    VaStartState,
};

use crate::memory::Memory;

/// A value a dynamic handler returns (or an argument decoded generically).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// no value (`void`)
    Void,
    /// any signed integer, `_Bool` or `char`
    Int(i64),
    /// any unsigned integer or pointer
    UInt(u64),
    /// `float`
    F32(f32),
    /// `double`
    F64(f64),
    /// the bytes of a struct or union, or of any scalar (an `__int128`), exactly its size
    Bytes(Vec<u8>),
}

macro_rules! value_from {
    ($($t:ty => $variant:ident as $as:ty),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::$variant(v as $as)
            }
        })*
    };
}

/// An `__int128` result: its 16 bytes.
impl From<i128> for Value {
    fn from(v: i128) -> Value {
        Value::Bytes(v.to_le_bytes().to_vec())
    }
}

/// An `unsigned __int128` result: its 16 bytes.
impl From<u128> for Value {
    fn from(v: u128) -> Value {
        Value::Bytes(v.to_le_bytes().to_vec())
    }
}

value_from!(
    i8 => Int as i64, i16 => Int as i64, i32 => Int as i64, i64 => Int as i64, isize => Int as i64,
    u8 => UInt as u64, u16 => UInt as u64, u32 => UInt as u64, u64 => UInt as u64,
    usize => UInt as u64, bool => UInt as u64, f32 => F32 as f32, f64 => F64 as f64,
);

impl From<()> for Value {
    fn from(_: ()) -> Value {
        Value::Void
    }
}

impl<T> From<*const T> for Value {
    fn from(p: *const T) -> Value {
        Value::UInt(p as usize as u64)
    }
}

impl<T> From<*mut T> for Value {
    fn from(p: *mut T) -> Value {
        Value::UInt(p as usize as u64)
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Value {
        Value::Bytes(b)
    }
}

/// One call's context as the dispatcher sees it: memory, context address, plan.
#[derive(Clone, Copy)]
pub struct Frame<'a> {
    /// the machine's memory
    pub mem: &'a dyn Memory,
    /// offsets of the context's fields
    pub layout: ContextLayout,
    /// address of the CallbackContext
    pub ctx: u64,
    /// the callback's plan
    pub plan: &'a CallPlan,
}

impl<'a> Frame<'a> {
    fn word(&self) -> u32 {
        self.layout.word
    }

    /// Where argument location `loc` was spilled (registers) or lies (stack).
    fn arg_loc_addr(&self, loc: Loc) -> u64 {
        match loc {
            Loc::Int(i) => self.ctx + u64::from(self.layout.int_regs + u32::from(i) * self.word()),
            Loc::Float(i) => self.ctx + u64::from(self.layout.float_reg(i)),
            Loc::Stack(off) => self.stack_args() + u64::from(off),
            Loc::X87 => unreachable!("no argument lives in st(0)"),
        }
    }

    /// Where result location `loc` is loaded from by thunkEntry.
    fn ret_loc_addr(&self, loc: Loc) -> u64 {
        match loc {
            Loc::Int(i) => {
                self.ctx + u64::from(self.layout.result_int + u32::from(i) * self.word())
            }
            Loc::Float(i) => self.ctx + u64::from(self.layout.result_float_reg(i)),
            Loc::X87 => self.ctx + u64::from(self.layout.result_float),
            Loc::Stack(_) => unreachable!("no result lives on the stack"),
        }
    }

    fn stack_args(&self) -> u64 {
        self.mem.read_word(self.ctx + u64::from(self.layout.stack_args), self.word())
    }

    /// The address argument `i`'s bytes are at, if they are contiguous in memory (stack
    /// arguments, by-reference arguments, single-register pieces).
    pub fn arg_address(&self, i: usize) -> Option<u64> {
        match &self.plan.args[i].pass {
            ArgPass::Direct(pieces) if pieces.len() == 1 => Some(self.arg_loc_addr(pieces[0].loc)),
            ArgPass::Direct(_) => None,
            ArgPass::Indirect { pointer } => {
                Some(self.mem.read_word(self.arg_loc_addr(*pointer), self.word()))
            }
        }
    }

    /// Copies argument `i`'s bytes into `out` (exactly its size).
    pub fn read_arg(&self, i: usize, out: &mut [u8]) {
        match &self.plan.args[i].pass {
            ArgPass::Direct(pieces) => {
                for p in pieces {
                    let dst = &mut out[p.offset as usize..(p.offset + p.size) as usize];
                    self.mem.read(self.arg_loc_addr(p.loc), dst);
                }
            }
            ArgPass::Indirect { pointer } => {
                let src = self.mem.read_word(self.arg_loc_addr(*pointer), self.word());
                self.mem.read(src, out);
            }
        }
    }

    /// Argument `i` as a scalar's bits, sign- or zero-extended to 64 bits from its size.
    pub fn scalar_bits(&self, i: usize) -> Option<(Scalar, u64)> {
        let layout = &self.plan.args[i].layout;
        let Shape::Scalar(s) = layout.shape else { return None };
        // An `__int128` gives its low 64 bits (the getters truncate wider integers).
        let mut b = [0u8; 16];
        self.read_arg(i, &mut b[..layout.size.min(16) as usize]);
        // A `long double` wider than `double` is seen by the getters as the nearest double;
        // `Args::bytes` has all its bits.
        if s == Scalar::LongDouble {
            let x87: [u8; X87_BYTES] = b[..X87_BYTES].try_into().unwrap_or_default();
            return Some((Scalar::Double, x87_to_f64(x87).to_bits()));
        }
        if s == Scalar::Binary128 {
            return Some((Scalar::Double, binary128_to_f64(b).to_bits()));
        }
        let size = layout.size.min(8);
        let raw = u64::from_le_bytes(b[..8].try_into().unwrap_or_default());
        let bits = extend(raw, size, !s.is_float() && is_signed(self.plan.abi, s));
        Some((s, bits))
    }

    /// Writes `bytes` (exactly the result's size) where the plan returns the result, and
    /// answers the code thunkEntry returns by.
    pub fn write_result(&self, bytes: &[u8]) -> ReturnCode {
        match &self.plan.ret {
            RetPlan::Void => {}
            RetPlan::Direct { pieces, extend: ext } => {
                for p in pieces {
                    let src = &bytes[p.offset as usize..(p.offset + p.size) as usize];
                    self.write_piece(p.loc, src, *ext);
                }
            }
            RetPlan::Indirect { pointer, returned_in } => {
                let dst = self.mem.read_word(self.arg_loc_addr(*pointer), self.word());
                self.mem.write(dst, bytes);
                if let Some(loc) = returned_in {
                    self.mem.write_word(self.ret_loc_addr(*loc), self.word(), dst);
                }
            }
        }
        self.finish()
    }

    fn write_piece(&self, loc: Loc, src: &[u8], ext: Extend) {
        let at = self.ret_loc_addr(loc);
        if ext == Extend::None || !matches!(loc, Loc::Int(_)) {
            return self.mem.write(at, src);
        }
        // Sub-word integer results are extended to the whole register (ARCHITECTURE.md §7).
        let mut b = [0u8; 8];
        b[..src.len()].copy_from_slice(src);
        let value = extend(u64::from_le_bytes(b), src.len() as u32, ext == Extend::Sign);
        self.mem.write_word(at, self.word(), value);
    }

    /// Records the callee-pop count thunkEntry needs and answers the plan's return code.
    pub fn finish(&self) -> ReturnCode {
        let at = self.ctx + u64::from(self.layout.callee_pop);
        self.mem.write_word(at, self.word(), u64::from(self.plan.callee_pop));
        self.plan.code
    }

    /// Writes an all-zero result (the defined value of a failed call) and answers the code.
    pub fn write_zero_result(&self) -> ReturnCode {
        self.write_default(0)
    }

    /// Writes `fill` (e.g. -1) as an integer result, or zeros for any other result kind.
    pub fn write_default(&self, fill: i64) -> ReturnCode {
        let size = self.plan.ret_layout.size as usize;
        let is_int = self.plan.ret_layout.scalar().is_some_and(|s| !s.is_float());
        let mut buf = [0u8; 8];
        if is_int && size <= 8 {
            buf[..size].copy_from_slice(&fill.to_le_bytes()[..size]);
            return self.write_result(&buf[..size]);
        }
        match &self.plan.ret {
            // A hidden-pointer result still has to honour the pointer protocol.
            RetPlan::Indirect { .. } => self.write_result(&vec![0u8; size]),
            _ => self.write_result(&[0u8; 64][..size.min(64)]),
        }
    }

    /// Encodes `value` for this plan's result type and writes it.
    pub fn write_value(&self, value: &Value) -> Result<ReturnCode, String> {
        match encode_result(&self.plan.ret_layout, value)? {
            None => Ok(self.finish()),
            Some(bytes) => Ok(self.write_result(&bytes)),
        }
    }
}

/// A reading position in a variadic call's unnamed arguments: each [`VaCursor::next`] reads
/// one, as C's `va_arg` does, where the ABI puts it after the named parameters and the unnamed
/// arguments read before it ([`backcall_abi::Abi::plan_call`]).
///
/// As with `va_arg`, only the arguments the caller passed, of the types it passed them as,
/// have defined values.
#[derive(Clone, Debug, Default)]
pub struct VaCursor {
    unnamed: Vec<Type>,
}

/// One unnamed argument as [`VaCursor::next`] read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaArg {
    /// its bytes, the size of its promoted type
    pub bytes: Vec<u8>,
    /// for a scalar: the scalar and its bits extended to 64 bits, as [`Frame::scalar_bits`]
    pub scalar: Option<(Scalar, u64)>,
}

impl VaCursor {
    /// A cursor before the first unnamed argument.
    pub fn new() -> VaCursor {
        VaCursor::default()
    }

    /// The types read so far (promoted).
    pub fn read(&self) -> &[Type] {
        &self.unnamed
    }

    /// Reads the next unnamed argument of `frame`'s call as `ty` after C's default argument
    /// promotions (a `float` arrives as a `double`, a `short` as an `int`), or says why the
    /// ABI cannot (a signature without `...`, a type the ABI lacks); the cursor then stays.
    pub fn next(&mut self, frame: &Frame<'_>, ty: &Type) -> Result<VaArg, backcall_abi::AbiError> {
        let plan = frame.plan;
        self.unnamed.push(ty.promoted(plan.abi));
        let call = match plan.abi.plan_call(&plan.signature, &self.unnamed) {
            Ok(call) => call,
            Err(e) => {
                self.unnamed.pop();
                return Err(e);
            }
        };
        let i = call.args.len() - 1;
        let at = Frame { plan: &call, ..*frame };
        let mut bytes = vec![0u8; call.args[i].layout.size as usize];
        at.read_arg(i, &mut bytes);
        Ok(VaArg { bytes, scalar: at.scalar_bits(i) })
    }
}

/// Bytes of the largest `va_list` record with its register save areas: AAPCS64's, 32 bytes
/// then x0-x7 and v0-v7 (x86-64 SysV's takes 208).
pub const VA_LIST_RECORD_BYTES: usize = 224;

/// The `va_list` that `va_start` would make for a variadic call's unnamed arguments
/// ([`Frame::va_start`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaListImage {
    /// the record and save areas to store at the address given (empty for a `char *` form)
    pub bytes: Vec<u8>,
    /// what a C function taking a `va_list` receives: the record's address, or the `char *`
    pub value: u64,
}

impl Frame<'_> {
    /// The `va_list` over this call's unnamed arguments as `va_start` makes it, for a record
    /// at address `at` (16-aligned, [`VA_LIST_RECORD_BYTES`] long), or why there is none (a
    /// signature without `...`). The register save areas are copies of the spilled argument
    /// registers. On Win64 the register arguments are spilled into the caller's home space,
    /// as a variadic callee does, so that they and the stack arguments are one array.
    pub fn va_start(&self, at: u64) -> Result<VaListImage, backcall_abi::AbiError> {
        let state = VaStartState::of(self.plan)?;
        let abi = self.plan.abi;
        let (int_regs, float_regs) = state.form.saved_registers();
        let stack = self.stack_args();
        let mut bytes = Vec::new();
        let value = match (state.form, state.pointer_offset()) {
            (VaStart::Stack | VaStart::HomeSpace, Some(offset)) => {
                if let (VaStart::HomeSpace, Loc::Int(first)) = (state.form, state.first) {
                    for i in first..int_regs {
                        let home = stack + u64::from(i) * u64::from(self.word());
                        let reg = self.mem.read_word(self.arg_loc_addr(Loc::Int(i)), self.word());
                        self.mem.write_word(home, self.word(), reg);
                    }
                }
                stack + u64::from(offset)
            }
            (VaStart::RegisterSaveArea, _) => {
                let (gp_offset, fp_offset) = state.save_area_offsets();
                bytes.extend(gp_offset.to_le_bytes());
                bytes.extend(fp_offset.to_le_bytes());
                bytes.extend((stack + u64::from(state.overflow)).to_le_bytes());
                bytes.extend((at + 32).to_le_bytes());
                bytes.resize(32, 0);
                self.save_registers(&mut bytes, int_regs, float_regs);
                at
            }
            (VaStart::Aapcs64, _) => {
                // (the save areas follow the 32-byte record, each ending at its top)
                let gr_top = at + 32 + u64::from(int_regs) * 8;
                let vr_top = gr_top + u64::from(float_regs) * 16;
                let (gr_offs, vr_offs) = state.top_offsets();
                bytes.extend((stack + u64::from(state.overflow)).to_le_bytes());
                bytes.extend(gr_top.to_le_bytes());
                bytes.extend(vr_top.to_le_bytes());
                bytes.extend(gr_offs.to_le_bytes());
                bytes.extend(vr_offs.to_le_bytes());
                self.save_registers(&mut bytes, int_regs, float_regs);
                at
            }
            (form, _) => {
                let first = state.first;
                let what = format!("a {form:?} `va_list` whose first unnamed word is in {first}");
                return Err(backcall_abi::AbiError::invalid(abi, &what));
            }
        };
        debug_assert!(bytes.len() <= VA_LIST_RECORD_BYTES);
        Ok(VaListImage { bytes, value })
    }

    /// Appends the spilled integer argument registers (a word each), then the float ones (16
    /// bytes each: a whole vector register, as the save areas hold them).
    fn save_registers(&self, bytes: &mut Vec<u8>, int_regs: u8, float_regs: u8) {
        for i in 0..int_regs {
            let at = bytes.len();
            bytes.resize(at + self.word() as usize, 0);
            self.mem.read(self.arg_loc_addr(Loc::Int(i)), &mut bytes[at..]);
        }
        for i in 0..float_regs {
            let at = bytes.len();
            bytes.resize(at + 16, 0);
            self.mem.read(self.arg_loc_addr(Loc::Float(i)), &mut bytes[at..]);
        }
    }
}

/// The bytes of an x87 `long double`'s value.
const X87_BYTES: usize = backcall_abi::types::X87_VALUE_BYTES as usize;

/// `value` as the bytes of a result of layout `ret` (`None` for `void`), or why it does not
/// fit (a float for an integer, a struct's bytes of the wrong size).
pub fn encode_result(ret: &backcall_abi::Layout, value: &Value) -> Result<Option<Vec<u8>>, String> {
    let size = ret.size as usize;
    let bytes = match (&ret.shape, value) {
        (Shape::Void, _) => return Ok(None),
        (Shape::Scalar(Scalar::Float), v) => {
            let f = as_f64(v).ok_or_else(|| mismatch("float", v))?;
            (f as f32).to_le_bytes().to_vec()
        }
        (Shape::Scalar(Scalar::Double), v) => {
            let f = as_f64(v).ok_or_else(|| mismatch("double", v))?;
            f.to_le_bytes().to_vec()
        }
        // (x87's `long double`: a number exactly, or its bytes: all of them or the 10 of the
        // value, padded)
        (Shape::Scalar(Scalar::LongDouble), v) => {
            let mut bytes = match v {
                Value::Bytes(b) if [size, X87_BYTES].contains(&b.len()) => b.clone(),
                v => f64_to_x87(as_f64(v).ok_or_else(|| mismatch("long double", v))?).to_vec(),
            };
            bytes.resize(size, 0);
            bytes
        }
        // (binary128's: a number exactly, or its 16 bytes)
        (Shape::Scalar(Scalar::Binary128), v) => match v {
            Value::Bytes(b) if b.len() == size => b.clone(),
            v => f64_to_binary128(as_f64(v).ok_or_else(|| mismatch("long double", v))?).to_vec(),
        },
        (Shape::Scalar(Scalar::Bool), &Value::Int(x)) => vec![u8::from(x != 0)],
        (Shape::Scalar(Scalar::Bool), &Value::UInt(x)) => vec![u8::from(x != 0)],
        // (an `__int128` result is the value extended to 128 bits)
        (Shape::Scalar(_), &Value::Int(x)) => i128::from(x).to_le_bytes()[..size].to_vec(),
        (Shape::Scalar(_), &Value::UInt(x)) => u128::from(x).to_le_bytes()[..size].to_vec(),
        (Shape::Scalar(_), Value::Bytes(b)) if b.len() == size => b.clone(),
        (Shape::Aggregate { .. }, Value::Bytes(b)) if b.len() == size => b.clone(),
        (Shape::Aggregate { .. }, Value::Bytes(b)) => {
            return Err(format!("the handler returned {} bytes for a {size}-byte result", b.len()))
        }
        (Shape::Scalar(s), v) => return Err(mismatch(s.c_name(), v)),
        (_, v) => return Err(mismatch("an aggregate", v)),
    };
    Ok(Some(bytes))
}

/// A numeric value as `f64` (what a float or double result is encoded from).
pub(crate) fn as_f64(v: &Value) -> Option<f64> {
    match *v {
        Value::F32(f) => Some(f64::from(f)),
        Value::F64(f) => Some(f),
        Value::Int(i) => Some(i as f64),
        Value::UInt(u) => Some(u as f64),
        _ => None,
    }
}

fn mismatch(expected: &str, got: &Value) -> String {
    format!("the handler returned {got:?} where the signature returns {expected}")
}

/// Sign- or zero-extends the low `size` bytes of `raw` to 64 bits.
pub fn extend(raw: u64, size: u32, signed: bool) -> u64 {
    if size >= 8 {
        return raw;
    }
    let shift = 64 - size * 8;
    if signed {
        (((raw << shift) as i64) >> shift) as u64
    } else {
        (raw << shift) >> shift
    }
}

/// x87's 80-bit extended-precision `long double` (i386, x86-64 System V) as the nearest
/// `double` (ties to even), from its 10 bytes: a 64-bit significand with an explicit integer
/// bit, then the sign and a 15-bit exponent biased by 16383 (Intel SDM vol. 1, §4.2.2). This
/// is what the FPU's own `fld` + `fstp qword` gives: NaNs keep their payload's top bits and
/// turn quiet; the encodings the FPU refuses give its "real indefinite" NaN.
///
/// ```
/// use backcall::marshal::{f64_to_x87, x87_to_f64};
///
/// let one_third = 1.0 / 3.0;
/// assert_eq!(x87_to_f64(f64_to_x87(one_third)), one_third);
/// // 1 + 2^-60 needs more bits than a double has: the nearest double is 1.
/// let mut x = f64_to_x87(1.0);
/// x[0] = 0x08;
/// assert_eq!(x87_to_f64(x), 1.0);
/// ```
pub fn x87_to_f64(x: [u8; 10]) -> f64 {
    let significand = u64::from_le_bytes(x[..8].try_into().expect("8 bytes"));
    let top = u16::from_le_bytes([x[8], x[9]]);
    let sign = u64::from(top >> 15) << 63;
    let exponent = i32::from(top & 0x7fff);
    if exponent != 0 && significand >> 63 == 0 {
        // An unnormal, pseudo-NaN or pseudo-infinity: an invalid operand, which the FPU turns
        // into its "real indefinite" NaN.
        return f64::from_bits(0xfff8 << 48);
    }
    if exponent == 0x7fff {
        // Infinity (no fraction bits below the integer bit) or a NaN, keeping its payload's
        // top bits and quiet.
        let fraction = (significand << 1) >> 12;
        let nan = if significand << 1 == 0 { 0 } else { fraction | 1 << 51 };
        return f64::from_bits(sign | 0x7ff << 52 | nan);
    }
    if significand == 0 {
        return f64::from_bits(sign);
    }
    // value = significand * 2^(e - 16383 - 63), e = 1 for the denormals (exponent 0); shifted
    // so that the leading 1 is bit 63, the value is 1.f * 2^unbiased.
    let zeros = significand.leading_zeros();
    let m = significand << zeros;
    let unbiased = exponent.max(1) - 16383 - zeros as i32;
    let bits = if unbiased >= -1022 {
        let mut m53 = round_shift(u128::from(m), 11);
        let mut unbiased = unbiased;
        if m53 == 1 << 53 {
            m53 >>= 1;
            unbiased += 1;
        }
        if unbiased > 1023 {
            0x7ff << 52
        } else {
            ((unbiased + 1023) as u64) << 52 | (m53 & ((1 << 52) - 1))
        }
    } else {
        // A double subnormal (or zero): the fraction field is m * 2^(unbiased + 1074 - 63); a
        // carry into bit 52 makes the smallest normal, which the same bits spell.
        round_shift(u128::from(m), (11 - 1022 - unbiased) as u32)
    };
    f64::from_bits(sign | bits)
}

/// `x` as x87's 80-bit `long double` (exactly: every `double` is one; a NaN turns quiet), its
/// 10 bytes (see [`x87_to_f64`]).
///
/// ```
/// assert_eq!(
///     backcall::marshal::f64_to_x87(-2.0),
///     [0, 0, 0, 0, 0, 0, 0, 0x80, 0x00, 0xc0], // -1.0 * 2^1
/// );
/// ```
pub fn f64_to_x87(x: f64) -> [u8; 10] {
    let bits = x.to_bits();
    let sign = ((bits >> 63) as u16) << 15;
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (top, significand) = match exponent {
        0 if fraction == 0 => (0, 0),
        0 => {
            // A subnormal: fraction * 2^-1074, normalized to a leading 1 in bit 63.
            let zeros = fraction.leading_zeros();
            ((16383 + 63 - 1074 - zeros as i32) as u16, fraction << zeros)
        }
        0x7ff if fraction == 0 => (0x7fff, 1 << 63),
        // (a NaN turns quiet, as the FPU's `fld` makes it)
        0x7ff => (0x7fff, 3 << 62 | fraction << 11),
        e => ((e - 1023 + 16383) as u16, 1 << 63 | fraction << 11),
    };
    let mut out = [0u8; 10];
    out[..8].copy_from_slice(&significand.to_le_bytes());
    out[8..].copy_from_slice(&(sign | top).to_le_bytes());
    out
}

/// IEEE 754 binary128 (AArch64 Linux's `long double`, AAPCS64 §5.1) as the nearest `double`
/// (ties to even), from its 16 little-endian bytes: a sign, a 15-bit exponent biased by 16383
/// and a 112-bit fraction with an implicit leading 1 (IEEE 754-2008 §3.4). This is what
/// libgcc's `__trunctfdf2` gives (AArch64 has no quad-precision arithmetic; C's `(double)`
/// calls it): a NaN keeps its payload's top bits and turns quiet, values past `double`'s range
/// become infinities, tiny ones subnormals or zero.
///
/// ```
/// use backcall::marshal::{binary128_to_f64, f64_to_binary128};
///
/// let one_third = 1.0 / 3.0;
/// assert_eq!(binary128_to_f64(f64_to_binary128(one_third)), one_third);
/// // 1 + 2^-100 needs more bits than a double has: the nearest double is 1.
/// let mut x = f64_to_binary128(1.0);
/// x[1] = 0x10;
/// assert_eq!(binary128_to_f64(x), 1.0);
/// ```
pub fn binary128_to_f64(x: [u8; 16]) -> f64 {
    const FRACTION: u32 = 112;
    let bits = u128::from_le_bytes(x);
    let sign = ((bits >> 127) as u64) << 63;
    let exponent = ((bits >> FRACTION) & 0x7fff) as i32;
    let fraction = bits & ((1 << FRACTION) - 1);
    if exponent == 0x7fff {
        let nan = if fraction == 0 { 0 } else { (fraction >> 60) as u64 | 1 << 51 };
        return f64::from_bits(sign | 0x7ff << 52 | nan);
    }
    if exponent == 0 && fraction == 0 {
        return f64::from_bits(sign);
    }
    // value = significand * 2^scale, the significand's top bit at `top`: 1.f * 2^(top + scale)
    let significand = if exponent == 0 { fraction } else { fraction | 1 << FRACTION };
    let scale = exponent.max(1) - 16383 - FRACTION as i32;
    let top = 127 - significand.leading_zeros() as i32;
    let unbiased = top + scale;
    if unbiased > 1023 {
        return f64::from_bits(sign | 0x7ff << 52);
    }
    // The result's last bit weighs 2^(unbiased - 52), or 2^-1074 for a double subnormal; the
    // rounded significand then carries into the exponent field by plain addition, up to the
    // smallest normal or to infinity.
    let last = (unbiased - 52).max(-1074);
    let kept = round_shift(significand, (last - scale) as u32);
    let bits = if unbiased >= -1022 {
        (((unbiased + 1023) as u64) << 52) + (kept - (1 << 52))
    } else {
        kept
    };
    f64::from_bits(sign | bits)
}

/// `m >> shift`, rounded to nearest, ties to even, for a result that fits 64 bits.
fn round_shift(m: u128, shift: u32) -> u64 {
    if shift == 0 {
        return m as u64;
    }
    if shift > 127 {
        return 0;
    }
    let kept = (m >> shift) as u64;
    let rest = m & ((1u128 << shift) - 1);
    let half = 1u128 << (shift - 1);
    if rest > half || (rest == half && kept & 1 == 1) {
        kept + 1
    } else {
        kept
    }
}

/// `x` as IEEE 754 binary128 (exactly: every `double` is one; a NaN keeps its payload and
/// turns quiet), its 16 little-endian bytes (see [`binary128_to_f64`]).
///
/// ```
/// assert_eq!(
///     backcall::marshal::f64_to_binary128(-2.0),
///     [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0xc0], // -1.0 * 2^1
/// );
/// ```
pub fn f64_to_binary128(x: f64) -> [u8; 16] {
    let bits = x.to_bits();
    let sign = u128::from(bits >> 63) << 127;
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let fraction = u128::from(bits & ((1 << 52) - 1));
    let (top, fraction) = match exponent {
        0 if fraction == 0 => (0, 0),
        0 => {
            // A subnormal: fraction * 2^-1074, normalized to an implicit 1 at bit 112.
            let high = 127 - fraction.leading_zeros() as i32;
            let fraction = (fraction << (112 - high)) & ((1 << 112) - 1);
            ((16383 - 1074 + high) as u128, fraction)
        }
        0x7ff if fraction == 0 => (0x7fff, 0),
        // (a NaN turns quiet, as libgcc's `__extenddftf2` makes it: IEEE 754 §6.2)
        0x7ff => (0x7fff, 1 << 111 | fraction << 60),
        e => ((e - 1023 + 16383) as u128, fraction << 60),
    };
    (sign | top << 112 | fraction).to_le_bytes()
}

/// The binary128 conversions against libgcc's soft-float routines (`__extenddftf2`,
/// `__trunctfdf2`, what a C program's conversions call), looked up in `libgcc_s.so.1` itself:
/// the test binary's own symbols of those names are compiler-rt's, which keeps a signalling
/// NaN signalling. x86-64 passes their `__float128` in `xmm0`.
#[cfg(all(test, target_arch = "x86_64", target_os = "linux"))]
mod binary128_against_libgcc {
    use super::{binary128_to_f64, f64_to_binary128};
    use proptest::prelude::*;
    use std::arch::asm;
    use std::sync::OnceLock;

    /// `name` in libgcc_s (their real signatures take or return `__float128` in `xmm0`, which
    /// Rust cannot name in FFI; `call_xmm0` does the passing).
    fn libgcc(name: &std::ffi::CStr) -> usize {
        static LIB: OnceLock<usize> = OnceLock::new();
        let lib = *LIB.get_or_init(|| {
            // SAFETY: a plain library load by a NUL-terminated name.
            let lib = unsafe { libc::dlopen(c"libgcc_s.so.1".as_ptr(), libc::RTLD_NOW) };
            assert!(!lib.is_null(), "libgcc_s.so.1 is not loadable");
            lib as usize
        });
        // SAFETY: `lib` is a live handle, `name` NUL-terminated.
        let f = unsafe { libc::dlsym(lib as *mut libc::c_void, name.as_ptr()) };
        assert!(!f.is_null(), "libgcc_s has no {name:?}");
        f as usize
    }

    /// Calls `f` with `xmm0` = the 16 bytes at `input`, stores the 16 bytes `f` leaves in
    /// `xmm0` to `output`.
    fn call_xmm0(f: usize, input: &[u8; 16]) -> [u8; 16] {
        let mut output = [0u8; 16];
        // SAFETY: `f` is a libgcc routine of one `__float128` or `double` in `xmm0` answering in
        // `xmm0`; the stack is realigned to 16 for the call and restored from r12, and the
        // output address waits in r13: both callee-saved, so `f` keeps them.
        unsafe {
            asm!(
                "movups xmm0, [{input}]",
                "mov r12, rsp",
                "and rsp, -16",
                "call {f}",
                "mov rsp, r12",
                "movups [r13], xmm0",
                f = in(reg) f,
                input = in(reg) input.as_ptr(),
                inout("r13") output.as_mut_ptr() => _,
                out("r12") _,
                clobber_abi("C"),
            );
        }
        output
    }

    fn libgcc_to_f64(x: [u8; 16]) -> f64 {
        let out = call_xmm0(libgcc(c"__trunctfdf2"), &x);
        f64::from_le_bytes(out[..8].try_into().unwrap())
    }

    fn libgcc_from_f64(f: f64) -> [u8; 16] {
        let mut input = [0u8; 16];
        input[..8].copy_from_slice(&f.to_le_bytes());
        call_xmm0(libgcc(c"__extenddftf2"), &input)
    }

    /// Any binary128, with the exponents near `double`'s edges (overflow, subnormals, the
    /// smallest normal) drawn often, and fractions whose low bits decide ties.
    fn binary128() -> impl Strategy<Value = [u8; 16]> {
        let exponent = prop_oneof![
            any::<u16>().prop_map(|e| e & 0x7fff),
            (16383 - 1080..16383 - 1018).prop_map(|e: i32| e as u16),
            (16383 + 1020..16383 + 1026).prop_map(|e: i32| e as u16),
            Just(0x7fff),
            Just(0),
        ];
        let fraction = prop_oneof![
            any::<u128>(),
            any::<u64>().prop_map(|f| u128::from(f) << 60 | 1 << 59),
            any::<u64>().prop_map(|f| u128::from(f) << 60),
        ];
        (any::<bool>(), exponent, fraction).prop_map(|(sign, e, f)| {
            let bits = u128::from(sign) << 127 | u128::from(e) << 112 | f & ((1 << 112) - 1);
            bits.to_le_bytes()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn to_f64_is_libgccs(x in binary128()) {
            let (ours, theirs) = (binary128_to_f64(x), libgcc_to_f64(x));
            prop_assert_eq!(ours.to_bits(), theirs.to_bits(), "{:x?}: {} vs {}", x, ours, theirs);
        }

        #[test]
        fn from_f64_is_libgccs(bits in any::<u64>()) {
            let f = f64::from_bits(bits);
            prop_assert_eq!(f64_to_binary128(f), libgcc_from_f64(f), "{}", f);
            if !f.is_nan() {
                prop_assert_eq!(binary128_to_f64(f64_to_binary128(f)).to_bits(), bits);
            }
        }
    }

    #[test]
    fn edges() {
        let signalling = f64::from_bits(0x7ff0_0000_0000_0001);
        for f in [0.0, -0.0, 1.0, f64::MIN_POSITIVE, 5e-324, f64::MAX, f64::INFINITY, signalling] {
            assert_eq!(f64_to_binary128(f), libgcc_from_f64(f), "{f}");
        }
    }
}

/// The conversions against the FPU itself: `fld tbyte` + `fstp qword` on the machine running
/// the tests (x86-64 Linux keeps the x87 precision at 64 bits, rounding to nearest).
#[cfg(all(test, target_arch = "x86_64"))]
mod x87_against_the_fpu {
    use super::{f64_to_x87, x87_to_f64};
    use proptest::prelude::*;

    fn fpu_to_f64(x: [u8; 10]) -> f64 {
        let mut out = 0f64;
        // SAFETY: reads 10 bytes at `x`, writes 8 at `out`; the x87 stack is left as found.
        unsafe {
            std::arch::asm!(
                "fld tbyte ptr [{x}]",
                "fstp qword ptr [{out}]",
                x = in(reg) x.as_ptr(),
                out = in(reg) &mut out as *mut f64,
                out("st(0)") _,
            );
        }
        out
    }

    fn fpu_from_f64(f: f64) -> [u8; 10] {
        let mut out = [0u8; 10];
        // SAFETY: reads 8 bytes at `f`, writes 10 at `out`; the x87 stack is left as found.
        unsafe {
            std::arch::asm!(
                "fld qword ptr [{f}]",
                "fstp tbyte ptr [{out}]",
                f = in(reg) &f as *const f64,
                out = in(reg) out.as_mut_ptr(),
                out("st(0)") _,
            );
        }
        out
    }

    /// Exponents near the double range's ends (subnormals, overflow) and anywhere.
    fn x87() -> impl Strategy<Value = [u8; 10]> {
        let exponent = prop_oneof![
            0u16..=0x7fff,
            (16383u16 - 1100)..=(16383 - 1000),
            (16383u16 + 1000)..=(16383 + 1030),
            Just(0),
            Just(0x7fff),
        ];
        (any::<u64>(), exponent, any::<bool>(), 0u32..64).prop_map(|(m, e, neg, cut)| {
            // Low bits cut off at times: ties and exact values, not only random tails.
            let m = m & !((1u64 << cut) - 1);
            let mut x = [0u8; 10];
            x[..8].copy_from_slice(&m.to_le_bytes());
            x[8..].copy_from_slice(&(e | u16::from(neg) << 15).to_le_bytes());
            x
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn to_f64_is_the_fpus(x in x87()) {
            let (ours, fpu) = (x87_to_f64(x), fpu_to_f64(x));
            prop_assert_eq!(ours.to_bits(), fpu.to_bits(), "{:x?}: {} vs {}", x, ours, fpu);
        }

        #[test]
        fn from_f64_is_the_fpus(bits in any::<u64>()) {
            let f = f64::from_bits(bits);
            prop_assert_eq!(f64_to_x87(f), fpu_from_f64(f), "{}", f);
        }
    }

    #[test]
    fn the_special_values_are_the_fpus() {
        for f in [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::MIN_POSITIVE, 5e-324, f64::MAX]
        {
            assert_eq!(f64_to_x87(f), fpu_from_f64(f), "{f}");
            assert_eq!(x87_to_f64(f64_to_x87(f)).to_bits(), f.to_bits(), "{f}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{encode_result, f64_to_binary128, Value};
    use backcall_abi::{Abi, Scalar, Type};

    /// AArch64 Linux's `long double` result: a number is encoded as binary128, its 16 bytes
    /// are taken as they are, and a value of another kind or size is refused.
    #[test]
    fn a_binary128_result_is_encoded_from_a_number_or_its_bytes() {
        let ret = Abi::Aarch64Aapcs64.layout(&Type::Scalar(Scalar::LongDouble)).unwrap();
        let third = f64_to_binary128(1.0 / 3.0).to_vec();
        assert_eq!(encode_result(&ret, &Value::F64(1.0 / 3.0)), Ok(Some(third)));
        assert_eq!(encode_result(&ret, &Value::Int(-2)), Ok(Some(f64_to_binary128(-2.0).to_vec())));
        let precise: Vec<u8> = (1..=16).collect();
        assert_eq!(encode_result(&ret, &Value::Bytes(precise.clone())), Ok(Some(precise)));
        assert!(encode_result(&ret, &Value::Bytes(vec![0; 10])).is_err());
    }
}
