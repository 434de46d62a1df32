//! proptest strategies for random C types and signatures (cargo feature `proptest`).
//!
//! Everything generated prints (with `Display`) as valid C that `backcall::parse_signature`
//! reads back unchanged: names are C identifiers that are neither keywords nor common macros,
//! member names are unique within their aggregate, and aggregates sharing a tag share a body.
//!
//! ```
//! use backcall_abi::arbitrary::any_supported_signature;
//! use proptest::strategy::{Strategy, ValueTree};
//! use proptest::test_runner::TestRunner;
//!
//! let mut runner = TestRunner::deterministic();
//! let sig = any_supported_signature().new_tree(&mut runner).unwrap().current();
//! assert!(!sig.variadic);
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use crate::types::{
    Aggregate, AggregateKind, Convention, Field, Packing, Scalar, Signature, Type,
    PRAGMA_PACK_VALUES,
};

/// Aggregates nest at most this deep in the generated signatures.
pub const MAX_LEVELS: u32 = 4;

/// Members per aggregate level, at most.
pub const MAX_FIELDS: usize = 16;

/// Arguments per generated signature, at most.
pub const MAX_ARGS: usize = 20;

/// Generated types hold at most this many members and array types (counting nested ones), so
/// that they print small and stay far inside the parser's limits.
pub const MAX_NODES: usize = 4096;

/// Any [`Scalar`], `long double` included.
pub fn any_scalar() -> impl Strategy<Value = Scalar> {
    select(Scalar::ALL.to_vec())
}

/// Any [`Scalar`] every ABI supports (not `long double`, nor `__int128`, which i386 lacks);
/// `float` and `double` make a third of the draws (real callbacks pass them often, and their
/// classification is where compilers and ABIs differ most).
pub fn supported_scalar() -> impl Strategy<Value = Scalar> {
    let wide = [Scalar::Int128, Scalar::UInt128];
    let integers: Vec<Scalar> = Scalar::ALL
        .iter()
        .copied()
        .filter(|s| !s.is_float() && !wide.contains(s))
        .collect::<Vec<_>>();
    prop_oneof![2 => select(integers), 1 => select(vec![Scalar::Float, Scalar::Double])]
}

/// A homogeneous floating-point aggregate: 1 to 4 `float`s or `double`s as members, as an
/// array member, or nested one level (`struct { struct { float a, b; } p; float c; }`). AAPCS64
/// passes these in consecutive vector registers, SysV classifies them SSE, Win32 returns the
/// small ones in `eax:edx`.
pub fn any_hfa() -> impl Strategy<Value = Type> {
    let elem = select(vec![Scalar::Float, Scalar::Double]);
    (elem, 1u32..=4, 0u8..3).prop_map(|(s, n, form)| {
        let e = Type::scalar(s);
        match form {
            0 => Type::anon_struct(std::iter::repeat_n(e, n as usize)),
            1 => Type::anon_struct([Type::Array(Box::new(e), n)]),
            _ => {
                let inner =
                    Type::anon_struct(std::iter::repeat_n(e.clone(), n.div_ceil(2) as usize));
                let rest = std::iter::repeat_n(e, (n / 2) as usize);
                Type::anon_struct(std::iter::once(inner).chain(rest))
            }
        }
    })
}

/// A union with a floating-point arm beside integer or mixed arms
/// (`union { double d; struct { float f; long l; } s; }`): the shape where the SysV
/// eightbyte classification and compilers' readings of it part ways.
pub fn any_float_union() -> impl Strategy<Value = Type> {
    let float = select(vec![Scalar::Float, Scalar::Double]);
    let other = prop_oneof![
        supported_scalar().prop_map(Type::Scalar),
        (select(vec![Scalar::Float, Scalar::Double]), supported_scalar())
            .prop_map(|(f, i)| Type::anon_struct([Type::Scalar(f), Type::Scalar(i)])),
        any_hfa(),
    ];
    (float, vec(other, 1..=2), any::<bool>()).prop_map(|(f, others, first)| {
        let mut arms: Vec<Type> = others;
        if first {
            arms.insert(0, Type::Scalar(f));
        } else {
            arms.push(Type::Scalar(f));
        }
        Type::aggregate(AggregateKind::Union, arms)
    })
}

