//! ABI-independent C types and signatures (ARCHITECTURE.md §3, §4).
//!
//! A [`Type`] says *what* a value is in C terms; it says nothing about size or placement.
//! Sizes come from [`crate::layout`] for one [`crate::Abi`]; placement comes from
//! [`crate::plan`]. The parser and printer for the C declarator syntax live in the
//! `backcall` crate (`backcall::signature`).

use std::fmt;
use std::sync::Arc;

/// The bytes of an x87 extended-precision value (sign, 15-bit exponent, 64-bit significand):
/// `long double` on i386 and x86-64 System V, in 12 or 16 bytes.
pub const X87_VALUE_BYTES: u32 = 10;

/// A C scalar type, kept with the spelling it was written in so that printing round-trips.
///
/// Spellings that are the same type in every ABI (`_Bool`/`bool`, `unsigned`/`unsigned int`)
/// share a variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scalar {
    /// `_Bool` / `bool`
    Bool,
    /// plain `char` (signed on every ABI backcall covers except AArch64 Linux)
    Char,
    /// `signed char`
    SChar,
    /// `unsigned char`
    UChar,
    /// `short`
    Short,
    /// `unsigned short`
    UShort,
    /// `int`
    Int,
    /// `unsigned int`
    UInt,
    /// `long`
    Long,
    /// `unsigned long`
    ULong,
    /// `long long`
    LongLong,
    /// `unsigned long long`
    ULongLong,
    /// `__int128` (the 64-bit ABIs; i386 has none)
    Int128,
    /// `unsigned __int128`
    UInt128,
    /// `int8_t`
    I8,
    /// `uint8_t`
    U8,
    /// `int16_t`
    I16,
    /// `uint16_t`
    U16,
    /// `int32_t`
    I32,
    /// `uint32_t`
    U32,
    /// `int64_t`
    I64,
    /// `uint64_t`
    U64,
    /// `size_t`
    SizeT,
    /// `ssize_t`
    SSizeT,
    /// `intptr_t`
    IntPtr,
    /// `uintptr_t`
    UIntPtr,
    /// `wchar_t`: its size and signedness are the ABI's (`AbiSpec::wchar`)
    WChar,
    /// `float`
    Float,
    /// `double`
    Double,
    /// `long double`: x87's 80-bit format on i386 and x86-64 System V, laid out as `double`
    /// on Windows and Apple arm64 and as [`Scalar::Binary128`] on AArch64 Linux
    /// (`AbiSpec::long_double`)
    LongDouble,
    /// IEEE 754 binary128, the quadruple-precision format: what AArch64 Linux's `long double`
    /// is laid out and passed as (AAPCS64 §5.1, Table 1, "Quad precision"). Only layouts name
    /// it; a signature says `long double`, so it is in no [`Scalar::ALL`] draw.
    Binary128,
    /// any data or function pointer; the pointee does not matter to any ABI covered
    Pointer,
}

impl Scalar {
    /// Every scalar, in declaration order (for generators and tables).
    pub const ALL: [Scalar; 31] = [
        Scalar::Bool,
        Scalar::Char,
        Scalar::SChar,
        Scalar::UChar,
        Scalar::Short,
        Scalar::UShort,
        Scalar::Int,
        Scalar::UInt,
        Scalar::Long,
        Scalar::ULong,
        Scalar::LongLong,
        Scalar::ULongLong,
        Scalar::Int128,
        Scalar::UInt128,
        Scalar::I8,
        Scalar::U8,
        Scalar::I16,
        Scalar::U16,
        Scalar::I32,
        Scalar::U32,
        Scalar::I64,
        Scalar::U64,
        Scalar::SizeT,
        Scalar::SSizeT,
        Scalar::IntPtr,
        Scalar::UIntPtr,
        Scalar::WChar,
        Scalar::Float,
        Scalar::Double,
        Scalar::LongDouble,
        Scalar::Pointer,
    ];

