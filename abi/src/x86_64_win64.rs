//! `x86_64-win64`: the Microsoft x64 calling convention ("x64 calling convention" and
//! "x64 stack usage", Microsoft C++ docs, learn.microsoft.com/cpp/build).
//!
//! Arguments: four positional slots. Slot `i < 4` is `rcx rdx r8 r9` for an integer or
//! `xmm0`–`xmm3` for a float *by position*: a float in slot 1 takes `xmm1` and leaves `rdx`
//! unused. Slot 4 and up are 8-byte stack words. Structs and unions of 1, 2, 4 or 8 bytes travel
//! as an integer of that size; every other aggregate travels by reference.
//! Results: `rax`, `xmm0`, or memory through a hidden pointer in the first slot, returned in `rax`.
//!
//! `Loc::Stack` offsets count from the first stack word above the return address, so the
//! 32-byte shadow (home) space of the four register slots is `Stack(0..32)` and the fifth
//! argument is at `Stack(32)`. `stack_bytes` includes the shadow space, which the caller always
//! allocates ("x64 stack usage", Stack allocation): `32 + 8 * (slots - 4)`.

use crate::abi::{Abi, AbiSpec, Authority, Judge, RegisterFile, Toolchain};
use crate::layout::{Layout, RecordRules};
use crate::plan::{
    result_extend, Allocator, ArgPass, ArgPlan, Loc, Piece, Placement, RetPlan, ReturnCode,
};
use crate::reg::Reg;
use crate::stubs::StubFamily;
use crate::types::{Convention, Scalar};
use crate::AbiError;

/// The Microsoft x64 calling convention.
pub struct X86_64Win64;

const INT_ARGS: [Reg; 4] = [Reg::Rcx, Reg::Rdx, Reg::R8, Reg::R9];
const INT_RETS: [Reg; 1] = [Reg::Rax];
const FLOATS: [Reg; 4] = [Reg::Xmm0, Reg::Xmm1, Reg::Xmm2, Reg::Xmm3];

/// "x64 stack usage": the caller always reserves home space for the four register slots.
const SHADOW_SPACE: u32 = 32;

/// Parameter passing: "Structs or unions of these sizes (8, 16, 32, or 64 bits) are passed as
/// if they were integers of the same size"; return values use the same size list for RAX.
fn fits_in_register(layout: &Layout) -> bool {
    matches!(layout.size, 1 | 2 | 4 | 8)
}

/// Takes the next positional slot: its integer or float register, else an 8-byte stack word.
///
/// Parameter passing: "Floating-point and double-precision arguments are passed in XMM0 - XMM3
/// (up to 4) with the integer slot (RCX, RDX, R8, and R9) that would normally be used for that
/// cardinal slot being ignored, and vice versa." Both counters therefore advance together.
fn slot(alloc: &mut Allocator, float: bool) -> Loc {
    match (alloc.take_int(1), alloc.take_float(1)) {
        (Some(i), Some(_)) if float => Loc::Float(i),
        (Some(i), Some(_)) => Loc::Int(i),
        // "Any arguments beyond the first four must be stored on the stack": one 8-byte word
        // each, right-justified like the registers.
        _ => Loc::Stack(alloc.take_stack(8, 8, 8)),
    }
}

impl X86_64Win64 {
    fn arg(&self, alloc: &mut Allocator, layout: &Layout) -> ArgPlan {
        let whole = |loc| ArgPass::Direct(vec![Piece { offset: 0, size: layout.size, loc }]);
        let pass = match layout.scalar() {
            Some(s) if layout.size <= 8 => whole(slot(alloc, s.is_float())),
            // An aggregate of a register size is an integer, even when all its members are
            // floats (clang: `struct { float a, b; }` arrives in rcx).
            None if fits_in_register(layout) => whole(slot(alloc, false)),
            // "Any argument that doesn't fit in 8 bytes, or isn't 1, 2, 4, or 8 bytes, must be
            // passed by reference": the slot holds the address of a caller-made copy (an
            // `__int128` too, as clang and GCC pass it).
            _ => ArgPass::Indirect { pointer: slot(alloc, false) },
        };
        ArgPlan { layout: layout.clone(), pass }
    }

