//! The x86-32 conventions both i386 ABIs share: one placement loop, read by a [`Flavour`] (the
//! data that makes `i386-sysv` and `i386-win32` differ; each ABI's file holds its flavour, its
//! rules' sources and its tests).
//!
//! Common to both (i386 psABI §2.2 "Function Calling Sequence"; Microsoft "x86 calling
//! conventions"):
//! * every argument not in a register is on the stack in 4-byte slots (each size rounded up to
//!   4, never aligned beyond 4), the first at `esp+4` at entry;
//! * integers come back in `eax`, 64-bit integers in `edx:eax`, `float` and `double` in x87
//!   `st(0)`; a struct returned in memory comes through a hidden pointer the callee returns in
//!   `eax`;
//! * `__cdecl`: the caller pops; `__stdcall`, `__fastcall`, `__thiscall`: the callee pops every
//!   stack argument byte (`ret $n`), the hidden result pointer included when it is on the stack.
//!
//! `__fastcall` and `__thiscall` put some arguments in `ecx` (and `edx`); which ones is where
//! the platforms part ways ([`RegisterRules`]).

use crate::abi::{Abi, AbiSpec, RegisterFile, Toolchain};
use crate::layout::{ilp32_scalar_layout, Layout, RecordRules, Shape};
use crate::plan::{
    chunks, result_extend, Allocator, ArgPass, ArgPlan, Loc, Piece, Placement, RetPlan, ReturnCode,
};
use crate::reg::Reg;
use crate::stubs::StubFamily;
use crate::types::{AggregateKind, Convention, Scalar};
use crate::AbiError;

/// What separates one x86-32 ABI from the other. Every other placement rule is the loop below.
#[derive(Debug)]
pub struct Flavour {
    /// the ABI
    pub abi: Abi,
    /// alignment of the 8-byte scalars (`long long`, `double`), in structs too
    pub eight_byte_align: u32,
    /// the stack pointer's alignment at a call instruction
    pub call_alignment: u32,
    /// whether an aggregate result of this layout comes back in `eax`/`edx` (otherwise memory)
    pub struct_ret_in_regs: fn(&Layout) -> bool,
    /// `__cdecl`: whether the callee pops the hidden result pointer (`ret $4`)
    pub cdecl_callee_pops_hidden: bool,
    /// how `__fastcall` and `__thiscall` use `ecx` and `edx`
    pub registers: RegisterRules,
    /// `wchar_t`: size and signedness (Linux: a signed int; Windows: an unsigned short)
    pub wchar: (u32, bool),
    /// how `packed` and `aligned(N)` combine in records
    pub record_rules: RecordRules,
    /// `long double` is `double` (MSVC), not x87's 80-bit format (i386 psABI §2.1.1)
    pub long_double_is_double: bool,
    /// whether an argument whose type requires more than 4-byte alignment
    /// ([`Layout::required_align`]) is passed by reference: a pointer to the caller's copy
    pub indirect_over_aligned: bool,
    /// the compilers and the authority
    pub toolchain: Toolchain,
}

/// The two readings of `__fastcall` and `__thiscall`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterRules {
    /// GCC's (`ix86_function_arg` / `function_arg_advance_32`): `__fastcall` has two register
    /// words (`ecx`, `edx`), `__thiscall` one (`ecx`). The hidden result pointer is a first
    /// argument like any other. Each argument whose GCC machine mode is not a floating-point
    /// one uses up its size in words, in or out of a register; only an integer or pointer of
    /// at most 4 bytes goes in the next register, while words remain.
    Gcc,
    /// Microsoft's: `__fastcall` passes "the first two DWORD or smaller arguments found in the
    /// argument list from left to right" in `ecx` and `edx`, everything else (structs, 64-bit
    /// integers, floats, the hidden result pointer) on the stack without using a register.
    /// `__thiscall` gives `ecx` to the first 32-bit piece of the argument list as clang
    /// lowers it (LLVM's `CC_X86_32_ThisCall`), the hidden result pointer on the stack.
    Microsoft,
}

/// An x86-32 ABI: the shared loop read with one [`Flavour`].
#[derive(Debug)]
pub struct I386 {
    /// what makes this ABI differ
    pub flavour: &'static Flavour,
}

