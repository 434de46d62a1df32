//! `i386-sysv`: System V ABI Intel386 Architecture Processor Supplement (i386 psABI), and GCC,
//! the system compiler of i386 Linux, for the conventions the psABI leaves out.
//!
//! Its authority is GCC (`i686-linux-gnu-gcc`): the psABI describes `cdecl` only; Linux code
//! that uses `__attribute__((stdcall, fastcall, thiscall))` is compiled by GCC, and clang on this
//! target follows Microsoft's rules instead (see `oracle/src/known.rs`). The shared x86-32 loop
//! is [`crate::i386`]; this file states the flavour and tests it.
//!
//! * §2.1 (data representation, scalar types): `long` and pointers are 4 bytes; `long long` and
//!   `double` are 8 bytes but only 4-aligned, also inside structs (`_Alignof(double) == 4`,
//!   `sizeof(struct { char c; double d; }) == 12`). `long double` is refused for now.
//! * §2.2 (parameter passing): every argument is on the stack, in 4-byte slots; structs and
//!   unions by value are copied there.
//! * §2.2 (returning values): every struct and union returns in memory: the caller passes its
//!   address as a hidden first stack argument, the callee returns it in `eax` and pops it
//!   (`ret $4`).
//! * GCC's `__fastcall` and `__thiscall` ([`RegisterRules::Gcc`], read off GCC 12's
//!   `function_arg_32` / `function_arg_advance_32` and its assembly, `i686-linux-gnu-gcc -O2
//!   -S`): fastcall has two register words (`ecx`, `edx`), thiscall one (`ecx`); the hidden
//!   result pointer is the first argument, so it takes `ecx`; every argument that is not a
//!   float (`float`, `double`, a struct of one of them) uses up its size in words whether or
//!   not it lands in a register, and only integers and pointers of at most 4 bytes do land
//!   in one. `void __fastcall f(struct { char c; } s, int a, int b)` has `a` in `edx`:
//!   the struct, on the stack, used `ecx`'s word.
//! * Sub-word integer results come back in `al`/`ax`; the plan asks thunkEntry to extend them
//!   to the register, which GCC's callers do not need and do not mind.

use crate::abi::{Abi, Authority, Judge, Toolchain};
use crate::i386::{Flavour, RegisterRules, I386};
use crate::layout::RecordRules;

/// The System V i386 ABI (Linux).
pub static SPEC: I386 = I386 { flavour: &FLAVOUR };

/// What makes `i386-sysv` differ from `i386-win32`.
pub const FLAVOUR: Flavour = Flavour {
    abi: Abi::I386Sysv,
    // §2.1: 8-byte scalars are 4-aligned.
    eight_byte_align: 4,
    // §2.2, the stack frame: "the value (%esp + 4) is always a multiple of 16 when control is
    // transferred to the function entry point".
    call_alignment: 16,
    // §2.2: every struct and union returns in memory (no small-struct exception); a
    // `float _Complex` returns in edx:eax (GCC and clang; `double _Complex` in memory).
    struct_ret_in_regs: |layout| layout.is_complex() && layout.size == 8,
    // §2.2: the callee pops the hidden result pointer off the stack (`ret $4`).
    cdecl_callee_pops_hidden: true,
    wchar: (4, true),
    record_rules: RecordRules::Gcc,
    long_double_is_double: false,
    indirect_over_aligned: false,
    registers: RegisterRules::Gcc,
    toolchain: Toolchain {
        clang_target: "i686-linux-gnu",
        gcc: &["i686-linux-gnu-gcc"],
        authority: Authority {
            source: "the i386 psABI (cdecl); for the conventions it leaves out (stdcall, \
                     fastcall, thiscall), GCC, the system compiler of i386 Linux",
            judge: Judge::Gcc,
        },
    },
};

/// Every expected value below was read off GCC 12's assembly for the C given in the comment
/// (callee definitions), `i686-linux-gnu-gcc -O2 -fno-pic -S -o - x.c`, with the conventions
/// spelled `__attribute__((fastcall))` and so on.
#[cfg(test)]
mod tests {
    use crate::i386::tests::{at, direct, hidden, int, places, plan, pops, s};
    use crate::plan::{CallPlan, Loc, Piece, RetPlan, ReturnCode};
    use crate::types::{Convention, Scalar, Type};
    use crate::Abi;

    fn sysv(conv: Convention, ret: Type, args: Vec<Type>) -> CallPlan {
        plan(Abi::I386Sysv, conv, ret, args)
    }

    fn fast(args: Vec<Type>) -> CallPlan {
        sysv(Convention::Fastcall, Type::Void, args)
    }

    const ECX: Loc = Loc::Int(0);
    const EDX: Loc = Loc::Int(1);

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
        // `sizeof(long double) == 12 && _Alignof(long double) == 4` (x87's 80 bits).
        assert_eq!((l(&s(Scalar::LongDouble)).size, l(&s(Scalar::LongDouble)).align), (12, 4));
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
    fn fastcall_long_long_uses_two_words() {
        // `fa1(long long ll, int a, int b)`: all on the stack, `ret $16`;
        // `fa2(int a, long long ll, int b)`: a in ecx, ll and b on the stack, `ret $12`.
        let p = fast(vec![s(Scalar::LongLong), int(), int()]);
        assert_eq!(places(&p), [Loc::Stack(0), Loc::Stack(8), Loc::Stack(12)]);
        assert_eq!(pops(&p), (16, 16));
        let p = fast(vec![int(), s(Scalar::LongLong), int()]);
        assert_eq!(places(&p), [ECX, Loc::Stack(0), Loc::Stack(8)]);
        assert_eq!(pops(&p), (12, 12));
    }

