//! `CallPlan`: for one signature on one ABI, where every argument's bytes are and how the
//! result returns.
//!
//! The plan is the single source of ABI placement facts: the runtime marshals by it, thunkEntry
//! returns by its [`ReturnCode`], and the emulated harness checks received bytes against it. Each
//! ABI file computes plans with the small [`Allocator`] below (register and stack counters).

use std::fmt;
use std::sync::Arc;

use crate::abi::Abi;
use crate::layout::{round_up, Layout, Layouts};
use crate::types::{Scalar, Signature, Type, MAX_SIGNATURE_NODES};
use crate::AbiError;

/// A place a piece of a value can live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loc {
    /// general-purpose register number `i` of the ABI's argument (or result) sequence
    Int(u8),
    /// floating-point / vector register number `i` of the ABI's argument (or result) sequence
    Float(u8),
    /// stack, at this byte offset from the first stack argument (the word above the return
    /// address on x86, the stack pointer at entry on AArch64)
    Stack(u32),
    /// the x87 register stack top `st(0)` (i386 float results, x87 `long double`); a
    /// 32-byte piece there is a `long double _Complex`, its bytes 16..32 in `st(1)`
    X87,
}

/// A byte range `offset..offset+size` of a value and where it lives. In a register, the bytes
/// are the register's low bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Piece {
    /// first byte of the value held here
    pub offset: u32,
    /// how many bytes
    pub size: u32,
    /// where
    pub loc: Loc,
}

/// How an argument travels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgPass {
    /// the value's bytes themselves, in these pieces
    Direct(Vec<Piece>),
    /// the caller made a copy; its address is in `pointer` (Win64 and AArch64 large composites)
    Indirect {
        /// where the address arrives
        pointer: Loc,
    },
}

/// One argument's plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgPlan {
    /// the argument's layout on this ABI
    pub layout: Layout,
    /// where its bytes are
    pub pass: ArgPass,
}

impl ArgPass {
    /// Where the argument's first piece, or its pointer, arrives.
    pub fn first_loc(&self) -> Loc {
        match self {
            ArgPass::Direct(pieces) => pieces[0].loc,
            ArgPass::Indirect { pointer } => *pointer,
        }
    }
}

/// Extension the callee applies to a sub-word integer result before returning it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Extend {
    /// no extension (the value fills its register, or is not an integer)
    None,
    /// sign-extend to the full register
    Sign,
    /// zero-extend to the full register
    Zero,
}

/// How thunkEntry returns the result slot (OpenSmalltalk's 1 word, 2 word64, 3 double, 4 struct,
/// extended for the ABIs covered here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ReturnCode {
    /// nothing to return
    Void = 0,
    /// one integer register
    Word = 1,
    /// a 64-bit integer in two 32-bit registers (i386 `edx:eax`)
    Word64 = 2,
    /// a double in the first float register (x87 `st(0)` on i386)
    Double = 3,
    /// an aggregate in several registers, possibly of both kinds
    Struct = 4,
    /// a single float in the first float register (x87 `st(0)` on i386)
    Float = 5,
    /// the result was written through the hidden result pointer
    HiddenPointer = 6,
    /// an x87 `long double` in `st(0)` (i386, and x86-64's X87 class)
    LongDouble = 7,
    /// an x87 `long double _Complex`: the real part in `st(0)`, the imaginary part in `st(1)`
    /// (x86-64's COMPLEX_X87 class)
    ComplexLongDouble = 8,
}

impl ReturnCode {
    /// Every code.
    pub const ALL: [ReturnCode; 9] = [
        ReturnCode::Void,
        ReturnCode::Word,
        ReturnCode::Word64,
        ReturnCode::Double,
        ReturnCode::Struct,
        ReturnCode::Float,
        ReturnCode::HiddenPointer,
        ReturnCode::LongDouble,
        ReturnCode::ComplexLongDouble,
    ];

    /// The name assembly constants give the code (`RC_DOUBLE`).
    pub fn asm_name(self) -> &'static str {
        match self {
            ReturnCode::Void => "VOID",
            ReturnCode::Word => "WORD",
            ReturnCode::Word64 => "WORD64",
            ReturnCode::Double => "DOUBLE",
            ReturnCode::Struct => "STRUCT",
            ReturnCode::Float => "FLOAT",
            ReturnCode::HiddenPointer => "HIDDEN_POINTER",
            ReturnCode::LongDouble => "LONG_DOUBLE",
            ReturnCode::ComplexLongDouble => "COMPLEX_LONG_DOUBLE",
        }
    }

    /// The code whose number is `n`, if any.
    pub fn from_u32(n: u32) -> Option<ReturnCode> {
        ReturnCode::ALL.into_iter().find(|c| *c as u32 == n)
    }
}