/// Any calling convention keyword, or none.
pub fn any_convention() -> impl Strategy<Value = Convention> {
    select(vec![
        Convention::Default,
        Convention::Cdecl,
        Convention::Stdcall,
        Convention::Fastcall,
        Convention::Thiscall,
        Convention::MsAbi,
        Convention::SysvAbi,
    ])
}

/// A lower-case C identifier that is not a keyword and not a macro a C header or compiler may
/// define (such as `errno` or `linux`), so generated C compiles.
pub fn any_identifier() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,7}".prop_map(|s| if is_reserved(&s) { s + "_" } else { s })
}

/// A scalar, `_Complex` or aggregate type whose aggregates nest up to `depth` levels, with any
/// scalar (including `long double`) and complex types.
pub fn any_type(depth: u32) -> impl Strategy<Value = Type> {
    value_type(depth, true).prop_map(|t| TagFixer::default().ty(&t))
}

/// A struct or union (up to [`MAX_LEVELS`] levels, up to [`MAX_FIELDS`] members per level, with
/// arrays) that may contain any scalar, `long double` and `_Complex` included.
pub fn any_aggregate() -> impl Strategy<Value = Type> {
    aggregate_tree(true).prop_map(|t| TagFixer::default().ty(&t))
}

/// A struct or union (up to [`MAX_LEVELS`] levels, up to [`MAX_FIELDS`] members per level, with
/// arrays and mixed scalars) without `long double` or `_Complex`: every ABI can lay it out, so
/// it suits layout oracles.
pub fn any_aggregate_type() -> impl Strategy<Value = Type> {
    aggregate_tree(false).prop_map(|t| TagFixer::default().ty(&t))
}

/// Any signature the parser accepts: 0 to [`MAX_ARGS`] arguments of any type, any result,
/// any convention, variadic or not.
pub fn any_signature() -> impl Strategy<Value = Signature> {
    let ret = prop_oneof![1 => Just(Type::Void), 4 => arg_type(true)];
    let args = vec(arg_type(true), 0..=MAX_ARGS);
    (ret, args, any_convention(), any::<bool>()).prop_map(|(ret, args, conv, variadic)| {
        TagFixer::default().signature(Signature { ret, args, conv, variadic })
    })
}

/// Like [`any_signature`] but without `long double`, `_Complex`, `...` or convention keywords:
/// signatures every ABI is meant to plan.
pub fn any_supported_signature() -> impl Strategy<Value = Signature> {
    let ret = prop_oneof![1 => Just(Type::Void), 4 => arg_type(false)];
    let args = vec(arg_type(false), 0..=MAX_ARGS);
    (ret, args).prop_map(|(ret, args)| TagFixer::default().signature(Signature::new(ret, args)))
}

/// Like [`any_supported_signature`], and also under every i386 convention keyword (the 64-bit
/// ABIs ignore them, as their compilers do) and x86-64's `ms_abi` and `sysv_abi`, with float-heavy aggregates, unions with float
/// arms, and now and then a long list of small mixed aggregates that runs out of registers:
/// what `backcall verify` and the oracle suites draw.
pub fn any_verified_signature() -> impl Strategy<Value = Signature> {
    let ret = prop_oneof![1 => Just(Type::Void), 4 => verified_arg()];
    // now and then a `va_list` parameter (a parameter only: no ABI returns one)
    let param = prop_oneof![40 => verified_arg(), 1 => Just(Type::VaList)];
    let args = prop_oneof![3 => vec(param, 0..=MAX_ARGS), 1 => register_pressure()];
    let conv = prop_oneof![
        5 => Just(Convention::Default),
        1 => Just(Convention::Cdecl),
        2 => Just(Convention::Stdcall),
        2 => Just(Convention::Fastcall),
        2 => Just(Convention::Thiscall),
        1 => Just(Convention::MsAbi),
        1 => Just(Convention::SysvAbi),
    ];
    (ret, args, conv).prop_map(|(ret, args, conv)| {
        let sig = Signature { ret, args, conv, variadic: false };
        TagFixer::default().signature(sig)
    })
}

