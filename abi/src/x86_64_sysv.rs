//! `x86_64-sysv`: the System V AMD64 psABI (version 1.0), §3.2.3 "Parameter Passing".
//!
//! Arguments: rdi rsi rdx rcx r8 r9, xmm0–xmm7, then the stack in eightbytes.
//! Results: rax rdx, xmm0 xmm1, or memory through a hidden pointer in rdi returned in rax.

use crate::abi::{Abi, AbiSpec, Authority, Judge, RegisterFile, Toolchain};
use crate::layout::{BitRange, Layout, Shape};
use crate::plan::{
    result_extend, Allocator, ArgPass, ArgPlan, Loc, Piece, Placement, RetPlan, ReturnCode,
};
use crate::reg::Reg;
use crate::stubs::StubFamily;
use crate::types::{AggregateKind, Convention, Scalar};
use crate::AbiError;

/// The System V AMD64 ABI.
pub struct X86_64Sysv;

const INT_ARGS: [Reg; 6] = [Reg::Rdi, Reg::Rsi, Reg::Rdx, Reg::Rcx, Reg::R8, Reg::R9];
const INT_RETS: [Reg; 2] = [Reg::Rax, Reg::Rdx];
const FLOATS: [Reg; 8] =
    [Reg::Xmm0, Reg::Xmm1, Reg::Xmm2, Reg::Xmm3, Reg::Xmm4, Reg::Xmm5, Reg::Xmm6, Reg::Xmm7];

/// §3.2.3 classes, restricted to what the supported types produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Integer,
    Sse,
    /// the low eightbyte of an x87 `long double`
    X87,
    /// its high eightbyte
    X87Up,
}

/// Whether some eightbyte of `classes` is X87 or X87UP.
fn has_x87(classes: &[Option<Class>]) -> bool {
    classes.iter().any(|c| matches!(c, Some(Class::X87 | Class::X87Up)))
}

/// §3.2.3 classification: `None` is class MEMORY, otherwise one class per eightbyte (`None`
/// for an eightbyte that holds only padding, as `aligned(N)` can make: NO_CLASS, passed nowhere).
fn classify(layout: &Layout) -> Option<Vec<Option<Class>>> {
    // Rule 1 (aggregates): larger than two eightbytes (no __m256 here) goes to memory.
    if layout.size > 16 {
        return None;
    }
    // §3.2.3 rule 1: "If an object has unaligned fields, it has class MEMORY" (a member of a
    // packed record off its natural boundary).
    if scalar_misaligned(layout, 0) || union_bit_field_misaligned(layout, 0) {
        return None;
    }
    let mut classes: Vec<Option<Class>> = vec![None; layout.size.div_ceil(8) as usize];
    for leaf in layout.leaves() {
        // An `__int128` covers two eightbytes: "treated as if it were implemented as
        // `typedef struct { long low, high; } __int128;`" (§3.2.3); a `long double` two as
        // well, X87 then X87UP.
        let first = leaf.offset / 8;
        for eightbyte in first..(leaf.offset + leaf.size).div_ceil(8) {
            let class = match leaf.scalar {
                Scalar::LongDouble if eightbyte == first => Class::X87,
                Scalar::LongDouble => Class::X87Up,
                s if s.is_float() => Class::Sse,
                _ => Class::Integer,
            };
            // Rule 4, in its order: equal classes stay; NO_CLASS yields the other; INTEGER
            // wins; X87, X87UP with another is MEMORY (SSE with SSE is equal).
            let slot = &mut classes[eightbyte as usize];
            *slot = match (*slot, class) {
                (None, c) => Some(c),
                (Some(a), b) if a == b => Some(a),
                (Some(Class::Integer), _) | (_, Class::Integer) => Some(Class::Integer),
                // (what is left pairs X87 or X87UP with SSE or with the other)
                _ => return None,
            };
        }
    }
    // (Post merger (b), "If X87UP is not preceded by X87, the whole argument is passed in
    // memory", needs no pass of its own: arguments with an x87 class go in memory anyway, and
    // results in st(0) only as the pair X87, X87UP.)
    Some(classes)
}

/// Whether a scalar sits off its natural boundary, its size, in a value of `layout` at `base`
/// bytes into the argument. GCC's `classify_argument` classifies an array's element once, at
/// the array's offset, and repeats its classes: only the first element's scalars count (a
/// packed `struct { int x; char c; }` array's second `int` at offset 5 does not make it
/// MEMORY).
fn scalar_misaligned(layout: &Layout, base: u32) -> bool {
    match &layout.shape {
        Shape::Scalar(_) => base % layout.size != 0,
        Shape::Aggregate { fields, .. } => fields.iter().any(|f| match f.bits {
            Some(bits) => {
                ordinary_bit_field(bits, f.offset).is_some_and(|size| (base + f.offset) % size != 0)
            }
            None => scalar_misaligned(&f.layout, base + f.offset),
        }),
        Shape::Array { elem, .. } => scalar_misaligned(elem, base),
        Shape::Void => false,
    }
}

