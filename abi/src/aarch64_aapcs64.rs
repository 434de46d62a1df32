//! `aarch64-aapcs64`: the Procedure Call Standard for the Arm 64-bit Architecture (AAPCS64),
//! as used on Linux. Rule ids are those of the releases since 2020Q2 (the ones with the SVE
//! rules B.1 and C.7/C.8): "Homogeneous Aggregates" (§5, Composite Types), §6.8.2 "Parameter
//! Passing Rules" (stages A–C), §6.9 "Result Return".
//!
//! Arguments: x0–x7 (NGRN), v0–v7 (NSRN), then the stack from the stack pointer at entry (NSAA).
//! HFAs take one v register per member; other composites of up to 16 bytes take one or two
//! x registers, larger ones travel by reference. Results: x0/x1, v0–v3, or memory whose address
//! the caller passes in x8.
//!
//! The planner here is shared with `aarch64-apple` (`aarch64_apple.rs`), which states only the
//! platform's deltas as a [`Variant`].

use crate::abi::{Abi, AbiSpec, Authority, Judge, RegisterFile, Toolchain};
use crate::layout::{round_up, Layout};
use crate::plan::{
    chunks, result_extend, Allocator, ArgPass, ArgPlan, Loc, Piece, Placement, RetPlan, ReturnCode,
};
use crate::reg::Reg;
use crate::stubs::StubFamily;
use crate::types::{Convention, Scalar};
use crate::AbiError;

/// The AAPCS64 as used on Linux (and other ELF platforms).
pub struct Aarch64Aapcs64;

/// x0–x7 carry arguments and x0/x1 results; `Loc::Int(8)` is x8, the indirect result register.
const XREGS: [Reg; 9] =
    [Reg::X0, Reg::X1, Reg::X2, Reg::X3, Reg::X4, Reg::X5, Reg::X6, Reg::X7, Reg::X8];
const VREGS: [Reg; 8] = [Reg::V0, Reg::V1, Reg::V2, Reg::V3, Reg::V4, Reg::V5, Reg::V6, Reg::V7];

/// §6.9: "The address of the memory block shall be passed as an additional argument to the
/// function in x8."
const INDIRECT_RESULT: Loc = Loc::Int(8);

/// The choices a platform ABI makes on top of the base standard: everything that differs
/// between `aarch64-aapcs64` and `aarch64-apple`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Variant {
    /// the ABI the plans are for
    pub(crate) abi: Abi,
    /// Stack arguments other than non-HFA composites take their natural size and alignment
    /// instead of C.3/C.5/C.16's 8-byte rounding and C.4/C.14's 8-byte alignment.
    pub(crate) natural_stack: bool,
    /// A composite's alignment for passing is its whole `_Alignof`, the record's own
    /// `aligned(N)` included, instead of §5.6's natural alignment (its members' largest).
    pub(crate) adjusted_alignment: bool,
    /// C.10: a 16-aligned composite starts at an even x register.
    pub(crate) even_pairs: bool,
    /// A variadic call's unnamed arguments all go on the stack, in 8-byte slots.
    pub(crate) variadic_on_stack: bool,
}

/// The base standard: every stack argument in 8-byte-aligned, 8-byte-padded slots.
const LINUX: Variant = Variant {
    abi: Abi::Aarch64Aapcs64,
    natural_stack: false,
    adjusted_alignment: false,
    even_pairs: true,
    variadic_on_stack: false,
};

/// How a value of one layout travels (§6.8.2 stage B, then the stage C rule that applies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// a floating-point scalar: C.1, else C.4–C.6
    Float,
    /// an integral or pointer scalar: C.9, else C.14–C.17
    Int,
    /// an HFA of `count` members of `base` (B.3): C.2, else C.3–C.6
    Hfa { base: u32, count: u8 },
    /// any other composite of at most 16 bytes (B.5): C.12, else C.13–C.15
    Composite,
    /// a composite larger than 16 bytes (B.4): a pointer to a caller-made copy
    ByReference,
}

