//! C text for the compiler oracle (ARCHITECTURE.md §6): types as declarations, and layout facts as
//! `_Static_assert`s a real compiler checks.
//!
//! Everything here is plain C11 that needs no header and no libc, so the same text compiles
//! for every `clang --target=` triple (and with the host's gcc). The pieces:
//!
//! * [`PRELUDE`]: typedefs that give `int8_t`, `size_t`, ... their target's meaning through
//!   the compiler's predefined macros, exactly as its `<stdint.h>` would.
//! * [`TypePrinter`]: a [`Type`] as a declaration. A tagged struct or union is defined on its
//!   first appearance and referred to as `struct tag` afterwards, since C refuses a second
//!   definition in the same scope.
//! * [`member_paths`]: every member designator of a layout (`f1.f0`, `f2[1].f0`) with its
//!   offset and size, the way `__builtin_offsetof` spells it.
//! * [`layout_facts`] / [`layout_check`]: `sizeof`, `_Alignof` and `offsetof` claims of a
//!   [`Layout`], as C expressions with their expected values and as a block of
//!   `_Static_assert`s.

use std::collections::HashSet;
use std::fmt::Write as _;

use backcall_abi::{Abi, Aggregate, AggregateKind, Layout, Shape, Type, VaList};

/// Typedefs for the `<stdint.h>`/`<stddef.h>` names that [`Type`] prints, without headers.
///
/// `ssize_t` is POSIX, not C; it is the pointer-sized signed integer, like `ptrdiff_t`.
pub const PRELUDE: &str = "\
typedef __INT8_TYPE__ int8_t;
typedef __UINT8_TYPE__ uint8_t;
typedef __INT16_TYPE__ int16_t;
typedef __UINT16_TYPE__ uint16_t;
typedef __INT32_TYPE__ int32_t;
typedef __UINT32_TYPE__ uint32_t;
typedef __INT64_TYPE__ int64_t;
typedef __UINT64_TYPE__ uint64_t;
typedef __SIZE_TYPE__ size_t;
typedef __PTRDIFF_TYPE__ ssize_t;
typedef __INTPTR_TYPE__ intptr_t;
typedef __UINTPTR_TYPE__ uintptr_t;
typedef __WCHAR_TYPE__ wchar_t;
";

/// `bc_va_list`, the type [`TypePrinter`] prints for a `va_list` parameter: the ABI's
/// `__builtin_va_list` as a parameter adjusts it (x86-64 SysV's one-element array becomes a
/// pointer to its element, `char *` stays), or AAPCS64's record itself.
pub fn va_list_typedef(abi: Abi) -> &'static str {
    match abi.spec().va_list() {
        VaList::Pointer => "typedef __typeof__(&(*(__builtin_va_list *)0)[0]) bc_va_list;\n",
        VaList::Aapcs64 => "typedef __builtin_va_list bc_va_list;\n",
    }
}

/// Prints types as C declarations, defining each struct/union tag once per printer.
///
/// Use one printer per C scope: tags defined inside a block are local to it.
///
/// A tagged record, and one defined under another `#pragma pack` than the one around it
/// ([`backcall_abi::Aggregate::pack`]), is defined out of line (the latter between
/// `#pragma pack(push, N)` and `#pragma pack(pop)`, since compilers take no pragma inside a
/// declaration), after the records it holds: the declaration refers to it by its tag (an
/// anonymous one gets a tag from the printer's prefix), and [`TypePrinter::take_definitions`]
/// gives the definitions, which must come first in the same scope. (Tagged records go out of
/// line too, so that every tag is defined before any out-of-line record uses it.)
#[derive(Debug, Default)]
pub struct TypePrinter {
    defined_tags: HashSet<String>,
    /// the start of the tags given to anonymous records defined out of line
    prefix: String,
    /// the records defined out of line, not yet taken
    definitions: String,
}

impl TypePrinter {
    /// A printer for a scope where no tag is defined yet.
    pub fn new() -> TypePrinter {
        TypePrinter::with_prefix("bc_")
    }