    fn ret(&self, alloc: &mut Allocator, layout: &Layout) -> (RetPlan, ReturnCode) {
        let direct = |loc, code| {
            let pieces = vec![Piece { offset: 0, size: layout.size, loc }];
            // Return values: "The state of unused bits in the value returned in RAX or XMM0 is
            // undefined" (clang callers re-extend: `movsbl %al, %eax` after the call). Extended
            // anyway, as on x86_64-sysv, which no caller can mind.
            (RetPlan::Direct { pieces, extend: result_extend(Abi::X86_64Win64, layout) }, code)
        };
        if layout.size == 0 {
            return (RetPlan::Void, ReturnCode::Void);
        }
        match layout.scalar() {
            // Return values: "floating-point values [...] are returned in XMM0".
            Some(Scalar::Float) => direct(Loc::Float(0), ReturnCode::Float),
            Some(Scalar::Double) => direct(Loc::Float(0), ReturnCode::Double),
            // "A scalar return value that can fit into 64 bits [...] is returned through RAX."
            Some(_) => direct(Loc::Int(0), ReturnCode::Word),
            // "To return a user-defined type by value in RAX, it must have a length of 1, 2, 4,
            // 8, 16, 32, or 64 bits" — in RAX even when all members are floats.
            None if fits_in_register(layout) => direct(Loc::Int(0), ReturnCode::Struct),
            // "Otherwise, the caller must allocate memory for the return value and pass a
            // pointer to it as the first argument. The remaining arguments are then shifted one
            // argument to the right. The same pointer must be returned by the callee in RAX."
            None => (
                RetPlan::Indirect { pointer: slot(alloc, false), returned_in: Some(Loc::Int(0)) },
                ReturnCode::HiddenPointer,
            ),
        }
    }
}

impl AbiSpec for X86_64Win64 {
    fn va_start(&self) -> crate::plan::VaStart {
        crate::plan::VaStart::HomeSpace
    }

    fn abi(&self) -> Abi {
        Abi::X86_64Win64
    }

    fn scalar_layout(&self, s: Scalar) -> Option<(u32, u32)> {
        // "x64 ABI conventions", Types and storage, Scalar types (LLP64): `long` is 4 bytes;
        // every other scalar as in LP64, naturally aligned.
        match s {
            Scalar::Long | Scalar::ULong => Some((4, 4)),
            _ => crate::layout::lp64_scalar_layout(s),
        }
    }

    // "x64 ABI conventions", Scalar types: `long double` is an 8-byte IEEE double.
    fn long_double(&self) -> Scalar {
        Scalar::Double
    }

    fn record_rules(&self) -> RecordRules {
        // MSVC's record layout: `__declspec(align(N))` survives `#pragma pack` (clang's
        // `MicrosoftRecordLayoutBuilder::getAdjustedElementInfo`).
        RecordRules::Msvc
    }

    fn wchar(&self) -> (u32, bool) {
        // Windows: `wchar_t` is an unsigned 16-bit integer (UTF-16 code units).
        (2, false)
    }