/// The size of the integer a struct's bit-field is to GCC, if it is one: GCC's `layout_decl`
/// makes a bit-field that is not packed, 16, 32 or 64 bits wide and at a multiple of its width
/// in its record an ordinary field of that integer mode (`struct { char a[2]; int : 16; }`'s
/// is a `short` at offset 2), which `classify_argument` then checks for alignment like any
/// scalar (an 8-bit one is always aligned).
fn ordinary_bit_field(bits: BitRange, offset: u32) -> Option<u32> {
    // (at a multiple of its width: on a byte boundary, `shift` 0, at a multiple of its size)
    let size = bits.width / 8;
    let ordinary =
        !bits.packed && matches!(bits.width, 16 | 32 | 64) && bits.shift == 0 && offset % size == 0;
    ordinary.then_some(size)
}

/// Whether a bit-field right inside a union sits off its natural boundary (the union at
/// `base` bytes into the value). GCC's `classify_argument` takes a struct's bit-fields as
/// INTEGER bits, but a union's members as scalars of their types, and GCC gives a bit-field
/// the integer type of its width (`int x : 19` a 32-bit mode, `long long : 9` a 16-bit one):
/// off that mode's boundary, the value is MEMORY (§3.2.3 rule 1, "unaligned fields").
pub fn union_bit_field_misaligned(layout: &Layout, base: u32) -> bool {
    match &layout.shape {
        Shape::Aggregate { kind, fields } => fields.iter().any(|f| match f.bits {
            Some(bits) => {
                let mode = bits.width.div_ceil(8).next_power_of_two();
                *kind == AggregateKind::Union && base % mode != 0
            }
            None => union_bit_field_misaligned(&f.layout, base + f.offset),
        }),
        // GCC classifies an array's element once, at the array's offset, and repeats its
        // classes: only the first element's place counts.
        Shape::Array { elem, .. } => union_bit_field_misaligned(elem, base),
        _ => false,
    }
}

/// The pieces of a value classified as `classes`, taking registers from `next` per class.
fn pieces(
    layout: &Layout,
    classes: &[Option<Class>],
    mut next: impl FnMut(Class) -> Loc,
) -> Vec<Piece> {
    classes
        .iter()
        .enumerate()
        .filter_map(|(i, &class)| {
            let offset = i as u32 * 8;
            Some(Piece { offset, size: (layout.size - offset).min(8), loc: next(class?) })
        })
        .collect()
}

impl X86_64Sysv {
    fn arg(&self, alloc: &mut Allocator, layout: &Layout) -> ArgPlan {
        // §3.2.3 passing: "If the class is X87, X87UP or COMPLEX_X87, it is passed in memory."
        let in_regs = classify(layout).filter(|c| !has_x87(c));
        let in_regs = in_regs.and_then(|classes| {
            let count = |class| classes.iter().filter(|&&c| c == Some(class)).count() as u8;
            let (ints, floats) = (count(Class::Integer), count(Class::Sse));
            // §3.2.3: "If there are no registers available for any eightbyte of an argument,
            // the whole argument is passed on the stack" — and no register is consumed.
            if alloc.next_int + ints > alloc.int_regs
                || alloc.next_float + floats > alloc.float_regs
            {
                return None;
            }
            Some(pieces(layout, &classes, |class| match class {
                Class::Integer => Loc::Int(alloc.take_int(1).expect("counted above")),
                Class::Sse | Class::X87 | Class::X87Up => {
                    Loc::Float(alloc.take_float(1).expect("counted above"))
                }
            }))
        });
        let pieces = in_regs.unwrap_or_else(|| {
            // §3.2.3: stack arguments are eightbyte-aligned and padded to eightbytes; an
            // over-aligned one (`aligned(16)` and up) keeps its own alignment.
            let offset = alloc.take_stack(layout.size, layout.align.max(8), 8);
            vec![Piece { offset: 0, size: layout.size, loc: Loc::Stack(offset) }]
        });
        ArgPlan { layout: layout.clone(), pass: ArgPass::Direct(pieces) }
    }