const RESULT_REGS: [Reg; 2] = [Reg::Eax, Reg::Edx];

/// Stack arguments are 4-byte slots, aligned to 4 at most.
const SLOT: u32 = 4;

impl AbiSpec for I386 {
    fn abi(&self) -> Abi {
        self.flavour.abi
    }

    fn scalar_layout(&self, s: Scalar) -> Option<(u32, u32)> {
        match s {
            // i386 psABI Table 2.1: x87's 80-bit format in 12 bytes, 4-aligned (a flavour whose
            // `long double` is `double` never asks: the layout maps it to `double` first).
            Scalar::LongDouble => Some((12, 4)),
            _ => ilp32_scalar_layout(s, self.flavour.eight_byte_align),
        }
    }

    fn wchar(&self) -> (u32, bool) {
        self.flavour.wchar
    }

    fn record_rules(&self) -> RecordRules {
        self.flavour.record_rules
    }

    fn long_double(&self) -> Scalar {
        if self.flavour.long_double_is_double {
            Scalar::Double
        } else {
            Scalar::LongDouble
        }
    }

    fn has_convention(&self, conv: Convention) -> bool {
        conv == Convention::Default || conv.is_i386()
    }

    fn int_arg_regs(&self, conv: Convention) -> &'static [Reg] {
        match conv {
            Convention::Fastcall => &[Reg::Ecx, Reg::Edx],
            Convention::Thiscall => &[Reg::Ecx],
            _ => &[],
        }
    }

    fn int_ret_regs(&self) -> &'static [Reg] {
        &RESULT_REGS
    }

    fn float_regs(&self) -> &'static [Reg] {
        // No float argument registers; results use the x87 stack (`Loc::X87`).
        &[]
    }

    fn registers(&self) -> RegisterFile {
        // i386 psABI §2.2, register usage, and Microsoft "x86 calling conventions" agree:
        // `%ebx`, `%esi`, `%edi` and `%ebp` belong to the caller; `%eax`, `%ecx`, `%edx` and
        // every x87 and SSE register to the callee.
        RegisterFile {
            stack_pointer: Reg::Esp,
            link_register: None,
            callee_saved: &[Reg::Ebx, Reg::Esi, Reg::Edi, Reg::Ebp],
            callee_saved_float: &[],
            callee_saved_float_bytes: 0,
            caller_saved: &[Reg::Eax, Reg::Ecx, Reg::Edx],
            caller_saved_float: &[
                Reg::Xmm0,
                Reg::Xmm1,
                Reg::Xmm2,
                Reg::Xmm3,
                Reg::Xmm4,
                Reg::Xmm5,
                Reg::Xmm6,
                Reg::Xmm7,
            ],
            call_alignment: self.flavour.call_alignment,
        }
    }

    fn place(
        &self,
        conv: Convention,
        args: &[Layout],
        ret: &Layout,
    ) -> Result<Placement, AbiError> {
        Ok(place(self.flavour, conv, args, args.len(), ret))
    }

    fn place_variadic(
        &self,
        conv: Convention,
        args: &[Layout],
        named: usize,
        ret: &Layout,
    ) -> Result<Placement, AbiError> {
        // Only the caller knows how many bytes it pushed, so only the caller can pop them: a
        // variadic function is `__cdecl` (Microsoft "__stdcall": "The callee cleans the
        // stack, so the compiler makes vararg functions __cdecl"; GCC and clang ignore the
        // keyword with a warning).
        // The unnamed arguments follow the named ones in the same 4-byte slots (i386 psABI
        // §2.2.3).
        if matches!(conv, Convention::Stdcall | Convention::Fastcall | Convention::Thiscall) {
            let keyword = conv.keyword().unwrap_or_default();
            let what = format!(
                "a variadic `{keyword}` function (compilers ignore `{keyword}` on a `...` \
                 function and call it as `__cdecl`; declare it so)"
            );
            return Err(AbiError::unsupported(self.flavour.abi, &what));
        }
        Ok(place(self.flavour, conv, args, named, ret))
    }

    fn stub_family(&self) -> StubFamily {
        // Every argument of cdecl and stdcall is on the stack (i386 psABI §2.2.3, Microsoft
        // "Argument passing and naming conventions"): a leading pointer needs a new frame, or,
        // for a callee-pops signature, `ecx` under thiscall.
        StubFamily::Frame
    }

    fn toolchain(&self) -> Toolchain {
        self.flavour.toolchain
    }
}

