//! `Layout`: size, alignment and member offsets of a [`Type`] for one [`Abi`].
//!
//! The only per-ABI input is the scalar table ([`AbiSpec::scalar_layout`]); struct and union
//! layout follows the C rules every covered ABI shares: a member is placed at the next offset
//! that is a multiple of its alignment, the aggregate's alignment is its largest member's, and
//! its size is rounded up to that alignment. The layout attributes: `packed` makes a member's
//! alignment 1, `aligned(N)` raises a member's or a record's alignment to at least `N`; how the
//! two combine is the ABI's ([`RecordRules`]).

use std::collections::HashMap;
use std::sync::Arc;

use crate::abi::{Abi, AbiSpec};
use crate::types::{Aggregate, AggregateKind, Scalar, Type};
use crate::AbiError;

/// The layout of a type on one ABI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `sizeof`
    pub size: u32,
    /// `_Alignof`
    pub align: u32,
    /// The alignment the `aligned(N)` attributes of a struct or union (or an array of one) and
    /// of its members require, which `packed` cannot lower ([`RecordRules::Msvc`]; 1 elsewhere).
    pub required_align: u32,
    /// The largest alignment of a member (after `packed` and the member's own `aligned(N)`),
    /// before the record's own `aligned(N)` raises it: AAPCS64's "natural alignment" of a
    /// composite (§5.6), which decides its register pair and stack slot. `align` otherwise.
    pub natural_align: u32,
    /// What the bytes are.
    pub shape: Shape,
}

/// How `packed` and `aligned(N)` combine: the two record layout families differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordRules {
    /// GCC's (the Linux and Apple ABIs): `packed` lowers a member's alignment to 1 even when its
    /// type is `aligned(N)`; only the member's own `aligned(N)` raises it again.
    Gcc,
    /// MSVC's (the Windows ABIs; `__declspec(align(N))`, which clang also gives `aligned(N)`
    /// there): the alignment a member's type or the member itself requires survives `packed`
    /// (`#pragma pack`); as a member, a record type with its own `aligned(N)` requires its
    /// whole alignment, one without what its members require.
    Msvc,
}

/// What a layout's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `void`: no bytes
    Void,
    /// one scalar
    Scalar(Scalar),
    /// a struct or union with its members' offsets
    Aggregate {
        /// `struct` or `union`
        kind: AggregateKind,
        /// members in declaration order
        fields: Vec<FieldLayout>,
    },
    /// `count` elements of `elem`, `elem.size` apart
    Array {
        /// the element layout
        elem: Arc<Layout>,
        /// how many elements
        count: u32,
    },
}

/// One member of an aggregate layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldLayout {
    /// the member name
    pub name: String,
    /// `offsetof`
    pub offset: u32,
    /// the member's own layout (shared by every use of the same struct or union type)
    pub layout: Arc<Layout>,
}

/// A scalar at a byte offset inside a value (see [`Layout::leaves`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// offset from the start of the outermost value
    pub offset: u32,
    /// the scalar there
    pub scalar: Scalar,
    /// its size
    pub size: u32,
}

impl Layout {
    /// Whether this is a struct, union or array (a "composite" in AAPCS64 terms).
    pub fn is_aggregate(&self) -> bool {
        matches!(self.shape, Shape::Aggregate { .. } | Shape::Array { .. })
    }

    /// The scalar, if this layout is one.
    pub fn scalar(&self) -> Option<Scalar> {
        match self.shape {
            Shape::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// Every scalar inside the value with its offset, in address order of declaration
    /// (union members overlap; all of them are listed).
    pub fn leaves(&self) -> Vec<Leaf> {
        let mut out = Vec::new();
        self.collect_leaves(0, &mut out);
        out
    }

    fn collect_leaves(&self, base: u32, out: &mut Vec<Leaf>) {
        match &self.shape {
            Shape::Void => {}
            Shape::Scalar(s) => out.push(Leaf { offset: base, scalar: *s, size: self.size }),
            Shape::Aggregate { fields, .. } => {
                for f in fields {
                    f.layout.collect_leaves(base + f.offset, out);
                }
            }
            Shape::Array { elem, count } => {
                for i in 0..*count {
                    elem.collect_leaves(base + i * elem.size, out);
                }
            }
        }
    }
}

/// Computes the layout of `ty` on `abi`.
pub fn layout_of(abi: Abi, ty: &Type) -> Result<Layout, AbiError> {
    Layouts::new(abi).layout(ty).map(Arc::unwrap_or_clone)
}

/// Layouts of the types of one signature on one ABI, each struct or union type computed once
/// and shared by all its uses: a type built by stacking typedefs (a struct of two of the
/// previous one, fifteen times) has a layout as small as its text, not one node per byte.
pub struct Layouts<'s> {
    spec: &'s dyn AbiSpec,
    /// by the address of the (shared, alive for the borrow of the types) aggregate
    memo: HashMap<*const Aggregate, Arc<Layout>>,
}

impl Layouts<'static> {
    /// An empty memo for `abi`.
    pub fn new(abi: Abi) -> Layouts<'static> {
        Layouts { spec: abi.spec(), memo: HashMap::new() }
    }
}

