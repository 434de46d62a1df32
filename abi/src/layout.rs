//! `Layout`: size, alignment and member offsets of a [`Type`] for one [`Abi`].
//!
//! The only per-ABI input is the scalar table ([`AbiSpec::scalar_layout`]); struct and union
//! layout follows the C rules every covered ABI shares: a member is placed at the next offset
//! that is a multiple of its alignment, the aggregate's alignment is its largest member's, and
//! its size is rounded up to that alignment. The layout attributes: `packed` makes a member's
//! alignment 1, `aligned(N)` raises a member's or a record's alignment to at least `N`, and a
//! record defined under `#pragma pack(N)` ([`Aggregate::pack`]) aligns no member above `N`; how
//! they combine is the ABI's ([`RecordRules`]).

use std::collections::HashMap;
use std::sync::Arc;

use crate::abi::{Abi, AbiSpec};
use crate::types::{Aggregate, AggregateKind, Scalar, Type, PRAGMA_PACK_VALUES};
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

/// What an ABI's `va_list` is, as a parameter ([`crate::AbiSpec::va_list`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaList {
    /// a pointer: `char *` (i386, Win64, Apple arm64), or x86-64 SysV's one-element array of
    /// `__va_list_tag` adjusted to a pointer (psABI §3.5.7)
    Pointer,
    /// AAPCS64's `struct __va_list { void *__stack, *__gr_top, *__vr_top; int __gr_offs,
    /// __vr_offs; }` (§10.1.5 and Appendix B), 32 bytes: passed by reference like any large
    /// composite
    Aapcs64,
}

/// AAPCS64's `va_list` record (one shared value: layouts are memoised by its address).
fn aapcs64_va_list() -> &'static Type {
    static RECORD: std::sync::OnceLock<Type> = std::sync::OnceLock::new();
    RECORD.get_or_init(|| {
        let ptr = |name: &str| crate::types::Field::new(name, Type::Scalar(Scalar::Pointer));
        let int = |name: &str| crate::types::Field::new(name, Type::Scalar(Scalar::Int));
        let fields = vec![
            ptr("__stack"),
            ptr("__gr_top"),
            ptr("__vr_top"),
            int("__gr_offs"),
            int("__vr_offs"),
        ];
        let tag = Some("__va_list".to_string());
        Type::Aggregate(Arc::new(Aggregate::new(AggregateKind::Struct, tag, fields)))
    })
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
    /// the member's own layout (shared by every use of the same struct or union type); a
    /// bit-field's is its declared type's
    pub layout: Arc<Layout>,
    /// where a bit-field's bits are: `offset` is the byte holding its first bit
    pub bits: Option<BitRange>,
}

/// A bit-field's place in its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BitRange {
    /// the first bit's position in the byte at the member's offset (0 is the least
    /// significant: every ABI here is little-endian)
    pub shift: u32,
    /// how many bits (0 for `: 0`, which only moves the next member)
    pub width: u32,
    /// whether it is packed (by its own attribute or its record's)
    pub packed: bool,
}

impl FieldLayout {
    /// Whether the member has bytes of its own: not of size 0, not `: 0`. An unnamed
    /// bit-field is integer data like a named one, as GCC classifies it (x86-64 psABI §3.2.3
    /// counts bit-fields by their type; GCC keeps unnamed ones) and AArch64's HFA test sees it.
    pub fn holds_value(&self) -> bool {
        match self.bits {
            Some(bits) => bits.width > 0,
            None => self.layout.size > 0,
        }
    }
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