    #[test]
    fn fastcall_aggregates_use_words_but_no_register() {
        // `fa3(struct { char c; } s, int a, int b)`, `fa4(struct { int x; } ...)`,
        // `fa5(struct { char c[3]; } ...)`: s on the stack, a in edx, b on the stack, `ret $8`.
        for members in
            [vec![s(Scalar::Char)], vec![int()], vec![Type::Array(Box::new(s(Scalar::Char)), 3)]]
        {
            let p = fast(vec![Type::anon_struct(members), int(), int()]);
            assert_eq!(places(&p), [Loc::Stack(0), EDX, Loc::Stack(4)]);
            assert_eq!(pops(&p), (8, 8));
        }
        // `fa7(struct { float a, b; } s, int a, int b)`: an 8-byte struct (DImode) uses both
        // words: everything on the stack, `ret $16`.
        let ff = Type::anon_struct([s(Scalar::Float), s(Scalar::Float)]);
        let p = fast(vec![ff, int(), int()]);
        assert_eq!(places(&p), [Loc::Stack(0), Loc::Stack(8), Loc::Stack(12)]);
    }

    #[test]
    fn fastcall_floats_use_no_word() {
        // `fa6(struct { float f; } s, int a, int b)` (SFmode), `fa8(double d, int a, int b)`:
        // a in ecx, b in edx. `fa9(char c, short h, int b)`: c in cl, h in dx, b at 4(%esp).
        let p = fast(vec![Type::anon_struct([s(Scalar::Float)]), int(), int()]);
        assert_eq!(places(&p), [Loc::Stack(0), ECX, EDX]);
        assert_eq!(pops(&p), (4, 4));
        let p = fast(vec![s(Scalar::Double), int(), int()]);
        assert_eq!(places(&p), [Loc::Stack(0), ECX, EDX]);
        let p = fast(vec![s(Scalar::Char), s(Scalar::Short), int()]);
        assert_eq!(direct(&p, 0), vec![at(0, 1, ECX)]);
        assert_eq!(direct(&p, 1), vec![at(0, 2, EDX)]);
        assert_eq!(direct(&p, 2), vec![at(0, 4, Loc::Stack(0))]);
    }

    #[test]
    fn complex_values_are_structs_but_float_complex_returns_in_edx_eax() {
        // gcc -m32 -O2 (and clang): `float _Complex ff(void)` loads eax and edx;
        // `double _Complex fd(void)` stores through 4(%esp) and `ret $4`;
        // `void __fastcall f(float _Complex z, int a, int b)`: a in ecx, b in edx (SCmode).
        let p = sysv(Convention::Default, Type::Complex(Scalar::Float), vec![]);
        assert!(matches!(&p.ret, RetPlan::Direct { pieces, .. } if pieces.len() == 2));
        assert_eq!(p.code, ReturnCode::Struct);
        let p = sysv(Convention::Default, Type::Complex(Scalar::Double), vec![]);
        assert!(matches!(p.ret, RetPlan::Indirect { .. }));
        assert_eq!(pops(&p), (4, 4));
        let p = fast(vec![Type::Complex(Scalar::Float), int(), int()]);
        assert_eq!(places(&p), [Loc::Stack(0), ECX, EDX]);
        let wrapped = Type::anon_struct([Type::Complex(Scalar::Double)]);
        assert_eq!(places(&fast(vec![wrapped, int()])), [Loc::Stack(0), ECX]);
    }

    #[test]
    fn fastcall_and_thiscall_take_the_hidden_pointer_in_ecx() {
        // `struct B { int a, b, c; } __fastcall rf(int a, int b)`: `movl %ecx, %eax`, a in
        // edx, b at 4(%esp), `ret $4`. `struct B __thiscall rt(int a, int b)`: pointer in ecx,
        // a and b on the stack, `ret $8`.
        let b = Type::anon_struct([int(), int(), int()]);
        let p = sysv(Convention::Fastcall, b.clone(), vec![int(), int()]);
        assert_eq!((&p.ret, p.code), (&hidden(ECX), ReturnCode::HiddenPointer));
        assert_eq!(places(&p), [EDX, Loc::Stack(0)]);
        assert_eq!(pops(&p), (4, 4));
        let p = sysv(Convention::Thiscall, b, vec![int(), int()]);
        assert_eq!(p.ret, hidden(ECX));
        assert_eq!(places(&p), [Loc::Stack(0), Loc::Stack(4)]);
        assert_eq!(pops(&p), (8, 8));
    }

    #[test]
    fn thiscall_has_one_word() {
        // `ta1(long long ll, int a, int b)`: all on the stack, `ret $16`;
        // `ta2(struct { int x; } s, int a)`: both on the stack, `ret $8`;
        // `ta4(double d, int a)`: a in ecx, `ret $8`.
        let th = |args| sysv(Convention::Thiscall, Type::Void, args);
        let p = th(vec![s(Scalar::LongLong), int(), int()]);
        assert_eq!(places(&p), [Loc::Stack(0), Loc::Stack(8), Loc::Stack(12)]);
        assert_eq!(pops(&p), (16, 16));
        let p = th(vec![Type::anon_struct([int()]), int()]);
        assert_eq!(places(&p), [Loc::Stack(0), Loc::Stack(4)]);
        let p = th(vec![s(Scalar::Double), int()]);
        assert_eq!(places(&p), [Loc::Stack(0), ECX]);
        assert_eq!(pops(&p), (8, 8));
        assert!(p.to_string().contains("[0..4] ecx"), "{p}");
    }
}