/// One call of a signature: [`any_verified_signature`]'s, and one in eight made variadic
/// (with at least one named parameter, under the default convention or `__cdecl`) and called
/// with up to 8 unnamed arguments of the types a C caller passes (promoted: a `float` passes
/// as a `double`, a `short` as an `int`).
pub fn any_verified_call() -> impl Strategy<Value = (Signature, Vec<Type>)> {
    let plain = any_verified_signature().prop_map(|sig| (sig, Vec::new()));
    let conv = prop_oneof![3 => Just(Convention::Default), 1 => Just(Convention::Cdecl)];
    let variadic = (any_verified_signature(), vec(unnamed_arg(), 0..=8), conv).prop_map(
        |(mut sig, unnamed, conv)| {
            if sig.args.is_empty() {
                sig.args.push(Type::Scalar(Scalar::Int));
            }
            // Tags unique across the named and unnamed types: the caller declares them all.
            let named = sig.args.len();
            sig.args.extend(unnamed);
            let mut sig = TagFixer::default().signature(Signature { conv, variadic: true, ..sig });
            let unnamed = sig.args.split_off(named);
            (sig, unnamed)
        },
    );
    prop_oneof![7 => plain, 1 => variadic]
}

/// An unnamed argument: an argument of [`any_verified_signature`] as C's default argument
/// promotions leave it on every ABI.
fn unnamed_arg() -> BoxedStrategy<Type> {
    verified_arg()
        .prop_map(|ty| match ty {
            Type::Scalar(Scalar::Float) => Type::Scalar(Scalar::Double),
            Type::Scalar(s) if promoted_to_int(s) => Type::Scalar(Scalar::Int),
            other => other,
        })
        .boxed()
}

/// Whether `s` is narrower than `int` on some ABI (a Windows `wchar_t` is 2 bytes).
fn promoted_to_int(s: Scalar) -> bool {
    use Scalar::*;
    matches!(s, Bool | Char | SChar | UChar | Short | UShort | I8 | U8 | I16 | U16 | WChar)
}

/// An argument of [`any_verified_signature`].
fn verified_arg() -> BoxedStrategy<Type> {
    // Now and then an `__int128`, a `long double` or a `_Complex` (together about one
    // signature in seven; i386 counts most as unsupported), alone or beside a `char` in a
    // struct.
    // (`long double` is `double` on Windows and Apple arm64, binary128 on AArch64 Linux, where
    // two to four of them make an HFA in q registers)
    let long_doubles =
        (2..=4usize).prop_map(|n| Type::anon_struct(vec![Type::Scalar(Scalar::LongDouble); n]));
    let wide = prop_oneof![
        3 => select(vec![Scalar::Int128, Scalar::UInt128, Scalar::LongDouble]).prop_map(Type::Scalar),
        3 => select(vec![Scalar::Float, Scalar::Double, Scalar::LongDouble]).prop_map(Type::Complex),
        1 => long_doubles,
    ];
    // ... or in a union with a scalar or a pair (x86-64 merges an x87 `long double`'s classes
    // with the other arm's: INTEGER wins, SSE makes it MEMORY).
    let other_arm = prop_oneof![
        supported_scalar().prop_map(Type::Scalar),
        vec(supported_scalar().prop_map(Type::Scalar), 2).prop_map(Type::anon_struct),
    ];
    let wide = prop_oneof![
        4 => wide.clone(),
        2 => wide.clone().prop_map(|w| Type::anon_struct([Type::Scalar(Scalar::Char), w])),
        1 => (wide, other_arm).prop_map(|(w, o)| Type::aggregate(AggregateKind::Union, [w, o])),
    ];
    prop_oneof![
        24 => leaf(false),
        16 => value_type(MAX_LEVELS, false),
        8 => any_hfa().boxed(),
        4 => any_float_union().boxed(),
        1 => wide,
    ]
    .boxed()
}

