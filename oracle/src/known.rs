//! Compiler disagreements that are understood: a compiler (family and versions) that deviates
//! from an ABI's authority in a known shape, with the upstream issue that tracks it.
//!
//! A disagreement that matches an entry is reported with it; one that matches none is news
//! (the test suites fail on it, `backcall verify` reports it as unexplained). Each shape is
//! narrow on purpose: it names the convention, the values and the bytes the deviation
//! concerns, so that an unrelated bug of the same compiler still shows.

use std::ops::RangeInclusive;

use backcall_abi::{Abi, AggregateKind, Convention, Layout, Loc, Shape, Type};

use crate::compare::Part;
use crate::compiler::{Compiler, Family};
use crate::report::Failure;

/// One understood compiler deviation.
#[derive(Debug)]
pub struct KnownIssue {
    /// where it is tracked (`llvm-project#83388`), or why it has no tracker
    pub upstream: &'static str,
    /// what the compiler does differently, in a sentence
    pub summary: &'static str,
    /// the deviating family
    pub family: Family,
    /// its major versions that deviate
    pub majors: RangeInclusive<u32>,
    /// the ABIs it concerns
    pub abis: &'static [Abi],
    /// whether a failure has the deviation's shape
    pub shape: fn(Abi, &Failure) -> bool,
}

