//! `i386-win32`: the 32-bit Windows (MSVC) conventions `__cdecl`, `__stdcall`, `__fastcall`
//! and `__thiscall`, from Microsoft's "x86 calling conventions" / "Argument passing and naming
//! conventions" pages as clang 14 (`--target=i686-pc-windows-msvc`) implements them.
//!
//! The placement loop is shared with `i386-sysv` ([`crate::i386_sysv`], where the convention
//! rules and clang's surprises are written down once); this file states what differs:
//!
//! * Scalars (Microsoft "Data Type Ranges"; natural alignment under MSVC's default `/Zp8`): `long` and pointers are 4 bytes;
//!   `long long` and `double` are 8 bytes **and 8-aligned**, in structs too (clang:
//!   `_Alignof(double) == 8`, `sizeof(struct { char c; double d; }) == 16`). `long double` is
//!   the same as `double` in MSVC but is refused like everywhere else for now.
//! * Arguments: on the stack in 4-byte slots like i386-sysv. The 8-alignment does **not**
//!   reach the stack: `void f(int i, struct { char c; double d; } s, int j)` has s at 8(%esp)
//!   (16 bytes) and j at 24(%esp); `void f(int i, double d)` has d at 8(%esp).
//! * Results (Microsoft "Argument passing and naming conventions", return values): a struct or union of 1, 2, 4 or 8 bytes comes back in
//!   `eax` / `edx:eax` — float members included (`struct { float f; }` in eax,
//!   `struct { double d; }` and `struct { float a, b; }` in edx:eax) — but only when every
//!   member, recursively, is itself 1, 2, 4 or 8 bytes (clang `shouldReturnTypeInRegister`):
//!   `struct { char a[3]; char b; }` (4 bytes) and `union { char a[3]; int i; }` return in
//!   memory. Otherwise the caller passes a hidden pointer (stack+0; `ecx` under fastcall) that
//!   the callee returns in `eax`; under cdecl the caller pops it (plain `ret`, unlike SysV).
//! * fastcall: struct and union arguments never use up `ecx`/`edx` (clang's
//!   `shouldAggregateUseDirect` refuses aggregates on Win32 before counting registers):
//!   `void __fastcall f(struct { int x; } s, int a, int b)` has a in ecx, b in edx, `ret $4`.
//!   The `long long` rule is the same as on Linux (clang 14 deviates from MSVC's
//!   documentation there, see [`crate::i386_sysv`]).

use crate::abi::{Abi, AbiSpec, RegisterFile};
use crate::i386_sysv::{float_reg_name, int_arg_reg_name, int_ret_reg_name, plan_i386, Flavor};
use crate::layout::{Layout, Shape};
use crate::plan::CallPlan;
use crate::types::{Convention, Scalar, Signature};
use crate::AbiError;

/// The 32-bit Windows ABI (MSVC).
pub struct I386Win32;

const WIN32: Flavor = Flavor {
    abi: Abi::I386Win32,
    struct_ret_in_regs: returns_in_regs,
    // `__cdecl` (Microsoft docs): the caller pops the arguments — the hidden result pointer
    // too (clang: plain `retl`).
    cdecl_callee_pops_hidden: false,
    fastcall_aggregates_count: false,
};

/// clang's `shouldReturnTypeInRegister`: the value is 1, 2, 4 or 8 bytes, and so is every
/// non-empty member and array element, recursively.
fn returns_in_regs(layout: &Layout) -> bool {
    matches!(layout.size, 1 | 2 | 4 | 8)
        && match &layout.shape {
            Shape::Void => false,
            Shape::Scalar(_) => true,
            Shape::Array { elem, .. } => returns_in_regs(elem),
            // Zero-size members (`int a[0]`) are "empty fields" and skipped.
            Shape::Aggregate { fields, .. } => {
                fields.iter().all(|f| f.layout.size == 0 || returns_in_regs(&f.layout))
            }
        }
}

impl AbiSpec for I386Win32 {
    fn abi(&self) -> Abi {
        Abi::I386Win32
    }