    /// Whether this is a `T _Complex` (its parts named [`COMPLEX_PARTS`]).
    pub fn is_complex(&self) -> bool {
        match &self.shape {
            Shape::Aggregate { fields, .. } => {
                fields.first().is_some_and(|f| f.name == COMPLEX_PARTS[0])
            }
            _ => false,
        }
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
            Shape::Scalar(s) => {
                out.push(Leaf { offset: base, scalar: *s, size: s.value_size(self.size) })
            }
            Shape::Aggregate { fields, .. } => {
                for f in fields {
                    match f.bits {
                        // A bit-field is integer bytes, whichever bytes its bits touch.
                        Some(bits) if f.holds_value() => {
                            let bytes = (bits.shift + bits.width).div_ceil(8);
                            for i in 0..bytes {
                                let offset = base + f.offset + i;
                                out.push(Leaf { offset, scalar: Scalar::UChar, size: 1 });
                            }
                        }
                        Some(_) => {}
                        None => f.layout.collect_leaves(base + f.offset, out),
                    }
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
            Type::VaList => match spec.va_list() {
                VaList::Pointer => self.layout(&Type::Scalar(Scalar::Pointer)),
                VaList::Aapcs64 => self.layout(aapcs64_va_list()),
            },
            // `long double` is `double` on Windows and Apple arm64, binary128 on AArch64 Linux:
            // that type's layout, that type's passing.
            Type::Scalar(Scalar::LongDouble) if spec.long_double() != Scalar::LongDouble => {
                self.layout(&Type::Scalar(spec.long_double()))
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
            // T), and Win64's compilers. On i386 GCC and clang pass it as that struct too (and
            // return it as one but for i386-sysv's `float _Complex` in edx:eax); MSVC has no
            // `_Complex`, and clang's i386-win32 thiscall expands a member into its two parts
            // (`i386::expansion`).
            Type::Complex(s) => {
                let part = self.layout(&Type::Scalar(*s))?;
                let field = |name: &str, offset| FieldLayout {
                    name: name.to_string(),
                    offset,
                    layout: part.clone(),
                    bits: None,
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
        if agg.fields.iter().all(|f| f.name.is_empty()) {
            // C forbids empty structs (C11 6.7.2.1p8: "no named members" is undefined); GNU C
            // gives them size 0 but ABIs disagree on passing.
            return Err(AbiError::unsupported(abi, "an empty struct or union"));
        }
        if let Some(n) = agg.pack.filter(|n| !PRAGMA_PACK_VALUES.contains(n)) {
            let what = format!("a `#pragma pack({n})` (compilers take 1, 2, 4, 8 or 16)");
            return Err(AbiError::unsupported(abi, &what));
        }
        let rules = self.spec.record_rules();
        let msvc = rules == RecordRules::Msvc;
        let mut fields = Vec::with_capacity(agg.fields.len());
        let mut cursor = BitCursor::new(agg.kind);
        let (mut align, mut required_align) = (1u32, 1u32);
        for f in &agg.fields {
            if element_type(&f.ty) == &Type::VaList {
                // (x86-64 SysV's is an array there, unlike its parameter: not modelled yet)
                return Err(AbiError::unsupported(abi, "a `va_list` member"));
            }
            let layout = self.layout(&f.ty)?;
            let packed = agg.packing.packed || f.packing.packed;
            let (offset, bits) = if let Some(width) = f.bits {
                if width == 0 && agg.kind == AggregateKind::Union {
                    // It ends no storage unit there, and GCC then passes the union apart.
                    let what = "a `: 0` bit-field in a union";
                    return Err(AbiError::unsupported(abi, what));
                }
                if width > layout.size * 8 {
                    let what = format!("a {width}-bit bit-field of a {}-byte type", layout.size);
                    return Err(AbiError::unsupported(abi, &what));
                }
                let named = !f.name.is_empty() || self.spec.unnamed_bit_fields_align();
                let how = BitFieldRules { rules, packed, named, pack: agg.pack };
                let placed = cursor.bit_field(how, &layout, width);
                align = align.max(placed.record_align);
                (placed.bit / 8, Some(BitRange { shift: placed.bit % 8, width, packed }))
            } else {
                let attribute = f.packing.align.unwrap_or(1);
                let required = match msvc {
                    true => attribute.max(member_requirement(&f.ty, &layout)),
                    false => attribute,
                };
                required_align = required_align.max(required);
                let member_align = member_align(rules, packed, agg.pack, layout.align, required);
                align = align.max(member_align);
                (cursor.member(member_align, layout.size), None)
            };
            if cursor.end() > MAX_SIZE {
                return Err(too_large(abi));
            }
            fields.push(FieldLayout { name: f.name.clone(), offset, layout, bits });
        }
        let natural_align = align;
        align = align.max(agg.packing.align.unwrap_or(1));
        // What its own `aligned(N)` and its members require (clang's MS record layout
        // "required alignment"; what decides passing by reference on i386-win32).
        let required_align = match msvc {
            false => 1,
            true => required_align.max(agg.packing.align.unwrap_or(1)),
        };
        let size = round_up(cursor.end(), align);
        let shape = Shape::Aggregate { kind: agg.kind, fields };
        Ok(Layout { size, align, required_align, natural_align, shape })
    }
}

/// Where the next member of a struct goes, in bits (bit-fields share bytes), and how far a
/// union reaches.
struct BitCursor {
    kind: AggregateKind,
    /// a struct's next free bit; a union's size so far, in bits
    bit: u64,
    /// MSVC: the size of the open bit-field storage unit and its unused bits
    unit: Option<(u32, u32)>,
}

/// A bit-field as placed: its first bit, and the alignment it gives its record.
struct PlacedBits {
    bit: u32,
    record_align: u32,
}

impl BitCursor {
    fn new(kind: AggregateKind) -> BitCursor {
        BitCursor { kind, bit: 0, unit: None }
    }

    /// The bytes used so far.
    fn end(&self) -> u32 {
        u32::try_from(self.bit.div_ceil(8)).unwrap_or(u32::MAX)
    }

    /// Places an ordinary member; answers its offset.
    fn member(&mut self, align: u32, size: u32) -> u32 {
        self.unit = None;
        let offset = match self.kind {
            AggregateKind::Struct => round_up(self.end(), align),
            AggregateKind::Union => 0,
        };
        self.bit = self.bit.max(u64::from(offset + size) * 8);
        offset
    }

    /// Places a bit-field of the declared type `ty` by the record rules.
    fn bit_field(&mut self, how: BitFieldRules, ty: &Layout, width: u32) -> PlacedBits {
        match how.rules {
            RecordRules::Gcc => self.gcc_bit_field(how, ty, width),
            RecordRules::Msvc => self.msvc_bit_field(how, ty, width),
        }
    }

    /// The System V rule (i386 psABI §2.1.2 and x86-64 psABI §3.1.2 "Bit-Fields", AAPCS64
    /// §10.1.8, as GCC and clang implement them): a bit-field starts at the next free bit
    /// unless it would then cross a boundary of its type's alignment further than the type's
    /// size reaches; `packed` packs the bits with no such boundary. `: 0` moves to the next
    /// boundary of its type. Unnamed bit-fields align the record only where the ABI says so
    /// (`named` is then true for them too). Under `#pragma pack(N)` no bit-field moves to
    /// avoid a crossing, and the alignment it gives its record is at most `N` (clang's
    /// `ItaniumRecordLayoutBuilder::LayoutBitField`, GCC's `place_field`).
    fn gcc_bit_field(&mut self, how: BitFieldRules, ty: &Layout, width: u32) -> PlacedBits {
        let unit_bits = u64::from(ty.size) * 8;
        let align_bits = u64::from(ty.align) * 8;
        let record_align = how.gcc_record_align(ty, width);
        if self.kind == AggregateKind::Union {
            self.bit = self.bit.max(u64::from(width));
            return PlacedBits { bit: 0, record_align };
        }
        let crosses = self.bit % align_bits + u64::from(width) > unit_bits;
        let may_pad = !how.packed && how.pack.is_none();
        if width == 0 || (may_pad && crosses) {
            self.bit = self.bit.next_multiple_of(align_bits);
        }
        let bit = u32::try_from(self.bit).unwrap_or(u32::MAX);
        self.bit += u64::from(width);
        PlacedBits { bit, record_align }
    }

    /// Microsoft's rule (as clang's MS record layout and GCC's `-mms-bitfields` implement it):
    /// a bit-field takes a whole storage unit of its type's size, aligned to the type; the
    /// bit-fields after it share that unit while their type has the same size and the bits
    /// fit. `: 0` ends an open unit (and aligns the record) and is ignored otherwise. Named or
    /// not, a bit-field aligns the record.
    fn msvc_bit_field(&mut self, how: BitFieldRules, ty: &Layout, width: u32) -> PlacedBits {
        let align = member_align(how.rules, how.packed, how.pack, ty.align, 1);
        let unit_bits = ty.size * 8;
        if self.kind == AggregateKind::Union {
            // A union's `: 0` counts only after a bit-field, as in a struct.
            if width > 0 || self.unit.take().is_some() {
                self.bit = self.bit.max(u64::from(ty.size) * 8);
                self.unit = (width > 0).then_some((ty.size, 0));
            }
            // clang: "MS ignores bitfield alignment in unions".
            return PlacedBits { bit: 0, record_align: 1 };
        }
        if width == 0 {
            let Some(_) = self.unit.take() else {
                return PlacedBits { bit: self.end() * 8, record_align: 1 };
            };
            let offset = round_up(self.end(), align);
            self.bit = u64::from(offset) * 8;
            return PlacedBits { bit: offset * 8, record_align: align };
        }
        if let Some((size, free)) =
            self.unit.filter(|&(size, free)| size == ty.size && width <= free)
        {
            let bit = self.end() * 8 - free;
            self.unit = Some((size, free - width));
            return PlacedBits { bit, record_align: 1 };
        }
        let offset = round_up(self.end(), align);
        self.bit = u64::from(offset + ty.size) * 8;
        self.unit = Some((ty.size, unit_bits - width));
        PlacedBits { bit: offset * 8, record_align: align }
    }
}

/// How a bit-field is placed: the record rules, and what packs it.
#[derive(Clone, Copy)]
struct BitFieldRules {
    rules: RecordRules,
    /// `packed` (its own or its record's)
    packed: bool,
    /// whether it aligns its record (named, or unnamed where the ABI says so)
    named: bool,
    /// its record's `#pragma pack(N)`
    pack: Option<u32>,
}

impl BitFieldRules {
    /// The alignment a System V bit-field gives its record: its type's (at most the
    /// `#pragma pack`) unless packed or unnamed; where unnamed bit-fields align the record
    /// (AAPCS64), `: 0` does so even when packed, and is not capped by `#pragma pack`. Under
    /// `#pragma pack`, a packed bit-field counts as unpacked (GCC and clang agree: clang's
    /// `LayoutBitField` takes the unpacked alignment there).
    fn gcc_record_align(&self, ty: &Layout, width: u32) -> u32 {
        match (self.named, self.packed) {
            (true, _) if width == 0 => ty.align,
            (true, packed) if !packed || self.pack.is_some() => {
                ty.align.min(self.pack.unwrap_or(u32::MAX))
            }
            _ => 1,
        }
    }
}

/// The alignment of a member whose type is `type_align`-aligned and which `required` (its
/// `aligned(N)`; under MSVC's rules also what its type requires) must have. `packed` makes it
/// 1, `#pragma pack(N)` at most `N`. GCC's rules cap a member's own `aligned(N)` by the
/// `#pragma pack` too (clang's `ItaniumRecordLayoutBuilder::LayoutField`: "The maximum field
/// alignment overrides the aligned attribute"); MSVC's keep what is required
/// (`MicrosoftRecordLayoutBuilder::getAdjustedElementInfo`).
fn member_align(
    rules: RecordRules,
    packed: bool,
    pack: Option<u32>,
    type_align: u32,
    required: u32,
) -> u32 {
    let cap = pack.unwrap_or(u32::MAX);
    match rules {
        RecordRules::Gcc => if packed { 1 } else { type_align }.max(required).min(cap),
        RecordRules::Msvc => if packed { 1 } else { type_align.min(cap) }.max(required),
    }
}

/// `ty` without its array dimensions.
fn element_type(ty: &Type) -> &Type {
    match ty {
        Type::Array(elem, _) => element_type(elem),
        other => other,
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
/// pointers are 8 bytes, every scalar is naturally aligned (`long double`: see
/// `AbiSpec::long_double`).
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
        // (the ABI's own: `AbiSpec::wchar`, `AbiSpec::long_double`)
        WChar | LongDouble | Binary128 => return None,
    };
    Some((size, size))
}

/// Scalar sizes of the ILP32 data model (both i386 ABIs): `long` and pointers are 4 bytes;
/// 8-byte scalars are aligned to `eight_byte_align` (4 on SysV, 8 on Win32).
pub fn ilp32_scalar_layout(s: Scalar, eight_byte_align: u32) -> Option<(u32, u32)> {
    use Scalar::*;
    Some(match s {
        Bool | Char | SChar | UChar | I8 | U8 => (1, 1),
        Short | UShort | I16 | U16 => (2, 2),
        Int | UInt | Long | ULong | I32 | U32 | SizeT | SSizeT | IntPtr | UIntPtr | Float
        | Pointer => (4, 4),
        LongLong | ULongLong | I64 | U64 | Double => (8, eight_byte_align),
        // (the ABI's own: `AbiSpec::wchar`); 32-bit x86 has no `__int128`
        WChar | LongDouble | Binary128 | Int128 | UInt128 => return None,
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

/// Bit-field layouts read off `clang -S` (`sizeof`/`_Alignof` of each record stored in
/// globals) for each target; the layout oracle checks thousands more.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Field, Scalar};

    fn record(kind: AggregateKind, fields: Vec<Field>) -> Type {
        Type::Aggregate(Arc::new(Aggregate::new(kind, None, fields)))
    }

    fn bits(name: &str, s: Scalar, width: u32) -> Field {
        Field::bit_field(name, Type::Scalar(s), width)
    }

    fn size_align(abi: Abi, ty: &Type) -> (u32, u32) {
        let l = layout_of(abi, ty).unwrap();
        (l.size, l.align)
    }

    #[test]
    fn a_zero_width_bit_field_moves_the_next_member_and_aligns_only_on_aapcs64() {
        // struct { char c; int : 0; char d; }
        let ty = record(
            AggregateKind::Struct,
            vec![
                Field::new("c", Type::Scalar(Scalar::Char)),
                bits("", Scalar::Int, 0),
                Field::new("d", Type::Scalar(Scalar::Char)),
            ],
        );
        assert_eq!(size_align(Abi::X86_64Sysv, &ty), (5, 1));
        assert_eq!(size_align(Abi::Aarch64Apple, &ty), (5, 1));
        assert_eq!(size_align(Abi::Aarch64Aapcs64, &ty), (8, 4));
    }

    #[test]
    fn pragma_pack_caps_members_by_each_family_s_rules() {
        // #pragma pack(2) struct { char c; int i __attribute__((aligned(8))); }: GCC's rules
        // cap the member's own alignment too (6, 2); Microsoft's keep what it requires (16, 8).
        let aligned = Field {
            packing: crate::types::Packing { packed: false, align: Some(8) },
            ..Field::new("i", Type::Scalar(Scalar::Int))
        };
        let fields = vec![Field::new("c", Type::Scalar(Scalar::Char)), aligned];
        let agg =
            Aggregate { pack: Some(2), ..Aggregate::new(AggregateKind::Struct, None, fields) };
        let ty = Type::Aggregate(Arc::new(agg.clone()));
        assert_eq!(size_align(Abi::X86_64Sysv, &ty), (6, 2));
        assert_eq!(size_align(Abi::X86_64Win64, &ty), (16, 8));
        // A pack no compiler takes is an error, not a division by zero.
        for n in [0, 3, 32] {
            let bad = Type::Aggregate(Arc::new(Aggregate { pack: Some(n), ..agg.clone() }));
            let err = layout_of(Abi::I386Sysv, &bad).unwrap_err();
            assert!(err.to_string().contains("1, 2, 4, 8 or 16"), "{err}");
        }
    }

    #[test]
    fn system_v_shares_a_unit_and_microsoft_opens_one_per_type_size() {
        // struct { char a : 4; int b : 4; }
        let ty = record(
            AggregateKind::Struct,
            vec![bits("a", Scalar::Char, 4), bits("b", Scalar::Int, 4)],
        );
        assert_eq!(size_align(Abi::X86_64Sysv, &ty), (4, 4));
        assert_eq!(size_align(Abi::X86_64Win64, &ty), (8, 4));
        let l = layout_of(Abi::X86_64Sysv, &ty).unwrap();
        let Shape::Aggregate { fields, .. } = &l.shape else { panic!("a struct") };
        assert_eq!(
            (fields[1].offset, fields[1].bits),
            (0, Some(BitRange { shift: 4, width: 4, packed: false }))
        );
    }

    #[test]
    fn long_double_is_double_on_windows_and_apple_arm64_x87_or_binary128_elsewhere() {
        let ld = Type::Scalar(Scalar::LongDouble);
        for abi in [Abi::I386Win32, Abi::X86_64Win64, Abi::Aarch64Apple] {
            let l = layout_of(abi, &ld).unwrap();
            assert_eq!((l.size, l.shape), (8, Shape::Scalar(Scalar::Double)), "{abi}");
        }
        // x87's 80 bits: 12 bytes 4-aligned on i386 (i386 psABI Table 2.1), 16 bytes
        // 16-aligned on x86-64 (psABI Figure 3.1); the leaf is the 10 bytes of the value.
        for (abi, size, align) in [(Abi::I386Sysv, 12, 4), (Abi::X86_64Sysv, 16, 16)] {
            let l = layout_of(abi, &ld).unwrap();
            assert_eq!(
                (l.size, l.align, &l.shape),
                (size, align, &Shape::Scalar(Scalar::LongDouble))
            );
            assert_eq!(l.leaves()[0].size, 10, "{abi}");
        }
        // AArch64 Linux: quad precision, 16 bytes 16-aligned (AAPCS64 §5.1), every byte the
        // value's.
        let l = layout_of(Abi::Aarch64Aapcs64, &ld).unwrap();
        assert_eq!((l.size, l.align, &l.shape), (16, 16, &Shape::Scalar(Scalar::Binary128)));
        assert_eq!(l.leaves()[0].size, 16);
    }

    #[test]
    fn a_bit_field_wider_than_its_type_is_refused() {
        let ty = record(AggregateKind::Struct, vec![bits("l", Scalar::Long, 40)]);
        assert!(layout_of(Abi::X86_64Sysv, &ty).is_ok());
        assert!(layout_of(Abi::X86_64Win64, &ty).is_err());
    }
}