/// "Homogeneous Aggregates": an HFA is a composite whose members' fundamental types are all the
/// same floating-point type, with at most four "uniquely addressable" members; its size is the
/// base type's size times that count. Returns `(base size, member count)`.
///
/// The members are the layout's leaves. A union's members overlap, so the uniquely addressable
/// ones are the distinct offsets: clang and GCC treat `union { float a[2]; float b; }` as an
/// HFA of two floats. They must tile the whole size: padding (`aligned(16)` on a lone `float`)
/// makes it no HFA.
fn hfa(layout: &Layout) -> Option<(u32, u8)> {
    // At most four members of at most 16 bytes: a larger composite is no HFA, and its leaves
    // (a 16 MiB array has millions) are not worth listing.
    if layout.size > 4 * 16 {
        return None;
    }
    let leaves = layout.leaves();
    let first = leaves.first()?;
    let same = leaves.iter().all(|leaf| leaf.scalar == first.scalar);
    if !layout.is_aggregate() || !first.scalar.is_float() || !same {
        return None;
    }
    let mut offsets: Vec<u32> = leaves.iter().map(|leaf| leaf.offset).collect();
    offsets.sort_unstable();
    offsets.dedup();
    let tiled = offsets.iter().enumerate().all(|(i, &o)| o == i as u32 * first.size);
    let count = offsets.len() as u32;
    (tiled && count <= 4 && count * first.size == layout.size).then_some((first.size, count as u8))
}

fn classify(layout: &Layout) -> Class {
    match (layout.scalar(), hfa(layout)) {
        (Some(s), _) if s.is_float() => Class::Float,
        // C.8–C.9: a 16-byte integral value is 16-aligned and takes two x registers, or a
        // 16-aligned stack slot: what a 16-byte composite of the same alignment does.
        (Some(_), _) if layout.size == 16 => Class::Composite,
        (Some(_), _) => Class::Int,
        (None, Some((base, count))) => Class::Hfa { base, count },
        // B.4: "If the argument type is a Composite Type that is larger than 16 bytes, then the
        // argument is copied to memory allocated by the caller and the argument is replaced by a
        // pointer to the copy."
        (None, None) if layout.size > 16 => Class::ByReference,
        (None, None) => Class::Composite,
    }
}

/// All of `layout`'s bytes at one location.
fn whole(layout: &Layout, loc: Loc) -> Piece {
    Piece { offset: 0, size: layout.size, loc }
}

/// The pieces of an HFA in consecutive v registers from `first`, one member each (C.2, §6.9).
fn hfa_pieces(layout: &Layout, base: u32, first: u8) -> Vec<Piece> {
    chunks(0, layout.size, base, |i| Loc::Float(first + i as u8))
}

/// The pieces of a composite in consecutive x registers from `first`, as if loaded with LDRs
/// from a double-word aligned address (C.12, §6.9).
fn composite_pieces(layout: &Layout, first: u8) -> Vec<Piece> {
    chunks(0, layout.size, 8, |i| Loc::Int(first + i as u8))
}

impl Variant {
    /// Places `size` bytes of a value of `class` at the next stacked argument address (NSAA).
    fn stack(self, alloc: &mut Allocator, class: Class, size: u32, align: u32) -> Loc {
        let offset = if class == Class::Composite || !self.natural_stack {
            // B.5 rounds a composite's size up to a multiple of 8 (C.3 an HFA's, C.5 and C.16 a
            // smaller scalar's: "the size of the argument is set to 8 bytes"); C.4 and C.14
            // round the NSAA up to "the larger of 8 or the Natural Alignment of the argument's
            // type" (at most 16: GCC's STACK_BOUNDARY, clang's i128 slots).
            alloc.take_stack(size, align.clamp(8, 16), 8)
        } else {
            alloc.take_stack(size, align.min(16), 1)
        };
        Loc::Stack(offset)
    }

    /// The alignment that places a value in registers and on the stack: §5.6's natural
    /// alignment, or (Apple) the whole `_Alignof`.
    fn alignment(self, layout: &Layout) -> u32 {
        if self.adjusted_alignment {
            layout.align
        } else {
            layout.natural_align
        }
    }

