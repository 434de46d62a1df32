//! `aarch64-apple`: Apple's variant of the AAPCS64 (Apple, "Writing ARM64 code for Apple
//! platforms", developer.apple.com/documentation/xcode). Only Apple's deltas are stated here;
//! every other rule is the base standard's, planned by [`crate::aarch64_aapcs64`].
//!
//! Deltas that change a plan:
//! * "Pass arguments to functions correctly": "Function arguments may consume slots on the
//!   stack that are not multiples of 8 bytes" — scalars and HFAs on the stack take their natural
//!   size and alignment (clang: after 8 x registers, `char, short, char, int` land at
//!   `[sp]`, `[sp+2]`, `[sp+4]`, `[sp+8]`). Other composites keep the base standard's rounding to
//!   8-byte multiples at 8-byte alignment (clang: `struct { char a; }` after a `char` lands at
//!   `[sp+8]`). The whole stack area is padded to a multiple of 8.
//! * A composite's alignment for passing is its whole `_Alignof`, its own `aligned(N)`
//!   included, not the base standard's natural alignment (clang: `union { int a[3]; }
//!   __attribute__((aligned(16)))` takes a 16-aligned stack slot).
//! * C.10 is dropped: a 16-aligned composite may start at an odd x register (clang: the union
//!   above after an `int` takes x1 and x2).
//! * Variadic functions: every unnamed argument goes on the stack ("Update code that passes
//!   arguments to variadic functions"), in 8-byte-aligned slots whose size rounds up to 8, a
//!   16-aligned one 16-aligned. An HFA is passed as the array of its members, so it is never
//!   16-aligned (clang: `struct __attribute__((aligned(16))) { double a, b; }` after an `int`
//!   lands at `[sp+8]`). A composite larger than 16 bytes still travels by reference, its
//!   pointer in a slot.
//!
//! Deltas that need nothing here:
//! * "Handle data types and data alignment properly": `char` is signed (the [`AbiSpec`]
//!   default); `long double` is `double`.
//! * "The caller of a function is responsible for signing or zero-extending any argument with
//!   fewer than 32 bits": the callee only reads each piece's own bytes. For results clang
//!   applies the same rule the other way round: the callee extends (`char r(int a)` is
//!   `sxtb w0, w0; ret`) and the caller relies on it (no extension after `blr`); the shared
//!   planner always extends narrow results, which meets it.

use crate::aarch64_aapcs64::{Aarch64Aapcs64, Variant};
use crate::abi::{Abi, AbiSpec, Authority, Judge, RegisterFile, Toolchain};
use crate::layout::Layout;
use crate::plan::Placement;
use crate::reg::Reg;
use crate::stubs::StubFamily;
use crate::types::{Convention, Scalar};
use crate::AbiError;

/// The AAPCS64 as Apple platforms (macOS, iOS) use it.
pub struct Aarch64Apple;

const APPLE: Variant = Variant {
    abi: Abi::Aarch64Apple,
    natural_stack: true,
    adjusted_alignment: true,
    even_pairs: false,
    variadic_on_stack: true,
};

impl AbiSpec for Aarch64Apple {
    fn abi(&self) -> Abi {
        Abi::Aarch64Apple
    }

    fn scalar_layout(&self, s: Scalar) -> Option<(u32, u32)> {
        // "Handle data types and data alignment properly": `long` is 64 bits; the integer
        // table is the base standard's LP64 one.
        Aarch64Aapcs64.scalar_layout(s)
    }

    // "Writing ARM64 code for Apple platforms", data types: `long double` is a double-
    // precision IEEE 754 value (AAPCS64 leaves the type to the platform).
    fn long_double(&self) -> Scalar {
        Scalar::Double
    }