/// Every known deviation.
pub const KNOWN: &[KnownIssue] = &[
    KnownIssue {
        upstream: "llvm-project#83388",
        summary: "clang passes only the low 4 bytes of a union's SSE eightbyte when one arm \
                  has a float there followed by padding (the psABI and GCC pass all 8)",
        family: Family::Clang,
        majors: 14..=u32::MAX,
        abis: &[Abi::X86_64Sysv],
        shape: union_float_eightbyte,
    },
    KnownIssue {
        upstream: "llvm-project#109987, llvm-project#112519",
        summary: "clang's __fastcall on i386 Linux is not GCC's: it counts small structs \
                  differently, and since clang 16 passes `long long` and since clang 19 the \
                  hidden result pointer as Microsoft's fastcall does",
        family: Family::Clang,
        majors: 0..=u32::MAX,
        abis: &[Abi::I386Sysv],
        shape: |_, f| f.signature.conv == Convention::Fastcall,
    },
    KnownIssue {
        upstream: "no upstream issue: LLVM's CC_X86_32_ThisCall is Microsoft's thiscall on every \
                   target",
        summary: "clang's __thiscall on i386 Linux is Microsoft's (ecx for the first 32-bit \
                  piece, some structs by reference, the hidden pointer on the stack), not \
                  GCC's (ecx for a first word-sized argument or the hidden pointer)",
        family: Family::Clang,
        majors: 0..=u32::MAX,
        abis: &[Abi::I386Sysv],
        shape: |_, f| f.signature.conv == Convention::Thiscall,
    },
    KnownIssue {
        upstream: "no upstream issue found: clang's i386 argument expansion adds up a union's \
                   members as if they followed one another",
        summary: "clang on i386 Linux passes a union of 32- and 64-bit scalars whose member \
                  sizes add up to its padded size (`union { long long a \
                  __attribute__((aligned(16))); long long b; }`) as its largest member alone, \
                  where the psABI and GCC copy the whole union to the stack",
        family: Family::Clang,
        majors: 0..=u32::MAX,
        abis: &[Abi::I386Sysv],
        shape: union_expanded_as_member,
    },
    KnownIssue {
        upstream: "llvm-project#57737 (fixed in clang 16), llvm-project#97939 (fixed in clang 19)",
        summary: "clang before 16 counted a `long long` against ecx/edx under __fastcall, and \
                  clang before 19 passed the hidden result pointer in ecx, where MSVC uses \
                  the stack",
        family: Family::Clang,
        majors: 0..=18,
        abis: &[Abi::I386Win32],
        shape: |_, f| f.signature.conv == Convention::Fastcall,
    },
    KnownIssue {
        upstream: "no upstream issue: GCC keeps its own fastcall and thiscall rules on Windows",
        summary: "mingw-w64 GCC's __fastcall and __thiscall are GCC's (structs and `long long` \
                  use up ecx/edx words, the hidden pointer takes ecx), not Microsoft's",
        family: Family::Gcc,
        majors: 0..=u32::MAX,
        abis: &[Abi::I386Win32],
        // (also the typed route's proof, whose compiled target is `__thiscall`)
        shape: |_, f| {
            matches!(f.signature.conv, Convention::Fastcall | Convention::Thiscall)
                || f.problems.iter().any(|p| p.contains(backcall_abi::stubs::STUB_THISCALL))
        },
    },
    KnownIssue {
        upstream: "no upstream issue: GCC returns a value of a float machine mode in st(0)",
        summary: "mingw-w64 GCC returns a struct of one float or double in x87 st(0), where \
                  MSVC returns it in eax / edx:eax like any 4- or 8-byte struct",
        family: Family::Gcc,
        majors: 0..=u32::MAX,
        abis: &[Abi::I386Win32],
        shape: single_float_struct_result,
    },
    KnownIssue {
        upstream: "no upstream issue: GCC has no MSVC rule for over-aligned arguments",
        summary: "mingw-w64 GCC copies an argument whose type requires more than 4-byte \
                  alignment (`aligned(N)`, `__declspec(align(N))`) onto the stack, where MSVC \
                  passes a pointer to the caller's copy",
        family: Family::Gcc,
        majors: 0..=u32::MAX,
        abis: &[Abi::I386Win32],
        // (its st(0) results, a deviation of its own, may come with it)
        shape: |abi, f| {
            let result = gcc_float_result(abi, f) || hidden_result(abi, f);
            over_aligned_argument(abi, f, |_| true, result)
        },
    },
    KnownIssue {
        upstream: "no upstream issue found: clang 19 changed it (seen with 13 to 16)",
        summary: "clang before 19 decides by-reference passing of over-aligned records its own \
                  way: a record with an `aligned(N)` of its own requires its whole alignment \
                  (`struct { long long a; } __attribute__((aligned(1)))` by reference), one \
                  whose members alone require more than 4 bytes is copied; and an unnamed \
                  argument of a variadic call goes by reference like a named one (seen with \
                  13 to 16), where MSVC and clang 19 copy it",
        family: Family::Clang,
        majors: 0..=18,
        abis: &[Abi::I386Win32],
        shape: aligned_record_argument,
    },
    KnownIssue {
        upstream: "no upstream issue: GCC keeps its own record layout on Windows",
        summary: "mingw-w64 GCC lays out a packed struct or union by GCC's rules: `packed` \
                  or `#pragma pack(N)` lowers a member whose type is `aligned(N)` (and \
                  `#pragma pack` a member's own `aligned(N)`), where MSVC (and clang for \
                  Windows) keep the alignment the member requires",
        family: Family::Gcc,
        majors: 0..=u32::MAX,
        abis: &[Abi::I386Win32, Abi::X86_64Win64],
        shape: packed_over_aligned_layout,
    },
    KnownIssue {
        upstream: "llvm D86310 (i128 is 16-byte aligned from LLVM 18)",
        summary: "clang before 18 puts an `__int128` stack argument at an 8-byte boundary, \
                  where the psABI and GCC align it to 16",
        family: Family::Clang,
        majors: 0..=17,
        abis: &[Abi::X86_64Sysv],
        shape: int128_on_the_stack,
    },
    KnownIssue {
        upstream: "no upstream issue found: seen with clang 13 to 19, clang 22 passes",
        summary: "clang does not give the integer register an `__int128` left free to a later \
                  argument (`void (*)(long, long, long, long, long, __int128, long)`): the \
                  psABI and GCC pass the `__int128` on the stack and the later argument in r9",
        family: Family::Clang,
        majors: 0..=19,
        abis: &[Abi::X86_64Sysv],
        shape: int128_leaves_a_register,
    },
    KnownIssue {
        upstream: "no upstream issue found: seen with clang 13 to 19 at -O2 (clang 22 crashes)",
        summary: "clang at -O2 turns a call that passes a struct by reference (a pointer to the \
                  caller's copy: `__thiscall`'s small structs, over-aligned arguments) into a \
                  tail call that frees the copy before the callee reads it",
        family: Family::Clang,
        majors: 0..=21,
        abis: &[Abi::I386Win32],
        shape: by_reference_argument,
    },
    KnownIssue {
        upstream: "no upstream issue found: clang's X86_64ABIInfo::classify skips unnamed \
                   bit-fields",
        summary: "clang leaves an unnamed bit-field (`int : 5`) out when it classifies a \
                  record's eightbytes, where GCC, the psABI's reference, counts its bytes as \
                  INTEGER (an eightbyte with only such bits or floats goes elsewhere), and \
                  one of 16, 32 or 64 bits at a multiple of its width as an ordinary field \
                  (off its boundary in the value: MEMORY)",
        family: Family::Clang,
        majors: 0..=u32::MAX,
        abis: &[Abi::X86_64Sysv],
        shape: unnamed_bit_field_value,
    },
    KnownIssue {
        upstream: "no upstream issue found: GCC classifies a union's members as scalars of \
                   their types",
        summary: "clang passes in registers a value with a union whose bit-field is off the \
                  boundary of its width's integer type (`struct { char c; union { int x : 19; \
                  } u; }`), which GCC, the psABI's reference, passes in memory",
        family: Family::Clang,
        majors: 0..=u32::MAX,
        abis: &[Abi::X86_64Sysv],
        shape: misaligned_union_bit_field,
    },
    KnownIssue {
        upstream: "no upstream issue found: clang's X86_64ABIInfo::classify measures a member \
                   against its type's alignment",
        summary: "clang passes in memory a value with a member off its type's alignment that \
                  GCC, the psABI's reference, passes in registers: GCC calls a field unaligned \
                  only when a scalar is (not for a packed record's `aligned(2)` struct of a \
                  `_Bool` at offset 1), and checks an array's first element only (not the \
                  second `int` of a packed `struct { int x; char c; }[2]`)",
        family: Family::Clang,
        majors: 0..=u32::MAX,
        abis: &[Abi::X86_64Sysv],
        shape: member_off_its_type_alignment,
    },
    KnownIssue {
        upstream: "no upstream issue found: changed in clang 15 (seen with clang 13 and 14)",
        summary: "clang before 15 does not count a record with a zero-width bit-field \
                  (`struct { float a; int : 0; }`) as a homogeneous floating-point aggregate \
                  and passes it in general registers, where AAPCS64 (homogeneous aggregates), \
                  GCC 12 and later clang ignore the zero-width member and use v registers",
        family: Family::Clang,
        majors: 0..=14,
        abis: &[Abi::Aarch64Aapcs64, Abi::Aarch64Apple],
        shape: zero_width_bit_field_value,
    },
    KnownIssue {
        upstream: "no upstream issue found: changed in clang 16 (seen with clang 13 to 15)",
        summary: "clang before 16 gives every stack argument of a variadic function on Apple \
                  arm64 an 8-byte slot, the named ones too, where Apple's rules (and later \
                  clang) give a named one its natural size",
        family: Family::Clang,
        majors: 0..=15,
        abis: &[Abi::Aarch64Apple],
        shape: variadic_narrow_named_stack_argument,
    },
    KnownIssue {
        upstream: "no upstream issue: GCC's -mms-bitfields is its own reading of MSVC's rules",
        summary: "mingw-w64 GCC lays out some records with bit-fields differently from MSVC \
                  (and clang for Windows): packed bit-fields, unnamed ones, and storage units \
                  of different types",
        family: Family::Gcc,
        majors: 0..=u32::MAX,
        abis: &[Abi::I386Win32, Abi::X86_64Win64],
        shape: bit_field_layout,
    },
    KnownIssue {
        upstream: "no upstream issue: GCC keeps x87's long double on Windows",
        summary: "mingw-w64 GCC's `long double` is x87's 80-bit type (12 or 16 bytes), where \
                  MSVC's (and clang's for Windows) is `double`",
        family: Family::Gcc,
        majors: 0..=u32::MAX,
        abis: &[Abi::I386Win32, Abi::X86_64Win64],
        shape: long_double_layout,
    },
];