/// How the result travels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetPlan {
    /// `void`
    Void,
    /// in registers; `pieces` use the ABI's *result* register sequences
    Direct {
        /// where each byte range goes
        pieces: Vec<Piece>,
        /// extension of a sub-word integer result
        extend: Extend,
    },
    /// through a hidden pointer the caller passes
    Indirect {
        /// where the hidden pointer arrives (an argument location)
        pointer: Loc,
        /// the result register the callee must return the pointer in, if the ABI requires it
        returned_in: Option<Loc>,
    },
}

/// The complete placement of one signature on one ABI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallPlan {
    /// the ABI
    pub abi: Abi,
    /// the signature this plan is for
    pub signature: Signature,
    /// for one call of a variadic signature: the types of the unnamed arguments it passes
    /// after the named ones, whose plans follow theirs in `args` (see [`plan_call`])
    pub unnamed: Vec<Type>,
    /// one entry per argument
    pub args: Vec<ArgPlan>,
    /// the result's layout
    pub ret_layout: Layout,
    /// the result
    pub ret: RetPlan,
    /// how thunkEntry returns
    pub code: ReturnCode,
    /// bytes of stack arguments the caller provides (hidden pointer included)
    pub stack_bytes: u32,
    /// bytes of stack arguments the callee pops on return (`ret $n`)
    pub callee_pop: u32,
}

/// Where an ABI puts one signature's arguments and result ([`crate::AbiSpec::place`]'s answer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// one entry per argument
    pub args: Vec<ArgPlan>,
    /// the result
    pub ret: RetPlan,
    /// how thunkEntry returns
    pub code: ReturnCode,
    /// bytes of stack arguments the caller provides (hidden pointer included)
    pub stack_bytes: u32,
    /// bytes of stack arguments the callee pops on return (`ret $n`)
    pub callee_pop: u32,
}

/// Register and stack counters that every ABI file assigns locations with.
#[derive(Clone, Debug)]
pub struct Allocator {
    /// next free integer argument register
    pub next_int: u8,
    /// how many integer argument registers exist
    pub int_regs: u8,
    /// next free float argument register
    pub next_float: u8,
    /// how many float argument registers exist
    pub float_regs: u8,
    /// bytes of stack arguments assigned so far
    pub stack: u32,
}

impl Allocator {
    /// Counters for an ABI with these register files.
    pub fn new(int_regs: u8, float_regs: u8) -> Allocator {
        Allocator { next_int: 0, int_regs, next_float: 0, float_regs, stack: 0 }
    }

    /// Takes `n` consecutive integer registers, or none if fewer remain.
    pub fn take_int(&mut self, n: u8) -> Option<u8> {
        let first = self.next_int;
        (first + n <= self.int_regs).then(|| {
            self.next_int += n;
            first
        })
    }

    /// Takes `n` consecutive float registers, or none if fewer remain.
    pub fn take_float(&mut self, n: u8) -> Option<u8> {
        let first = self.next_float;
        (first + n <= self.float_regs).then(|| {
            self.next_float += n;
            first
        })
    }

    /// Places `size` bytes on the stack at the next multiple of `align`, then pads the area to
    /// a multiple of `slot` bytes; returns the offset.
    pub fn take_stack(&mut self, size: u32, align: u32, slot: u32) -> u32 {
        let offset = round_up(self.stack, align.max(1));
        self.stack = round_up(offset + size, slot);
        offset
    }
}

/// Splits `size` bytes starting at `offset` into pieces of at most `chunk` bytes, each at the
/// location `loc(i)` for chunk `i`.
pub fn chunks(offset: u32, size: u32, chunk: u32, mut loc: impl FnMut(u32) -> Loc) -> Vec<Piece> {
    (0..size.div_ceil(chunk))
        .map(|i| {
            let start = i * chunk;
            Piece { offset: offset + start, size: chunk.min(size - start), loc: loc(i) }
        })
        .collect()
}