    /// The C spelling (pointers print as `void *`).
    pub fn c_name(self) -> &'static str {
        match self {
            Scalar::Bool => "_Bool",
            Scalar::Char => "char",
            Scalar::SChar => "signed char",
            Scalar::UChar => "unsigned char",
            Scalar::Short => "short",
            Scalar::UShort => "unsigned short",
            Scalar::Int => "int",
            Scalar::UInt => "unsigned int",
            Scalar::Long => "long",
            Scalar::ULong => "unsigned long",
            Scalar::LongLong => "long long",
            Scalar::ULongLong => "unsigned long long",
            Scalar::Int128 => "__int128",
            Scalar::UInt128 => "unsigned __int128",
            Scalar::I8 => "int8_t",
            Scalar::U8 => "uint8_t",
            Scalar::I16 => "int16_t",
            Scalar::U16 => "uint16_t",
            Scalar::I32 => "int32_t",
            Scalar::U32 => "uint32_t",
            Scalar::I64 => "int64_t",
            Scalar::U64 => "uint64_t",
            Scalar::SizeT => "size_t",
            Scalar::SSizeT => "ssize_t",
            Scalar::IntPtr => "intptr_t",
            Scalar::UIntPtr => "uintptr_t",
            Scalar::WChar => "wchar_t",
            Scalar::Float => "float",
            Scalar::Double => "double",
            Scalar::LongDouble => "long double",
            // (only AArch64 Linux lays a value out as binary128, and there it is `long double`)
            Scalar::Binary128 => "long double",
            Scalar::Pointer => "void *",
        }
    }

    /// Whether this is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, Scalar::Float | Scalar::Double | Scalar::LongDouble | Scalar::Binary128)
    }

    /// The bytes of a value of this scalar in a layout of `size` bytes: a `long double` wider
    /// than `double` is x87's (binary128 is [`Scalar::Binary128`]), which holds 10 (the rest of
    /// its 12 or 16 is padding); every other scalar fills its size.
    pub fn value_size(self, size: u32) -> u32 {
        match self {
            Scalar::LongDouble => size.min(X87_VALUE_BYTES),
            _ => size,
        }
    }
}

/// Whether an aggregate is a `struct` or a `union`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggregateKind {
    /// `struct { ... }`: members follow each other
    Struct,
    /// `union { ... }`: members overlap at offset 0
    Union,
}

/// The GNU layout attributes of a struct, union or member: `__attribute__((packed))` and
/// `__attribute__((aligned(N)))` (or `_Alignas(N)` on a member).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Packing {
    /// `packed`: the members of a struct or union, or this member, are 1-aligned (a member's
    /// own `aligned(N)` still applies)
    pub packed: bool,
    /// `aligned(N)`: at least `N`-aligned (a power of two)
    pub align: Option<u32>,
}

impl Packing {
    /// No attribute.
    pub const NONE: Packing = Packing { packed: false, align: None };

    /// `__attribute__((packed, aligned(8)))`, or `None` without an attribute.
    pub fn attribute(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.packed {
            parts.push("packed".to_string());
        }
        if let Some(n) = self.align {
            parts.push(format!("aligned({n})"));
        }
        (!parts.is_empty()).then(|| format!("__attribute__(({}))", parts.join(", ")))
    }
}

/// The values `#pragma pack(N)` takes in every compiler covered (GCC, clang, MSVC).
pub const PRAGMA_PACK_VALUES: [u32; 5] = [1, 2, 4, 8, 16];

/// One member of a struct or union.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Field {
    /// The member name; generated (`f0`, `f1`, ...) when the declaration had none.
    pub name: String,
    /// The member's type.
    pub ty: Type,
    /// The member's `packed` and `aligned(N)` attributes.
    pub packing: Packing,
    /// A bit-field's width (`int flags : 3` is `Some(3)`); an unnamed bit-field (padding, or
    /// `: 0` to end a storage unit) has an empty name.
    pub bits: Option<u32>,
}

impl Field {
    /// A member without attributes.
    pub fn new(name: impl Into<String>, ty: Type) -> Field {
        Field { name: name.into(), ty, packing: Packing::NONE, bits: None }
    }