    /// A printer whose out-of-line records are tagged `<prefix>pack<k>`: distinct prefixes
    /// keep printers sharing one scope from clashing.
    pub fn with_prefix(prefix: &str) -> TypePrinter {
        TypePrinter { prefix: prefix.to_string(), ..TypePrinter::default() }
    }

    /// The records defined out of line since the last call, whole lines, in the order C needs.
    pub fn take_definitions(&mut self) -> String {
        std::mem::take(&mut self.definitions)
    }

    /// `ty` declared as `name`: `int x`, `void *p`, `struct { char f0; } s[2][3]`.
    pub fn declaration(&mut self, ty: &Type, name: &str) -> String {
        self.declaration_in(ty, name, None)
    }

    /// `ty` declared as `name` where `#pragma pack` is `pack`.
    fn declaration_in(&mut self, ty: &Type, name: &str, pack: Option<u32>) -> String {
        // `int a[2][3]` is Array(Array(int, 3), 2): the outer dimension is printed first.
        let mut dims = String::new();
        let mut base = ty;
        while let Type::Array(elem, n) = base {
            let _ = write!(dims, "[{n}]");
            base = elem;
        }
        let spec = self.specifier(base, pack);
        // `void *` is printed glued to the name, as `types.rs` does.
        let sep = if name.is_empty() || spec.ends_with('*') { "" } else { " " };
        format!("{spec}{sep}{name}{dims}")
    }

    /// `ty` as an abstract type name, for casts, `sizeof` and prototypes: `int[3]`.
    pub fn type_name(&mut self, ty: &Type) -> String {
        self.declaration(ty, "")
    }

    /// The type specifier of a non-array type, where `#pragma pack` is `pack`.
    fn specifier(&mut self, ty: &Type, pack: Option<u32>) -> String {
        match ty {
            Type::Aggregate(agg) if agg.pack != pack || agg.tag.is_some() => self.out_of_line(agg),
            Type::Aggregate(agg) => self.record(agg, None),
            Type::VaList => "bc_va_list".to_string(),
            // Scalars, `void`, `_Complex`: `types.rs` prints these as C already.
            other => other.to_string(),
        }
    }

    /// `struct tag { ... }`, or `struct { ... }`.
    fn record(&mut self, agg: &Aggregate, tag: Option<&str>) -> String {
        let mut out = keyword(agg).to_string();
        if let Some(attribute) = agg.packing.attribute() {
            out.push(' ');
            out.push_str(&attribute);
        }
        if let Some(tag) = tag {
            out.push(' ');
            out.push_str(tag);
        }
        out.push_str(" { ");
        for field in &agg.fields {
            out.push_str(&self.declaration_in(&field.ty, &field.name, agg.pack));
            if let Some(width) = field.bits {
                out.push_str(&format!(" : {width}"));
            }
            if let Some(attribute) = field.packing.attribute() {
                out.push(' ');
                out.push_str(&attribute);
            }
            out.push_str("; ");
        }
        out.push('}');
        out
    }

    /// Defines `agg` out of line under its own `#pragma pack` (once per tag); answers
    /// `struct tag`.
    fn out_of_line(&mut self, agg: &Aggregate) -> String {
        let tag = match &agg.tag {
            Some(tag) => tag.clone(),
            None => format!("{}pack{}", self.prefix, self.defined_tags.len()),
        };
        let reference = format!("{} {tag}", keyword(agg));
        if !self.defined_tags.insert(tag.clone()) {
            return reference;
        }
        // (members defined under yet another pack go out of line first, before this one)
        let body = self.record(agg, Some(&tag));
        let definition = match agg.pack {
            Some(n) => format!("#pragma pack(push, {n})\n{body};\n#pragma pack(pop)\n"),
            None => format!("{body};\n"),
        };
        self.definitions.push_str(&definition);
        reference
    }
}

fn keyword(agg: &Aggregate) -> &'static str {
    match agg.kind {
        AggregateKind::Struct => "struct",
        AggregateKind::Union => "union",
    }
}