/// The extension a scalar integer result of this layout needs when it is narrower than a word.
pub fn result_extend(abi: Abi, layout: &Layout) -> Extend {
    match layout.scalar() {
        Some(s) if !s.is_float() && layout.size < abi.word_size() => {
            if crate::is_signed(abi, s) {
                Extend::Sign
            } else {
                Extend::Zero
            }
        }
        _ => Extend::None,
    }
}

/// Computes the plan of `sig` on `abi`: layouts first, then the ABI file's placement. A
/// variadic signature's plan places its named parameters; [`plan_call`] places one call's
/// unnamed arguments too.
pub fn plan_for(abi: Abi, sig: &Signature) -> Result<CallPlan, AbiError> {
    plan_call(abi, sig, &[])
}

/// The plan of one call of `sig` that passes `unnamed` after the named parameters (for a
/// variadic `sig`; none otherwise). Each unnamed type must be what C's default argument
/// promotions leave ([`Type::promoted`]): a caller never passes a `float` or a `short` there.
pub fn plan_call(abi: Abi, sig: &Signature, unnamed: &[Type]) -> Result<CallPlan, AbiError> {
    if !sig.variadic && !unnamed.is_empty() {
        return Err(AbiError::invalid(abi, "unnamed arguments for a signature without `...`"));
    }
    if sig.ret == Type::VaList {
        return Err(AbiError::unsupported(abi, "a `va_list` result"));
    }
    if !abi.spec().has_convention(sig.conv) {
        let keyword = sig.conv.keyword().unwrap_or_default();
        return Err(AbiError::unsupported(abi, &format!("the convention `{keyword}`")));
    }
    // (the unnamed arguments count too: a handler names their types one call at a time)
    let unnamed_nodes = Signature::new(Type::Void, unnamed.to_vec()).nodes().saturating_sub(1);
    let nodes = sig.nodes().saturating_add(unnamed_nodes);
    if nodes > MAX_SIGNATURE_NODES {
        return Err(AbiError::invalid(
            abi,
            &format!(
                "the signature holds {nodes} type nodes (scalars, arrays, structs and unions, \
                 per use); the limit MAX_SIGNATURE_NODES is {MAX_SIGNATURE_NODES}"
            ),
        ));
    }
    // One memo for the whole signature: a struct type used by many parameters is laid out once.
    let mut layouts = Layouts::new(abi);
    let ret = Arc::unwrap_or_clone(layouts.layout(&sig.ret)?);
    if matches!(sig.ret, Type::Array(..)) {
        return Err(AbiError::invalid(abi, "a function cannot return an array"));
    }
    let named = sig.args.len();
    let mut args = Vec::with_capacity(named + unnamed.len());
    for (i, ty) in sig.args.iter().chain(unnamed).enumerate() {
        match ty {
            Type::Void => {
                return Err(AbiError::invalid(abi, &format!("argument {i} has type void")))
            }
            Type::Array(..) => {
                return Err(AbiError::invalid(
                    abi,
                    &format!("argument {i} is an array; pass a pointer"),
                ))
            }
            _ if i >= named && ty.promoted(abi) != *ty => {
                return Err(AbiError::invalid(
                    abi,
                    &format!(
                        "unnamed argument {} (argument {i}) has type `{ty}`, which C's default \
                         argument promotions make `{}` (C11 6.5.2.2p7); name that type",
                        i - named,
                        ty.promoted(abi)
                    ),
                ))
            }
            _ => args.push(Arc::unwrap_or_clone(layouts.layout(ty)?)),
        }
    }
    let spec = abi.spec();
    let placed = if sig.variadic {
        spec.place_variadic(sig.conv, &args, named, &ret)?
    } else {
        spec.place(sig.conv, &args, &ret)?
    };
    Ok(CallPlan {
        abi,
        signature: sig.clone(),
        unnamed: unnamed.to_vec(),
        args: placed.args,
        ret_layout: ret,
        ret: placed.ret,
        code: placed.code,
        stack_bytes: placed.stack_bytes,
        callee_pop: placed.callee_pop,
    })
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Int(i) => write!(f, "int{i}"),
            Loc::Float(i) => write!(f, "float{i}"),
            Loc::Stack(o) => write!(f, "stack+{o}"),
            Loc::X87 => f.write_str("st(0)"),
        }
    }
}