/// 6 to 14 arguments of small mixed aggregates (an integer and a float eightbyte, two
/// eightbytes of one kind), HFAs, doubles and integers: enough to run out of every register
/// file mid-aggregate.
fn register_pressure() -> BoxedStrategy<Vec<Type>> {
    let mixed = (supported_scalar(), supported_scalar())
        .prop_map(|(a, b)| Type::anon_struct([Type::Scalar(a), Type::Scalar(b)]));
    let arg = prop_oneof![
        3 => mixed,
        2 => any_hfa(),
        2 => supported_scalar().prop_map(Type::Scalar),
    ];
    vec(arg, 6..=14).boxed()
}

/// A scalar or (with `exotic`) `_Complex` type; `exotic` also allows `long double`.
fn leaf(exotic: bool) -> BoxedStrategy<Type> {
    if !exotic {
        return supported_scalar().prop_map(Type::Scalar).boxed();
    }
    let complex = select(vec![Scalar::Float, Scalar::Double, Scalar::LongDouble]);
    prop_oneof![8 => any_scalar().prop_map(Type::Scalar), 1 => complex.prop_map(Type::Complex)]
        .boxed()
}

/// An argument or result: mostly scalars, as in real signatures, else an aggregate.
fn arg_type(exotic: bool) -> BoxedStrategy<Type> {
    prop_oneof![3 => leaf(exotic), 2 => value_type(MAX_LEVELS, exotic)].boxed()
}

/// An aggregate of 1 to [`MAX_LEVELS`] levels, each depth about as likely.
fn aggregate_tree(exotic: bool) -> BoxedStrategy<Type> {
    let levels = (0..MAX_LEVELS).map(|inner| (1, aggregate(value_type(inner, exotic))));
    small(proptest::strategy::Union::new_weighted(levels.collect()).boxed())
}

/// A leaf or an aggregate nesting up to `depth` levels.
fn value_type(depth: u32, exotic: bool) -> BoxedStrategy<Type> {
    // desired size and branch size keep most values small while still reaching `depth`
    let tree = leaf(exotic).prop_recursive(depth, 32, 4, aggregate);
    small(tree.boxed())
}

fn small(ty: BoxedStrategy<Type>) -> BoxedStrategy<Type> {
    ty.prop_filter("type too large", |t| nodes(t) <= MAX_NODES).boxed()
}

/// A struct or union of 1 to [`MAX_FIELDS`] members drawn from `member` (some as arrays), now
/// and then under a `#pragma pack(N)`.
fn aggregate(member: BoxedStrategy<Type>) -> BoxedStrategy<Type> {
    let kind = prop_oneof![3 => Just(AggregateKind::Struct), 1 => Just(AggregateKind::Union)];
    let tag = proptest::option::weighted(0.25, any_identifier());
    let plain = (any_identifier().boxed(), maybe_array(member), any_packing(16, 24))
        .prop_map(|(name, ty, packing)| Field { name, ty, packing, bits: None });
    let field = prop_oneof![6 => plain, 1 => any_bit_field()];
    // mostly few members, so that deep nesting stays small enough to reach
    let fields = prop_oneof![3 => vec(field.clone(), 1..=4), 1 => vec(field, 1..=MAX_FIELDS)];
    let fields = fields.prop_filter("a named member", |f| f.iter().any(|f| !f.name.is_empty()));
    let pack =
        prop_oneof![11 => Just(None), 1 => select(PRAGMA_PACK_VALUES.to_vec()).prop_map(Some)];
    (kind, tag, fields, any_packing(32, 10), pack)
        .prop_map(|(kind, tag, mut fields, packing, pack)| {
            if kind == AggregateKind::Union {
                // `: 0` in a union is refused (it ends no storage unit there)
                fields.retain(|f| f.bits != Some(0));
            }
            let fields = unique_names(fields);
            Type::Aggregate(Arc::new(Aggregate { kind, tag, fields, packing, pack }))
        })
        .boxed()
}