/// `typedef <ty> name;`, printed in a fresh scope, after the records it defines out of line.
pub fn typedef(ty: &Type, name: &str) -> String {
    let mut printer = TypePrinter::new();
    let declaration = printer.declaration(ty, name);
    format!("{}typedef {declaration};", printer.take_definitions())
}

/// One member designator of a layout, as `__builtin_offsetof` accepts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberPath {
    /// `f1.f0`, `f2[1].f0`, `f3[0][2]`
    pub path: String,
    /// offset from the start of the outermost value
    pub offset: u32,
    /// the member's size
    pub size: u32,
    /// the member's alignment
    pub align: u32,
    /// what the member is, in words: `double`, `struct`, `union`, `array[3]`
    pub what: String,
}

/// Every member path of `layout`, outermost first, in declaration order.
///
/// An array contributes its first element with all the members inside it, and its second and
/// last elements without their insides (every element has the same layout): with the array's
/// own offset and size these pin the element stride and count, and the paths stay linear in
/// the size of the type instead of multiplying through nested arrays.
pub fn member_paths(layout: &Layout) -> Vec<MemberPath> {
    let mut out = Vec::new();
    if let Shape::Aggregate { fields, .. } = &layout.shape {
        if layout.is_complex() {
            return out;
        }
        // `offsetof` and `sizeof` take no bit-field: the members around one pin its place.
        for f in fields.iter().filter(|f| f.bits.is_none()) {
            collect_paths(&f.layout, f.name.clone(), f.offset, true, &mut out);
        }
    }
    out
}

fn collect_paths(
    layout: &Layout,
    path: String,
    offset: u32,
    deep: bool,
    out: &mut Vec<MemberPath>,
) {
    out.push(MemberPath {
        path: path.clone(),
        offset,
        size: layout.size,
        align: layout.align,
        what: shape_name(layout),
    });
    if !deep {
        return;
    }
    match &layout.shape {
        // a `_Complex`'s parts have no member names C could spell
        Shape::Aggregate { .. } if layout.is_complex() => {}
        Shape::Aggregate { fields, .. } => {
            for f in fields.iter().filter(|f| f.bits.is_none()) {
                let inner = format!("{path}.{}", f.name);
                collect_paths(&f.layout, inner, offset + f.offset, true, out);
            }
        }
        Shape::Array { elem, count } => {
            for i in sample_indices(*count) {
                let inner = format!("{path}[{i}]");
                collect_paths(elem, inner, offset + i * elem.size, i == 0, out);
            }
        }
        Shape::Void | Shape::Scalar(_) => {}
    }
}

/// The first, second and last index of an array of `count` elements, without repeats.
fn sample_indices(count: u32) -> Vec<u32> {
    let mut indices: Vec<u32> = [0, 1, count.saturating_sub(1)].into_iter().collect();
    indices.retain(|&i| i < count);
    indices.dedup();
    indices
}

fn shape_name(layout: &Layout) -> String {
    match &layout.shape {
        Shape::Void => "void".into(),
        Shape::Scalar(s) => s.c_name().into(),
        Shape::Aggregate { kind: AggregateKind::Struct, .. } => "struct".into(),
        Shape::Aggregate { kind: AggregateKind::Union, .. } => "union".into(),
        Shape::Array { count, .. } => format!("array[{count}]"),
    }
}

/// One claim about a layout: the C constant expression `expr` equals `expected`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutFact {
    /// a constant expression over the typedef name: `__builtin_offsetof(T7, f1.f0)`
    pub expr: String,
    /// the value the layout claims
    pub expected: u32,
}

impl LayoutFact {
    /// `_Static_assert(expr == expected, "expr == expected");`
    pub fn static_assert(&self) -> String {
        let claim = format!("{} == {}", self.expr, self.expected);
        format!("_Static_assert({claim}, \"{claim}\");")
    }
}