    /// §6.8.2 stage C for one argument.
    fn arg(self, alloc: &mut Allocator, layout: &Layout) -> ArgPlan {
        let class = classify(layout);
        let align = self.alignment(layout);
        if class == Class::Composite && align >= 16 && self.even_pairs {
            // C.10: "If the argument has an alignment of 16 then the NGRN is rounded up to the
            // next even number."
            alloc.next_int += alloc.next_int % 2;
        }
        let in_regs = match class {
            // C.1: "allocated to the least significant bits of register v[NSRN]".
            Class::Float => alloc.take_float(1).map(|v| vec![whole(layout, Loc::Float(v))]),
            // C.9: "copied to the least significant bits in x[NGRN]".
            Class::Int => alloc.take_int(1).map(|x| vec![whole(layout, Loc::Int(x))]),
            // C.2: "allocated to SIMD and Floating-point Registers (with one register per member
            // of the HFA)"; otherwise C.3: "the NSRN is set to 8".
            Class::Hfa { base, count } => match alloc.take_float(count) {
                Some(v) => Some(hfa_pieces(layout, base, v)),
                None => {
                    alloc.next_float = alloc.float_regs;
                    None
                }
            },
            // C.12: "If the argument is a Composite Type and the size in double-words of the
            // argument is not more than 8 minus NGRN, then the argument is copied into
            // consecutive general-purpose registers"; otherwise C.13: "The NGRN is set to 8".
            Class::Composite => match alloc.take_int(layout.size.div_ceil(8) as u8) {
                Some(x) => Some(composite_pieces(layout, x)),
                None => {
                    alloc.next_int = alloc.int_regs;
                    None
                }
            },
            // B.4 then C.9 / C.14–C.17 for the pointer, an 8-byte integral value.
            Class::ByReference => {
                let pointer = match alloc.take_int(1) {
                    Some(x) => Loc::Int(x),
                    None => self.stack(alloc, Class::Int, 8, 8),
                };
                return ArgPlan { layout: layout.clone(), pass: ArgPass::Indirect { pointer } };
            }
        };
        // C.6 / C.15 / C.17: "copied to memory at the adjusted NSAA". An HFA's slot is aligned
        // as its base type unless the HFA is aligned to 16 or more (GCC: 16, at least 8 anyway;
        // Apple clang: always its base type's).
        let align = match class {
            Class::Hfa { base, .. } if align < 16 || self.natural_stack => base,
            _ => align,
        };
        let pieces = in_regs
            .unwrap_or_else(|| vec![whole(layout, self.stack(alloc, class, layout.size, align))]);
        ArgPlan { layout: layout.clone(), pass: ArgPass::Direct(pieces) }
    }

    /// An unnamed argument of a variadic call where the platform puts them all on the stack:
    /// a value of at most 16 bytes in 8-byte-aligned slots rounded up to 8 bytes (16-aligned
    /// for a 16-aligned one, but an HFA, passed as an array of its members, never), a larger
    /// composite by reference with its pointer in a slot.
    fn unnamed_on_stack(self, alloc: &mut Allocator, layout: &Layout) -> ArgPlan {
        let align = match classify(layout) {
            Class::ByReference => {
                let pointer = Loc::Stack(alloc.take_stack(8, 8, 8));
                return ArgPlan { layout: layout.clone(), pass: ArgPass::Indirect { pointer } };
            }
            Class::Hfa { .. } => 8,
            _ => self.alignment(layout).clamp(8, 16),
        };
        let offset = alloc.take_stack(layout.size, align, 8);
        ArgPlan {
            layout: layout.clone(),
            pass: ArgPass::Direct(vec![whole(layout, Loc::Stack(offset))]),
        }
    }

    /// §6.9: a result returns in the registers that the same value would take as the first
    /// argument of `void func(T arg)`, else through memory whose address arrives in x8.
    fn ret(self, layout: &Layout) -> (RetPlan, ReturnCode) {
        if layout.size == 0 {
            return (RetPlan::Void, ReturnCode::Void);
        }
        let (pieces, code) = match (classify(layout), layout.scalar()) {
            (Class::Float, Some(Scalar::Float)) => {
                (vec![whole(layout, Loc::Float(0))], ReturnCode::Float)
            }
            (Class::Float, _) => (vec![whole(layout, Loc::Float(0))], ReturnCode::Double),
            (Class::Int, _) => (vec![whole(layout, Loc::Int(0))], ReturnCode::Word),
            (Class::Hfa { base, .. }, _) => (hfa_pieces(layout, base, 0), ReturnCode::Struct),
            (Class::Composite, _) => (composite_pieces(layout, 0), ReturnCode::Struct),
            (Class::ByReference, _) => {
                let plan = RetPlan::Indirect { pointer: INDIRECT_RESULT, returned_in: None };
                return (plan, ReturnCode::HiddenPointer);
            }
        };
        // The base standard leaves a narrow result's upper bits unspecified (clang callers
        // narrow: `and w0, w0, #0xff` after a call returning `char`); Apple requires the callee
        // to extend to 32 bits. Extending always satisfies both.
        (RetPlan::Direct { pieces, extend: result_extend(self.abi, layout) }, code)
    }

