//! `i386-win32`: the 32-bit Windows conventions `__cdecl`, `__stdcall`, `__fastcall` and
//! `__thiscall`, from Microsoft's "x86 calling conventions" and "Argument passing and naming
//! conventions" pages, as clang's MSVC target (`--target=i686-pc-windows-msvc`) implements them
//! since clang 19 (older clangs deviate on fastcall: see `oracle/src/known.rs`).
//!
//! The shared x86-32 loop is [`crate::i386`]; this file states the flavour and tests it:
//!
//! * Scalars (Microsoft "Data Type Ranges"; natural alignment under MSVC's default `/Zp8`):
//!   `long` and pointers are 4 bytes; `long long` and `double` are 8 bytes **and 8-aligned**,
//!   in structs too (`sizeof(struct { char c; double d; }) == 16`). `long double` is the same as
//!   `double` in MSVC, and so here.
//! * Arguments: on the stack in 4-byte slots. The 8-alignment does **not** reach the stack:
//!   `void f(int i, struct { char c; double d; } s, int j)` has s at 8(%esp) (16 bytes) and j
//!   at 24(%esp).
//! * Results ("Argument passing and naming conventions", return values): a struct or union of
//!   1, 2, 4 or 8 bytes comes back in `eax` / `edx:eax` — float members included — but only
//!   when every member, recursively, is itself 1, 2, 4 or 8 bytes (clang
//!   `shouldReturnTypeInRegister`). Otherwise the caller passes a hidden pointer at stack+0
//!   (under every convention) that the callee returns in `eax`; under cdecl the caller pops it.
//! * `__fastcall` ([`RegisterRules::Microsoft`]): "the first two DWORD or smaller arguments
//!   that are found in the argument list from left to right are passed in ECX and EDX";
//!   structs, `long long` and floats go on the stack and use no register:
//!   `void __fastcall f(long long ll, int a, int b)` has a in ecx, b in edx, `ret $8`.
//! * `__thiscall`: `ecx` takes the first 32-bit piece of the argument list as clang lowers it
//!   (a small struct of word members is split into them; another struct is passed by
//!   reference in `ecx` while it is free).
//! * Variadic functions are `__cdecl` (Microsoft "__stdcall": "The callee cleans the stack,
//!   so the compiler makes vararg functions __cdecl"); their unnamed arguments follow the
//!   named ones in 4-byte slots, an over-aligned one by value.

use crate::abi::{Abi, Authority, Judge, Toolchain};
use crate::i386::{Flavour, RegisterRules, I386};
use crate::layout::{Layout, RecordRules, Shape};

/// The 32-bit Windows ABI (MSVC).
pub static SPEC: I386 = I386 { flavour: &FLAVOUR };