/// Everything `layout` claims about the type named `name`: its `sizeof` and `_Alignof`, and
/// the `offsetof` and `sizeof` of every member path (see [`member_paths`]).
pub fn layout_facts(name: &str, layout: &Layout) -> Vec<LayoutFact> {
    if matches!(layout.shape, Shape::Void) {
        return Vec::new();
    }
    let mut facts = vec![
        LayoutFact { expr: format!("sizeof({name})"), expected: layout.size },
        LayoutFact { expr: format!("_Alignof({name})"), expected: layout.align },
    ];
    for m in member_paths(layout) {
        facts.push(LayoutFact {
            expr: format!("__builtin_offsetof({name}, {})", m.path),
            expected: m.offset,
        });
        facts.push(LayoutFact {
            expr: format!("sizeof((({name} *)0)->{})", m.path),
            expected: m.size,
        });
    }
    facts
}

/// A C function named `check_<name>` whose body defines `typedef <ty> <name>;` and asserts
/// every fact of `layout` about it, one per line. A compiler accepts the block exactly when
/// it lays `ty` out as `layout` says. The body is a scope of its own, so blocks for many
/// types (even with clashing tags) can share one file after [`PRELUDE`].
pub fn layout_check(name: &str, ty: &Type, layout: &Layout) -> String {
    let mut out = format!("void check_{name}(void) {{\n  {}\n", typedef(ty, name));
    for fact in layout_facts(name, layout) {
        let _ = writeln!(out, "  {}", fact.static_assert());
    }
    out.push_str("}\n");
    out
}