/// Mostly no layout attribute; one in `one_in` is `packed`, `aligned(N)` (`N` up to
/// `max_align`) or both.
pub fn any_packing(max_align: u32, one_in: u32) -> BoxedStrategy<Packing> {
    let aligns: Vec<u32> = (0..=max_align.ilog2()).map(|k| 1 << k).collect();
    let align = proptest::option::of(select(aligns));
    let attributed = (any::<bool>(), align)
        .prop_map(|(packed, align)| Packing { packed: packed || align.is_none(), align });
    prop_oneof![one_in - 1 => Just(Packing::NONE), 1 => attributed].boxed()
}

/// `elem`, or now and then an array of it with one or two dimensions.
fn maybe_array(elem: BoxedStrategy<Type>) -> BoxedStrategy<Type> {
    let array = (elem.clone(), vec(1u32..=5, 1..=2))
        .prop_map(|(elem, dims)| dims.iter().rev().fold(elem, |t, &n| Type::Array(Box::new(t), n)));
    prop_oneof![4 => elem, 1 => array].boxed()
}

/// A bit-field of an integer type whose size no ABI changes: named (1 bit up to the type's
/// width) or unnamed (0 up to the width), now and then `packed`.
fn any_bit_field() -> BoxedStrategy<Field> {
    use Scalar::*;
    let types = vec![
        (Bool, 1),
        (Char, 8),
        (SChar, 8),
        (UChar, 8),
        (Short, 16),
        (UShort, 16),
        (Int, 32),
        (UInt, 32),
        (LongLong, 64),
        (ULongLong, 64),
        (U8, 8),
        (I16, 16),
        (U32, 32),
        (I64, 64),
    ];
    let packed =
        prop_oneof![5 => Just(Packing::NONE), 1 => Just(Packing { packed: true, align: None })];
    (select(types), any::<bool>(), any_identifier(), any::<u32>(), packed)
        .prop_map(|((ty, bits), named, name, width, packing)| {
            let (name, width) = match named {
                true => (name, 1 + width % bits),
                false => (String::new(), width % (bits + 1)),
            };
            Field { name, ty: Type::Scalar(ty), packing, bits: Some(width) }
        })
        .boxed()
}

/// Fields with names made unique by appending `_` (unnamed bit-fields stay unnamed).
fn unique_names(fields: Vec<Field>) -> Vec<Field> {
    let mut seen = HashSet::new();
    fields
        .into_iter()
        .map(|mut field| {
            while !field.name.is_empty() && !seen.insert(field.name.clone()) {
                field.name.push('_');
            }
            field
        })
        .collect()
}

/// Members and array types in `ty`, counting `ty` and each use of a nested type.
fn nodes(ty: &Type) -> usize {
    match ty {
        Type::Array(elem, _) => 1 + nodes(elem),
        Type::Aggregate(a) => a.fields.iter().fold(1, |n, f| n.saturating_add(nodes(&f.ty))),
        _ => 1,
    }
}

/// Renames tags so that aggregates with one tag have one body, as C (and the parser) require
/// of a tag defined twice in one signature.
#[derive(Default)]
struct TagFixer {
    bodies: HashMap<String, Arc<Aggregate>>,
}

impl TagFixer {
    fn signature(&mut self, sig: Signature) -> Signature {
        let ret = self.ty(&sig.ret);
        let args = sig.args.iter().map(|a| self.ty(a)).collect();
        Signature { ret, args, ..sig }
    }