/// The form of the `va_list` that `va_start` makes in a variadic function
/// ([`crate::AbiSpec::va_start`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaStart {
    /// a `char *` at the first unnamed argument's stack slot: i386 (psABI §2.2.2, every
    /// argument on the stack) and Apple arm64 ("Writing ARM64 code for Apple platforms":
    /// unnamed arguments go on the stack)
    Stack,
    /// a `char *` at the first unnamed argument's 8-byte slot, once the callee has spilled the
    /// four register arguments into the caller's home space, which makes registers and stack
    /// one array (Microsoft's x64 calling convention, "Varargs" and "Parameter passing")
    HomeSpace,
    /// x86-64 SysV's `__va_list_tag { unsigned gp_offset, fp_offset; void *overflow_arg_area,
    /// *reg_save_area; }` over a register save area of the six integer argument registers
    /// then the eight vector ones, 16 bytes each (psABI §3.5.7, Figures 3.33 and 3.34)
    RegisterSaveArea,
    /// AAPCS64's `__va_list { void *__stack, *__gr_top, *__vr_top; int __gr_offs, __vr_offs; }`
    /// over save areas of x0-x7 and of v0-v7, 16 bytes each, ending at `__gr_top` and
    /// `__vr_top` (AAPCS64 Appendix B, B.4 "va_start")
    Aapcs64,
}

impl VaStart {
    /// How many integer and float argument registers the form's save areas hold: the
    /// registers that carry arguments (psABI Figure 3.33: six and eight; AAPCS64 B.4: eight
    /// and eight; Win64's home space: four).
    pub fn saved_registers(self) -> (u8, u8) {
        match self {
            VaStart::Stack => (0, 0),
            VaStart::HomeSpace => (4, 0),
            VaStart::RegisterSaveArea => (6, 8),
            VaStart::Aapcs64 => (8, 8),
        }
    }
}

/// Where a variadic call's unnamed arguments begin: what `va_start` records. Found by planning
/// the call with probe unnamed arguments, so that it follows the ABI's own placement rules
/// ([`crate::AbiSpec::place_variadic`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VaStartState {
    /// the form of the ABI's `va_list`
    pub form: VaStart,
    /// how many integer argument registers the named parameters took (all of them when an
    /// unnamed word would go on the stack)
    pub int_regs_used: u8,
    /// how many float argument registers the named parameters took (likewise; 0 where the
    /// form saves none)
    pub float_regs_used: u8,
    /// where the first unnamed word goes: a register slot (on Win64 its home slot) or a stack
    /// offset from the first stack argument, as `Loc`
    pub first: Loc,
    /// the stack offset of the first unnamed argument that goes on the stack once the
    /// registers are taken (`overflow_arg_area`, `__stack`: the register save area forms)
    pub overflow: u32,
}

impl VaStartState {
    /// x86-64 SysV's `gp_offset` and `fp_offset`: byte offsets into the register save area, 8
    /// per integer register, then 16 per vector register (psABI §3.5.7).
    pub fn save_area_offsets(&self) -> (u32, u32) {
        let (int_regs, _) = self.form.saved_registers();
        let gp = u32::from(self.int_regs_used) * 8;
        (gp, u32::from(int_regs) * 8 + u32::from(self.float_regs_used) * 16)
    }

    /// AAPCS64's `__gr_offs` and `__vr_offs`: negative byte offsets from the top of each save
    /// area, 0 once its registers are taken (AAPCS64 B.4).
    pub fn top_offsets(&self) -> (i32, i32) {
        let (int_regs, float_regs) = self.form.saved_registers();
        let left = |regs: u8, used: u8| i32::from(regs.saturating_sub(used));
        (-8 * left(int_regs, self.int_regs_used), -16 * left(float_regs, self.float_regs_used))
    }

    /// Where a pointer form's `char *` points, as an offset from the first stack argument:
    /// the first unnamed stack slot, or on Win64 the home slot of the first unnamed register
    /// argument (8 bytes each); `None` for the record forms.
    pub fn pointer_offset(&self) -> Option<u32> {
        match (self.form, self.first) {
            (VaStart::Stack | VaStart::HomeSpace, Loc::Stack(offset)) => Some(offset),
            (VaStart::HomeSpace, Loc::Int(i)) => Some(u32::from(i) * 8),
            _ => None,
        }
    }

