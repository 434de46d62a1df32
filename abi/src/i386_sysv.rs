//! `i386-sysv`: System V ABI Intel386 Architecture Processor Supplement (i386 psABI), §2.2
//! "Function Calling Sequence", as clang 14 (`--target=i686-linux-gnu`) implements it.
//!
//! * §2.1 (data representation, scalar types): `long` and pointers are 4 bytes; `long long` and
//!   `double` are 8 bytes but only 4-aligned, also inside structs (clang: `_Alignof(double) == 4`,
//!   `sizeof(struct { char c; double d; }) == 12`). `long double` is refused for now.
//! * §2.2 (function calling sequence, parameter passing): every argument is on the stack, in 4-byte slots (each size
//!   rounded up to 4, never aligned beyond 4), the first at `esp+4` at entry; structs and unions
//!   by value are copied there.
//! * §2.2 (returning values): integers in `eax`, 64-bit integers in `edx:eax`, `float` and
//!   `double` in x87 `st(0)`. Every struct and union returns in memory: the caller passes its
//!   address as a hidden first stack argument, the callee returns it in `eax` and pops it
//!   (`ret $4`).
//!
//! The psABI knows only this one convention. clang also accepts `__stdcall`, `__fastcall` and
//! `__thiscall` on this target and then behaves as on Windows, except for the few points the
//! `Flavor` records. Those conventions follow no document but clang's `X86_32ABIInfo`
//! (clang/lib/CodeGen/TargetInfo.cpp) and LLVM's `CC_X86_32_FastCall` / `CC_X86_32_ThisCall`
//! (X86CallingConv.td); every rule below was read off clang 14's assembly and IR
//! (`clang --target=i686-linux-gnu -O2 -S [-emit-llvm]`). The surprising ones:
//!
//! * **fastcall** (`ecx`, `edx`): clang counts registers in the front end (`FreeRegs`) and
//!   assigns them in the back end, and the two disagree.
//!   - `void __fastcall f(long long a, int b, int c)`: `a`, `b` and `c` are all on the stack,
//!     `ret $16`. A `long long` never travels in registers but uses up two register counts, or
//!     all that remain when fewer are left (`updateFreeRegs` runs before the size check). MSVC
//!     documents `b` in `ecx` and `c` in `edx`; clang 14 differs.
//!   - `float` and `double` use up nothing: `void __fastcall f(double d, int a, int b)` has `a`
//!     in `ecx` and `b` in `edx`.
//!   - here on Linux (not on Windows) a struct or union argument, always on the stack, uses up
//!     `ceil(size / 4)` counts unless it is a single `float`/`double` (through nested
//!     one-member structs and one-element arrays). `void __fastcall f(struct { char c; } s,
//!     int a, int b)`: `a` in `ecx`, `b` on the stack — the count went but no register did.
//!     A 4-byte struct whose one member is `int`-like (clang "expands" it) also takes a
//!     physical padding register: `void __fastcall f(struct { int x; } s, int a, int b)` has
//!     `a` in `edx` and `b` on the stack.
//!   - a hidden result pointer takes `ecx` (one count); the callee returns it in `eax`.
//! * **thiscall** (`ecx`): the front end marks nothing; the back end gives `ecx` to the first
//!   32-bit piece of the lowered argument list, whatever it is:
//!   - `void __thiscall f(long long a, int b)`: the low half of `a` in `ecx`, the high half at
//!     stack+0, `b` at stack+4, `ret $8`.
//!   - a struct of only 4- and 8-byte scalars with no padding, at most 16 bytes, is split into
//!     its members first: `struct { float f; int i; }` has `f` at stack+0 and `i` in `ecx`.
//!   - any other struct or union takes `ecx` **by reference** if `ecx` is still free:
//!     `void __thiscall f(struct { char c[5]; } s, int a)` has `&s` in `ecx`, `a` at stack+0,
//!     `ret $4` (the struct is not on the stack at all).
//!   - the hidden result pointer is at stack+0, never in `ecx`.
//! * stdcall, fastcall and thiscall callees pop every stack argument byte, the hidden result
//!   pointer included.
//! * Sub-word integer results come back in `al`/`ax`; clang's callee does not extend them and
//!   its caller does (`movsbl %al, %eax`). The plan still asks thunkEntry to extend: harmless.