/// A layout in words, one member path per line, for failure reports.
pub fn describe_layout(layout: &Layout) -> String {
    let mut out = format!("{}: size {}, align {}\n", shape_name(layout), layout.size, layout.align);
    let paths = member_paths(layout);
    let width = paths.iter().map(|m| m.path.len()).max().unwrap_or(0);
    for m in paths {
        let _ = writeln!(
            out,
            "  {:width$}  offset {:4}  size {:4}  align {:2}  {}",
            m.path, m.offset, m.size, m.align, m.what
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use backcall_abi::{Abi, Aggregate, Field, Scalar};

    use super::*;

    fn s(scalar: Scalar) -> Type {
        Type::scalar(scalar)
    }

    #[test]
    fn declarations_print_arrays_pointers_and_nesting() {
        let ty = Type::anon_struct([
            s(Scalar::Char),
            Type::Array(Box::new(Type::Array(Box::new(s(Scalar::Pointer)), 3)), 2),
            Type::Array(Box::new(Type::anon_struct([s(Scalar::Double)])), 4),
        ]);
        assert_eq!(
            typedef(&ty, "T0"),
            "typedef struct { char f0; void *f1[2][3]; struct { double f0; } f2[4]; } T0;"
        );
        let arr = Type::Array(Box::new(s(Scalar::U16)), 5);
        assert_eq!(TypePrinter::new().type_name(&arr), "uint16_t[5]");
        assert_eq!(TypePrinter::new().type_name(&s(Scalar::Pointer)), "void *");
    }

    #[test]
    fn a_tag_is_defined_once_per_printer() {
        let fields = vec![Field::new("x", s(Scalar::Int))];
        let point = Aggregate::new(AggregateKind::Struct, Some("point".into()), fields);
        let point = Type::Aggregate(Arc::new(point));
        let pair = Type::anon_struct([point.clone(), point]);
        assert_eq!(
            typedef(&pair, "P"),
            "struct point { int x; };\ntypedef struct { struct point f0; struct point f1; } P;"
        );
    }

    #[test]
    fn records_under_another_pragma_pack_are_defined_out_of_line_first() {
        let record = |pack, fields| {
            let agg = Aggregate { pack, ..Aggregate::new(AggregateKind::Struct, None, fields) };
            Type::Aggregate(Arc::new(agg))
        };
        let plain = record(None, vec![Field::new("d", s(Scalar::Double))]);
        let packed =
            record(Some(2), vec![Field::new("c", s(Scalar::Char)), Field::new("p", plain)]);
        let outer = Type::anon_struct([packed.clone(), packed.clone()]);
        // The unpacked record inside the packed one goes first, then the packed one between
        // its pragmas; an anonymous record used twice is two types, as printed inline.
        assert_eq!(
            typedef(&outer, "T"),
            "struct bc_pack1 { double d; };\n\
             #pragma pack(push, 2)\n\
             struct bc_pack0 { char c; struct bc_pack1 p; };\n\
             #pragma pack(pop)\n\
             struct bc_pack3 { double d; };\n\
             #pragma pack(push, 2)\n\
             struct bc_pack2 { char c; struct bc_pack3 p; };\n\
             #pragma pack(pop)\n\
             typedef struct { struct bc_pack0 f0; struct bc_pack2 f1; } T;"
        );
        // A tag defined beside an out-of-line record that uses it is defined before it.
        let tagged = |name: &str| Aggregate::new(AggregateKind::Struct, Some(name.into()), vec![]);
        let a = Aggregate { fields: vec![Field::new("x", s(Scalar::Int))], ..tagged("a") };
        let a = Type::Aggregate(Arc::new(a));
        let uses_a =
            record(Some(1), vec![Field::new("c", s(Scalar::Char)), Field::new("y", a.clone())]);
        let o = Aggregate {
            fields: vec![Field::new("f0", a), Field::new("f1", uses_a)],
            ..tagged("o")
        };
        assert_eq!(
            typedef(&Type::Aggregate(Arc::new(o)), "O"),
            "struct a { int x; };\n\
             #pragma pack(push, 1)\n\
             struct bc_pack2 { char c; struct a y; };\n\
             #pragma pack(pop)\n\
             struct o { struct a f0; struct bc_pack2 f1; };\n\
             typedef struct o O;"
        );
    }

    #[test]
    fn member_paths_sample_array_elements() {
        let ty = Type::anon_struct([
            s(Scalar::Char),
            Type::Array(Box::new(Type::anon_struct([s(Scalar::Short), s(Scalar::Char)])), 5),
        ]);
        let layout = Abi::X86_64Sysv.layout(&ty).unwrap();
        let paths: Vec<_> = member_paths(&layout).into_iter().map(|m| (m.path, m.offset)).collect();
        let expected = [
            ("f0", 0),
            ("f1", 2),
            ("f1[0]", 2),
            ("f1[0].f0", 2),
            ("f1[0].f1", 4),
            ("f1[1]", 6),
            ("f1[4]", 18),
        ];
        let expected: Vec<_> = expected.iter().map(|(p, o)| (p.to_string(), *o)).collect();
        assert_eq!(paths, expected);
        assert_eq!(sample_indices(1), vec![0]);
        assert_eq!(sample_indices(2), vec![0, 1]);
        assert_eq!(sample_indices(0), Vec::<u32>::new());
    }

    #[test]
    fn layout_check_asserts_every_fact() {
        let ty = Type::anon_struct([s(Scalar::Char), s(Scalar::Double)]);
        let layout = Abi::X86_64Sysv.layout(&ty).unwrap();
        let block = layout_check("T1", &ty, &layout);
        assert_eq!(
            block,
            "void check_T1(void) {
  typedef struct { char f0; double f1; } T1;
  _Static_assert(sizeof(T1) == 16, \"sizeof(T1) == 16\");
  _Static_assert(_Alignof(T1) == 8, \"_Alignof(T1) == 8\");
  _Static_assert(__builtin_offsetof(T1, f0) == 0, \"__builtin_offsetof(T1, f0) == 0\");
  _Static_assert(sizeof(((T1 *)0)->f0) == 1, \"sizeof(((T1 *)0)->f0) == 1\");
  _Static_assert(__builtin_offsetof(T1, f1) == 8, \"__builtin_offsetof(T1, f1) == 8\");
  _Static_assert(sizeof(((T1 *)0)->f1) == 8, \"sizeof(((T1 *)0)->f1) == 8\");
}
"
        );
    }
}