    /// The state at the start of the unnamed arguments of `plan`'s calls, or why there is none
    /// (a signature without `...`).
    pub fn of(plan: &CallPlan) -> Result<VaStartState, AbiError> {
        let (abi, sig) = (plan.abi, &plan.signature);
        if !sig.variadic {
            return Err(AbiError::invalid(abi, "a `va_list` of a signature without `...`"));
        }
        let spec = abi.spec();
        // Where each of n unnamed values of type `ty` would go.
        let locs = |ty: &Type, n: usize| -> Result<Vec<Loc>, AbiError> {
            let call = plan_call(abi, sig, &vec![ty.clone(); n])?;
            Ok(call.args[sig.args.len()..].iter().map(|a| a.pass.first_loc()).collect())
        };
        let form = spec.va_start();
        let (int_regs, float_regs) = form.saved_registers();
        let words = locs(&Type::Scalar(Scalar::Pointer), usize::from(int_regs) + 1)?;
        let first = words[0];
        // (counted against the save areas: Win64's has no float registers)
        let int_regs_used = match first {
            Loc::Int(i) => i.min(int_regs),
            _ => int_regs,
        };
        let float_regs_used = match locs(&Type::Scalar(Scalar::Double), 1)?[0] {
            Loc::Float(i) => i.min(float_regs),
            _ => float_regs,
        };
        // (one more word than there are registers: at least one lands on the stack)
        let Some(overflow) = words.iter().find_map(|loc| match loc {
            Loc::Stack(offset) => Some(*offset),
            _ => None,
        }) else {
            let what = "unnamed words past every register that stay in registers";
            return Err(AbiError::invalid(abi, what));
        };
        Ok(VaStartState { form, int_regs_used, float_regs_used, first, overflow })
    }
}

impl CallPlan {
    /// Whether an argument travels in a float register (the context route then needs the
    /// entry that spills them).
    pub fn uses_float_registers(&self) -> bool {
        // (the unnamed arguments of a variadic call may arrive in any of them)
        self.signature.variadic
            || self.args.iter().any(|a| match &a.pass {
                ArgPass::Direct(pieces) => pieces.iter().any(|p| matches!(p.loc, Loc::Float(_))),
                ArgPass::Indirect { pointer } => matches!(pointer, Loc::Float(_)),
            })
    }

    /// The register `loc` is: an argument register, or a result register when `ret`; `None`
    /// for a stack location, and for a register number the ABI does not have.
    pub fn loc_reg(&self, loc: Loc, ret: bool) -> Option<crate::Reg> {
        let spec = self.abi.spec();
        match loc {
            Loc::Int(i) if ret => spec.int_ret_reg(i),
            Loc::Int(i) => spec.int_arg_reg(i, self.signature.conv),
            Loc::Float(i) => spec.float_reg(i),
            _ => None,
        }
    }

    /// The ABI's name for `loc`: an argument register (`rdi`, `ecx` under fastcall), a result
    /// register when `ret` (`rax`, `edx`), or `stack+N` / `st(0)`.
    pub fn loc_name(&self, loc: Loc, ret: bool) -> String {
        match loc {
            Loc::Int(_) | Loc::Float(_) => reg_text(self.loc_reg(loc, ret)),
            other => other.to_string(),
        }
    }

    fn fmt_pieces(&self, f: &mut fmt::Formatter<'_>, pieces: &[Piece], ret: bool) -> fmt::Result {
        f.write_str(&self.pieces_text(pieces, ret))
    }

    fn pieces_text(&self, pieces: &[Piece], ret: bool) -> String {
        let text = pieces.iter().map(|p| {
            format!("[{}..{}] {}", p.offset, p.offset + p.size, self.loc_name(p.loc, ret))
        });
        text.collect::<Vec<_>>().join(", ")
    }

    /// How an argument travels, as the plan prints it: `[0..8] rdx, [8..16] r8` or
    /// `by reference, pointer in r9`.
    pub fn pass_text(&self, pass: &ArgPass) -> String {
        match pass {
            ArgPass::Direct(pieces) => self.pieces_text(pieces, false),
            ArgPass::Indirect { pointer } => {
                format!("by reference, pointer in {}", self.loc_name(*pointer, false))
            }
        }
    }
}