impl Layouts<'_> {
    /// The layout of `ty` (shared with earlier answers for the same aggregate types).
    pub fn layout(&mut self, ty: &Type) -> Result<Arc<Layout>, AbiError> {
        let spec = self.spec;
        match ty {
            Type::Void => {
                let shape = Shape::Void;
                Ok(Arc::new(Layout {
                    size: 0,
                    align: 1,
                    required_align: 1,
                    natural_align: 1,
                    shape,
                }))
            }
            Type::Scalar(s) => {
                let (size, align) = match s {
                    Scalar::WChar => (spec.wchar().0, spec.wchar().0),
                    _ => spec
                        .scalar_layout(*s)
                        .ok_or_else(|| AbiError::unsupported(spec.abi(), s.c_name()))?,
                };
                let shape = Shape::Scalar(*s);
                Ok(Arc::new(Layout { size, align, required_align: 1, natural_align: align, shape }))
            }
            // `T _Complex` is laid out and passed as `struct { T re, im; }`: x86-64 psABI §3.2.3
            // ("complex T ... treated as a structure of two T"), AAPCS64 §5.9.5 (an HFA of two
            // T), and Win64's compilers. The i386 ABIs have rules of their own (not modelled
            // yet).
            Type::Complex(s) if spec.complex_as_struct() => {
                let part = self.layout(&Type::Scalar(*s))?;
                let field = |name: &str, offset| FieldLayout {
                    name: name.to_string(),
                    offset,
                    layout: part.clone(),
                };
                let fields = vec![field(COMPLEX_PARTS[0], 0), field(COMPLEX_PARTS[1], part.size)];
                Ok(Arc::new(Layout {
                    size: 2 * part.size,
                    align: part.align,
                    required_align: 1,
                    natural_align: part.align,
                    shape: Shape::Aggregate { kind: AggregateKind::Struct, fields },
                }))
            }
            Type::Complex(s) => {
                Err(AbiError::unsupported(spec.abi(), &format!("{} _Complex", s.c_name())))
            }
            Type::Array(_, 0) => Err(AbiError::unsupported(
                spec.abi(),
                "a flexible or zero-length array member by value (only behind a pointer)",
            )),
            Type::Array(elem, count) => {
                let elem = self.layout(elem)?;
                let size = elem
                    .size
                    .checked_mul(*count)
                    .filter(|&s| s <= MAX_SIZE)
                    .ok_or_else(|| too_large(spec.abi()))?;
                Ok(Arc::new(Layout {
                    size,
                    align: elem.align,
                    required_align: elem.required_align,
                    natural_align: elem.align,
                    shape: Shape::Array { elem, count: *count },
                }))
            }
            Type::Aggregate(agg) => {
                if let Some(done) = self.memo.get(&Arc::as_ptr(agg)) {
                    return Ok(done.clone());
                }
                let layout = Arc::new(self.aggregate(agg)?);
                self.memo.insert(Arc::as_ptr(agg), layout.clone());
                Ok(layout)
            }
        }
    }

    fn aggregate(&mut self, agg: &Aggregate) -> Result<Layout, AbiError> {
        let abi = self.spec.abi();
        if agg.fields.is_empty() {
            // C forbids empty structs; GNU C gives them size 0 but ABIs disagree on passing.
            return Err(AbiError::unsupported(abi, "an empty struct or union"));
        }
        let msvc = self.spec.record_rules() == RecordRules::Msvc;
        let mut fields = Vec::with_capacity(agg.fields.len());
        let (mut end, mut align, mut required_align) = (0u32, 1u32, 1u32);
        for f in &agg.fields {
            let layout = self.layout(&f.ty)?;
            let packed = agg.packing.packed || f.packing.packed;
            let attribute = f.packing.align.unwrap_or(1);
            let required =
                if msvc { attribute.max(member_requirement(&f.ty, &layout)) } else { attribute };
            required_align = required_align.max(required);
            let member_align = if packed { 1 } else { layout.align }.max(required);
            let offset = match agg.kind {
                AggregateKind::Struct => round_up(end, member_align),
                AggregateKind::Union => 0,
            };
            end = end.max(offset + layout.size);
            if end > MAX_SIZE {
                return Err(too_large(abi));
            }
            align = align.max(member_align);
            fields.push(FieldLayout { name: f.name.clone(), offset, layout });
        }
        let natural_align = align;
        align = align.max(agg.packing.align.unwrap_or(1));
        // What its own `aligned(N)` and its members require (clang's MS record layout
        // "required alignment"; what decides passing by reference on i386-win32).
        let required_align = match msvc {
            false => 1,
            true => required_align.max(agg.packing.align.unwrap_or(1)),
        };
        let size = round_up(end, align);
        let shape = Shape::Aggregate { kind: agg.kind, fields };
        Ok(Layout { size, align, required_align, natural_align, shape })
    }
}