/// The known issue `compiler`'s `failure` on `abi` matches, if any.
pub fn matching(abi: Abi, compiler: &Compiler, failure: &Failure) -> Option<&'static KnownIssue> {
    let issues = || {
        KNOWN.iter().filter(|k| {
            k.family == compiler.family
                && k.majors.contains(&compiler.version.major)
                && k.abis.contains(&abi)
        })
    };
    if let Some(k) = issues().find(|k| (k.shape)(abi, failure)) {
        return Some(k);
    }
    // Two deviations of one compiler in one case: every differing value has one of their
    // shapes on its own.
    let alone =
        |m: &crate::compare::Mismatch| Failure { mismatches: vec![m.clone()], ..failure.clone() };
    let explained = |m| issues().find(|k| (k.shape)(abi, &alone(m)));
    let first = failure.mismatches.first().and_then(explained)?;
    failure.mismatches.iter().all(|m| explained(m).is_some()).then_some(first)
}

/// The type of a mismatched value.
fn part_type(failure: &Failure, part: Part) -> Option<&Type> {
    match part {
        Part::Arg(i) | Part::ArgValue(i) => failure.arg_types().get(i).copied(),
        Part::Result | Part::ResultExtension => Some(&failure.signature.ret),
    }
}

/// Every differing byte is in the upper half of an eightbyte of a union, and some arm of that
/// union has a `float` at the eightbyte's start and nothing in its upper half.
fn union_float_eightbyte(abi: Abi, failure: &Failure) -> bool {
    !failure.mismatches.is_empty()
        && failure.mismatches.iter().all(|m| {
            if !matches!(m.part, Part::Arg(_) | Part::Result) || m.bytes.is_empty() {
                return false;
            }
            let Some(Ok(layout)) = part_type(failure, m.part).map(|t| abi.layout(t)) else {
                return false;
            };
            let Shape::Aggregate { kind: AggregateKind::Union, fields } = &layout.shape else {
                return false;
            };
            m.bytes.iter().all(|&b| {
                let start = (b as u32 / 8) * 8;
                b as u32 >= start + 4
                    && fields.iter().any(|arm| float_then_padding(&arm.layout, start))
            })
        })
}