    /// The whole plan: stage A, the result, then every argument in order.
    /// `named`: how many arguments are named; the rest are a variadic call's unnamed ones.
    pub(crate) fn place(self, args: &[Layout], ret: &Layout, named: usize) -> Placement {
        // The i386 convention keywords have no meaning here; compilers ignore them (with a
        // warning), and so do the plans.
        // A.1–A.4: NGRN = NSRN = 0, NSAA = SP. The x8 result pointer takes no argument
        // register, so the result can be planned in any order.
        let mut alloc = Allocator::new(8, 8);
        let (ret_plan, code) = self.ret(ret);
        let args = args
            .iter()
            .enumerate()
            .map(|(i, layout)| {
                if i >= named && self.variadic_on_stack {
                    self.unnamed_on_stack(&mut alloc, layout)
                } else {
                    self.arg(&mut alloc, layout)
                }
            })
            .collect();
        // §6.8.2: "Both before and after the layout of each argument, then NSAA will have a
        // minimum alignment of 8" — already true in 8-byte slots; packed stacks pad the end.
        let stack_bytes = round_up(alloc.stack, 8);
        Placement { args, ret: ret_plan, code, stack_bytes, callee_pop: 0 }
    }
}

impl AbiSpec for Aarch64Aapcs64 {
    fn va_start(&self) -> crate::plan::VaStart {
        crate::plan::VaStart::Aapcs64
    }

    // AAPCS64 §10.1.8.1: a bit-field's container type aligns the aggregate "without exception
    // for zero-sized or anonymous bit-fields".
    fn va_list(&self) -> crate::layout::VaList {
        crate::layout::VaList::Aapcs64
    }

    fn unnamed_bit_fields_align(&self) -> bool {
        true
    }

    fn abi(&self) -> Abi {
        Abi::Aarch64Aapcs64
    }

    fn scalar_layout(&self, s: Scalar) -> Option<(u32, u32)> {
        // "Fundamental Data Types" (Table 1) and "Types Varying by Data Model" (LP64): `long`
        // and pointers are 8 bytes, every scalar is naturally aligned; quad precision is 16
        // bytes.
        match s {
            Scalar::Binary128 => Some((16, 16)),
            _ => crate::layout::lp64_scalar_layout(s),
        }
    }

    // "Arm C and C++ Language Mappings", Table 3: `long double` is quad precision (binary128),
    // passed like any floating-point type, in a whole q register (§6.8.2 C.1).
    fn long_double(&self) -> Scalar {
        Scalar::Binary128
    }

    fn char_is_signed(&self) -> bool {
        // "Arm C and C++ Language Mappings", Arithmetic Types, Table 3: `char` is an unsigned
        // byte.
        false
    }

    fn wchar(&self) -> (u32, bool) {
        // "Arm C and C++ Language Mappings", Table 3: `wchar_t` is an unsigned int (GCC and
        // glibc agree on Linux).
        (4, false)
    }