/// What a member of type `ty` (laid out as `layout`) requires under [`RecordRules::Msvc`]: a
/// record type with its own `aligned(N)`, or an array of one, requires its whole alignment,
/// its natural one included (`struct { short a; } __attribute__((aligned(1)))` stays 2-aligned
/// in a packed record); any other type what its layout requires.
fn member_requirement(ty: &Type, layout: &Layout) -> u32 {
    let mut base = ty;
    while let Type::Array(elem, _) = base {
        base = elem;
    }
    match base {
        Type::Aggregate(agg) if agg.packing.align.is_some() => {
            layout.align.max(layout.required_align)
        }
        _ => layout.required_align,
    }
}

/// Scalar sizes and alignments of the LP64 data model (x86-64 SysV, AArch64): `long` and
/// pointers are 8 bytes, every scalar is naturally aligned. `long double` is refused for now.
pub fn lp64_scalar_layout(s: Scalar) -> Option<(u32, u32)> {
    use Scalar::*;
    let size = match s {
        Bool | Char | SChar | UChar | I8 | U8 => 1,
        Short | UShort | I16 | U16 => 2,
        Int | UInt | I32 | U32 | Float => 4,
        Long | ULong | LongLong | ULongLong | I64 | U64 | SizeT | SSizeT | IntPtr | UIntPtr
        | Double | Pointer => 8,
        // x86-64 psABI §3.1.2 Figure 3.1 and AAPCS64 §5.1: 16 bytes, 16-aligned.
        Int128 | UInt128 => 16,
        // (the ABI's own: `AbiSpec::wchar`)
        WChar | LongDouble => return None,
    };
    Some((size, size))
}

/// Scalar sizes of the ILP32 data model (both i386 ABIs): `long` and pointers are 4 bytes;
/// 8-byte scalars are aligned to `eight_byte_align` (4 on SysV, 8 on Win32). `long double` is
/// refused for now.
pub fn ilp32_scalar_layout(s: Scalar, eight_byte_align: u32) -> Option<(u32, u32)> {
    use Scalar::*;
    Some(match s {
        Bool | Char | SChar | UChar | I8 | U8 => (1, 1),
        Short | UShort | I16 | U16 => (2, 2),
        Int | UInt | Long | ULong | I32 | U32 | SizeT | SSizeT | IntPtr | UIntPtr | Float
        | Pointer => (4, 4),
        LongLong | ULongLong | I64 | U64 | Double => (8, eight_byte_align),
        // (the ABI's own: `AbiSpec::wchar`); 32-bit x86 has no `__int128`
        WChar | LongDouble | Int128 | UInt128 => return None,
    })
}

/// The member names a `T _Complex` layout gives its two parts: GNU C's operators, which no
/// member can be named, so that nothing mistakes them for a struct's members.
pub const COMPLEX_PARTS: [&str; 2] = ["__real__", "__imag__"];

/// The largest value size accepted; keeps every offset computation far from overflow.
pub const MAX_SIZE: u32 = 1 << 24;

fn too_large(abi: Abi) -> AbiError {
    AbiError::unsupported(abi, "a type larger than 16 MiB")
}

/// Rounds `n` up to a multiple of `align` (a power of two).
pub fn round_up(n: u32, align: u32) -> u32 {
    n.div_ceil(align) * align
}