/// How an argument is treated before any convention-specific choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// an integer or pointer of at most 4 bytes
    Word,
    /// a 64-bit integer
    Long,
    /// `float` or `double`
    Float,
    /// a struct or union
    Aggregate,
}

fn kind(layout: &Layout) -> Kind {
    match layout.scalar() {
        Some(s) if s.is_float() => Kind::Float,
        Some(_) if layout.size > 4 => Kind::Long,
        Some(_) => Kind::Word,
        None => Kind::Aggregate,
    }
}

/// Whether GCC gives a value of this layout a floating-point machine mode (`SFmode`,
/// `DFmode`), which fastcall and thiscall pass on the stack without using a register word
/// (GCC `compute_record_mode`: a struct whose one member fills it takes that member's mode; a
/// one-element array its element's; a union only ever an integer mode).
pub fn gcc_float_mode(layout: &Layout) -> bool {
    gcc_mode(layout) == Some(GccMode::Float)
}

/// The floating-point machine mode GCC gives a value of this layout, if any (see
/// [`gcc_float_mode`]; a `_Complex` has a complex one, `SCmode` or `DCmode`).
fn gcc_mode(layout: &Layout) -> Option<GccMode> {
    if layout.is_complex() {
        return Some(GccMode::Complex);
    }
    match &layout.shape {
        Shape::Scalar(s) => s.is_float().then_some(GccMode::Float),
        Shape::Array { elem, count: 1 } => gcc_mode(elem),
        Shape::Aggregate { kind: AggregateKind::Struct, fields } => {
            let mut members = fields.iter().filter(|f| f.holds_value());
            match (members.next(), members.next()) {
                (Some(only), None) if only.layout.size == layout.size => gcc_mode(&only.layout),
                _ => None,
            }
        }
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GccMode {
    Float,
    Complex,
}

/// clang's `canExpandIndirectArgument`: a struct (or one-member union) of at most 16 bytes
/// whose members are all 4- or 8-byte scalars, or `_Complex` ones, with no padding is passed
/// as its members, a `_Complex` member as its two parts (`is32Or64BitBasicType` treats a
/// complex type as its element type; the expansion splits it). A `_Complex` argument itself is
/// no record and is not expanded. Answers the scalars, each with its offset in the argument.
pub(crate) fn expansion(layout: &Layout) -> Option<Vec<(u32, &Layout)>> {
    let Shape::Aggregate { fields, .. } = &layout.shape else { return None };
    if layout.is_complex() || layout.size > 16 {
        return None;
    }
    let basic = |l: &Layout| l.scalar().is_some() && matches!(l.size, 4 | 8);
    let mut scalars = Vec::new();
    let mut sum = 0u64;
    for f in fields {
        // clang refuses to expand bit-fields.
        if f.bits.is_some() {
            return None;
        }
        sum += u64::from(f.layout.size);
        match &f.layout.shape {
            Shape::Aggregate { fields: parts, .. } if f.layout.is_complex() => {
                scalars.extend(parts.iter().map(|p| (f.offset + p.offset, &*p.layout)));
            }
            _ => scalars.push((f.offset, &*f.layout)),
        }
    }
    (scalars.iter().all(|(_, l)| basic(l)) && sum == u64::from(layout.size)).then_some(scalars)
}

/// Assigns places for one signature: the stack and the convention's registers.
struct Placer<'f> {
    flavour: &'f Flavour,
    conv: Convention,
    /// physical registers (`Int(0)` = `ecx`, `Int(1)` = `edx`) and the stack area
    alloc: Allocator,
    /// GCC: register words not used up yet (`cum->nregs`)
    words: u32,
}

impl Placer<'_> {
    fn stack(&mut self, offset: u32, size: u32) -> Piece {
        Piece { offset, size, loc: Loc::Stack(self.alloc.take_stack(size, SLOT, SLOT)) }
    }

    fn ret(&mut self, layout: &Layout) -> (RetPlan, ReturnCode) {
        let direct = |pieces, code| {
            (RetPlan::Direct { pieces, extend: result_extend(self.flavour.abi, layout) }, code)
        };
        let piece = |size, loc| vec![Piece { offset: 0, size, loc }];
        match layout.scalar() {
            _ if layout.shape == Shape::Void => (RetPlan::Void, ReturnCode::Void),
            Some(Scalar::Float) => direct(piece(4, Loc::X87), ReturnCode::Float),
            Some(Scalar::Double) => direct(piece(8, Loc::X87), ReturnCode::Double),
            // i386 psABI §2.2.3 (Figure 2.4 "Return Value"): `long double` in st(0) too.
            Some(Scalar::LongDouble) => {
                direct(piece(layout.size, Loc::X87), ReturnCode::LongDouble)
            }
            Some(_) if layout.size == 8 => direct(chunks(0, 8, 4, int_reg), ReturnCode::Word64),
            Some(_) => direct(piece(layout.size, Loc::Int(0)), ReturnCode::Word),
            None if (self.flavour.struct_ret_in_regs)(layout) => {
                direct(chunks(0, layout.size, 4, int_reg), ReturnCode::Struct)
            }
            None => {
                // The hidden pointer is the first argument: GCC passes it as one (in `ecx`
                // under fastcall and thiscall, a pointer being a word); Microsoft's
                // conventions keep it at stack+0 (cdecl and stdcall have no register words).
                let gcc = self.flavour.registers == RegisterRules::Gcc;
                let pointer = match gcc.then(|| self.gcc_word(1, true)).flatten() {
                    Some(reg) => reg,
                    None => Loc::Stack(self.alloc.take_stack(4, SLOT, SLOT)),
                };
                (
                    RetPlan::Indirect { pointer, returned_in: Some(Loc::Int(0)) },
                    ReturnCode::HiddenPointer,
                )
            }
        }
    }

    /// Places one argument; `named`: whether it is a named parameter (not a variadic call's
    /// unnamed argument).
    fn arg(&mut self, layout: &Layout, named: bool) -> ArgPlan {
        if self.flavour.indirect_over_aligned && named && layout.required_align > SLOT {
            // The pointer is a word: in the convention's next free register, else on the stack.
            let pointer = match self.conv {
                Convention::Fastcall | Convention::Thiscall => self.alloc.take_int(1).map(Loc::Int),
                _ => None,
            };
            let pointer =
                pointer.unwrap_or_else(|| Loc::Stack(self.alloc.take_stack(4, SLOT, SLOT)));
            return ArgPlan { layout: layout.clone(), pass: ArgPass::Indirect { pointer } };
        }
        let pass = match (self.conv, self.flavour.registers) {
            (Convention::Fastcall | Convention::Thiscall, RegisterRules::Gcc) => self.gcc(layout),
            (Convention::Fastcall, RegisterRules::Microsoft) => self.microsoft_fastcall(layout),
            (Convention::Thiscall, RegisterRules::Microsoft) => self.microsoft_thiscall(layout),
            // cdecl and stdcall: everything on the stack; they differ only in who pops.
            _ => ArgPass::Direct(vec![self.stack(0, layout.size)]),
        };
        ArgPlan { layout: layout.clone(), pass }
    }

    /// GCC `function_arg_advance_32`: an argument of `words` register words uses them up
    /// (all that remain when fewer do); `function_arg_32`: it takes the next register when it
    /// is an integer or pointer of one word and the words were there. The register is the one
    /// the words used so far point at (`cum->regno`).
    fn gcc_word(&mut self, words: u32, fits_register: bool) -> Option<Loc> {
        let total = if self.conv == Convention::Fastcall { 2 } else { 1 };
        let next = total - self.words;
        let reg = (fits_register && words <= self.words).then_some(Loc::Int(next as u8));
        self.words = self.words.saturating_sub(words);
        reg
    }

    fn gcc(&mut self, layout: &Layout) -> ArgPass {
        // A value of a float or complex float mode takes no word.
        if gcc_mode(layout).is_none() {
            let word = kind(layout) == Kind::Word;
            if let Some(loc) = self.gcc_word(layout.size.div_ceil(4), word) {
                return ArgPass::Direct(vec![Piece { offset: 0, size: layout.size, loc }]);
            }
        }
        ArgPass::Direct(vec![self.stack(0, layout.size)])
    }

    /// Microsoft fastcall: a word takes the next of `ecx`, `edx`; nothing else uses one.
    fn microsoft_fastcall(&mut self, layout: &Layout) -> ArgPass {
        if kind(layout) == Kind::Word {
            if let Some(reg) = self.alloc.take_int(1) {
                let loc = Loc::Int(reg);
                return ArgPass::Direct(vec![Piece { offset: 0, size: layout.size, loc }]);
            }
        }
        ArgPass::Direct(vec![self.stack(0, layout.size)])
    }

    /// Microsoft thiscall: ecx goes to the first 32-bit piece of the lowered argument list.
    fn microsoft_thiscall(&mut self, layout: &Layout) -> ArgPass {
        let mut pieces = Vec::new();
        match kind(layout) {
            Kind::Word | Kind::Long | Kind::Float => self.thiscall_scalar(0, layout, &mut pieces),
            Kind::Aggregate => match expansion(layout) {
                Some(scalars) => {
                    for (offset, scalar) in scalars {
                        self.thiscall_scalar(offset, scalar, &mut pieces);
                    }
                }
                None => match self.alloc.take_int(1) {
                    // The byval pointer is an i32 too, so it lands in ecx: by reference.
                    Some(reg) => return ArgPass::Indirect { pointer: Loc::Int(reg) },
                    None => pieces.push(self.stack(0, layout.size)),
                },
            },
        }
        ArgPass::Direct(pieces)
    }

    /// One scalar (an argument or an expanded member at `offset`) under Microsoft thiscall: a
    /// word takes ecx if free, a 64-bit integer puts its low half there; floats stay on the
    /// stack.
    fn thiscall_scalar(&mut self, offset: u32, layout: &Layout, pieces: &mut Vec<Piece>) {
        let k = kind(layout);
        let reg = if k == Kind::Float { None } else { self.alloc.take_int(1) };
        let Some(reg) = reg else {
            let p = self.stack(offset, layout.size);
            return push_piece(pieces, p);
        };
        push_piece(pieces, Piece { offset, size: layout.size.min(4), loc: Loc::Int(reg) });
        if k == Kind::Long {
            // The high half is the next 32-bit piece; ecx is taken, so it goes on the stack.
            let p = self.stack(offset + 4, 4);
            push_piece(pieces, p);
        }
    }
}