    fn int_arg_regs(&self, _conv: Convention) -> &'static [Reg] {
        &INT_ARGS
    }

    fn int_ret_regs(&self) -> &'static [Reg] {
        &INT_RETS
    }

    fn float_regs(&self) -> &'static [Reg] {
        &FLOATS
    }

    fn registers(&self) -> RegisterFile {
        RegisterFile {
            stack_pointer: Reg::Rsp,
            link_register: None,
            // "x64 ABI conventions", Caller/callee saved registers: RBX, RBP, RDI, RSI, RSP,
            // R12–R15 and XMM6–XMM15 are nonvolatile (all 128 bits); RAX, RCX, RDX, R8–R11 and
            // XMM0–XMM5 are volatile.
            callee_saved: &[
                Reg::Rbx,
                Reg::Rbp,
                Reg::Rdi,
                Reg::Rsi,
                Reg::R12,
                Reg::R13,
                Reg::R14,
                Reg::R15,
            ],
            callee_saved_float: &[
                Reg::Xmm6,
                Reg::Xmm7,
                Reg::Xmm8,
                Reg::Xmm9,
                Reg::Xmm10,
                Reg::Xmm11,
                Reg::Xmm12,
                Reg::Xmm13,
                Reg::Xmm14,
                Reg::Xmm15,
            ],
            callee_saved_float_bytes: 16,
            caller_saved: &[Reg::Rax, Reg::Rcx, Reg::Rdx, Reg::R8, Reg::R9, Reg::R10, Reg::R11],
            caller_saved_float: &[Reg::Xmm0, Reg::Xmm1, Reg::Xmm2, Reg::Xmm3, Reg::Xmm4, Reg::Xmm5],
            // "x64 stack usage": "The stack will always be maintained 16-byte aligned, except
            // within the prolog (for example, after the return address is pushed)".
            call_alignment: 16,
        }
    }

    fn place(&self, _: Convention, args: &[Layout], ret: &Layout) -> Result<Placement, AbiError> {
        // "x64 calling convention": `__stdcall`, `__fastcall`, `__thiscall` and `__cdecl` are
        // accepted and ignored; x64 has one convention.
        if ret.size > 8 && ret.scalar().is_some() {
            // clang and mingw-w64 GCC return `__int128` in xmm0, which no entry here loads.
            return Err(AbiError::unsupported(self.abi(), "an `__int128` result (in xmm0)"));
        }
        let mut alloc = Allocator::new(4, 4);
        // Stack words start above the shadow space (see the module documentation).
        alloc.stack = SHADOW_SPACE;
        // The hidden result pointer takes slot 0 before any argument is placed.
        let (ret_plan, code) = self.ret(&mut alloc, ret);
        let args = args.iter().map(|layout| self.arg(&mut alloc, layout)).collect();
        Ok(Placement { args, ret: ret_plan, code, stack_bytes: alloc.stack, callee_pop: 0 })
    }

    fn stub_family(&self) -> StubFamily {
        // "x64 calling convention", Parameter passing: the first four arguments are assigned
        // by position (rcx/xmm0, rdx/xmm1, r8/xmm2, r9/xmm3): a leading pointer moves each
        // position up one.
        StubFamily::ShiftPosition
    }

    fn has_convention(&self, conv: Convention) -> bool {
        // `ms_abi` is this convention; `sysv_abi` is System V's (not covered here).
        conv != Convention::SysvAbi
    }

    fn toolchain(&self) -> Toolchain {
        Toolchain {
            clang_target: "x86_64-pc-windows-msvc",
            gcc: &["x86_64-w64-mingw32-gcc"],
            authority: Authority {
                source:
                    "Microsoft's \"x64 calling convention\", as clang's MSVC target implements it",
                judge: Judge::Clang { since: 0 },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{AggregateKind, Type};
    use crate::{CallPlan, Signature};

    const ABI: Abi = Abi::X86_64Win64;

    fn s(x: Scalar) -> Type {
        Type::scalar(x)
    }

    fn piece(offset: u32, size: u32, loc: Loc) -> Piece {
        Piece { offset, size, loc }
    }

    fn direct(plan: &CallPlan, i: usize) -> &[Piece] {
        match &plan.args[i].pass {
            ArgPass::Direct(pieces) => pieces,
            other => panic!("argument {i} is {other:?}"),
        }
    }

    fn indirect(plan: &CallPlan, i: usize) -> Loc {
        match plan.args[i].pass {
            ArgPass::Indirect { pointer } => pointer,
            ref other => panic!("argument {i} is {other:?}"),
        }
    }

    #[test]
    fn long_is_four_bytes() {
        // clang: `long sizeoflong(void) { return sizeof(long); }` -> `movl $4, %eax`.
        assert_eq!(ABI.layout(&s(Scalar::Long)).unwrap().size, 4);
        assert_eq!(ABI.layout(&s(Scalar::LongLong)).unwrap().size, 8);
        assert_eq!(ABI.layout(&s(Scalar::Pointer)).unwrap().size, 8);
    }

    #[test]
    fn float_takes_its_positional_slot() {
        // clang, caller of `void (*)(int, float, int, double, int, float, char)`:
        // ecx=1, xmm1=2.0f (rdx unused), r8d=3, xmm3=4.0, 32(%rsp)=5, movl 6.0f to 40(%rsp),
        // movb c to 48(%rsp) (call-time rsp = our Stack(0)).
        let sig = Signature::new(
            Type::Void,
            [Scalar::Int, Scalar::Float, Scalar::Int, Scalar::Double]
                .into_iter()
                .chain([Scalar::Int, Scalar::Float, Scalar::Char])
                .map(s)
                .collect(),
        );
        let plan = ABI.plan(&sig).unwrap();
        assert_eq!(direct(&plan, 0), [piece(0, 4, Loc::Int(0))]);
        assert_eq!(direct(&plan, 1), [piece(0, 4, Loc::Float(1))]);
        assert_eq!(direct(&plan, 2), [piece(0, 4, Loc::Int(2))]);
        assert_eq!(direct(&plan, 3), [piece(0, 8, Loc::Float(3))]);
        assert_eq!(direct(&plan, 4), [piece(0, 4, Loc::Stack(32))]);
        assert_eq!(direct(&plan, 5), [piece(0, 4, Loc::Stack(40))]);
        assert_eq!(direct(&plan, 6), [piece(0, 1, Loc::Stack(48))]);
        assert_eq!(plan.stack_bytes, 56);
        assert_eq!(plan.callee_pop, 0);
        let text = plan.to_string();
        assert!(text.contains("[0..4] xmm1"), "{text}");
        assert!(text.contains("[0..4] r8"), "{text}");
    }

    #[test]
    fn shadow_space_is_always_reserved() {
        // clang: a caller of `void (*)(void)` still reserves 32 bytes (`subq $40, %rsp` with
        // the alignment word, in `call7`); `five(int, int, int, int, double e, float f)` reads
        // e at 40(%rsp) and f at 48(%rsp) at entry (return address at 0(%rsp)).
        let plan = ABI.plan(&Signature::new(Type::Void, vec![])).unwrap();
        assert_eq!(plan.stack_bytes, 32);
        let args = [Scalar::Int, Scalar::Int, Scalar::Int, Scalar::Int, Scalar::Double];
        let mut args: Vec<Type> = args.into_iter().map(s).collect();
        args.push(s(Scalar::Float));
        let plan = ABI.plan(&Signature::new(s(Scalar::Double), args)).unwrap();
        assert_eq!(direct(&plan, 4), [piece(0, 8, Loc::Stack(32))]);
        assert_eq!(direct(&plan, 5), [piece(0, 4, Loc::Stack(40))]);
        assert_eq!(plan.stack_bytes, 48);
    }

    #[test]
    fn aggregates_by_size() {
        // clang, caller of `void (*)(struct F2, struct I3, struct C3, struct D1, union U8,
        // struct I3)` with F2 = { float a, b; }, I3 = { int a, b, c; }, C3 = { char a, b, c; },
        // D1 = { double d; }, U8 = { double d; int i; }: F2's 8 bytes in rcx, `leaq` of an I3
        // copy in rdx, `leaq` of a C3 copy in r8, D1 in r9, U8's 8 bytes at 32(%rsp), the
        // address of the second I3 copy at 40(%rsp).
        let f2 = Type::anon_struct([s(Scalar::Float), s(Scalar::Float)]);
        let i3 = Type::anon_struct([s(Scalar::Int), s(Scalar::Int), s(Scalar::Int)]);
        let c3 = Type::anon_struct([s(Scalar::Char), s(Scalar::Char), s(Scalar::Char)]);
        let d1 = Type::anon_struct([s(Scalar::Double)]);
        let u8 = Type::aggregate(AggregateKind::Union, [s(Scalar::Double), s(Scalar::Int)]);
        let sig = Signature::new(Type::Void, vec![f2, i3.clone(), c3, d1, u8, i3]);
        let plan = ABI.plan(&sig).unwrap();
        assert_eq!(direct(&plan, 0), [piece(0, 8, Loc::Int(0))]);
        assert_eq!(indirect(&plan, 1), Loc::Int(1));
        assert_eq!(indirect(&plan, 2), Loc::Int(2));
        assert_eq!(direct(&plan, 3), [piece(0, 8, Loc::Int(3))]);
        assert_eq!(direct(&plan, 4), [piece(0, 8, Loc::Stack(32))]);
        assert_eq!(indirect(&plan, 5), Loc::Stack(40));
        assert_eq!(plan.stack_bytes, 48);
    }

    #[test]
    fn large_struct_result_through_rcx() {
        // clang, caller of `struct I3 (*)(int, double, int, int)`: passes its own hidden
        // pointer on in rcx, edx=1, xmm2=2.0, r9d=3, 32(%rsp)=4; the callee `ret_i3` does
        // `movq %rcx, %rax` and stores through it.
        let i3 = Type::anon_struct([s(Scalar::Int), s(Scalar::Int), s(Scalar::Int)]);
        let args = [Scalar::Int, Scalar::Double, Scalar::Int, Scalar::Int];
        let plan = ABI.plan(&Signature::new(i3, args.into_iter().map(s).collect())).unwrap();
        assert_eq!(
            plan.ret,
            RetPlan::Indirect { pointer: Loc::Int(0), returned_in: Some(Loc::Int(0)) }
        );
        assert_eq!(plan.code, ReturnCode::HiddenPointer);
        assert_eq!(direct(&plan, 0), [piece(0, 4, Loc::Int(1))]);
        assert_eq!(direct(&plan, 1), [piece(0, 8, Loc::Float(2))]);
        assert_eq!(direct(&plan, 2), [piece(0, 4, Loc::Int(3))]);
        assert_eq!(direct(&plan, 3), [piece(0, 4, Loc::Stack(32))]);
        assert_eq!(plan.stack_bytes, 40);
        assert!(plan.to_string().contains("hidden pointer in rcx, returned in rax"));
    }

    #[test]
    fn small_struct_results_in_rax() {
        // clang callees: `struct F2 rf2(float, float)` packs both floats into rax;
        // `struct D1 rd1(double)` does `movq %xmm0, %rax`; `struct C3 rc3(char)` (3 bytes)
        // stores through rcx and returns it in rax.
        let f2 = Type::anon_struct([s(Scalar::Float), s(Scalar::Float)]);
        let plan = ABI.plan(&Signature::new(f2, vec![])).unwrap();
        let pieces = vec![piece(0, 8, Loc::Int(0))];
        assert_eq!(plan.ret, RetPlan::Direct { pieces, extend: crate::Extend::None });
        assert_eq!(plan.code, ReturnCode::Struct);
        let c3 = Type::anon_struct([s(Scalar::Char), s(Scalar::Char), s(Scalar::Char)]);
        let plan = ABI.plan(&Signature::new(c3, vec![])).unwrap();
        assert_eq!(plan.code, ReturnCode::HiddenPointer);
        // `float rfl(float, float)`: `addss %xmm1, %xmm0`.
        let plan = ABI.plan(&Signature::new(s(Scalar::Float), vec![])).unwrap();
        let pieces = vec![piece(0, 4, Loc::Float(0))];
        assert_eq!(plan.ret, RetPlan::Direct { pieces, extend: crate::Extend::None });
        assert_eq!(plan.code, ReturnCode::Float);
    }
}