    fn int_arg_regs(&self, conv: Convention) -> &'static [Reg] {
        Aarch64Aapcs64.int_arg_regs(conv)
    }

    fn int_ret_regs(&self) -> &'static [Reg] {
        Aarch64Aapcs64.int_ret_regs()
    }

    fn float_regs(&self) -> &'static [Reg] {
        Aarch64Aapcs64.float_regs()
    }

    fn registers(&self) -> RegisterFile {
        // "Respect the purpose of specific CPU registers": x18 is reserved for the platform
        // ("Don't use this register"), where the base standard lets Linux use it as a
        // temporary. The base standard's lists leave x18 out, so they serve unchanged.
        Aarch64Aapcs64.registers()
    }

    fn place(&self, _: Convention, args: &[Layout], ret: &Layout) -> Result<Placement, AbiError> {
        Ok(APPLE.place(args, ret, args.len()))
    }

    fn place_variadic(
        &self,
        _: Convention,
        args: &[Layout],
        named: usize,
        ret: &Layout,
    ) -> Result<Placement, AbiError> {
        Ok(APPLE.place(args, ret, named))
    }

    fn stub_family(&self) -> StubFamily {
        // As AAPCS64 (Apple's "Writing ARM64 code for Apple platforms" changes only the stack).
        StubFamily::ShiftInt
    }

    fn toolchain(&self) -> Toolchain {
        Toolchain {
            clang_target: "arm64-apple-macos",
            gcc: &[],
            authority: Authority {
                source: "Apple's \"Writing ARM64 code for Apple platforms\", as the newest clang \
                         implements it (from clang 16: its homogeneous aggregates ignore \
                         zero-width bit-fields, as AAPCS64 says, since clang 15, and a \
                         variadic function's named stack arguments take their natural size \
                         since clang 16)",
                judge: Judge::Clang { since: 16 },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ArgPass, Piece, RetPlan};
    use crate::types::Type;
    use crate::{CallPlan, Signature};
    use crate::{Extend, Loc};

    const ABI: Abi = Abi::Aarch64Apple;

    fn s(x: Scalar) -> Type {
        Type::scalar(x)
    }

    fn st(members: &[Scalar]) -> Type {
        Type::anon_struct(members.iter().copied().map(s))
    }

    fn plan(ret: Type, args: Vec<Type>) -> CallPlan {
        ABI.plan(&Signature::new(ret, args)).unwrap()
    }

    /// The single piece of argument `i`, which must be direct.
    fn one(plan: &CallPlan, i: usize) -> Piece {
        match &plan.args[i].pass {
            ArgPass::Direct(pieces) if pieces.len() == 1 => pieces[0],
            other => panic!("argument {i} is {other:?}"),
        }
    }

    fn stack(offset: u32, size: u32) -> Piece {
        Piece { offset: 0, size, loc: Loc::Stack(offset) }
    }

    #[test]
    fn scalars_packed_on_the_stack() {
        // clang, caller of `void (*)(8 x long, char, short, char, int, char, long)`:
        // strb [sp], strh [sp+2], strb [sp+4], str w [sp+8], strb [sp+12], str x [sp+16];
        // the callee reads them with ldrsb/ldrsh at the same offsets.
        let mut args = vec![s(Scalar::Long); 8];
        let more = [Scalar::Char, Scalar::Short, Scalar::Char, Scalar::Int, Scalar::Char];
        args.extend(more.into_iter().chain([Scalar::Long]).map(s));
        let plan = plan(Type::Void, args);
        let got: Vec<_> = (8..14).map(|i| one(&plan, i)).collect();
        let want = [stack(0, 1), stack(2, 2), stack(4, 1), stack(8, 4), stack(12, 1), stack(16, 8)];
        assert_eq!(got, want);
        assert_eq!(plan.stack_bytes, 24);
    }

    #[test]
    fn floats_packed_on_the_stack() {
        // clang, caller of `void (*)(8 x double, float, float, double, float)`:
        // `stp s0, s0, [sp]`, the double at [sp+8], the last float at [sp+16].
        let mut args = vec![s(Scalar::Double); 8];
        args.extend([Scalar::Float, Scalar::Float, Scalar::Double, Scalar::Float].map(s));
        let plan = plan(Type::Void, args);
        let got: Vec<_> = (8..12).map(|i| one(&plan, i)).collect();
        assert_eq!(got, [stack(0, 4), stack(4, 4), stack(8, 8), stack(16, 4)]);
        // 20 bytes of arguments, padded to a multiple of 8.
        assert_eq!(plan.stack_bytes, 24);
    }

    #[test]
    fn composites_keep_eight_byte_slots() {
        // clang, caller of `void (*)(8 x long, char, struct C3, char, struct I3, char)` with
        // C3 = { char a, b, c; }, I3 = { int a, b, c; }: strb [sp], C3 as a whole x register at
        // [sp+8], strb [sp+16], I3 as two x registers at [sp+24] and [sp+32], strb [sp+40].
        let (c3, i3) = (st(&[Scalar::Char; 3]), st(&[Scalar::Int; 3]));
        let mut args = vec![s(Scalar::Long); 8];
        args.extend([s(Scalar::Char), c3, s(Scalar::Char), i3, s(Scalar::Char)]);
        let plan = plan(Type::Void, args);
        let got: Vec<_> = (8..13).map(|i| one(&plan, i)).collect();
        assert_eq!(got, [stack(0, 1), stack(8, 3), stack(16, 1), stack(24, 12), stack(40, 1)]);
        assert_eq!(plan.stack_bytes, 48);
        // `struct { char a; }` too: strb [sp], then the struct at [sp+8].
        let mut args = vec![s(Scalar::Long); 8];
        args.extend([s(Scalar::Char), st(&[Scalar::Char])]);
        assert_eq!(one(&plan_of(args), 9), stack(8, 1));
    }

    fn plan_of(args: Vec<Type>) -> CallPlan {
        plan(Type::Void, args)
    }

    #[test]
    fn hfa_packed_on_the_stack() {
        // clang, caller of `void (*)(6 x double, struct H3, float, float, char, struct H3)` with
        // H3 = { float a, b, c; }: d0–d5, the first H3 at [sp], [sp+4], [sp+8] (v6/v7 too few,
        // NSRN = 8 as in C.3), the floats at [sp+12] and [sp+16] (no rounding of the HFA to 16
        // bytes), the char in w0, the second H3 at [sp+20] (4-aligned, not 8).
        let h3 = st(&[Scalar::Float; 3]);
        let mut args = vec![s(Scalar::Double); 6];
        args.extend([h3.clone(), s(Scalar::Float), s(Scalar::Float), s(Scalar::Char), h3]);
        let plan = plan_of(args);
        assert_eq!(one(&plan, 6), stack(0, 12));
        assert_eq!(one(&plan, 7), stack(12, 4));
        assert_eq!(one(&plan, 8), stack(16, 4));
        assert_eq!(one(&plan, 9), Piece { offset: 0, size: 1, loc: Loc::Int(0) });
        assert_eq!(one(&plan, 10), stack(20, 12));
        assert_eq!(plan.stack_bytes, 32);
    }

    #[test]
    fn registers_run_out_as_in_the_base_standard() {
        // clang, caller of `void (*)(7 x double, float, struct { double a, b; }, float)`: the
        // first float in s7, the HFA at [sp] and [sp+8], the last float at [sp+16] (NSRN = 8).
        let mut args = vec![s(Scalar::Double); 7];
        args.extend([s(Scalar::Float), st(&[Scalar::Double; 2]), s(Scalar::Float)]);
        let plan = plan_of(args);
        assert_eq!(one(&plan, 7), Piece { offset: 0, size: 4, loc: Loc::Float(7) });
        assert_eq!(one(&plan, 8), stack(0, 16));
        assert_eq!(one(&plan, 9), stack(16, 4));
        // `void (*)(7 x int, struct { long a, b; }, char, int)`: the struct at [sp], then
        // strb [sp+16] and str w [sp+20] (NGRN = 8, then packed).
        let mut args = vec![s(Scalar::Int); 7];
        args.extend([st(&[Scalar::Long; 2]), s(Scalar::Char), s(Scalar::Int)]);
        let plan = plan_of(args);
        let got: Vec<_> = (7..10).map(|i| one(&plan, i)).collect();
        assert_eq!(got, [stack(0, 16), stack(16, 1), stack(20, 4)]);
        assert_eq!(plan.stack_bytes, 24);
        // A by-reference composite's pointer on the stack stays 8-aligned: `void (*)(8 x long,
        // char, struct { long a, b, c; }, char)` stores strb [sp], the address at [sp+8],
        // strb [sp+16].
        let mut args = vec![s(Scalar::Long); 8];
        args.extend([s(Scalar::Char), st(&[Scalar::Long; 3]), s(Scalar::Char)]);
        let plan = plan_of(args);
        assert_eq!(plan.args[9].pass, ArgPass::Indirect { pointer: Loc::Stack(8) });
        assert_eq!(one(&plan, 10), stack(16, 1));
    }

    #[test]
    fn char_is_signed_and_narrow_results_are_extended() {
        // clang: `char r4(int a)` is `sxtb w0, w0`, `unsigned char r5(int)` is
        // `and w0, w0, #0xff`, `short r6(int)` is `sxth w0, w0`; a caller of `char (*)(void)`
        // uses w0 as is.
        assert!(crate::is_signed(ABI, Scalar::Char));
        let ret = |t: Scalar| plan(s(t), vec![]).ret;
        let int0 = |size| vec![Piece { offset: 0, size, loc: Loc::Int(0) }];
        assert_eq!(ret(Scalar::Char), RetPlan::Direct { pieces: int0(1), extend: Extend::Sign });
        assert_eq!(ret(Scalar::UChar), RetPlan::Direct { pieces: int0(1), extend: Extend::Zero });
        assert_eq!(ret(Scalar::Short), RetPlan::Direct { pieces: int0(2), extend: Extend::Sign });
    }

    #[test]
    fn same_registers_and_results_as_the_base_standard() {
        // Register names and the x8 result are shared with aarch64-aapcs64.
        let big = st(&[Scalar::Long; 3]);
        let text = plan(big, vec![st(&[Scalar::Float; 3]), s(Scalar::Int)]).to_string();
        assert!(text.contains("[0..4] v0, [4..8] v1, [8..12] v2"), "{text}");
        assert!(text.contains("[0..4] x0"), "{text}");
        assert!(text.contains("hidden pointer in x8"), "{text}");
    }
}