    fn int_arg_regs(&self, _conv: Convention) -> &'static [Reg] {
        &XREGS
    }

    fn int_ret_regs(&self) -> &'static [Reg] {
        &XREGS
    }

    fn float_regs(&self) -> &'static [Reg] {
        &VREGS
    }

    fn registers(&self) -> RegisterFile {
        RegisterFile {
            stack_pointer: Reg::Sp,
            // `bl`/`blr` leave the return address in the link register, x30.
            link_register: Some(Reg::X30),
            // §6.1.1: "A subroutine invocation must preserve the contents of the registers
            // r19-r29 and SP" (x29 is the frame pointer). x0–x7 (arguments, results), x8 (the
            // indirect result address), x9–x15 (temporaries) and x16/x17 (IP0/IP1) need not
            // be preserved. x18, the platform register, is in neither list: "If a platform
            // ABI has no such requirements, it should use r18 as an additional temporary
            // register" — Linux compilers do, Apple reserves it (`aarch64_apple.rs`).
            callee_saved: &[
                Reg::X19,
                Reg::X20,
                Reg::X21,
                Reg::X22,
                Reg::X23,
                Reg::X24,
                Reg::X25,
                Reg::X26,
                Reg::X27,
                Reg::X28,
                Reg::X29,
            ],
            // §6.1.2: "Registers v8-v15 must be preserved by a callee across subroutine calls
            // [...] only the bottom 64 bits of each value stored in v8-v15 need to be
            // preserved" (d8–d15); v0–v7 and v16–v31 need not be.
            callee_saved_float: &[
                Reg::D8,
                Reg::D9,
                Reg::D10,
                Reg::D11,
                Reg::D12,
                Reg::D13,
                Reg::D14,
                Reg::D15,
            ],
            callee_saved_float_bytes: 8,
            caller_saved: &[
                Reg::X0,
                Reg::X1,
                Reg::X2,
                Reg::X3,
                Reg::X4,
                Reg::X5,
                Reg::X6,
                Reg::X7,
                Reg::X8,
                Reg::X9,
                Reg::X10,
                Reg::X11,
                Reg::X12,
                Reg::X13,
                Reg::X14,
                Reg::X15,
                Reg::X16,
                Reg::X17,
            ],
            caller_saved_float: &[
                Reg::V0,
                Reg::V1,
                Reg::V2,
                Reg::V3,
                Reg::V4,
                Reg::V5,
                Reg::V6,
                Reg::V7,
                Reg::V16,
                Reg::V17,
                Reg::V18,
                Reg::V19,
                Reg::V20,
                Reg::V21,
                Reg::V22,
                Reg::V23,
                Reg::V24,
                Reg::V25,
                Reg::V26,
                Reg::V27,
                Reg::V28,
                Reg::V29,
                Reg::V30,
                Reg::V31,
            ],
            // "The Stack", stack constraints at a public interface: "SP mod 16 = 0".
            call_alignment: 16,
        }
    }

    fn place(&self, _: Convention, args: &[Layout], ret: &Layout) -> Result<Placement, AbiError> {
        Ok(LINUX.place(args, ret, args.len()))
    }

    fn stub_family(&self) -> StubFamily {
        // §6.8.2 C.9-C.11: integer arguments take the next of x0-x7, independently of the
        // SIMD registers: a leading pointer moves only the integer ones.
        StubFamily::ShiftInt
    }

    fn toolchain(&self) -> Toolchain {
        Toolchain {
            clang_target: "aarch64-linux-gnu",
            gcc: &["aarch64-linux-gnu-gcc"],
            authority: Authority {
                source:
                    "the AAPCS64 (Arm IHI 0055), which GCC, the system compiler of AArch64 Linux, \
                         follows",
                judge: Judge::Gcc,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{AggregateKind, Type};
    use crate::Extend;
    use crate::{CallPlan, Signature};

    const ABI: Abi = Abi::Aarch64Aapcs64;

    fn s(x: Scalar) -> Type {
        Type::scalar(x)
    }

    fn st(members: &[Scalar]) -> Type {
        Type::anon_struct(members.iter().copied().map(s))
    }

    fn sig(ret: Type, args: Vec<Type>) -> CallPlan {
        ABI.plan(&Signature::new(ret, args)).unwrap()
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

    fn doubles(n: usize) -> Vec<Type> {
        vec![s(Scalar::Double); n]
    }

    #[test]
    fn hfa_of_four_doubles() {
        // clang, caller of `double (*)(struct H4d, double)` with H4d = { double a, b, c, d; }:
        // the struct stays in d0–d3 and `fmov d4, #5.0`; callee `struct H4d r2(double)` returns
        // in d0–d3.
        let h4d = st(&[Scalar::Double; 4]);
        let plan = sig(s(Scalar::Double), vec![h4d.clone(), s(Scalar::Double)]);
        let want: Vec<_> = (0..4).map(|i| piece(i * 8, 8, Loc::Float(i as u8))).collect();
        assert_eq!(direct(&plan, 0), want);
        assert_eq!(direct(&plan, 1), [piece(0, 8, Loc::Float(4))]);
        let plan = sig(h4d, vec![s(Scalar::Double)]);
        assert_eq!(plan.ret, RetPlan::Direct { pieces: want, extend: Extend::None });
        assert_eq!(plan.code, ReturnCode::Struct);
    }

    #[test]
    fn hfa_of_three_floats_one_member_per_register() {
        // clang IR for `float u1(struct Nest n, union UF u, float z)` with
        // Nest = { struct { float x; } a; float b[2]; }, UF = { float a[2]; float b; }:
        // `[3 x float]`, `[2 x float]`, float; the code adds s2 (n.b[1]), s4 (u.a[1]), s5 (z).
        let inner = st(&[Scalar::Float]);
        let nest = Type::anon_struct([inner, Type::Array(Box::new(s(Scalar::Float)), 2)]);
        let uf = Type::aggregate(
            AggregateKind::Union,
            [Type::Array(Box::new(s(Scalar::Float)), 2), s(Scalar::Float)],
        );
        let plan = sig(s(Scalar::Float), vec![nest, uf, s(Scalar::Float)]);
        assert_eq!(
            direct(&plan, 0),
            [piece(0, 4, Loc::Float(0)), piece(4, 4, Loc::Float(1)), piece(8, 4, Loc::Float(2))]
        );
        assert_eq!(direct(&plan, 1), [piece(0, 4, Loc::Float(3)), piece(4, 4, Loc::Float(4))]);
        assert_eq!(direct(&plan, 2), [piece(0, 4, Loc::Float(5))]);
        assert!(plan.to_string().contains("[8..12] v2"));
    }

    #[test]
    fn not_hfas() {
        // clang: `float u5(struct { double d; float f; } h, float z)` gets `[2 x i64]` and reads
        // h.f from x1 (`fmov s1, w1`); `struct { float a[5]; }` (20 bytes) arrives by reference
        // (`ldr s1, [x0, #16]`).
        let plan = sig(s(Scalar::Float), vec![st(&[Scalar::Double, Scalar::Float])]);
        assert_eq!(direct(&plan, 0), [piece(0, 8, Loc::Int(0)), piece(8, 8, Loc::Int(1))]);
        let h5 = Type::anon_struct([Type::Array(Box::new(s(Scalar::Float)), 5)]);
        let plan = sig(s(Scalar::Float), vec![h5, s(Scalar::Float)]);
        assert_eq!(plan.args[0].pass, ArgPass::Indirect { pointer: Loc::Int(0) });
        assert_eq!(direct(&plan, 1), [piece(0, 4, Loc::Float(0))]);
        // A union of float and double mixes base types: in x0 (clang: `mov x0, x1` moves it).
        let ufd = Type::aggregate(AggregateKind::Union, [s(Scalar::Float), s(Scalar::Double)]);
        let plan = sig(Type::Void, vec![ufd]);
        assert_eq!(direct(&plan, 0), [piece(0, 8, Loc::Int(0))]);
    }

    #[test]
    fn hfa_goes_to_the_stack_when_v_registers_run_out() {
        // clang, caller of `void (*)(6 x double, struct H3, float)` with H3 = { float a, b, c; }:
        // d0–d5, then the HFA at [sp], [sp+4], [sp+8] and the float at [sp+16], not in v6
        // (C.3 set NSRN to 8; C.3 also rounded the HFA's 12 bytes up to 16).
        let mut args = doubles(6);
        args.push(st(&[Scalar::Float; 3]));
        args.push(s(Scalar::Float));
        let plan = sig(Type::Void, args);
        assert_eq!(direct(&plan, 6), [piece(0, 12, Loc::Stack(0))]);
        assert_eq!(direct(&plan, 7), [piece(0, 4, Loc::Stack(16))]);
        assert_eq!(plan.stack_bytes, 24);
    }

    #[test]
    fn composite_goes_to_the_stack_when_x_registers_run_out() {
        // clang, caller of `void (*)(7 x int, struct { long a, b; }, int)`: w0–w6, the struct at
        // [sp] and [sp+8] (x6 is free but not used), then the int at [sp+16] (C.13: NGRN = 8).
        let mut args = vec![s(Scalar::Int); 7];
        args.push(st(&[Scalar::Long, Scalar::Long]));
        args.push(s(Scalar::Int));
        let plan = sig(Type::Void, args);
        assert_eq!(direct(&plan, 6), [piece(0, 4, Loc::Int(6))]);
        assert_eq!(direct(&plan, 7), [piece(0, 16, Loc::Stack(0))]);
        assert_eq!(direct(&plan, 8), [piece(0, 4, Loc::Stack(16))]);
        assert_eq!(plan.stack_bytes, 24);
    }

    #[test]
    fn large_composite_by_reference_small_in_two_registers() {
        // clang, caller of `void (*)(struct { long a, b, c; }, int, struct { int a, b, c; })`:
        // `mov x0, sp` after copying the 24 bytes there, `mov w1, #9`, the 12-byte struct in
        // x2 and x3 (only x3's low 4 bytes meaningful: `and x3, x3, #0xffffffff`).
        let big = st(&[Scalar::Long; 3]);
        let plan = sig(Type::Void, vec![big, s(Scalar::Int), st(&[Scalar::Int; 3])]);
        assert_eq!(plan.args[0].pass, ArgPass::Indirect { pointer: Loc::Int(0) });
        assert_eq!(direct(&plan, 1), [piece(0, 4, Loc::Int(1))]);
        assert_eq!(direct(&plan, 2), [piece(0, 8, Loc::Int(2)), piece(8, 4, Loc::Int(3))]);
        assert_eq!(plan.stack_bytes, 0);
    }

    #[test]
    fn large_result_address_in_x8() {
        // clang callee `struct Big r1(int a)` (24 bytes) takes a in w0 and stores through x8
        // (`stp x9, x9, [x8]`); it does not return the address.
        let plan = sig(st(&[Scalar::Long; 3]), vec![s(Scalar::Int), s(Scalar::Int)]);
        assert_eq!(plan.ret, RetPlan::Indirect { pointer: Loc::Int(8), returned_in: None });
        assert_eq!(plan.code, ReturnCode::HiddenPointer);
        assert_eq!(direct(&plan, 0), [piece(0, 4, Loc::Int(0))]);
        assert_eq!(direct(&plan, 1), [piece(0, 4, Loc::Int(1))]);
        assert!(plan.to_string().contains("hidden pointer in x8"));
        // `struct { int a, b, c; } r3(int)` returns in x0 and w1.
        let plan = sig(st(&[Scalar::Int; 3]), vec![]);
        let pieces = vec![piece(0, 8, Loc::Int(0)), piece(8, 4, Loc::Int(1))];
        assert_eq!(plan.ret, RetPlan::Direct { pieces, extend: Extend::None });
    }

    #[test]
    fn stack_arguments_take_eight_byte_slots() {
        // clang, caller of `void (*)(8 x long, char, short, char, int, char, long)`:
        // strb [sp], strh [sp+8], strb [sp+16], str w [sp+24], strb [sp+32], str x [sp+40].
        let mut args = vec![s(Scalar::Long); 8];
        let more = [Scalar::Char, Scalar::Short, Scalar::Char, Scalar::Int, Scalar::Char];
        args.extend(more.into_iter().chain([Scalar::Long]).map(s));
        let plan = sig(Type::Void, args);
        let offsets: Vec<_> = (8..14).map(|i| direct(&plan, i)[0].loc).collect();
        let want: Vec<_> = [0, 8, 16, 24, 32, 40].into_iter().map(Loc::Stack).collect();
        assert_eq!(offsets, want);
        assert_eq!(direct(&plan, 9), [piece(0, 2, Loc::Stack(8))]);
        assert_eq!(plan.stack_bytes, 48);
        // Floats too (C.5): `void (*)(8 x double, float, float, double, float)` stores at
        // [sp], [sp+8], [sp+16], [sp+24].
        let mut args = doubles(8);
        args.extend([Scalar::Float, Scalar::Float, Scalar::Double, Scalar::Float].map(s));
        let plan = sig(Type::Void, args);
        let offsets: Vec<_> = (8..12).map(|i| direct(&plan, i)[0].loc).collect();
        let want: Vec<_> = [0, 8, 16, 24].into_iter().map(Loc::Stack).collect();
        assert_eq!(offsets, want);
    }

    #[test]
    fn char_is_unsigned() {
        // clang: a caller of `char (*)(void)` does `and w0, w0, #0xff` after the call, and
        // `int g1(..., char i, ...)` loads i with `ldrb`, not `ldrsb`.
        assert!(!crate::is_signed(ABI, Scalar::Char));
        assert!(crate::is_signed(ABI, Scalar::SChar));
        let plan = sig(s(Scalar::Char), vec![]);
        let pieces = vec![piece(0, 1, Loc::Int(0))];
        assert_eq!(plan.ret, RetPlan::Direct { pieces, extend: Extend::Zero });
        assert_eq!(plan.code, ReturnCode::Word);
    }
}