use crate::abi::{Abi, AbiSpec, RegisterFile};
use crate::layout::{FieldLayout, Layout, Shape};
use crate::plan::{
    chunks, result_extend, Allocator, ArgPass, ArgPlan, CallPlan, Loc, Piece, RetPlan, ReturnCode,
};
use crate::types::{Convention, Scalar, Signature};
use crate::AbiError;

/// The System V i386 ABI (Linux).
pub struct I386Sysv;

/// What separates the two i386 ABIs. Every other i386 placement rule is written once, here.
pub(crate) struct Flavor {
    /// the ABI the plans are for
    pub abi: Abi,
    /// Whether an aggregate result of this layout comes back in `eax`/`edx` (otherwise memory).
    pub struct_ret_in_regs: fn(&Layout) -> bool,
    /// cdecl: whether the callee pops the hidden result pointer (`ret $4`).
    pub cdecl_callee_pops_hidden: bool,
    /// fastcall: whether aggregate arguments use up register counts (clang's path for targets
    /// that are not `IsWin32StructABI`).
    pub fastcall_aggregates_count: bool,
}

const SYSV: Flavor = Flavor {
    abi: Abi::I386Sysv,
    // §2.2: every struct and union returns in memory (no small-struct exception).
    struct_ret_in_regs: |_| false,
    // §2.2: the callee pops the hidden result pointer off the stack (`ret $4`).
    cdecl_callee_pops_hidden: true,
    fastcall_aggregates_count: true,
};

/// Stack arguments are 4-byte slots, aligned to 4 at most (§2.2).
const SLOT: u32 = 4;

const RESULT_REGS: [&str; 2] = ["eax", "edx"];

/// §2.2, register usage: `%ebx`, `%esi`, `%edi` and `%ebp` belong to the calling function;
/// `%eax`, `%ecx`, `%edx` and every x87 and SSE register to the callee. §2.2, the stack frame:
/// "the value (%esp + 4) is always a multiple of 16 when control is transferred to the
/// function entry point". (`i386-win32` keeps the lists, not the alignment.)
pub(crate) const REGISTERS: RegisterFile = RegisterFile {
    stack_pointer: "esp",
    link_register: None,
    callee_saved: &["ebx", "esi", "edi", "ebp"],
    callee_saved_float: &[],
    callee_saved_float_bytes: 0,
    caller_saved: &["eax", "ecx", "edx"],
    caller_saved_float: &["xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7"],
    call_alignment: 16,
};
const X87: [&str; 8] = ["st(0)", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)"];

/// `Int(i)` argument register names: fastcall `ecx`, `edx`; thiscall `ecx`; none otherwise.
pub(crate) fn int_arg_reg_name(i: u8, conv: Convention) -> &'static str {
    let regs: &[&'static str] = match conv {
        Convention::Fastcall => &["ecx", "edx"],
        Convention::Thiscall => &["ecx"],
        _ => &[],
    };
    regs.get(i as usize).copied().unwrap_or("<no such register>")
}

/// `Int(i)` result register names: `eax`, `edx`.
pub(crate) fn int_ret_reg_name(i: u8) -> &'static str {
    RESULT_REGS.get(i as usize).copied().unwrap_or("<no such register>")
}

/// i386 has no float argument registers; results use the x87 stack (`Loc::X87`).
pub(crate) fn float_reg_name(i: u8) -> &'static str {
    X87.get(i as usize).copied().unwrap_or("<no such register>")
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

/// clang's `canExpandIndirectArgument`: a struct (or one-member union) of at most 16 bytes
/// whose members are all 4- or 8-byte scalars with no padding is passed as its members.
fn expansion(layout: &Layout) -> Option<&[FieldLayout]> {
    let Shape::Aggregate { fields, .. } = &layout.shape else { return None };
    let basic = |f: &FieldLayout| f.layout.scalar().is_some() && matches!(f.layout.size, 4 | 8);
    let sum: u64 = fields.iter().map(|f| u64::from(f.layout.size)).sum();
    (layout.size <= 16 && fields.iter().all(basic) && sum == u64::from(layout.size))
        .then_some(fields.as_slice())
}

/// clang's `isSingleElementStruct`: the one scalar a struct or union amounts to, looking
/// through one-member aggregates and one-element arrays, with no padding around it.
fn single_element(layout: &Layout) -> Option<Scalar> {
    let Shape::Aggregate { fields, .. } = &layout.shape else { return None };
    // Zero-size members (`int a[0]`) are "empty fields" and ignored.
    let mut members = fields.iter().filter(|f| f.layout.size > 0);
    let (Some(only), None) = (members.next(), members.next()) else { return None };
    let mut inner = &only.layout;
    while let Shape::Array { elem, count: 1 } = &inner.shape {
        inner = elem;
    }
    let found = match inner.shape {
        Shape::Scalar(s) => s,
        _ => single_element(inner)?,
    };
    // The element's size is `inner.size` in both cases (a nested match has no padding).
    (inner.size == layout.size).then_some(found)
}