/// Whether `layout` has a `float` at byte `start` and no member in `start + 4..start + 8`.
fn float_then_padding(layout: &Layout, start: u32) -> bool {
    let leaves = layout.leaves();
    let float_at =
        leaves.iter().any(|l| l.offset == start && l.scalar == backcall_abi::Scalar::Float);
    let upper = leaves.iter().any(|l| l.offset < start + 8 && l.offset + l.size > start + 4);
    float_at && !upper
}

/// Some argument of `which` type requires more than 4-byte alignment (i386-win32 passes it by
/// reference), and nothing differs but it and the arguments after it (a copy shifts them), or
/// nothing could be read at all; the result only when `result_may_differ`.
fn over_aligned_argument(
    abi: Abi,
    failure: &Failure,
    which: fn(&Type) -> bool,
    result_may_differ: bool,
) -> bool {
    let over_aligned = |ty: &&Type| which(ty) && abi.layout(ty).is_ok_and(|l| l.required_align > 4);
    let Some(first) = failure.arg_types().iter().position(over_aligned) else { return false };
    differs_only_from(failure, first, result_may_differ)
}

/// Nothing differs but argument `first` and those after it (and the result when
/// `result_may_differ`): what one argument passed another way does to the rest.
fn differs_only_from(failure: &Failure, first: usize, result_may_differ: bool) -> bool {
    failure.mismatches.iter().all(|m| match m.part {
        Part::Arg(i) | Part::ArgValue(i) => i >= first,
        Part::Result | Part::ResultExtension => result_may_differ,
    })
}