    fn ty(&mut self, ty: &Type) -> Type {
        match ty {
            Type::Aggregate(a) => Type::Aggregate(self.aggregate(a)),
            Type::Array(elem, n) => Type::Array(Box::new(self.ty(elem)), *n),
            other => other.clone(),
        }
    }

    /// Fixes the members first, so that a body is final before its tag is compared.
    fn aggregate(&mut self, a: &Aggregate) -> Arc<Aggregate> {
        let fields = a.fields.iter().map(|f| Field { ty: self.ty(&f.ty), ..f.clone() }).collect();
        let mut fixed = Aggregate { tag: None, fields, ..a.clone() };
        let Some(mut tag) = a.tag.clone() else { return Arc::new(fixed) };
        loop {
            match self.bodies.get(&tag) {
                Some(first)
                    if first.kind == fixed.kind
                        && first.fields == fixed.fields
                        && first.packing == fixed.packing
                        && first.pack == fixed.pack =>
                {
                    return first.clone();
                }
                Some(_) => tag.push('_'),
                None => break,
            }
        }
        fixed.tag = Some(tag.clone());
        let fixed = Arc::new(fixed);
        self.bodies.insert(tag, fixed.clone());
        fixed
    }
}

fn is_reserved(name: &str) -> bool {
    crate::types::C_KEYWORDS.contains(&name) || RESERVED.contains(&name)
}

/// Names a generated C file must avoid beyond [`crate::types::C_KEYWORDS`]: GNU's `asm` and
/// macros that headers or compilers may define.
const RESERVED: &[&str] = &[
    "asm",
    // macros: <errno.h>, <complex.h>, <assert.h>, <stddef.h>, <stdio.h>, <stdnoreturn.h>, GNU C
    "errno",
    "complex",
    "imaginary",
    "assert",
    "offsetof",
    "stdin",
    "stdout",
    "stderr",
    "noreturn",
    "linux",
    "unix",
    "i386",
];

#[cfg(test)]
mod tests {
    use super::*;

    proptest! {
        #[test]
        fn tags_have_one_body(sig in any_signature()) {
            let mut bodies = HashMap::new();
            let mut check = |a: &Aggregate| {
                if let Some(tag) = &a.tag {
                    let first = bodies.entry(tag.clone()).or_insert_with(|| a.clone());
                    assert_eq!(first, a, "tag {tag}");
                }
            };
            for ty in std::iter::once(&sig.ret).chain(&sig.args) {
                visit(ty, &mut check);
            }
        }

        #[test]
        fn aggregate_types_are_supported(ty in any_aggregate_type()) {
            prop_assert!(matches!(ty, Type::Aggregate(_)));
            let mut exotic = false;
            visit(&ty, &mut |a| {
                exotic |= a.fields.iter().any(|f| leaf_of(&f.ty).is_some_and(|t| {
                    matches!(t, Type::Complex(_) | Type::Scalar(Scalar::LongDouble))
                }));
            });
            prop_assert!(!exotic, "{}", ty);
            prop_assert!(depth(&ty) <= MAX_LEVELS);
        }
    }

    fn visit(ty: &Type, f: &mut impl FnMut(&Aggregate)) {
        match ty {
            Type::Aggregate(a) => {
                f(a);
                a.fields.iter().for_each(|field| visit(&field.ty, f));
            }
            Type::Array(elem, _) => visit(elem, f),
            _ => {}
        }
    }

    fn leaf_of(ty: &Type) -> Option<&Type> {
        match ty {
            Type::Array(elem, _) => leaf_of(elem),
            Type::Aggregate(_) => None,
            other => Some(other),
        }
    }

    fn depth(ty: &Type) -> u32 {
        match ty {
            Type::Array(elem, _) => depth(elem),
            Type::Aggregate(a) => 1 + a.fields.iter().map(|f| depth(&f.ty)).max().unwrap_or(0),
            _ => 0,
        }
    }
}