/// Assigns places for one signature: the stack, the convention's registers and clang's
/// fastcall register count.
struct Placer<'f> {
    flavor: &'f Flavor,
    conv: Convention,
    /// physical registers (`Int(0)` = `ecx`, `Int(1)` = `edx`) and the stack area
    alloc: Allocator,
    /// fastcall: clang's front-end count of registers still free (`FreeRegs`), which decides
    /// whether an integer argument is marked `inreg`
    free: u32,
}

impl Placer<'_> {
    /// clang's `updateFreeRegs`: uses up `n` register counts, or all that remain when fewer
    /// than `n` do; true when the `n` were there.
    fn count(&mut self, n: u32) -> bool {
        if n > self.free {
            self.free = 0;
            false
        } else {
            self.free -= n;
            true
        }
    }

    /// A physical register that a successful [`Self::count`] guarantees: every register
    /// taken went with a count, so one is left whenever a count was.
    fn counted_reg(&mut self) -> Loc {
        Loc::Int(self.alloc.take_int(1).expect("a counted fastcall register is free"))
    }

    fn stack(&mut self, offset: u32, size: u32) -> Piece {
        Piece { offset, size, loc: Loc::Stack(self.alloc.take_stack(size, SLOT, SLOT)) }
    }

    fn ret(&mut self, layout: &Layout) -> (RetPlan, ReturnCode) {
        let direct = |pieces, code| {
            (RetPlan::Direct { pieces, extend: result_extend(self.flavor.abi, layout) }, code)
        };
        let piece = |size, loc| vec![Piece { offset: 0, size, loc }];
        match layout.scalar() {
            _ if layout.shape == Shape::Void => (RetPlan::Void, ReturnCode::Void),
            // §2.2: floating-point results on top of the x87 stack.
            Some(Scalar::Float) => direct(piece(4, Loc::X87), ReturnCode::Float),
            Some(Scalar::Double) => direct(piece(8, Loc::X87), ReturnCode::Double),
            // §2.2: 64-bit integers in edx:eax (low half in eax).
            Some(_) if layout.size == 8 => direct(chunks(0, 8, 4, int_reg), ReturnCode::Word64),
            Some(_) => direct(piece(layout.size, Loc::Int(0)), ReturnCode::Word),
            None if (self.flavor.struct_ret_in_regs)(layout) => {
                direct(chunks(0, layout.size, 4, int_reg), ReturnCode::Struct)
            }
            None => {
                // The hidden pointer is the first argument; clang's fastcall passes it in ecx
                // (`getIndirectReturnResult` takes a register while any is free), every other
                // convention at stack+0 (thiscall too: `CCIfSRet<CCAssignToStack<4, 4>>`).
                let pointer = if self.conv == Convention::Fastcall && self.count(1) {
                    self.counted_reg()
                } else {
                    Loc::Stack(self.alloc.take_stack(4, SLOT, SLOT))
                };
                // §2.2: the callee returns the hidden pointer in eax (clang does so for
                // every convention on both i386 targets).
                (
                    RetPlan::Indirect { pointer, returned_in: Some(Loc::Int(0)) },
                    ReturnCode::HiddenPointer,
                )
            }
        }
    }

    fn arg(&mut self, layout: &Layout) -> ArgPlan {
        let pass = match self.conv {
            Convention::Fastcall => self.fastcall(layout),
            Convention::Thiscall => self.thiscall(layout),
            // §2.2: everything on the stack (cdecl and stdcall differ only in who pops).
            _ => ArgPass::Direct(vec![self.stack(0, layout.size)]),
        };
        ArgPlan { layout: layout.clone(), pass }
    }

    /// fastcall: an integer or pointer of at most 4 bytes goes in the next of ecx, edx while
    /// clang's count allows; everything else is on the stack and may use up counts.
    fn fastcall(&mut self, layout: &Layout) -> ArgPass {
        match kind(layout) {
            Kind::Word if self.count(1) => {
                let loc = self.counted_reg();
                return ArgPass::Direct(vec![Piece { offset: 0, size: layout.size, loc }]);
            }
            Kind::Word | Kind::Float => {}
            Kind::Long => {
                // Uses up two counts (or the last one) without taking a register.
                self.count(2);
            }
            Kind::Aggregate => self.fastcall_aggregate_counts(layout),
        }
        ArgPass::Direct(vec![self.stack(0, layout.size)])
    }

    /// clang's `shouldAggregateUseDirect` for fastcall: a stack aggregate may use up counts
    /// and, when clang expands it and a count remains, a physical padding register.
    fn fastcall_aggregate_counts(&mut self, layout: &Layout) {
        if !self.flavor.fastcall_aggregates_count {
            return;
        }
        // `classify` is Float for a single float/double: no count used, as for the scalar.
        if matches!(single_element(layout), Some(Scalar::Float | Scalar::Double)) {
            return;
        }
        if self.count(layout.size.div_ceil(4)) && layout.size <= 4 && self.free > 0 {
            // `NeedsPadding`: an `inreg i32` padding argument, emitted only when the struct
            // is expanded (a byval struct gets none); it occupies a physical register.
            if expansion(layout).is_some() {
                self.counted_reg();
            }
        }
    }

    /// thiscall: ecx goes to the first 32-bit piece of the lowered argument list.
    fn thiscall(&mut self, layout: &Layout) -> ArgPass {
        let mut pieces = Vec::new();
        match kind(layout) {
            Kind::Word | Kind::Long | Kind::Float => self.thiscall_scalar(0, layout, &mut pieces),
            Kind::Aggregate => match expansion(layout) {
                Some(fields) => {
                    for f in fields {
                        self.thiscall_scalar(f.offset, &f.layout, &mut pieces);
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

    /// One scalar (an argument or an expanded member at `offset`) under thiscall: a word takes
    /// ecx if free, a 64-bit integer puts its low half there; floats stay on the stack.
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

/// The plan of `sig` on an i386 ABI: the one placement loop both i386 files share.
pub(crate) fn plan_i386(
    flavor: &Flavor,
    sig: &Signature,
    args: &[Layout],
    ret: &Layout,
) -> Result<CallPlan, AbiError> {
    let conv = sig.conv;
    let regs = match conv {
        Convention::Fastcall => 2,
        Convention::Thiscall => 1,
        _ => 0,
    };
    let free = u32::from(regs);
    let mut placer = Placer { flavor, conv, alloc: Allocator::new(regs, 0), free };
    // The hidden result pointer comes before every argument.
    let (ret_plan, code) = placer.ret(ret);
    let args = args.iter().map(|layout| placer.arg(layout)).collect();
    let stack_bytes = placer.alloc.stack;
    let hidden_on_stack = matches!(ret_plan, RetPlan::Indirect { pointer: Loc::Stack(_), .. });
    let callee_pop = match conv {
        Convention::Default | Convention::Cdecl => {
            if hidden_on_stack && flavor.cdecl_callee_pops_hidden {
                4
            } else {
                0
            }
        }
        // `ret $n`: the callee pops all its stack arguments, hidden pointer included.
        Convention::Stdcall | Convention::Fastcall | Convention::Thiscall => stack_bytes,
    };
    Ok(CallPlan {
        abi: flavor.abi,
        signature: sig.clone(),
        args,
        ret_layout: ret.clone(),
        ret: ret_plan,
        code,
        stack_bytes,
        callee_pop,
    })
}

impl AbiSpec for I386Sysv {
    fn abi(&self) -> Abi {
        Abi::I386Sysv
    }

    fn scalar_layout(&self, s: Scalar) -> Option<(u32, u32)> {
        // §2.1 scalar types: 8-byte scalars are 4-aligned (clang: `_Alignof(double) == 4`,
        // `_Alignof(long long) == 4`). `long double` (12 bytes, 4-aligned) is refused for now.
        ilp32_scalar_layout(s, 4)
    }

    fn int_arg_reg_name(&self, i: u8, conv: Convention) -> &'static str {
        int_arg_reg_name(i, conv)
    }

    fn int_ret_reg_name(&self, i: u8) -> &'static str {
        int_ret_reg_name(i)
    }

    fn float_reg_name(&self, i: u8) -> &'static str {
        float_reg_name(i)
    }

    fn registers(&self) -> RegisterFile {
        REGISTERS
    }

    fn plan(&self, sig: &Signature, args: &[Layout], ret: &Layout) -> Result<CallPlan, AbiError> {
        plan_i386(&SYSV, sig, args, ret)
    }
}

/// Scalar sizes of the ILP32 data model (both i386 ABIs): `long` and pointers are 4 bytes;
/// 8-byte scalars are aligned to `eight_byte_align` (4 on SysV, 8 on Win32).
pub(crate) fn ilp32_scalar_layout(s: Scalar, eight_byte_align: u32) -> Option<(u32, u32)> {
    use Scalar::*;
    Some(match s {
        Bool | Char | SChar | UChar | I8 | U8 => (1, 1),
        Short | UShort | I16 | U16 => (2, 2),
        Int | UInt | Long | ULong | I32 | U32 | SizeT | SSizeT | IntPtr | UIntPtr | Float
        | Pointer => (4, 4),
        LongLong | ULongLong | I64 | U64 | Double => (8, eight_byte_align),
        LongDouble => return None,
    })
}

/// Every expected value below was read off clang 14's assembly for the C given in the comment,
/// compiled with `clang --target=i686-linux-gnu -O2 -S -o - x.c` (callee definitions; the same
/// callers agree).
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::types::Type;

    pub(crate) fn int() -> Type {
        Type::scalar(Scalar::Int)
    }

    pub(crate) fn s(sc: Scalar) -> Type {
        Type::scalar(sc)
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

    /// A hidden result pointer at `pointer`, returned in eax.
    pub(crate) fn hidden(pointer: Loc) -> RetPlan {
        RetPlan::Indirect { pointer, returned_in: Some(Loc::Int(0)) }
    }

    /// `(stack_bytes, callee_pop)`
    pub(crate) fn pops(plan: &CallPlan) -> (u32, u32) {
        (plan.stack_bytes, plan.callee_pop)
    }

    fn sysv(conv: Convention, ret: Type, args: Vec<Type>) -> CallPlan {
        plan(Abi::I386Sysv, conv, ret, args)
    }

    #[test]
    fn scalar_and_struct_layouts() {
        // `_Static_assert(_Alignof(double) == 4 && _Alignof(long long) == 4, "")`,
        // `sizeof(struct { char c; double d; }) == 12` with clang --target=i686-linux-gnu.
        let l = |t: &Type| Abi::I386Sysv.layout(t).unwrap();
        assert_eq!((l(&s(Scalar::Double)).size, l(&s(Scalar::Double)).align), (8, 4));
        assert_eq!(l(&s(Scalar::LongLong)).align, 4);
        assert_eq!(l(&s(Scalar::Long)).size, 4);
        let cd = l(&Type::anon_struct([s(Scalar::Char), s(Scalar::Double)]));
        assert_eq!((cd.size, cd.align), (12, 4));
        assert!(Abi::I386Sysv.layout(&s(Scalar::LongDouble)).is_err());
    }

    #[test]
    fn cdecl_args_are_packed_in_4_byte_slots() {
        // `void f(char c, short h, long long ll, double d, struct { char a[3]; } s, int i)`:
        // c at 4(%esp), h at 8, ll at 12, d at 20, s at 28, i at 32; plain `ret`.
        let c3 = Type::anon_struct([Type::Array(Box::new(s(Scalar::Char)), 3)]);
        let args = vec![s(Scalar::Char), s(Scalar::Short), s(Scalar::LongLong), s(Scalar::Double)];
        let p = sysv(Convention::Default, Type::Void, [args, vec![c3, int()]].concat());
        let offsets: Vec<_> = (0..6).map(|i| direct(&p, i)[0].loc).collect();
        let expect = [0, 4, 8, 16, 24, 28].map(Loc::Stack);
        assert_eq!(offsets, expect);
        assert_eq!(direct(&p, 4), vec![at(0, 3, Loc::Stack(24))]);
        assert_eq!(pops(&p), (32, 0));
    }

    #[test]
    fn struct_return_hidden_pointer_callee_pops_4() {
        // `struct B { int a, b, c; } rc(int a, int b)`: `movl 4(%esp), %eax` (the hidden
        // pointer, returned in eax), a at 8(%esp), b at 12(%esp), `retl $4`.
        let b = Type::anon_struct([int(), int(), int()]);
        let p = sysv(Convention::Cdecl, b.clone(), vec![int(), int()]);
        assert_eq!(p.ret, hidden(Loc::Stack(0)));
        assert_eq!(p.code, ReturnCode::HiddenPointer);
        assert_eq!(direct(&p, 0), vec![at(0, 4, Loc::Stack(4))]);
        assert_eq!(pops(&p), (12, 4));
        // Even a 4-byte struct returns in memory: `struct { int x; } f(void)` takes an `sret`.
        let p = sysv(Convention::Default, Type::anon_struct([int()]), vec![]);
        assert_eq!(pops(&p), (4, 4));
        // `struct B __stdcall rs(int a, int b)`: same places, `retl $12`.
        let p = sysv(Convention::Stdcall, b, vec![int(), int()]);
        assert_eq!(pops(&p), (12, 12));
    }

    #[test]
    fn stdcall_callee_pops_everything() {
        // `int __stdcall f(struct { char c[5]; } s, int a)`: s at 4(%esp) (8 bytes), a at
        // 12(%esp), `retl $12`.
        let c5 = Type::anon_struct([Type::Array(Box::new(s(Scalar::Char)), 5)]);
        let p = sysv(Convention::Stdcall, int(), vec![c5, int()]);
        assert_eq!(direct(&p, 1), vec![at(0, 4, Loc::Stack(8))]);
        assert_eq!(pops(&p), (12, 12));
    }

    #[test]
    fn scalar_results() {
        // `float rf(void)` / `double rd(void)`: `fildl` leaves the value in st(0);
        // `long long rl(void)`: `imull` leaves it in edx:eax; `char rc(void)` in al.
        let p = sysv(Convention::Default, s(Scalar::Float), vec![]);
        assert_eq!((p.code, p.ret.clone()), (ReturnCode::Float, ret_in(vec![at(0, 4, Loc::X87)])));
        let p = sysv(Convention::Default, s(Scalar::Double), vec![]);
        assert_eq!(p.code, ReturnCode::Double);
        let p = sysv(Convention::Default, s(Scalar::LongLong), vec![]);
        let word64 = ret_in(vec![at(0, 4, Loc::Int(0)), at(4, 4, Loc::Int(1))]);
        assert_eq!((p.code, p.ret), (ReturnCode::Word64, word64));
        let p = sysv(Convention::Default, s(Scalar::Char), vec![]);
        let extend = crate::Extend::Sign;
        assert_eq!(p.ret, RetPlan::Direct { pieces: vec![at(0, 1, Loc::Int(0))], extend });
    }

    fn ret_in(pieces: Vec<Piece>) -> RetPlan {
        RetPlan::Direct { pieces, extend: crate::Extend::None }
    }

    #[test]
    fn fastcall_long_long_first_burns_both_registers() {
        // `void __fastcall fa1(long long ll, int a, int b)`: ll at 4(%esp), a at 12, b at 16,
        // `retl $16`; ecx and edx unused (IR: `(i64, i32, i32)`, no `inreg`).
        let p = sysv(Convention::Fastcall, Type::Void, vec![s(Scalar::LongLong), int(), int()]);
        assert_eq!(direct(&p, 0), vec![at(0, 8, Loc::Stack(0))]);
        assert_eq!(direct(&p, 1), vec![at(0, 4, Loc::Stack(8))]);
        assert_eq!(direct(&p, 2), vec![at(0, 4, Loc::Stack(12))]);
        assert_eq!(pops(&p), (16, 16));
        // `void __fastcall fa2(int a, long long ll, int b)`: a in ecx, ll at 4(%esp), b at 12,
        // `retl $12`: the long long wanted two registers, found one, and zeroed the count.
        let p = sysv(Convention::Fastcall, Type::Void, vec![int(), s(Scalar::LongLong), int()]);
        assert_eq!(direct(&p, 0), vec![at(0, 4, Loc::Int(0))]);
        assert_eq!(direct(&p, 2), vec![at(0, 4, Loc::Stack(8))]);
        assert_eq!(pops(&p), (12, 12));
    }

    #[test]
    fn fastcall_floats_use_no_register() {
        // `void __fastcall fa4(double d, int a, int b)`: d at 4(%esp), a in ecx, b in edx,
        // `retl $8`. Sub-word integers take a register each: `fa6(char c, short h, int b)` has
        // c in cl, h in dx, b at 4(%esp).
        let p = sysv(Convention::Fastcall, Type::Void, vec![s(Scalar::Double), int(), int()]);
        assert_eq!(direct(&p, 1), vec![at(0, 4, Loc::Int(0))]);
        assert_eq!(direct(&p, 2), vec![at(0, 4, Loc::Int(1))]);
        assert_eq!(pops(&p), (8, 8));
        let args = vec![s(Scalar::Char), s(Scalar::Short), int()];
        let p = sysv(Convention::Fastcall, Type::Void, args);
        assert_eq!(direct(&p, 0), vec![at(0, 1, Loc::Int(0))]);
        assert_eq!(direct(&p, 1), vec![at(0, 2, Loc::Int(1))]);
        assert_eq!(direct(&p, 2), vec![at(0, 4, Loc::Stack(0))]);
    }

    #[test]
    fn fastcall_structs_use_up_register_counts() {
        // `void __fastcall fa5(struct { int x; } s, int a, int b)`: s at 4(%esp), a in edx
        // (ecx holds clang's `inreg` padding), b at 8(%esp), `retl $8`.
        let i = Type::anon_struct([int()]);
        let p = sysv(Convention::Fastcall, Type::Void, vec![i, int(), int()]);
        assert_eq!(direct(&p, 0), vec![at(0, 4, Loc::Stack(0))]);
        assert_eq!(direct(&p, 1), vec![at(0, 4, Loc::Int(1))]);
        assert_eq!(direct(&p, 2), vec![at(0, 4, Loc::Stack(4))]);
        // `void __fastcall call1(struct { char c; } s, int a, int b)` (caller): s at (%esp),
        // a in ecx, b at 4(%esp): the struct used a count but no register.
        let c1 = Type::anon_struct([s(Scalar::Char)]);
        let p = sysv(Convention::Fastcall, Type::Void, vec![c1, int(), int()]);
        assert_eq!(direct(&p, 1), vec![at(0, 4, Loc::Int(0))]);
        assert_eq!(direct(&p, 2), vec![at(0, 4, Loc::Stack(4))]);
        assert_eq!(pops(&p), (8, 8));
        // `void __fastcall fb2(struct { double d; } s, int a, int b)`: a in ecx, b in edx.
        let d = Type::anon_struct([s(Scalar::Double)]);
        let p = sysv(Convention::Fastcall, Type::Void, vec![d, int(), int()]);
        assert_eq!(direct(&p, 2), vec![at(0, 4, Loc::Int(1))]);
        // `void __fastcall fa7(void *p, struct { int a, b; } s, int b)`: p in ecx, s at
        // 4(%esp), b at 12(%esp), `retl $12`.
        let s8 = Type::anon_struct([int(), int()]);
        let p = sysv(Convention::Fastcall, Type::Void, vec![s(Scalar::Pointer), s8, int()]);
        assert_eq!(direct(&p, 2), vec![at(0, 4, Loc::Stack(8))]);
        assert_eq!(pops(&p), (12, 12));
    }

    #[test]
    fn fastcall_struct_return_pointer_in_ecx() {
        // `struct B __fastcall rf(int a, int b)`: `movl %ecx, %eax` (hidden pointer in ecx,
        // returned in eax), a in edx, b at 4(%esp), `retl $4`.
        let b = Type::anon_struct([int(), int(), int()]);
        let p = sysv(Convention::Fastcall, b.clone(), vec![int(), int()]);
        assert_eq!(p.ret, hidden(Loc::Int(0)));
        assert_eq!(direct(&p, 0), vec![at(0, 4, Loc::Int(1))]);
        assert_eq!(direct(&p, 1), vec![at(0, 4, Loc::Stack(0))]);
        assert_eq!(pops(&p), (4, 4));
        // `struct B __fastcall rf2(long long a, int b)`: a at 4(%esp), b at 12, `retl $12`.
        let p = sysv(Convention::Fastcall, b, vec![s(Scalar::LongLong), int()]);
        assert_eq!(direct(&p, 1), vec![at(0, 4, Loc::Stack(8))]);
        assert_eq!(pops(&p), (12, 12));
    }

    #[test]
    fn thiscall_struct_return_pointer_on_stack() {
        // `struct B __thiscall rt(int a, int b)`: `movl 4(%esp), %eax` (hidden pointer at
        // stack+0, returned in eax), a in ecx, b at 8(%esp), `retl $8`.
        let b = Type::anon_struct([int(), int(), int()]);
        let p = sysv(Convention::Thiscall, b, vec![int(), int()]);
        assert_eq!(p.ret, hidden(Loc::Stack(0)));
        assert_eq!(direct(&p, 0), vec![at(0, 4, Loc::Int(0))]);
        assert_eq!(direct(&p, 1), vec![at(0, 4, Loc::Stack(4))]);
        assert_eq!(pops(&p), (8, 8));
        assert!(p.to_string().contains("[0..4] ecx"), "{p}");
    }

    #[test]
    fn thiscall_splits_long_long_and_expanded_structs() {
        // `void __thiscall ta1(long long ll, int a, int b)`: `movl %ecx, g_ll` (low half),
        // high half at 4(%esp), a at 8, b at 12, `retl $12`.
        let p = sysv(Convention::Thiscall, Type::Void, vec![s(Scalar::LongLong), int(), int()]);
        assert_eq!(direct(&p, 0), vec![at(0, 4, Loc::Int(0)), at(4, 4, Loc::Stack(0))]);
        assert_eq!(direct(&p, 1), vec![at(0, 4, Loc::Stack(4))]);
        assert_eq!(pops(&p), (12, 12));
        // `void __thiscall ta3(double d, int a, int b)`: d at 4(%esp), a in ecx, b at 12.
        let p = sysv(Convention::Thiscall, Type::Void, vec![s(Scalar::Double), int(), int()]);
        assert_eq!(direct(&p, 1), vec![at(0, 4, Loc::Int(0))]);
        assert_eq!(pops(&p), (12, 12));
        // `call4(void (__thiscall *f)(struct { float f; int i; }, int), ...)`: `flds`/`fstps`
        // to (%esp), i in ecx, 17 at 4(%esp).
        let fi = Type::anon_struct([s(Scalar::Float), int()]);
        let p = sysv(Convention::Thiscall, Type::Void, vec![fi, int()]);
        assert_eq!(direct(&p, 0), vec![at(0, 4, Loc::Stack(0)), at(4, 4, Loc::Int(0))]);
        assert_eq!(direct(&p, 1), vec![at(0, 4, Loc::Stack(4))]);
        // `call5(void (__thiscall *f)(struct { int i; long long l; }, int), ...)`: i in ecx,
        // l at (%esp), 17 at 8(%esp).
        let il = Type::anon_struct([int(), s(Scalar::LongLong)]);
        let p = sysv(Convention::Thiscall, Type::Void, vec![il, int()]);
        assert_eq!(direct(&p, 0), vec![at(0, 4, Loc::Int(0)), at(4, 8, Loc::Stack(0))]);
        assert_eq!(pops(&p), (12, 12));
    }

    #[test]
    fn thiscall_other_structs_by_reference_in_ecx() {
        // `void __thiscall tb2(struct { char c[5]; } s, int a)`: `movb 4(%ecx)`, `movl (%ecx)`
        // (s read through ecx), a at 4(%esp), `retl $4`.
        let c5 = Type::anon_struct([Type::Array(Box::new(s(Scalar::Char)), 5)]);
        let p = sysv(Convention::Thiscall, Type::Void, vec![c5.clone(), int()]);
        assert_eq!(p.args[0].pass, ArgPass::Indirect { pointer: Loc::Int(0) });
        assert_eq!(direct(&p, 1), vec![at(0, 4, Loc::Stack(0))]);
        assert_eq!(pops(&p), (4, 4));
        // `void __thiscall tb3(int a, struct { char c[5]; } s, int b)`: a in ecx, s at
        // 4(%esp), b at 12(%esp), `retl $12`.
        let p = sysv(Convention::Thiscall, Type::Void, vec![int(), c5, int()]);
        assert_eq!(direct(&p, 1), vec![at(0, 5, Loc::Stack(0))]);
        assert_eq!(pops(&p), (12, 12));
    }

    #[test]
    fn layout_classifiers() {
        let c3 = Type::Array(Box::new(s(Scalar::Char)), 3);
        let l = |t: Type| Abi::I386Sysv.layout(&t).unwrap();
        // One-element arrays and one-member structs are looked through.
        let fa = Type::anon_struct([Type::Array(Box::new(s(Scalar::Float)), 1)]);
        assert_eq!(single_element(&l(fa)), Some(Scalar::Float));
        let nd = Type::anon_struct([Type::anon_struct([s(Scalar::Double)])]);
        assert_eq!(single_element(&l(nd)), Some(Scalar::Double));
        assert_eq!(single_element(&l(Type::anon_struct([s(Scalar::Float), int()]))), None);
        // Expansion needs 4/8-byte scalar members and no padding.
        assert!(expansion(&l(Type::anon_struct([int(), s(Scalar::Double)]))).is_some());
        assert!(expansion(&l(Type::anon_struct([c3]))).is_none());
        let union2 = Type::aggregate(crate::AggregateKind::Union, [int(), s(Scalar::Float)]);
        assert!(expansion(&l(union2)).is_none());
    }
}