/// A register's name, or what a (tampered) location that names none prints.
fn reg_text(reg: Option<crate::Reg>) -> String {
    reg.map_or_else(|| "<no such register>".to_string(), |r| r.name().to_string())
}

/// What `va_start` records, as `backcall plan` prints it: `__va_list_tag { gp_offset 8,
/// fp_offset 48, overflow_arg_area stack+0 }`, or `char * stack+4`.
impl fmt::Display for VaStartState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let overflow = Loc::Stack(self.overflow);
        match self.form {
            VaStart::Stack | VaStart::HomeSpace => {
                let at = self.pointer_offset().map_or(self.first, Loc::Stack);
                write!(f, "char * {at}")?;
                if matches!(self.first, Loc::Int(_)) {
                    f.write_str(" (the home space)")?;
                }
                Ok(())
            }
            VaStart::RegisterSaveArea => {
                let (gp, fp) = self.save_area_offsets();
                write!(f, "__va_list_tag {{ gp_offset {gp}, fp_offset {fp}, ")?;
                write!(f, "overflow_arg_area {overflow} }}")
            }
            VaStart::Aapcs64 => {
                let (gr, vr) = self.top_offsets();
                write!(f, "__va_list {{ __stack {overflow}, __gr_offs {gr}, __vr_offs {vr} }}")
            }
        }
    }
}