/// What makes `i386-win32` differ from `i386-sysv`.
pub const FLAVOUR: Flavour = Flavour {
    abi: Abi::I386Win32,
    // MSVC "Data Type Ranges" and natural alignment: 8-byte scalars are 8-aligned.
    eight_byte_align: 8,
    // "x86 calling conventions": the stack is only 4-aligned at a call (no realignment to 16;
    // clang and LLVM's `X86Subtarget` for `i686-pc-windows-msvc` agree).
    call_alignment: 4,
    struct_ret_in_regs: returns_in_regs,
    // `__cdecl`: the caller pops the arguments — the hidden result pointer too (plain `ret`).
    cdecl_callee_pops_hidden: false,
    wchar: (2, false),
    // MSVC's record layout: `__declspec(align(N))` survives `#pragma pack` (clang's
    // `MicrosoftRecordLayoutBuilder::getAdjustedElementInfo`).
    record_rules: RecordRules::Msvc,
    // MSVC "Data Type Ranges": `long double` is the same as `double`.
    long_double_is_double: true,
    // "x86 calling conventions" (MSVC 19.14 on): an argument whose type requires more than
    // 4-byte alignment (`__declspec(align(N))`) is passed by reference; clang's
    // `X86_32ABIInfo::classifyArgumentType` does so for the record's required alignment, for
    // named parameters only: an unnamed argument of a variadic call goes by value.
    indirect_over_aligned: true,
    registers: RegisterRules::Microsoft,
    toolchain: Toolchain {
        clang_target: "i686-pc-windows-msvc",
        gcc: &["i686-w64-mingw32-gcc"],
        authority: Authority {
            source: "Microsoft's \"x86 calling conventions\" and \"Argument passing and naming \
                     conventions\", as clang's MSVC target implements them since clang 19",
            judge: Judge::Clang { since: 19 },
        },
    },
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

/// Every expected value below was read off clang 22's assembly (and `-emit-llvm` IR) for the C
/// given in the comment, compiled with `clang-22 --target=i686-pc-windows-msvc -O2 -S -o - x.c`.
#[cfg(test)]
mod tests {
    use crate::i386::tests::{at, chars, direct, hidden, int, places, plan, pops, s};
    use crate::plan::{ArgPass, Loc, Piece, RetPlan, ReturnCode};
    use crate::types::{AggregateKind, Convention, Scalar, Type};
    use crate::{Abi, Extend};

    fn win(conv: Convention, ret: Type, args: Vec<Type>) -> crate::CallPlan {
        plan(Abi::I386Win32, conv, ret, args)
    }

    fn regs(pieces: Vec<Piece>) -> RetPlan {
        RetPlan::Direct { pieces, extend: Extend::None }
    }

    const ECX: Loc = Loc::Int(0);
    const EDX: Loc = Loc::Int(1);

    #[test]
    fn complex_values_are_structs_and_by_reference_in_ecx_under_thiscall() {
        // `float _Complex f(double _Complex z)`: z at 4(%esp), the result in eax:edx (an 8-byte
        // struct); clang's thiscall passes a `_Complex` argument by reference in a free ecx.
        let p = win(
            Convention::Default,
            Type::Complex(Scalar::Float),
            vec![Type::Complex(Scalar::Double)],
        );
        assert!(matches!(&p.ret, RetPlan::Direct { pieces, .. } if pieces.len() == 2));
        assert_eq!(direct(&p, 0), vec![Piece { offset: 0, size: 16, loc: Loc::Stack(0) }]);
        let sig = crate::Signature {
            conv: Convention::Thiscall,
            ..crate::Signature::new(Type::Void, vec![Type::Complex(Scalar::Float)])
        };
        let p = Abi::I386Win32.plan(&sig).unwrap();
        assert_eq!(p.args[0].pass, ArgPass::Indirect { pointer: ECX });
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
    fn fastcall_gives_ecx_edx_to_the_first_two_words() {
        // `@fa1@16(long long ll, int a, int b)`: ll at 4(%esp), a in ecx, b in edx, `retl $8`;
        // `@fa2@16(int a, long long ll, int b)`: a in ecx, ll at 4(%esp), b in edx, `retl $8`.
        let fast = |args| win(Convention::Fastcall, Type::Void, args);
        let p = fast(vec![s(Scalar::LongLong), int(), int()]);
        assert_eq!(places(&p), [Loc::Stack(0), ECX, EDX]);
        assert_eq!(pops(&p), (8, 8));
        let p = fast(vec![int(), s(Scalar::LongLong), int()]);
        assert_eq!(places(&p), [ECX, Loc::Stack(0), EDX]);
        // `@fa3@12(struct { int x; } s, int a, int b)`: s at 4(%esp), a in ecx, b in edx,
        // `retl $4`; `fa4(double d, int a, int b)`: the same with d.
        let p = fast(vec![Type::anon_struct([int()]), int(), int()]);
        assert_eq!(places(&p), [Loc::Stack(0), ECX, EDX]);
        assert_eq!(pops(&p), (4, 4));
        let p = fast(vec![s(Scalar::Double), int(), int()]);
        assert_eq!(places(&p), [Loc::Stack(0), ECX, EDX]);
        assert!(p.to_string().contains("[0..4] edx"), "{p}");
    }

    #[test]
    fn fastcall_struct_return() {
        // `struct { int a, b; } __fastcall u3(int a, int b)`: a in ecx, b in edx, result in
        // edx:eax, plain `retl`. `struct B __fastcall rf(int a, int b)` (12 bytes): hidden
        // pointer at 4(%esp) (returned in eax), a in ecx, b in edx, `retl $4`;
        // `struct B __fastcall rf2(long long a, int b)`: pointer at 4(%esp), a at 8(%esp),
        // b in ecx, `retl $12`.
        let i2 = Type::anon_struct([int(), int()]);
        let p = win(Convention::Fastcall, i2, vec![int(), int()]);
        assert_eq!(places(&p), [ECX, EDX]);
        assert_eq!(pops(&p), (0, 0));
        let b12 = Type::anon_struct([int(), int(), int()]);
        let p = win(Convention::Fastcall, b12.clone(), vec![int(), int()]);
        assert_eq!(p.ret, hidden(Loc::Stack(0)));
        assert_eq!(places(&p), [ECX, EDX]);
        assert_eq!(pops(&p), (4, 4));
        let p = win(Convention::Fastcall, b12, vec![s(Scalar::LongLong), int()]);
        assert_eq!(places(&p), [Loc::Stack(4), ECX]);
        assert_eq!(pops(&p), (12, 12));
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