    /// A bit-field of `width` bits; an empty `name` makes it unnamed.
    ///
    /// ```
    /// use backcall_abi::{Aggregate, AggregateKind, Field, Scalar, Type};
    /// let flags = Aggregate::new(
    ///     AggregateKind::Struct,
    ///     None,
    ///     vec![
    ///         Field::bit_field("ready", Type::scalar(Scalar::UInt), 1),
    ///         Field::bit_field("", Type::scalar(Scalar::UInt), 0),
    ///         Field::bit_field("mode", Type::scalar(Scalar::UInt), 3),
    ///     ],
    /// );
    /// assert_eq!(
    ///     Type::Aggregate(flags.into()).to_string(),
    ///     "struct { unsigned int ready : 1; unsigned int : 0; unsigned int mode : 3; }"
    /// );
    /// ```
    pub fn bit_field(name: impl Into<String>, ty: Type, width: u32) -> Field {
        Field { bits: Some(width), ..Field::new(name, ty) }
    }
}

/// A struct or union definition.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Aggregate {
    /// `struct` or `union`.
    pub kind: AggregateKind,
    /// The tag (`struct point` has tag `point`); `None` for an anonymous aggregate.
    pub tag: Option<String>,
    /// The members in declaration order.
    pub fields: Vec<Field>,
    /// The struct's or union's `packed` and `aligned(N)` attributes.
    pub packing: Packing,
    /// The `#pragma pack(N)` in effect where the body was defined: no member is placed on a
    /// boundary above `N` bytes (`None`: no `#pragma pack`).
    pub pack: Option<u32>,
}

impl Aggregate {
    /// A struct or union without attributes.
    ///
    /// ```
    /// use backcall_abi::{Aggregate, AggregateKind, Field, Scalar, Type};
    /// let point = Aggregate::new(
    ///     AggregateKind::Struct,
    ///     Some("point".into()),
    ///     vec![Field::new("x", Type::scalar(Scalar::Int)), Field::new("y", Type::scalar(Scalar::Int))],
    /// );
    /// assert_eq!(Type::Aggregate(point.into()).to_string(), "struct point { int x; int y; }");
    /// ```
    pub fn new(kind: AggregateKind, tag: Option<String>, fields: Vec<Field>) -> Aggregate {
        Aggregate { kind, tag, fields, packing: Packing::NONE, pack: None }
    }
}

/// A C type as it appears in a signature.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// `void` (only as a result type)
    Void,
    /// a scalar
    Scalar(Scalar),
    /// `T _Complex`: laid out as a struct of two `T` on every ABI
    Complex(Scalar),
    /// a struct or union; shared so that named types are cheap to clone
    Aggregate(Arc<Aggregate>),
    /// `T name[N]` (only inside aggregates)
    Array(Box<Type>, u32),
    /// `va_list` as a parameter: each ABI's own type ([`crate::AbiSpec::va_list`]), which a
    /// handler passes on to a C function that takes a `va_list`
    VaList,
}

impl Type {
    /// The type a value of this type arrives as when passed as an unnamed argument, after C's
    /// default argument promotions (C11 6.5.2.2p6-7, 6.3.1.1p2): `float` becomes `double`,
    /// `_Bool` and every integer narrower than `int` (`char`, `short`, a Windows `wchar_t`)
    /// become `int`; every other type is unchanged.
    ///
    /// ```
    /// use backcall_abi::{Abi, Scalar, Type};
    /// let promoted = Type::scalar(Scalar::Float).promoted(Abi::X86_64Sysv);
    /// assert_eq!(promoted, Type::scalar(Scalar::Double));
    /// ```
    pub fn promoted(&self, abi: crate::Abi) -> Type {
        let Type::Scalar(s) = *self else { return self.clone() };
        let narrow = || abi.layout(self).is_ok_and(|l| l.size < 4);
        match s {
            Scalar::Float => Type::Scalar(Scalar::Double),
            _ if !s.is_float() && s != Scalar::Pointer && narrow() => Type::Scalar(Scalar::Int),
            _ => self.clone(),
        }
    }

    /// Shorthand for a scalar type.
    pub const fn scalar(s: Scalar) -> Type {
        Type::Scalar(s)
    }

    /// Shorthand for an anonymous struct with generated member names `f0`, `f1`, ...
    pub fn anon_struct(members: impl IntoIterator<Item = Type>) -> Type {
        Type::aggregate(AggregateKind::Struct, members)
    }

    /// Shorthand for an anonymous struct or union with generated member names.
    pub fn aggregate(kind: AggregateKind, members: impl IntoIterator<Item = Type>) -> Type {
        let fields = members
            .into_iter()
            .enumerate()
            .map(|(i, ty)| Field::new(format!("f{i}"), ty))
            .collect();
        Type::Aggregate(Arc::new(Aggregate::new(kind, None, fields)))
    }
}