/// Some argument is a union of 4- and 8-byte scalars whose member sizes add up to its size (at
/// most 16 bytes), and nothing differs but it and the arguments after it.
fn union_expanded_as_member(abi: Abi, failure: &Failure) -> bool {
    let Some(first) = expanded_union_argument(abi, failure.arg_types()) else { return false };
    differs_only_from(failure, first, false)
}

/// The first of `args` that clang on i386 passes as one member (see [`KNOWN`]): a
/// union of 4- and 8-byte scalars whose member sizes add up to its size, at most 16 bytes.
/// Under a convention whose callee pops, clang's caller and backcall then disagree on the pop,
/// which no native process survives.
pub fn expanded_union_argument<'a>(
    abi: Abi,
    args: impl IntoIterator<Item = &'a Type>,
) -> Option<usize> {
    let expanded = |ty: &Type| {
        let Ok(layout) = abi.layout(ty) else { return false };
        let Shape::Aggregate { kind: AggregateKind::Union, fields } = &layout.shape else {
            return false;
        };
        let word_scalars =
            fields.iter().all(|f| f.layout.scalar().is_some() && matches!(f.layout.size, 4 | 8));
        let sum: u32 = fields.iter().map(|f| f.layout.size).sum();
        word_scalars && layout.size <= 16 && sum == layout.size
    };
    args.into_iter().position(expanded)
}

/// Some argument holding an `__int128` is passed on the stack, and nothing differs but it and
/// the stack arguments after it.
fn int128_on_the_stack(abi: Abi, failure: &Failure) -> bool {
    let Ok(plan) = failure.call_plan(abi) else { return false };
    let Some(first) = plan.args.iter().position(stack_int128) else { return false };
    !failure.mismatches.is_empty() && differs_only_from(failure, first, false)
}

/// Some argument is passed by reference, and nothing differs but it and the arguments after
/// it.
fn by_reference_argument(abi: Abi, failure: &Failure) -> bool {
    let Ok(plan) = failure.call_plan(abi) else { return false };
    let indirect =
        |a: &backcall_abi::ArgPlan| matches!(a.pass, backcall_abi::ArgPass::Indirect { .. });
    let Some(first) = plan.args.iter().position(indirect) else { return false };
    differs_only_from(failure, first, false)
}

/// An `__int128` argument goes on the stack while a later argument takes an integer register,
/// and nothing differs but the `__int128` and the arguments after it.
fn int128_leaves_a_register(abi: Abi, failure: &Failure) -> bool {
    let Ok(plan) = failure.call_plan(abi) else { return false };
    let in_int_register = |a: &backcall_abi::ArgPlan| match &a.pass {
        backcall_abi::ArgPass::Direct(pieces) => {
            pieces.iter().any(|p| matches!(p.loc, backcall_abi::Loc::Int(_)))
        }
        backcall_abi::ArgPass::Indirect { pointer } => matches!(pointer, backcall_abi::Loc::Int(_)),
    };
    let Some(first) = plan.args.iter().position(stack_int128) else { return false };
    plan.args[first..].iter().any(in_int_register)
        && !failure.mismatches.is_empty()
        && differs_only_from(failure, first, false)
}

/// Whether an argument holding an `__int128` is passed (in part) on the stack.
fn stack_int128(a: &backcall_abi::ArgPlan) -> bool {
    let on_stack = match &a.pass {
        backcall_abi::ArgPass::Direct(pieces) => {
            pieces.iter().any(|p| matches!(p.loc, backcall_abi::Loc::Stack(_)))
        }
        backcall_abi::ArgPass::Indirect { .. } => false,
    };
    on_stack && a.layout.leaves().iter().any(|l| l.size == 16)
}