    fn scalar_layout(&self, s: Scalar) -> Option<(u32, u32)> {
        // MSVC "Data Type Ranges" and natural alignment: 8-byte scalars are 8-aligned (clang:
        // `_Alignof(long long) == 8`, `_Alignof(double) == 8`). `long double` refused for now.
        crate::i386_sysv::ilp32_scalar_layout(s, 8)
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
        // "x86 calling conventions": EBX, ESI, EDI and EBP are preserved, EAX, ECX and EDX
        // are not — i386-sysv's lists. But the stack is only 4-aligned at a call (clang and
        // LLVM's `X86Subtarget` for `i686-pc-windows-msvc`, as MSVC: no realignment to 16).
        RegisterFile { call_alignment: 4, ..crate::i386_sysv::REGISTERS }
    }

    fn plan(&self, sig: &Signature, args: &[Layout], ret: &Layout) -> Result<CallPlan, AbiError> {
        plan_i386(&WIN32, sig, args, ret)
    }
}

/// Every expected value below was read off clang 14's assembly (and `-emit-llvm` IR) for the C
/// given in the comment, compiled with `clang --target=i686-pc-windows-msvc -O2 -S -o - x.c`.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::i386_sysv::tests::{at, direct, hidden, int, plan, pops, s};
    use crate::plan::{ArgPass, Loc, Piece, RetPlan, ReturnCode};
    use crate::types::{AggregateKind, Type};
    use crate::Extend;

    fn win(conv: Convention, ret: Type, args: Vec<Type>) -> crate::CallPlan {
        plan(Abi::I386Win32, conv, ret, args)
    }

    fn chars(n: u32) -> Type {
        Type::Array(Box::new(s(Scalar::Char)), n)
    }

    fn regs(pieces: Vec<Piece>) -> RetPlan {
        RetPlan::Direct { pieces, extend: Extend::None }
    }

    #[test]
    fn layouts_align_8_but_stack_slots_do_not() {
        // `_Static_assert(_Alignof(double) == 8 && sizeof(struct { char c; double d; }) == 16)`.
        let cd = Type::anon_struct([s(Scalar::Char), s(Scalar::Double)]);
        let l = Abi::I386Win32.layout(&cd).unwrap();
        assert_eq!((l.size, l.align), (16, 8));
        // `void cd3(int i, struct { char c; double d; } s, int j)`: s from 8(%esp) (16 bytes),
        // j at 24(%esp); `void cd2(int i, double d, float f, int j)`: d at 8(%esp).
        let p = win(Convention::Default, Type::Void, vec![int(), cd, int()]);
        assert_eq!(direct(&p, 1), vec![at(0, 16, Loc::Stack(4))]);
        assert_eq!(direct(&p, 2), vec![at(0, 4, Loc::Stack(20))]);
        assert_eq!(pops(&p), (24, 0));
        let p = win(Convention::Default, Type::Void, vec![int(), s(Scalar::Double), int()]);
        assert_eq!(direct(&p, 1), vec![at(0, 8, Loc::Stack(4))]);
    }

    #[test]
    fn small_struct_returns_in_edx_eax() {
        // `struct { int a, b; } r_i2(void)`, `struct { double d; } r_d1(void)`,
        // `struct { float a, b; } r_ff(void)`, `struct { char c; float f; } r_cf(void)`:
        // IR returns `i64`, assembly loads eax (low) and edx (high), plain `retl`.
        let edx_eax = regs(vec![at(0, 4, Loc::Int(0)), at(4, 4, Loc::Int(1))]);
        for members in [
            vec![int(), int()],
            vec![s(Scalar::Double)],
            vec![s(Scalar::Float), s(Scalar::Float)],
            vec![s(Scalar::Char), s(Scalar::Float)],
            vec![s(Scalar::LongLong)],
        ] {
            let p = win(Convention::Default, Type::anon_struct(members), vec![int()]);
            assert_eq!((&p.ret, p.code), (&edx_eax, ReturnCode::Struct));
            assert_eq!(pops(&p), (4, 0));
        }
        // `struct { float f; } r_f1(void)` returns `i32` (eax, not st(0));
        // `struct { char a; } r_c1(void)` returns `i8` (al); `struct { short a[2]; }` `i32`;
        // `struct { char c; short s; }` `i32`.
        let float1 = win(Convention::Default, Type::anon_struct([s(Scalar::Float)]), vec![]);
        assert_eq!(float1.ret, regs(vec![at(0, 4, Loc::Int(0))]));
        let c1 = win(Convention::Default, Type::anon_struct([s(Scalar::Char)]), vec![]);
        assert_eq!(c1.ret, regs(vec![at(0, 1, Loc::Int(0))]));
        let s2 = Type::anon_struct([Type::Array(Box::new(s(Scalar::Short)), 2)]);
        assert_eq!(win(Convention::Default, s2, vec![]).code, ReturnCode::Struct);
        let cs = Type::anon_struct([s(Scalar::Char), s(Scalar::Short)]);
        assert_eq!(win(Convention::Default, cs, vec![]).code, ReturnCode::Struct);
    }

    #[test]
    fn other_struct_returns_through_hidden_pointer_caller_pops() {
        // `struct { char a[3]; } r_c3(void)`, `struct { char a[6]; } r_c6(void)`,
        // `struct { char a[3]; char b; } r_c4(void)` (4 bytes, but the array member is 3),
        // `union { char a[3]; int i; } r_u4(void)`: IR `sret`, `movl 4(%esp), %eax`, `retl`.
        let c3 = Type::anon_struct([chars(3)]);
        let nested = Type::anon_struct([c3.clone(), s(Scalar::Char)]);
        let u4 = Type::aggregate(AggregateKind::Union, [chars(3), int()]);
        let c4 = Type::anon_struct([chars(3), s(Scalar::Char)]);
        let b12 = Type::anon_struct([int(), int(), int()]);
        for ty in [c3, Type::anon_struct([chars(6)]), c4, nested, u4, b12.clone()] {
            let p = win(Convention::Cdecl, ty, vec![int()]);
            assert_eq!((&p.ret, p.code), (&hidden(Loc::Stack(0)), ReturnCode::HiddenPointer));
            assert_eq!(direct(&p, 0), vec![at(0, 4, Loc::Stack(4))]);
            assert_eq!(pops(&p), (8, 0));
        }
        // `struct B __stdcall rs(int a, int b)`: same places, `retl $12`.
        let p = win(Convention::Stdcall, b12, vec![int(), int()]);
        assert_eq!(p.ret, hidden(Loc::Stack(0)));
        assert_eq!(pops(&p), (12, 12));
    }

    #[test]
    fn stdcall_callee_pops() {
        // `int __stdcall f1(int a, int b)`: `retl $8`; `int __stdcall u1(struct { char c[5]; }
        // s, int a)`: a at 12(%esp), `retl $12`; `struct { int a, b; } __stdcall u5(int a, int
        // b)`: edx:eax, `retl $8`.
        let p = win(Convention::Stdcall, int(), vec![int(), int()]);
        assert_eq!(pops(&p), (8, 8));
        let c5 = Type::anon_struct([chars(5)]);
        let p = win(Convention::Stdcall, int(), vec![c5, int()]);
        assert_eq!(direct(&p, 1), vec![at(0, 4, Loc::Stack(8))]);
        assert_eq!(pops(&p), (12, 12));
        let i2 = Type::anon_struct([int(), int()]);
        let p = win(Convention::Stdcall, i2, vec![int(), int()]);
        assert_eq!((p.code, pops(&p)), (ReturnCode::Struct, (8, 8)));
    }

    #[test]
    fn fastcall_long_long_first_burns_both_registers() {
        // `void __fastcall fa1(long long ll, int a, int b)` (`@fa1@16`): ll at 4(%esp), a at
        // 12(%esp), b at 16(%esp), `retl $16` — not a in ecx, b in edx as MSVC documents.
        let p = win(Convention::Fastcall, Type::Void, vec![s(Scalar::LongLong), int(), int()]);
        assert_eq!(direct(&p, 1), vec![at(0, 4, Loc::Stack(8))]);
        assert_eq!(direct(&p, 2), vec![at(0, 4, Loc::Stack(12))]);
        assert_eq!(pops(&p), (16, 16));
    }

    #[test]
    fn fastcall_structs_use_no_register() {
        // `void __fastcall fa5(struct { int x; } s, int a, int b)`: s at 4(%esp), a in ecx,
        // b in edx, `retl $4`; `fa7(void *p, struct { int a, b; } s, int b)`: p in ecx, s at
        // 4(%esp), b in edx, `retl $8`.
        let i = Type::anon_struct([int()]);
        let p = win(Convention::Fastcall, Type::Void, vec![i, int(), int()]);
        assert_eq!(direct(&p, 0), vec![at(0, 4, Loc::Stack(0))]);
        assert_eq!(direct(&p, 1), vec![at(0, 4, Loc::Int(0))]);
        assert_eq!(direct(&p, 2), vec![at(0, 4, Loc::Int(1))]);
        assert_eq!(pops(&p), (4, 4));
        let s8 = Type::anon_struct([int(), int()]);
        let p = win(Convention::Fastcall, Type::Void, vec![s(Scalar::Pointer), s8, int()]);
        assert_eq!(direct(&p, 2), vec![at(0, 4, Loc::Int(1))]);
        assert_eq!(pops(&p), (8, 8));
        assert!(p.to_string().contains("[0..4] edx"), "{p}");
    }

    #[test]
    fn fastcall_struct_return() {
        // `struct { int a, b; } __fastcall u3(int a, int b)`: a in ecx, b in edx, result in
        // edx:eax, plain `retl`. `struct B __fastcall rf(int a, int b)` (12 bytes): hidden
        // pointer in ecx (`movl %ecx, %eax`), a in edx, b at 4(%esp), `retl $4`.
        let i2 = Type::anon_struct([int(), int()]);
        let p = win(Convention::Fastcall, i2, vec![int(), int()]);
        assert_eq!(direct(&p, 1), vec![at(0, 4, Loc::Int(1))]);
        assert_eq!(pops(&p), (0, 0));
        let b12 = Type::anon_struct([int(), int(), int()]);
        let p = win(Convention::Fastcall, b12, vec![int(), int()]);
        assert_eq!(p.ret, hidden(Loc::Int(0)));
        assert_eq!(direct(&p, 0), vec![at(0, 4, Loc::Int(1))]);
        assert_eq!(pops(&p), (4, 4));
    }

    #[test]
    fn thiscall_struct_return() {
        // `struct B __thiscall rt(int a, int b)` (12 bytes): hidden pointer at 4(%esp)
        // (returned in eax), a in ecx, b at 8(%esp), `retl $8` (callee pops the pointer).
        let b12 = Type::anon_struct([int(), int(), int()]);
        let p = win(Convention::Thiscall, b12, vec![int(), int()]);
        assert_eq!((&p.ret, p.code), (&hidden(Loc::Stack(0)), ReturnCode::HiddenPointer));
        assert_eq!(direct(&p, 0), vec![at(0, 4, Loc::Int(0))]);
        assert_eq!(direct(&p, 1), vec![at(0, 4, Loc::Stack(4))]);
        assert_eq!(pops(&p), (8, 8));
        // `struct { int a, b; } __thiscall u4(int a, int b)`: a in ecx, b at 4(%esp), result
        // in edx:eax, `retl $4`.
        let i2 = Type::anon_struct([int(), int()]);
        let p = win(Convention::Thiscall, i2, vec![int(), int()]);
        assert_eq!(p.code, ReturnCode::Struct);
        assert_eq!(pops(&p), (4, 4));
    }

    #[test]
    fn thiscall_struct_arguments() {
        // `call5(void (__thiscall *f)(struct { int i; long long l; }, int), ...)`: 16 bytes with
        // padding here, so not split: `leal 8(%esp), %ecx` passes it by reference, 17 at
        // (%esp). (i386-sysv, 12 bytes without padding, splits it instead.)
        let il = Type::anon_struct([int(), s(Scalar::LongLong)]);
        let p = win(Convention::Thiscall, Type::Void, vec![il, int()]);
        assert_eq!(p.args[0].pass, ArgPass::Indirect { pointer: Loc::Int(0) });
        assert_eq!(pops(&p), (4, 4));
        // `void __thiscall ta6(struct { int a, b; } s, int b)`: s.a in ecx, s.b at 4(%esp),
        // b at 8(%esp), `retl $8`.
        let s8 = Type::anon_struct([int(), int()]);
        let p = win(Convention::Thiscall, Type::Void, vec![s8, int()]);
        assert_eq!(direct(&p, 0), vec![at(0, 4, Loc::Int(0)), at(4, 4, Loc::Stack(0))]);
        assert_eq!(pops(&p), (8, 8));
    }
}