/// A calling convention keyword. Only the i386 ABIs accept anything but `Default`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Convention {
    /// no keyword: the ABI's default convention
    #[default]
    Default,
    /// `__cdecl`
    Cdecl,
    /// `__stdcall`
    Stdcall,
    /// `__fastcall`
    Fastcall,
    /// `__thiscall`
    Thiscall,
    /// `__attribute__((ms_abi))`: x86-64's Windows convention (only `x86_64-win64` has it)
    MsAbi,
    /// `__attribute__((sysv_abi))`: x86-64's System V convention (only `x86_64-sysv` has it)
    SysvAbi,
}

impl Convention {
    /// The C keyword, or `None` for the default.
    pub fn keyword(self) -> Option<&'static str> {
        match self {
            Convention::Default => None,
            Convention::Cdecl => Some("__cdecl"),
            Convention::Stdcall => Some("__stdcall"),
            Convention::Fastcall => Some("__fastcall"),
            Convention::Thiscall => Some("__thiscall"),
            Convention::MsAbi => Some("__attribute__((ms_abi))"),
            Convention::SysvAbi => Some("__attribute__((sysv_abi))"),
        }
    }

    /// Whether this is one of the i386 keywords (the 64-bit ABIs accept and ignore them, as
    /// their compilers do).
    pub fn is_i386(self) -> bool {
        matches!(
            self,
            Convention::Cdecl | Convention::Stdcall | Convention::Fastcall | Convention::Thiscall
        )
    }
}

/// A C function signature: result, arguments, convention, and whether it ends in `...`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Signature {
    /// The result type (`Type::Void` for none).
    pub ret: Type,
    /// The argument types in order.
    pub args: Vec<Type>,
    /// The calling convention keyword.
    pub conv: Convention,
    /// `true` when the argument list ends in `...` (parsed; refused by every ABI for now).
    pub variadic: bool,
}

/// The most type nodes one signature may hold, its result and every parameter together (see
/// [`Signature::nodes`]). Bounds what planning, printing and marshalling a signature cost, however
/// it was built: fifteen stacked typedefs make a 65,535-node struct from 800 bytes of text.
pub const MAX_SIGNATURE_NODES: u64 = 1 << 16;

impl Signature {
    /// A default-convention, non-variadic signature.
    pub fn new(ret: Type, args: Vec<Type>) -> Signature {
        Signature { ret, args, conv: Convention::Default, variadic: false }
    }

    /// How many type nodes the signature holds: one per scalar, array and struct or union, per
    /// use (a struct used twice counts twice), saturating. Counted in time proportional to the
    /// distinct types (each shared struct or union is counted once and remembered).
    pub fn nodes(&self) -> u64 {
        let mut memo = std::collections::HashMap::new();
        std::iter::once(&self.ret)
            .chain(&self.args)
            .fold(0u64, |n, t| n.saturating_add(t.nodes_memo(&mut memo)))
    }
}

impl Type {
    fn nodes_memo(&self, memo: &mut std::collections::HashMap<*const Aggregate, u64>) -> u64 {
        match self {
            Type::Void | Type::Scalar(_) | Type::Complex(_) | Type::VaList => 1,
            Type::Array(elem, _) => elem.nodes_memo(memo).saturating_add(1),
            Type::Aggregate(agg) => {
                if let Some(&n) = memo.get(&Arc::as_ptr(agg)) {
                    return n;
                }
                let n =
                    agg.fields.iter().fold(1u64, |n, f| n.saturating_add(f.ty.nodes_memo(memo)));
                memo.insert(Arc::as_ptr(agg), n);
                n
            }
        }
    }
}

/// Prints a type as an abstract C declarator (no name): `int`, `struct { int f0; } `, ...
/// Arrays only occur as named members and are printed by [`Field`]'s printer.
impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", InPack(self, None))
    }
}

/// A type printed where `#pragma pack` is `.1` (`None`: none): a struct or union defined
/// under another one is wrapped in `_Pragma("pack(push, N)")` ... `_Pragma("pack(pop)")`.
struct InPack<'a>(&'a Type, Option<u32>);