/// `Int(i)` for the `i`th 4-byte chunk of a result (`eax`, `edx`).
fn int_reg(i: u32) -> Loc {
    Loc::Int(i as u8)
}

/// Appends `p`, merging it into the previous piece when both are adjacent on the stack.
fn push_piece(pieces: &mut Vec<Piece>, p: Piece) {
    if let (Some(last), Loc::Stack(at)) = (pieces.last_mut(), p.loc) {
        if let Loc::Stack(prev) = last.loc {
            if prev + last.size == at && last.offset + last.size == p.offset {
                last.size += p.size;
                return;
            }
        }
    }
    pieces.push(p);
}

/// The plan of `sig` on an x86-32 ABI of `flavour`; `args[named..]` are a variadic call's
/// unnamed arguments.
fn place(
    flavour: &Flavour,
    conv: Convention,
    args: &[Layout],
    named: usize,
    ret: &Layout,
) -> Placement {
    let regs: u8 = match conv {
        Convention::Fastcall => 2,
        Convention::Thiscall => 1,
        _ => 0,
    };
    let mut placer = Placer { flavour, conv, alloc: Allocator::new(regs, 0), words: regs.into() };
    // The hidden result pointer comes before every argument.
    let (ret_plan, code) = placer.ret(ret);
    let args = args.iter().enumerate().map(|(i, layout)| placer.arg(layout, i < named)).collect();
    let stack_bytes = placer.alloc.stack;
    let hidden_on_stack = matches!(ret_plan, RetPlan::Indirect { pointer: Loc::Stack(_), .. });
    let callee_pop = match conv {
        // (`plan_for` refuses the x86-64 conventions on i386)
        Convention::Default | Convention::Cdecl | Convention::MsAbi | Convention::SysvAbi => {
            if hidden_on_stack && flavour.cdecl_callee_pops_hidden {
                4
            } else {
                0
            }
        }
        // `ret $n`: the callee pops all its stack arguments, hidden pointer included.
        Convention::Stdcall | Convention::Fastcall | Convention::Thiscall => stack_bytes,
    };
    Placement { args, ret: ret_plan, code, stack_bytes, callee_pop }
}