/// Some argument's type carries an `aligned(N)` (its own or a member's, at any depth), and
/// nothing differs but it and the arguments after it, and a result returned through a hidden
/// pointer (seen under `__thiscall`: the copy moves the pointer too).
fn aligned_record_argument(abi: Abi, failure: &Failure) -> bool {
    let Some(first) = failure.arg_types().into_iter().position(carries_aligned) else {
        return false;
    };
    differs_only_from(failure, first, hidden_result(abi, failure))
}

/// Whether the result is returned through a hidden pointer.
fn hidden_result(abi: Abi, failure: &Failure) -> bool {
    failure.call_plan(abi).is_ok_and(|p| matches!(p.ret, backcall_abi::RetPlan::Indirect { .. }))
}

/// Whether `ty` has an `aligned(N)` attribute: its own, a member's or a member type's.
fn carries_aligned(ty: &Type) -> bool {
    match ty {
        Type::Array(elem, _) => carries_aligned(elem),
        Type::Aggregate(agg) => {
            agg.packing.align.is_some()
                || agg.fields.iter().any(|f| f.packing.align.is_some() || carries_aligned(&f.ty))
        }
        _ => false,
    }
}

/// The compiler rejected the caller's layout assertions, and some packed record of the
/// signature (`packed` or `#pragma pack`) has a member whose type carries an `aligned(N)`, or
/// one under `#pragma pack` has a member with its own: where the two record layout families
/// part ways.
fn packed_over_aligned_layout(_: Abi, failure: &Failure) -> bool {
    fn packed_over_aligned(ty: &Type) -> bool {
        match ty {
            Type::Array(elem, _) => packed_over_aligned(elem),
            Type::Aggregate(agg) => agg.fields.iter().any(|f| {
                let pragma = agg.pack.is_some();
                let packed = agg.packing.packed || f.packing.packed || pragma;
                (packed && carries_aligned(&f.ty))
                    || (pragma && f.packing.align.is_some())
                    || packed_over_aligned(&f.ty)
            }),
            _ => false,
        }
    }
    layout_rejected_with(failure, packed_over_aligned)
}

/// The compiler rejected the caller's layout assertions, and the result or an argument is
/// `with`.
fn layout_rejected_with(failure: &Failure, with: impl Fn(&Type) -> bool) -> bool {
    failure.problems.iter().any(|p| p.contains("static assertion failed"))
        && std::iter::once(&failure.signature.ret).chain(failure.arg_types()).any(with)
}

/// Only the result differs, and it is a struct GCC gives a floating-point mode.
fn single_float_struct_result(abi: Abi, failure: &Failure) -> bool {
    !failure.mismatches.is_empty()
        && failure.mismatches.iter().all(|m| m.part == Part::Result)
        && gcc_float_result(abi, failure)
}

/// The result is a struct GCC gives a floating-point mode (and returns in st(0)).
fn gcc_float_result(abi: Abi, failure: &Failure) -> bool {
    let Ok(layout) = abi.layout(&failure.signature.ret) else { return false };
    layout.is_aggregate() && backcall_abi::i386::gcc_float_mode(&layout)
}

/// Whether `ty` has, at any depth, a bit-field (its name and width) that `which` accepts.
fn has_bit_field(ty: &Type, which: fn(&str, u32) -> bool) -> bool {
    match ty {
        Type::Array(elem, _) => has_bit_field(elem, which),
        Type::Aggregate(agg) => agg.fields.iter().any(|f| {
            f.bits.is_some_and(|width| which(&f.name, width)) || has_bit_field(&f.ty, which)
        }),
        _ => false,
    }
}

/// An unnamed bit-field of some width (`int : 5`).
fn unnamed_with_width(name: &str, width: u32) -> bool {
    name.is_empty() && width > 0
}

/// Some argument or the result has an unnamed bit-field of some width, and nothing differs
/// before the first such argument (the result only if it has one).
fn unnamed_bit_field_value(_: Abi, failure: &Failure) -> bool {
    differs_from_first_with(failure, |ty| has_bit_field(ty, unnamed_with_width))
}