    fn ret(&self, alloc: &mut Allocator, layout: &Layout) -> (RetPlan, ReturnCode) {
        if layout.size == 0 {
            return (RetPlan::Void, ReturnCode::Void);
        }
        // The whole value on the x87 stack.
        let x87 = |code| {
            let pieces = vec![Piece { offset: 0, size: layout.size, loc: Loc::X87 }];
            (RetPlan::Direct { pieces, extend: result_extend(Abi::X86_64Sysv, layout) }, code)
        };
        // §3.2.3 returning, COMPLEX_X87: "the real part of the value is returned in %st0 and
        // the imaginary part in %st1".
        if layout.is_complex() && layout.leaves().iter().all(|l| l.scalar == Scalar::LongDouble) {
            return x87(ReturnCode::ComplexLongDouble);
        }
        // §3.2.3 returning, X87: "the value is returned on the X87 stack in %st0 together
        // with X87UP" (the two eightbytes of one `long double`; an X87 class in any other
        // company cannot be returned in registers, which GCC also takes as MEMORY).
        const X87_PAIR: [Option<Class>; 2] = [Some(Class::X87), Some(Class::X87Up)];
        let classes = classify(layout).filter(|c| c[..] == X87_PAIR || !has_x87(c));
        let Some(classes) = classes else {
            // §3.2.3 returning, MEMORY: the caller passes the address in %rdi (as if it were
            // the first argument) and the callee returns it in %rax.
            let pointer = Loc::Int(alloc.take_int(1).expect("first register is free"));
            return (
                RetPlan::Indirect { pointer, returned_in: Some(Loc::Int(0)) },
                ReturnCode::HiddenPointer,
            );
        };
        if classes[..] == X87_PAIR {
            return x87(ReturnCode::LongDouble);
        }
        // §3.2.3 returning, INTEGER: next of %rax, %rdx; SSE: next of %xmm0, %xmm1.
        let (mut ints, mut floats) = (0u8, 0u8);
        let pieces = pieces(layout, &classes, |class| match class {
            Class::Integer => (Loc::Int(ints), ints += 1).0,
            Class::Sse | Class::X87 | Class::X87Up => (Loc::Float(floats), floats += 1).0,
        });
        let code = match (layout.scalar(), pieces.len()) {
            (Some(Scalar::Float), _) => ReturnCode::Float,
            (Some(Scalar::Double), _) => ReturnCode::Double,
            // (an `__int128` returns in rax and rdx, as a struct would)
            (Some(_), 1) => ReturnCode::Word,
            _ => ReturnCode::Struct,
        };
        (RetPlan::Direct { pieces, extend: result_extend(Abi::X86_64Sysv, layout) }, code)
    }
}

impl AbiSpec for X86_64Sysv {
    fn va_start(&self) -> crate::plan::VaStart {
        crate::plan::VaStart::RegisterSaveArea
    }

    fn abi(&self) -> Abi {
        Abi::X86_64Sysv
    }

    fn scalar_layout(&self, s: Scalar) -> Option<(u32, u32)> {
        // §3.1.2 Figure 3.1 (LP64): long and pointers are 8 bytes; `long double` is x87's
        // 80-bit format in 16 bytes, 16-aligned.
        match s {
            Scalar::LongDouble => Some((16, 16)),
            _ => crate::layout::lp64_scalar_layout(s),
        }
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
            // §3.2.1, Figure 3.4: %rbx, %rbp and %r12–%r15 "belong to the calling function";
            // the remaining registers, every %xmm register included, belong to the callee.
            callee_saved: &[Reg::Rbx, Reg::Rbp, Reg::R12, Reg::R13, Reg::R14, Reg::R15],
            callee_saved_float: &[],
            callee_saved_float_bytes: 0,
            caller_saved: &[
                Reg::Rax,
                Reg::Rcx,
                Reg::Rdx,
                Reg::Rsi,
                Reg::Rdi,
                Reg::R8,
                Reg::R9,
                Reg::R10,
                Reg::R11,
            ],
            caller_saved_float: &[
                Reg::Xmm0,
                Reg::Xmm1,
                Reg::Xmm2,
                Reg::Xmm3,
                Reg::Xmm4,
                Reg::Xmm5,
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
            // §3.2.2: "(%rsp + 8) is always a multiple of 16 when control is transferred to the
            // function entry point".
            call_alignment: 16,
        }
    }

    fn place(&self, _: Convention, args: &[Layout], ret: &Layout) -> Result<Placement, AbiError> {
        // The i386 convention keywords have no meaning here; compilers ignore them (with a
        // warning), and so do the plans.
        let mut alloc = Allocator::new(6, 8);
        // The hidden result pointer takes %rdi before any argument is placed.
        let (ret_plan, code) = self.ret(&mut alloc, ret);
        let args = args.iter().map(|layout| self.arg(&mut alloc, layout)).collect();
        Ok(Placement { args, ret: ret_plan, code, stack_bytes: alloc.stack, callee_pop: 0 })
    }

    fn stub_family(&self) -> StubFamily {
        // §3.2.3: INTEGER arguments take the next of rdi, rsi, rdx, rcx, r8, r9, independently
        // of the SSE registers: a leading pointer moves only the integer ones.
        StubFamily::ShiftInt
    }

    fn has_convention(&self, conv: Convention) -> bool {
        // GCC and clang: `sysv_abi` is this convention; `ms_abi` is Win64's (not covered here).
        conv != Convention::MsAbi
    }

    fn toolchain(&self) -> Toolchain {
        Toolchain {
            clang_target: "x86_64-linux-gnu",
            gcc: &["x86_64-linux-gnu-gcc"],
            authority: Authority {
                source: "the System V AMD64 psABI, which GCC follows",
                judge: Judge::Gcc,
            },
        }
    }
}