/// Helpers the i386 ABI files' tests share.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::types::Type;
    use crate::{CallPlan, Signature};

    pub(crate) fn int() -> Type {
        Type::scalar(Scalar::Int)
    }

    pub(crate) fn s(sc: Scalar) -> Type {
        Type::scalar(sc)
    }

    pub(crate) fn chars(n: u32) -> Type {
        Type::Array(Box::new(s(Scalar::Char)), n)
    }

    pub(crate) fn plan(abi: Abi, conv: Convention, ret: Type, args: Vec<Type>) -> CallPlan {
        let mut sig = Signature::new(ret, args);
        sig.conv = conv;
        abi.plan(&sig).unwrap()
    }

    pub(crate) fn at(offset: u32, size: u32, loc: Loc) -> Piece {
        Piece { offset, size, loc }
    }

    pub(crate) fn direct(plan: &CallPlan, i: usize) -> Vec<Piece> {
        match &plan.args[i].pass {
            ArgPass::Direct(pieces) => pieces.clone(),
            other => panic!("argument {i} is {other:?}"),
        }
    }

    /// Where every argument lives, one piece each (panics on a split or indirect argument).
    pub(crate) fn places(plan: &CallPlan) -> Vec<Loc> {
        (0..plan.args.len())
            .map(|i| match direct(plan, i)[..] {
                [only] => only.loc,
                ref other => panic!("argument {i} is in pieces {other:?}"),
            })
            .collect()
    }

    /// A hidden result pointer at `pointer`, returned in eax.
    pub(crate) fn hidden(pointer: Loc) -> RetPlan {
        RetPlan::Indirect { pointer, returned_in: Some(Loc::Int(0)) }
    }

    /// `(stack_bytes, callee_pop)`
    pub(crate) fn pops(plan: &CallPlan) -> (u32, u32) {
        (plan.stack_bytes, plan.callee_pop)
    }

    #[test]
    fn gcc_float_modes() {
        let l = |t: Type| Abi::I386Sysv.layout(&t).unwrap();
        let fa = Type::anon_struct([Type::Array(Box::new(s(Scalar::Float)), 1)]);
        assert!(gcc_float_mode(&l(fa)));
        assert!(gcc_float_mode(&l(Type::anon_struct([Type::anon_struct([s(Scalar::Double)])]))));
        assert!(!gcc_float_mode(&l(Type::anon_struct([s(Scalar::Float), s(Scalar::Float)]))));
        let u = Type::aggregate(AggregateKind::Union, [s(Scalar::Float)]);
        assert!(!gcc_float_mode(&l(u)), "a union has an integer mode");
        assert!(!gcc_float_mode(&l(Type::anon_struct([Type::Array(
            Box::new(s(Scalar::Float)),
            2
        )]))));
    }

    #[test]
    fn expansion_needs_word_members_without_padding() {
        let l = |t: Type| Abi::I386Win32.layout(&t).unwrap();
        assert!(expansion(&l(Type::anon_struct([int(), s(Scalar::Double)]))).is_none());
        assert!(expansion(&l(Type::anon_struct([int(), int(), s(Scalar::Float)]))).is_some());
        assert!(expansion(&l(Type::anon_struct([chars(3)]))).is_none());
        let union2 = Type::aggregate(AggregateKind::Union, [int(), s(Scalar::Float)]);
        assert!(expansion(&l(union2)).is_none());
        // A `_Complex` member expands to its two parts; a `_Complex` itself is no record.
        let z = Type::Complex(Scalar::Float);
        let record = l(Type::anon_struct([s(Scalar::Float), z.clone()]));
        let parts = expansion(&record).unwrap();
        let offsets: Vec<u32> = parts.iter().map(|(offset, _)| *offset).collect();
        assert_eq!(offsets, [0, 4, 8]);
        assert!(expansion(&l(z)).is_none());
    }
}