/// The text form `backcall plan` prints and the snapshots hold.
impl fmt::Display for CallPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.abi, self.signature)?;
        let types = self.signature.args.iter().chain(&self.unnamed);
        for (i, (arg, ty)) in self.args.iter().zip(types).enumerate() {
            let unnamed = if i >= self.signature.args.len() { "unnamed " } else { "" };
            write!(
                f,
                "  arg{i:<2} {unnamed}{ty} (size {}, align {}): ",
                arg.layout.size, arg.layout.align
            )?;
            writeln!(f, "{}", self.pass_text(&arg.pass))?;
        }
        if self.signature.variadic && self.unnamed.is_empty() {
            writeln!(
                f,
                "  ...   unnamed arguments: read one by one by the handler, as `va_arg` does"
            )?;
        }
        if self.signature.variadic {
            match VaStartState::of(self) {
                Ok(state) => writeln!(f, "  va_list {state}")?,
                Err(e) => writeln!(f, "  va_list none: {e}")?,
            }
        }
        write!(f, "  ret   {} (size {}): ", self.signature.ret, self.ret_layout.size)?;
        match &self.ret {
            RetPlan::Void => f.write_str("none")?,
            RetPlan::Direct { pieces, extend } => {
                self.fmt_pieces(f, pieces, true)?;
                match extend {
                    Extend::None => {}
                    Extend::Sign => f.write_str(", sign-extended")?,
                    Extend::Zero => f.write_str(", zero-extended")?,
                }
            }
            RetPlan::Indirect { pointer, returned_in } => {
                write!(f, "hidden pointer in {}", self.loc_name(*pointer, false))?;
                if let Some(r) = returned_in {
                    write!(f, ", returned in {}", self.loc_name(*r, true))?;
                }
            }
        }
        writeln!(f)?;
        writeln!(
            f,
            "  return code {:?}; stack arguments {} bytes; callee pops {}",
            self.code, self.stack_bytes, self.callee_pop
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Convention, Scalar};

    fn s(x: Scalar) -> Type {
        Type::scalar(x)
    }

    fn printf_like() -> Signature {
        Signature { variadic: true, ..Signature::new(s(Scalar::Int), vec![s(Scalar::Pointer)]) }
    }

    #[test]
    fn unnamed_arguments_need_a_variadic_signature_and_promoted_types() {
        let fixed = Signature::new(s(Scalar::Int), vec![s(Scalar::Int)]);
        let e = plan_call(Abi::X86_64Sysv, &fixed, &[s(Scalar::Int)]).unwrap_err();
        assert!(e.to_string().contains("without `...`"), "{e}");
        for (ty, promoted) in
            [(Scalar::Float, "double"), (Scalar::Short, "int"), (Scalar::Bool, "int")]
        {
            let e = plan_call(Abi::X86_64Sysv, &printf_like(), &[s(ty)]).unwrap_err();
            assert!(e.to_string().contains(&format!("make `{promoted}`")), "{e}");
        }
        // A Windows `wchar_t` is 2 bytes, so it arrives as an `int`; a Linux one is an `int`.
        assert!(plan_call(Abi::X86_64Win64, &printf_like(), &[s(Scalar::WChar)]).is_err());
        assert!(plan_call(Abi::X86_64Sysv, &printf_like(), &[s(Scalar::WChar)]).is_ok());
        let call = plan_call(Abi::X86_64Sysv, &printf_like(), &[s(Scalar::Double)]).unwrap();
        assert_eq!((call.args.len(), call.unnamed.len()), (2, 1));
    }

    #[test]
    fn a_variadic_i386_function_is_cdecl() {
        for abi in [Abi::I386Sysv, Abi::I386Win32] {
            for conv in [Convention::Stdcall, Convention::Fastcall, Convention::Thiscall] {
                let sig = Signature { conv, ..printf_like() };
                let e = plan_call(abi, &sig, &[]).unwrap_err();
                assert!(e.to_string().contains("call it as `__cdecl`"), "{abi} {e}");
            }
            let cdecl = Signature { conv: Convention::Cdecl, ..printf_like() };
            assert_eq!(plan_call(abi, &cdecl, &[s(Scalar::Int)]).unwrap().callee_pop, 0);
        }
        // The 64-bit ABIs ignore the keyword, as their compilers do.
        let stdcall = Signature { conv: Convention::Stdcall, ..printf_like() };
        assert!(plan_call(Abi::X86_64Sysv, &stdcall, &[]).is_ok());
    }

    #[test]
    fn va_start_begins_after_the_named_parameters_and_a_hidden_result_pointer() {
        let state = |abi: Abi, sig: &Signature| {
            let s = VaStartState::of(&abi.plan(sig).unwrap()).unwrap();
            (s.form, s.first, s.int_regs_used, s.float_regs_used, s.overflow)
        };
        use VaStart::*;
        let sig = printf_like();
        assert_eq!(state(Abi::X86_64Sysv, &sig), (RegisterSaveArea, Loc::Int(1), 1, 0, 0));
        assert_eq!(state(Abi::Aarch64Aapcs64, &sig), (Aapcs64, Loc::Int(1), 1, 0, 0));
        // Win64: positional, the fifth slot is the first on the stack (past the home space).
        assert_eq!(state(Abi::X86_64Win64, &sig), (HomeSpace, Loc::Int(1), 1, 0, 32));
        // Apple arm64: every unnamed argument on the stack.
        assert_eq!(state(Abi::Aarch64Apple, &sig).1, Loc::Stack(0));
        assert_eq!(state(Abi::I386Sysv, &sig).1, Loc::Stack(4));
        // A hidden result pointer takes rdi on SysV but x8, no argument register, on AArch64.
        let big = Type::anon_struct([s(Scalar::Long), s(Scalar::Long), s(Scalar::Long)]);
        let sig = Signature { variadic: true, ..Signature::new(big, vec![s(Scalar::Double)]) };
        assert_eq!(state(Abi::X86_64Sysv, &sig), (RegisterSaveArea, Loc::Int(1), 1, 1, 0));
        assert_eq!(state(Abi::Aarch64Aapcs64, &sig), (Aapcs64, Loc::Int(0), 0, 1, 0));
        let fixed = Signature::new(s(Scalar::Int), vec![s(Scalar::Int)]);
        let e = VaStartState::of(&Abi::X86_64Sysv.plan(&fixed).unwrap()).unwrap_err();
        assert!(e.to_string().contains("without `...`"), "{e}");
    }

    #[test]
    fn unnamed_types_count_against_the_node_limit() {
        // 40,000 arrays of 4 `int`s: 80,001 nodes, over the limit only with the unnamed ones
        // counted; 20,000 `int`s: 20,001 nodes, under it.
        let wide = Type::Array(Box::new(s(Scalar::Int)), 4);
        let big = Type::anon_struct(std::iter::repeat_n(wide, 40_000));
        let refused = plan_call(Abi::X86_64Sysv, &printf_like(), &[big]).err();
        assert!(refused.is_some_and(|e| e.to_string().contains("MAX_SIGNATURE_NODES")));
        let half = Type::anon_struct(std::iter::repeat_n(s(Scalar::Int), 20_000));
        assert!(plan_call(Abi::X86_64Sysv, &printf_like(), &[half]).is_ok());
    }
}