/// Some argument or the result is `with`, and nothing differs before the first such argument
/// (the result only if it is `with`; then anything may differ, since a result that one
/// compiler returns through a hidden pointer moves every argument).
fn differs_from_first_with(failure: &Failure, with: impl Fn(&Type) -> bool) -> bool {
    let result = with(&failure.signature.ret);
    let first = if result { Some(0) } else { failure.arg_types().into_iter().position(with) };
    first.is_some_and(|first| differs_only_from(failure, first, result))
}

/// A variadic call whose named arguments put one narrower than 8 bytes on the stack, and
/// nothing differs but it and the arguments after it (an 8-byte slot moves them all).
fn variadic_narrow_named_stack_argument(abi: Abi, failure: &Failure) -> bool {
    let Ok(plan) = failure.call_plan(abi) else { return false };
    let named = failure.signature.args.len();
    let narrow_on_stack = |a: &backcall_abi::ArgPlan| match &a.pass {
        backcall_abi::ArgPass::Direct(pieces) => {
            a.layout.size % 8 != 0 && pieces.iter().any(|p| matches!(p.loc, Loc::Stack(_)))
        }
        backcall_abi::ArgPass::Indirect { .. } => false,
    };
    let first = plan.args[..named.min(plan.args.len())].iter().position(narrow_on_stack);
    failure.signature.variadic
        && first.is_some_and(|first| differs_only_from(failure, first, false))
}

/// Some argument or the result has a zero-width bit-field, and nothing differs before the
/// first such argument (the result only if it has one).
fn zero_width_bit_field_value(_: Abi, failure: &Failure) -> bool {
    differs_from_first_with(failure, |ty| has_bit_field(ty, |_, width| width == 0))
}

/// The compiler rejected the caller's layout assertions, and some type of the signature has a
/// bit-field.
fn bit_field_layout(_: Abi, failure: &Failure) -> bool {
    layout_rejected_with(failure, |ty| has_bit_field(ty, |_, _| true))
}

/// The compiler rejected the caller's layout assertions, and the signature has a `long double`.
fn long_double_layout(_: Abi, failure: &Failure) -> bool {
    fn has_long_double(ty: &Type) -> bool {
        match ty {
            Type::Scalar(backcall_abi::Scalar::LongDouble)
            | Type::Complex(backcall_abi::Scalar::LongDouble) => true,
            Type::Array(elem, _) => has_long_double(elem),
            Type::Aggregate(agg) => agg.fields.iter().any(|f| has_long_double(&f.ty)),
            _ => false,
        }
    }
    layout_rejected_with(failure, has_long_double)
}

/// Some argument or the result has a union bit-field off its mode's boundary, and nothing
/// differs before the first such argument (the result only if it has one).
fn misaligned_union_bit_field(abi: Abi, failure: &Failure) -> bool {
    differs_from_first_with(failure, |ty| {
        abi.layout(ty).is_ok_and(|l| backcall_abi::x86_64_sysv::union_bit_field_misaligned(&l, 0))
    })
}

/// Some argument or the result has a member (not a bit-field) whose offset in the value is not
/// a multiple of its type's alignment, and nothing differs before the first such argument (the
/// result only if it has one).
fn member_off_its_type_alignment(abi: Abi, failure: &Failure) -> bool {
    fn off_alignment(layout: &Layout, base: u32) -> bool {
        match &layout.shape {
            Shape::Aggregate { fields, .. } => fields.iter().any(|f| {
                let at = base + f.offset;
                f.bits.is_none() && (at % f.layout.align != 0 || off_alignment(&f.layout, at))
            }),
            Shape::Array { elem, count } => {
                (0..*count).any(|i| off_alignment(elem, base + i * elem.size))
            }
            _ => false,
        }
    }
    differs_from_first_with(failure, |ty| abi.layout(ty).is_ok_and(|l| off_alignment(&l, 0)))
}