impl fmt::Display for InPack<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Type::Void => f.write_str("void"),
            Type::Scalar(s) => f.write_str(s.c_name()),
            Type::Complex(s) => write!(f, "{} _Complex", s.c_name()),
            Type::Aggregate(a) => a.fmt_in(f, self.1),
            Type::Array(elem, n) => write!(f, "{}[{n}]", InPack(elem, self.1)),
            Type::VaList => f.write_str("va_list"),
        }
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_in(f, None)
    }
}

impl Aggregate {
    /// Prints the definition where `outer` is the `#pragma pack` in effect.
    fn fmt_in(&self, f: &mut fmt::Formatter<'_>, outer: Option<u32>) -> fmt::Result {
        let pragma = self.pack != outer;
        match (pragma, self.pack) {
            (false, _) => {}
            (true, Some(n)) => write!(f, "_Pragma(\"pack(push, {n})\") ")?,
            (true, None) => f.write_str("_Pragma(\"pack(push)\") _Pragma(\"pack()\") ")?,
        }
        f.write_str(match self.kind {
            AggregateKind::Struct => "struct ",
            AggregateKind::Union => "union ",
        })?;
        if let Some(attribute) = self.packing.attribute() {
            write!(f, "{attribute} ")?;
        }
        if let Some(tag) = &self.tag {
            write!(f, "{tag} ")?;
        }
        f.write_str("{ ")?;
        for field in &self.fields {
            field.fmt_in(f, self.pack)?;
            f.write_str(" ")?;
        }
        f.write_str("}")?;
        if pragma {
            f.write_str(" _Pragma(\"pack(pop)\")")?;
        }
        Ok(())
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_in(f, None)
    }
}

impl Field {
    /// Prints the member of a record defined under `#pragma pack` `pack`.
    fn fmt_in(&self, f: &mut fmt::Formatter<'_>, pack: Option<u32>) -> fmt::Result {
        // Peel array dimensions: `int a[2][3]` is Array(Array(int, 3), 2).
        let mut dims = Vec::new();
        let mut ty = &self.ty;
        while let Type::Array(elem, n) = ty {
            dims.push(*n);
            ty = elem;
        }
        let other = InPack(ty, pack);
        match (ty, self.bits) {
            (_, Some(width)) if self.name.is_empty() => write!(f, "{other} : {width}")?,
            (_, Some(width)) => write!(f, "{other} {} : {width}", self.name)?,
            (Type::Scalar(Scalar::Pointer), None) => write!(f, "void *{}", self.name)?,
            (_, None) => write!(f, "{other} {}", self.name)?,
        }
        for n in dims {
            write!(f, "[{n}]")?;
        }
        if let Some(attribute) = self.packing.attribute() {
            write!(f, " {attribute}")?;
        }
        f.write_str(";")
    }
}

/// Prints `ret (conv *)(args)`, the form the parser reads.
impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (", self.ret)?;
        if let Some(kw) = self.conv.keyword() {
            write!(f, "{kw} ")?;
        }
        f.write_str("*)(")?;
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{arg}")?;
        }
        if self.variadic {
            f.write_str(if self.args.is_empty() { "..." } else { ", ..." })?;
        } else if self.args.is_empty() {
            f.write_str("void")?;
        }
        f.write_str(")")
    }
}

/// Words that cannot be names in a signature: C23's keywords plus the convention keywords
/// (the parser refuses them as names; generators avoid them).
pub const C_KEYWORDS: [&str; 63] = [
    "auto",
    "break",
    "case",
    "char",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "float",
    "for",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
    "_Alignas",
    "_Alignof",
    "_Atomic",
    "_Bool",
    "_Complex",
    "_Generic",
    "_Imaginary",
    "_Noreturn",
    "_Static_assert",
    "_Thread_local",
    "alignas",
    "alignof",
    "bool",
    "constexpr",
    "false",
    "nullptr",
    "static_assert",
    "thread_local",
    "true",
    "typeof",
    "typeof_unqual",
    "_BitInt",
    "_Decimal32",
    "_Decimal64",
    "_Decimal128",
    "__cdecl",
    "__stdcall",
    "__fastcall",
    "__thiscall",
];
