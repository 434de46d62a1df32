//! Unit tests: every error kind (offset and expected text) and every accepted spelling.

use super::*;
use backcall_abi::Abi;
use AggregateKind::{Struct, Union};
use Scalar::*;

fn parse(src: &str) -> Signature {
    match parse_signature(src) {
        Ok(sig) => sig,
        Err(e) => panic!("{src}: {e}"),
    }
}

/// Parses `src`, expecting an error at `offset` whose `expected` contains `expected`.
fn fails(src: &str, offset: usize, expected: &str) -> ParseError {
    let shown: String = src.chars().take(100).collect();
    let err = parse_signature(src).expect_err(&shown);
    assert_eq!(err.offset, offset, "{shown}: {err}");
    assert!(err.expected.contains(expected), "{shown}: {err}");
    err
}

fn s(scalar: Scalar) -> Type {
    Type::Scalar(scalar)
}

fn field(name: &str, ty: Type) -> Field {
    Field::new(name, ty)
}

fn agg(kind: AggregateKind, tag: Option<&str>, fields: Vec<Field>) -> Type {
    Type::Aggregate(Arc::new(Aggregate {
        kind,
        tag: tag.map(str::to_string),
        fields,
        packing: Default::default(),
        pack: None,
    }))
}

fn array(elem: Type, n: u32) -> Type {
    Type::Array(Box::new(elem), n)
}

/// The single argument of `void (*)(<arg>)`.
fn arg(src: &str) -> Type {
    let sig = parse(&format!("void (*)({src})"));
    assert_eq!(sig.args.len(), 1, "{src}");
    sig.args.into_iter().next().unwrap_or(Type::Void)
}

/// The only member type of `struct { <decl> }`.
fn member(decl: &str) -> Type {
    match arg(&format!("struct {{ {decl} }}")) {
        Type::Aggregate(a) if a.fields.len() == 1 => a.fields[0].ty.clone(),
        other => panic!("{decl}: {other}"),
    }
}

fn round_trips(sig: &Signature) {
    assert_eq!(parse_signature(&sig.to_string()).as_ref(), Ok(sig), "{sig}");
}

// --- errors ---------------------------------------------------------------------------------

#[test]
fn empty_input() {
    let err = fails("", 0, "a type");
    assert_eq!(err.found, "end of input");
    fails("   ", 3, "a type");
}

#[test]
fn unknown_type_name() {
    let err = fails("int (*)(foo)", 8, "a type name");
    assert_eq!(err.found, "`foo`, not a type");
    fails("widget (*)(void)", 0, "a type name");
    fails("int (*)(const uint128_t)", 14, "a type name");
}

#[test]
fn missing_function_pointer_declarator() {
    fails("int", 3, "`(*)` and a parameter list");
    fails("int (int)", 4, "`(*)` before the parameter list");
    fails("int cmp(int)", 4, "`(*)` before the parameter list");
    let err = fails("int (*)", 4, "a function pointer");
    assert!(err.found.contains("a pointer that does not point to a function"));
    fails("int (**)(int)", 4, "a function pointer");
    fails("int *", 4, "a function pointer");
}

#[test]
fn unbalanced_parentheses() {
    let err = fails("int (*(int)", 11, "`)`");
    assert_eq!(err.found, "end of input");
    fails("int (*)(int", 11, "`,` or `)`");
    fails("int (*))(int)", 7, "a parameter list");
    fails("int (*)(int))", 12, "end of input");
    fails("int ((*)(int)", 13, "`)`");
}

#[test]
fn flexible_and_zero_length_array_members() {
    // Parsed as `T x[0]`; behind a pointer only (no ABI plans one by value).
    let sig = parse("struct s { int n; char data[]; }; void (*)(struct s *, struct s)");
    let Type::Aggregate(s) = &sig.args[1] else { panic!("{sig}") };
    assert_eq!(s.fields[1].ty, array(Type::Scalar(Char), 0));
    round_trips(&sig);
    assert_eq!(
        arg("struct { int n; double d[0]; }"),
        agg(
            Struct,
            None,
            vec![field("n", Type::Scalar(Int)), field("d", array(Type::Scalar(Double), 0)),]
        )
    );
    let err = backcall_abi::Abi::X86_64Sysv.plan(&sig).unwrap_err().to_string();
    assert!(err.contains("flexible or zero-length array"), "{err}");
}

#[test]
fn bad_array_size() {
    fails("void (*)(struct { int a[-1]; })", 24, "an array size from 0 to 16777216");
    fails("void (*)(struct { int a[16777217]; })", 24, "an array size from 0");
    fails("void (*)(struct { int a[99999999999999999999999]; })", 24, "array size from 0");
    fails("void (*)(struct { int a[]; int b; })", 27, "a flexible array member comes last");
    fails("void (*)(union { int n; int a[]; })", 28, "`[0]` is GNU C's");
    fails("void (*)(struct { int a[n]; })", 24, "a constant (a number or an enumerator");
    fails("void (*)(struct { int a[12ab]; })", 24, "an integer constant");
    fails("void (*)(struct { int a[09]; })", 24, "an integer constant");
    fails("void (*)(struct { int a[4096][4097]; })", 24, "at most 16777216 elements");
    fails("void (*)(struct { int a[3; })", 25, "`]`");
}

#[test]
fn duplicate_member_name() {
    let err = fails("void (*)(struct { int x; double x; })", 32, "a member name not used before");
    assert_eq!(err.found, "`x` again (first at byte 22)");
    fails("void (*)(union { int a, b, a; })", 27, "not used before");
    // the generated name of an anonymous member is reserved: it meets none of the user's
    parse("void (*)(struct { int f1; struct { int a; }; int __anon; })");
}

#[test]
fn redefinition_of_a_tag() {
    let src = "struct p { int x; }; void (*)(struct p { long x; })";
    let err = fails(src, 37, "the same body as the definition of `struct p` at byte 7");
    assert_eq!(err.found, "a different body");
    fails("struct p { int x; }; void (*)(union p { int x; })", 36, "`struct p` as declared");
    fails("void (*)(struct p { struct p { int x; } q; })", 27, "whose body this is inside");
}

#[test]
fn undefined_tag_by_value() {
    let err = fails("void (*)(struct foo)", 9, "a complete parameter type");
    assert_eq!(err.found, "`struct foo`, which is not defined");
    fails("struct foo (*)(void)", 0, "a complete result type");
    fails("void (*)(struct { struct foo f; })", 18, "a complete member type");
    fails("struct foo; void (*)(int, struct foo)", 26, "a complete parameter type");
    fails("void (*)(struct { struct foo f[2]; })", 31, "a complete array element type");
}

#[test]
fn void_parameter_not_alone() {
    let err = fails("int (*)(void, int)", 12, "`)` (`void` must be the only parameter)");
    assert_eq!(err.found, "`,`");
    let err = fails("int (*)(int, void)", 13, "a parameter type other than `void`");
    assert_eq!(err.found, "`void`");
    fails("int (*)(void x)", 8, "a parameter type other than `void`");
    fails("int (*)(void, ...)", 12, "`void` must be the only parameter");
}

#[test]
fn trailing_garbage() {
    let err = fails("int (*)(int) x", 13, "end of input");
    assert_eq!(err.found, "`x`");
    fails("int (*)(int); int", 14, "end of input");
    fails("int (*)(int) @", 13, "end of input");
}

#[test]
fn conflicting_specifiers() {
    let err = fails("long float (*)(void)", 5, "a type specifier that combines with `long`");
    assert_eq!(err.found, "`float`");
    fails("int (*)(unsigned double)", 17, "combines with `unsigned`");
    fails("int (*)(short long)", 14, "combines with `short`");
    fails("int (*)(long long long)", 18, "combines with `long long`");
    fails("int (*)(signed unsigned)", 15, "combines with `signed`");
    fails("int (*)(size_t int)", 15, "combines with `size_t`");
    fails("int (*)(char struct { int x; })", 13, "combines with `char`");
    fails("int (*)(_Complex int)", 17, "combines with `_Complex`");
    fails("int (*)(_Complex)", 16, "`float`, `double` or `long double` with `_Complex`");
}

#[test]
fn unknown_convention() {
    let err = fails("int (__vectorcall *)(int)", 5, "a calling convention (`__cdecl`, `__stdcall`");
    assert_eq!(err.found, "`__vectorcall`");
    fails("int (WINAPI *)(int)", 5, "a calling convention");
    fails("int (__stdcall __cdecl *)(int)", 15, "`)`");
    fails("int (__stdcall *)", 5, "a calling convention only as `(convention *)`");
}

#[test]
fn void_member() {
    let err = fails("void (*)(struct { int a; void v; })", 25, "a member type other than `void`");
    assert_eq!(err.found, "`void`");
    fails("void (*)(struct { void v[2]; })", 25, "an array element type other than `void`");
}

#[test]
fn unterminated_struct() {
    let err = fails("void (*)(struct { int x;", 24, "a member declaration or `}`");
    assert_eq!(err.found, "end of input");
    fails("void (*)(struct { int x", 23, "`;` or `,` after a member");
    fails("void (*)(struct {", 17, "a member declaration or `}`");
    fails("void (*)(struct", 15, "a tag name or `{`");
}

#[test]
fn other_malformed_structs() {
    fails("void (*)(struct { })", 18, "a member declaration");
    fails("void (*)(struct { int; })", 21, "a member name");
    fails("void (*)(struct { int *; })", 23, "a member name");
    fails("void (*)(struct { int (*f)(void); int g(void); })", 34, "a member type other than");
}

#[test]
fn bit_fields_named_unnamed_and_zero_width() {
    let Type::Aggregate(a) =
        arg("struct { unsigned a : 3, b : 5; int : 0; enum { X } e : 2 __attribute__((packed)); }")
    else {
        panic!("a struct")
    };
    let widths: Vec<(&str, Option<u32>)> =
        a.fields.iter().map(|f| (f.name.as_str(), f.bits)).collect();
    assert_eq!(widths, [("a", Some(3)), ("b", Some(5)), ("", Some(0)), ("e", Some(2))]);
    assert!(a.fields[3].packing.packed);
    round_trips(&parse("void (*)(struct { _Bool ok : 1; long long : 7; char c : 2 + 1; })"));
}

#[test]
fn va_list_is_each_abis_own_type_and_a_parameter_only() {
    for spelling in ["va_list", "__builtin_va_list", "__gnuc_va_list"] {
        assert_eq!(arg(spelling), Type::VaList, "{spelling}");
    }
    round_trips(&parse("void (*)(const char *, va_list)"));
    let result = parse("va_list (*)(void)");
    let member = parse("void (*)(struct { va_list ap; } *)");
    for abi in Abi::ALL {
        assert!(abi.plan(&result).is_err(), "{abi}");
        assert!(abi.plan(&member).is_ok(), "{abi}: behind a pointer");
        assert!(abi.plan(&parse("void (*)(struct { va_list ap; })")).is_err(), "{abi}");
    }
}

#[test]
fn malformed_bit_fields() {
    let at = "void (*)(struct { ".len();
    fails("void (*)(struct { float f : 3; })", at + 8, "a bit-field of an integer type");
    fails("void (*)(struct { int *p : 3; })", at + 7, "a bit-field of an integer type");
    fails("void (*)(struct { int a[2] : 3; })", at + 9, "a bit-field of an integer type");
    fails("void (*)(struct { int x : 0; })", at + 8, "only an unnamed bit-field may be 0");
    fails("void (*)(struct { int x : 129; })", at + 8, "a bit-field width from 1 to 128");
    fails("void (*)(struct { int : -1; })", at + 6, "a bit-field width from 0 to 128");
    let aligned = "void (*)(struct { int x : 3 __attribute__((aligned(4))); })";
    fails(aligned, at + 8, "a bit-field without `aligned(N)`");
}

#[test]
fn other_malformed_declarators() {
    fails("int (*)(int,)", 12, "a type");
    fails("int (*)(, int)", 8, "a type");
    fails("int (*)(int ..., ...)", 12, "`,` or `)`");
    fails("int (*)(..., int)", 11, "`)` after `...`");
    fails("int ((*)(void))[3]", 8, "a result type that is not an array");
    fails("int (*)[3]", 4, "a function pointer");
    fails("int (*)(int)(int)", 7, "a result type that is not an array or function");
    fails("typedef int a[2]; a (*)(void)", 23, "a result type that is not an array or function");
    fails("typedef int t; typedef long t; int (*)(t)", 28, "a new typedef name");
    fails("typedef int size_t; int (*)(void)", 12, "a new typedef name");
    fails("typedef int; int (*)(void)", 11, "a typedef name");
    fails("typedef int t int (*)(void)", 14, "`;` or `,` after a typedef");
    fails("typedef int fn(int); void (*)(struct { fn f; })", 39, "other than a function");
    fails("enum e (*)(void)", 5, "an enum defined before");
    fails("int (*)(int) é", 13, "end of input");
}

#[test]
fn nesting_is_bounded_without_overflowing_the_stack() {
    let deep = format!("int {}*{}(int)", "(".repeat(100_000), ")".repeat(100_000));
    fails(&deep, 4 + MAX_NESTING, "at most 64 levels of nested brackets");
    let structs = format!("void (*)({}", "struct { ".repeat(100_000));
    fails(&structs, 9 + 9 * (MAX_NESTING - 1) + 7, "at most 64 levels");
    let params = format!("void (*)({}", "void (*)(".repeat(100_000));
    assert!(parse_signature(&params).is_err());
    let arrays = format!("void (*)(struct {{ int a{}; }})", "[1]".repeat(100_000));
    // the last dimension applies first, so the 33rd from the end is one too many
    fails(&arrays, 24 + 3 * (100_000 - MAX_TYPE_DEPTH - 1), "at most 32 levels");
    let stars = format!("void (*)(int {})", "*".repeat(1_000_000));
    assert_eq!(parse(&stars).args, [s(Pointer)]);
}

#[test]
fn typedef_stacking_is_bounded() {
    let mut src = String::from("typedef struct { int a; } t0; ");
    for i in 1..40 {
        src += &format!("typedef struct {{ t{} x; }} t{i}; ", i - 1);
    }
    src += "void (*)(t39)";
    let err = parse_signature(&src).unwrap_err();
    assert!(err.expected.contains("at most 32 levels"), "{err}");
    // doubling per typedef: 2^20 leaves would print to megabytes
    let mut src = String::from("typedef struct { int a, b; } t0; ");
    for i in 1..20 {
        src += &format!("typedef struct {{ t{0} x, y; }} t{i}; ", i - 1);
    }
    src += "void (*)(t19)";
    let err = parse_signature(&src).unwrap_err();
    assert!(err.expected.contains("at most 65536 members"), "{err}");
}

#[test]
fn display() {
    let err = parse_signature("int (*)(int, int").unwrap_err();
    assert_eq!(err.to_string(), "at byte 16: expected `,` or `)`, found end of input");
    let boxed: Box<dyn std::error::Error> = Box::new(err);
    assert!(boxed.to_string().starts_with("at byte 16"));
}

// --- accepted input -------------------------------------------------------------------------

#[test]
fn every_scalar_spelling() {
    let cases: &[(&str, Type)] = &[
        ("_Bool", s(Bool)),
        ("bool", s(Bool)),
        ("__int128", s(Int128)),
        ("signed __int128", s(Int128)),
        ("__int128_t", s(Int128)),
        ("unsigned __int128", s(UInt128)),
        ("__int128 unsigned", s(UInt128)),
        ("__uint128_t", s(UInt128)),
        ("char", s(Char)),
        ("signed char", s(SChar)),
        ("char signed", s(SChar)),
        ("unsigned char", s(UChar)),
        ("short", s(Short)),
        ("short int", s(Short)),
        ("signed short", s(Short)),
        ("short signed", s(Short)),
        ("signed short int", s(Short)),
        ("unsigned short", s(UShort)),
        ("unsigned short int", s(UShort)),
        ("short unsigned int", s(UShort)),
        ("int", s(Int)),
        ("signed", s(Int)),
        ("signed int", s(Int)),
        ("unsigned", s(UInt)),
        ("unsigned int", s(UInt)),
        ("long", s(Long)),
        ("long int", s(Long)),
        ("signed long", s(Long)),
        ("unsigned long", s(ULong)),
        ("long unsigned int", s(ULong)),
        ("long long", s(LongLong)),
        ("long long int", s(LongLong)),
        ("signed long long", s(LongLong)),
        ("long int long", s(LongLong)),
        ("unsigned long long", s(ULongLong)),
        ("long long unsigned int", s(ULongLong)),
        ("int8_t", s(I8)),
        ("uint8_t", s(U8)),
        ("int16_t", s(I16)),
        ("uint16_t", s(U16)),
        ("int32_t", s(I32)),
        ("uint32_t", s(U32)),
        ("int64_t", s(I64)),
        ("uint64_t", s(U64)),
        ("size_t", s(SizeT)),
        ("ssize_t", s(SSizeT)),
        ("intptr_t", s(IntPtr)),
        ("uintptr_t", s(UIntPtr)),
        ("float", s(Float)),
        ("double", s(Double)),
        ("long double", s(LongDouble)),
        ("double long", s(LongDouble)),
        ("const volatile int const", s(Int)),
        ("float _Complex", Type::Complex(Float)),
        ("_Complex double", Type::Complex(Double)),
        ("long double _Complex", Type::Complex(LongDouble)),
        ("_Complex long double", Type::Complex(LongDouble)),
    ];
    for (spelling, ty) in cases {
        assert_eq!(&arg(spelling), ty, "{spelling}");
        assert_eq!(&parse(&format!("{spelling} (*)(void)")).ret, ty, "{spelling}");
    }
    for scalar in Scalar::ALL {
        round_trips(&Signature::new(s(scalar), vec![s(scalar)]));
    }
}

#[test]
fn pointers() {
    for spelling in [
        "void *",
        "int **",
        "const char *const",
        "char *const *volatile",
        "int *restrict",
        "struct undefined *",
        "union nowhere **",
        "void (*)(int)",
        "int (*cb)(void *)",
        "void (__stdcall *)(int)",
        "int (*(*)(int))(double)",
        "int x[4]",
        "int (*)[3]",
        "int f(int)",
        "struct { int x; } *",
    ] {
        assert_eq!(arg(spelling), s(Pointer), "{spelling}");
    }
    assert_eq!(parse("void * (*)(void)").ret, s(Pointer));
    assert_eq!(member("void (*f)(int);"), s(Pointer));
    assert_eq!(member("int *p[3];"), array(s(Pointer), 3));
    assert_eq!(member("int (*p)[3];"), s(Pointer));
    assert_eq!(member("struct self *next;"), s(Pointer));
}

#[test]
fn design_examples() {
    let sig = parse("int (*)(const void *, const void *)");
    assert_eq!(sig, Signature::new(s(Int), vec![s(Pointer), s(Pointer)]));
    let sig = parse("double (*)(float, int, struct { char c; double d; }, long long)");
    let cd = agg(Struct, None, vec![field("c", s(Char)), field("d", s(Double))]);
    assert_eq!(sig, Signature::new(s(Double), vec![s(Float), s(Int), cd, s(LongLong)]));
    let sig = parse("struct { float x, y, z; } (__stdcall *)(void *, unsigned short)");
    let xyz = agg(Struct, None, ["x", "y", "z"].map(|n| field(n, s(Float))).to_vec());
    assert_eq!(sig.ret, xyz);
    assert_eq!(sig.args, [s(Pointer), s(UShort)]);
    assert_eq!(sig.conv, Convention::Stdcall);
    assert_eq!(parse("void (*)(void)"), Signature::new(Type::Void, vec![]));
    assert_eq!(parse("void (*)()"), Signature::new(Type::Void, vec![]));
}

#[test]
fn names_are_allowed_and_ignored() {
    let sig = parse("int (*cmp)(const void *a, const void *b);");
    assert_eq!(sig, Signature::new(s(Int), vec![s(Pointer), s(Pointer)]));
    assert_eq!(parse("int (*)(int a, double b)").args, [s(Int), s(Double)]);
    // after a type specifier a typedef name is a plain name, as in C
    assert_eq!(arg("unsigned size_t"), s(UInt));
    assert_eq!(member("int size_t;"), s(Int));
    assert_eq!(parse("int (((*f)))(int)").args, [s(Int)]);
}

#[test]
fn typedefs_and_tags() {
    let src = "struct point { int x, y; }; typedef struct point pt; double (*)(pt, struct point *)";
    let point = agg(Struct, Some("point"), vec![field("x", s(Int)), field("y", s(Int))]);
    assert_eq!(parse(src), Signature::new(s(Double), vec![point.clone(), s(Pointer)]));
    let src = "typedef struct { float re, im; } cpx; cpx (*)(cpx, cpx, double)";
    let cpx = agg(Struct, None, vec![field("re", s(Float)), field("im", s(Float))]);
    assert_eq!(parse(src).args, [cpx.clone(), cpx, s(Double)]);
    // typedef before the tag's definition, several declarators, pointer and array typedefs
    let src = "typedef struct point P, *PP; struct point { int x, y; }; typedef P A[2]; \
               P (*)(PP, A, struct { A a; })";
    let sig = parse(src);
    assert_eq!(sig.ret, point);
    let a = agg(Struct, None, vec![field("a", array(point.clone(), 2))]);
    assert_eq!(sig.args, [s(Pointer), s(Pointer), a]);
    // a tagged definition inside the signature defines the tag for later use
    let sig = parse("void (*)(struct p { int x; }, struct p, union u { char c; } *, union u)");
    let p = agg(Struct, Some("p"), vec![field("x", s(Int))]);
    let u = agg(Union, Some("u"), vec![field("c", s(Char))]);
    assert_eq!(sig.args, [p.clone(), p, s(Pointer), u]);
    // forward declarations, typedef'd function types and a whole signature as a typedef
    let sig = parse("struct n; typedef int fn(struct n *); struct n { fn *f; }; fn *");
    assert_eq!(sig, Signature::new(s(Int), vec![s(Pointer)]));
    let sig = parse("typedef long (__fastcall *cb_t)(long); cb_t");
    assert_eq!(sig.conv, Convention::Fastcall);
    assert_eq!(parse("typedef void V; V (*)(V)"), Signature::new(Type::Void, vec![]));
}

#[test]
fn identical_redefinition_is_the_same_type() {
    let src = "struct p { int x; }; struct p { int x; }; struct p (*)(struct p { int x; })";
    let sig = parse(src);
    assert_eq!(sig.ret, sig.args[0]);
    let nested = "struct o { struct i { char c; } a; struct i b; } (*)(struct i)";
    let sig = parse(nested);
    round_trips(&sig);
    assert_eq!(sig.to_string().matches("struct i {").count(), 3);
}

#[test]
fn unions_and_nested_aggregates() {
    let ty = arg("union { int i; float f; struct { char c[3]; union { short s; } u; } n; }");
    let inner = agg(Union, None, vec![field("s", s(Short))]);
    let n = agg(Struct, None, vec![field("c", array(s(Char), 3)), field("u", inner)]);
    let expected = agg(Union, None, vec![field("i", s(Int)), field("f", s(Float)), field("n", n)]);
    assert_eq!(ty, expected);
    round_trips(&Signature::new(ty.clone(), vec![ty]));
}

#[test]
fn anonymous_members_are_named_by_position() {
    let ty = arg("struct { int a; union { int b; float c; }; struct t { int d; }; double e; }");
    let Type::Aggregate(a) = ty else { panic!("not an aggregate") };
    let names: Vec<_> = a.fields.iter().map(|f| f.name.as_str()).collect();
    // the tagged `struct t { ... };` only declares the tag, as in C
    assert_eq!(names, ["a", "__anon1", "e"]);
    round_trips(&Signature::new(Type::Void, vec![Type::Aggregate(a)]));
}

#[test]
fn arrays() {
    assert_eq!(member("int m[2][3];"), array(array(s(Int), 3), 2));
    assert_eq!(member("char a[0x10];"), array(s(Char), 16));
    assert_eq!(member("char a[010];"), array(s(Char), 8));
    assert_eq!(member("char a[4u];"), array(s(Char), 4));
    assert_eq!(member("char a[16777216];"), array(s(Char), 1 << 24));
    assert_eq!(member("float _Complex z[2];"), array(Type::Complex(Float), 2));
    let sig = parse("typedef int row[3]; void (*)(struct { row m[2]; row r; }, row)");
    let m = agg(
        Struct,
        None,
        vec![field("m", array(array(s(Int), 3), 2)), field("r", array(s(Int), 3))],
    );
    assert_eq!(sig.args, [m, s(Pointer)]);
    let Type::Aggregate(a) = arg("struct { int a, b[3], *p; }") else { panic!() };
    let types: Vec<_> = a.fields.iter().map(|f| f.ty.clone()).collect();
    assert_eq!(types, [s(Int), array(s(Int), 3), s(Pointer)]);
}

#[test]
fn conventions() {
    for (kw, conv) in [
        ("__cdecl", Convention::Cdecl),
        ("__stdcall", Convention::Stdcall),
        ("__fastcall", Convention::Fastcall),
        ("__thiscall", Convention::Thiscall),
    ] {
        let sig = parse(&format!("int ({kw} *)(int)"));
        assert_eq!(sig.conv, conv);
        round_trips(&sig);
        assert_eq!(parse(&format!("int ({kw} *name)(int)")).conv, conv);
    }
    assert_eq!(parse("int (*)(int)").conv, Convention::Default);
}

#[test]
fn variadic() {
    let sig = parse("int (*)(const char *, ...)");
    assert!(sig.variadic);
    assert_eq!(sig.args, [s(Pointer)]);
    let sig = parse("int (*)(...)");
    assert!(sig.variadic && sig.args.is_empty());
    round_trips(&sig);
    assert!(!parse("int (*)(int)").variadic);
}

#[test]
fn complex_and_long_double() {
    let sig = parse("long double _Complex (*)(long double, float _Complex, double _Complex)");
    assert_eq!(sig.ret, Type::Complex(LongDouble));
    assert_eq!(sig.args, [s(LongDouble), Type::Complex(Float), Type::Complex(Double)]);
    round_trips(&sig);
}

#[test]
fn builtin_corpus_round_trips() {
    for entry in crate::corpus::builtin() {
        round_trips(&entry.signature);
    }
}

#[test]
fn what_real_headers_write() {
    // enums: the underlying type, values from constant expressions, enumerators in array sizes
    assert_eq!(arg("enum e { A, B }"), s(UInt));
    assert_eq!(arg("enum { X = -1, Y }"), s(Int));
    assert_eq!(arg("enum { H = 1 << 40 }"), s(ULongLong));
    let sig = parse("enum { N = 2, M = (N + 1) * 4 | 1 }; void (*)(struct { char c[M]; })");
    assert_eq!(sig.args[0], agg(Struct, None, vec![field("c", array(s(Char), 13))]));
    let sig = parse("enum e { A }; enum e (*)(enum e)");
    assert_eq!((sig.ret.clone(), sig.args[0].clone()), (s(UInt), s(UInt)));
    // array parameters and qualifiers
    let sig =
        parse("int (*)(char *argv[], const int v[static 4], int * restrict p, register int r)");
    assert_eq!(sig.args, vec![s(Pointer), s(Pointer), s(Pointer), s(Int)]);
    // an opaque pointee, a repeated typedef, an anonymous member beside `f0`
    assert_eq!(parse("void (*)(FILE *, uv_loop_t *)").args, vec![s(Pointer), s(Pointer)]);
    assert_eq!(parse("typedef unsigned int uint32_t; uint32_t (*)(void)").ret, s(U32));
    let ty = arg("struct { int f0; union { int a; float b; }; }");
    let Type::Aggregate(a) = ty else { panic!("not an aggregate") };
    assert_eq!(a.fields[1].name, "__anon1");
}

#[test]
fn what_real_headers_write_wrongly_is_still_an_error() {
    fails("void (*)(enum nowhere)", 14, "an enum defined before");
    let err = fails("enum { A = 1 / 0 }; void (*)(void)", 13, "a constant expression C defines");
    assert_eq!(err.found, "a division by zero");
    fails("typedef unsigned long uint32_t; void (*)(void)", 22, "the same type again");
    fails("void (*)(FILE)", 9, "a type name");
}

/// The record's own attributes and its first member's, of the argument `src`.
fn packings(src: &str) -> (Packing, Packing) {
    match arg(src) {
        Type::Aggregate(a) => (a.packing, a.fields[0].packing),
        other => panic!("{src}: {other}"),
    }
}

#[test]
fn layout_attributes_on_records_and_members() {
    let packed = Packing { packed: true, align: None };
    let aligned = |n| Packing { packed: false, align: Some(n) };
    assert_eq!(packings("struct __attribute__((packed)) { int a; }").0, packed);
    assert_eq!(packings("struct { int a; } __attribute__((__packed__))").0, packed);
    assert_eq!(
        packings("struct __attribute__((aligned(8))) p { int a; } __attribute__((packed))").0,
        Packing { packed: true, align: Some(8) }
    );
    assert_eq!(packings("union { int a __attribute__((aligned(16))); }").1, aligned(16));
    assert_eq!(packings("struct { _Alignas(8) int a; }").1, aligned(8));
    assert_eq!(packings("struct { alignas(4) char a; }").1, aligned(4));
    // Two alignments: the larger wins, as in C.
    assert_eq!(
        packings("struct { int a __attribute__((aligned(2), aligned(32))); }").1,
        aligned(32)
    );
    // A constant expression, from an enum too.
    assert_eq!(packings("struct { int a __attribute__((aligned(4 * 2))); }").1, aligned(8));
    let sig = parse("enum { N = 16 }; void (*)(struct { int a __attribute__((aligned(N))); })");
    round_trips(&sig);
    for src in [
        "void (*)(struct __attribute__((packed, aligned(4))) s { char c; long long l; })",
        "void (*)(union { double d __attribute__((packed)); char c[3]; } __attribute__((aligned(16))))",
    ] {
        round_trips(&parse(src));
    }
}

#[test]
fn layout_attributes_where_they_mean_nothing_or_too_much_are_errors() {
    fails("void (*)(struct { int a __attribute__((aligned(3))); })", 47, "a power of two");
    fails("void (*)(struct { int a __attribute__((aligned(8192))); })", 47, "a power of two");
    fails("void (*)(struct { int a __attribute__((aligned)); })", 46, "`aligned(N)`");
    fails("void (*)(struct { int a __attribute__((vector_size(16))); })", 39, "keeps the layout");
    fails("void (*)(int __attribute__((aligned(8))) a)", 28, "only on a struct or union");
    fails("typedef int __attribute__((aligned(8))) wide; void (*)(wide)", 27, "only on a struct");
    fails("void (*)(struct __attribute__((stdcall)) { int a; })", 16, "a layout attribute");
}

/// The `#pragma pack` of the argument `src`'s record and of its first member's record.
fn packs(src: &str) -> (Option<u32>, Option<u32>) {
    let Type::Aggregate(a) = arg(src) else { panic!("{src}") };
    let inner = match &a.fields[0].ty {
        Type::Aggregate(inner) => inner.pack,
        _ => None,
    };
    (a.pack, inner)
}

#[test]
fn pragma_pack_holds_for_the_bodies_defined_under_it() {
    let pack2 = r#"_Pragma("pack(push, 2)") struct { char c; int i; } _Pragma("pack(pop)")"#;
    assert_eq!(packs(pack2).0, Some(2));
    // Pushed, set, popped, reset; `#pragma` lines end at the line's end.
    let sig = parse(
        "#pragma pack(4)\nstruct a { char c; double d; };\n#pragma pack(push, 1)\n\
         struct b { char c; double d; };\n#pragma pack(pop)\nstruct c { char c; double d; };\n\
         #pragma pack()\nvoid (*)(struct a, struct b, struct c, struct { char c; double d; })",
    );
    let each: Vec<Option<u32>> = sig
        .args
        .iter()
        .map(|a| match a {
            Type::Aggregate(a) => a.pack,
            _ => None,
        })
        .collect();
    assert_eq!(each, [Some(4), Some(1), Some(4), None]);
    assert_eq!(Abi::X86_64Sysv.layout(&sig.args[1]).map(|l| l.size), Ok(9));
    // A member's record keeps the pack it was defined under, which the printer spells out.
    let nested = r#"struct { struct { char c; int i; } in; } _Pragma("pack(1)")"#;
    assert_eq!(packs(nested), (None, None));
    let nested = r#"_Pragma("pack(1)") struct { _Pragma("pack(push)") _Pragma("pack()") struct { char c; int i; } in _Pragma("pack(pop)"); }"#;
    assert_eq!(packs(nested), (Some(1), None));
    round_trips(&parse(&format!("void (*)({nested}, {pack2})")));
    round_trips(&sig);
}

#[test]
fn a_pragma_backcall_cannot_read_is_an_error_at_its_offset() {
    let forms = "`pack(N)`, `pack(push, N)`";
    fails(r#"_Pragma("pack(3)") void (*)(int)"#, 0, forms);
    fails(r#"void (*)(int) _Pragma("pack(push, 32)")"#, 14, forms);
    fails("#pragma once\nvoid (*)(int)", 0, forms);
    fails(r#"void (*)(int _Pragma("pack(pop)"))"#, 13, "a `pack(push)` before it");
    // The body must end under the pack it began under.
    let src = r#"void (*)(struct { char c; _Pragma("pack(1)") int i; })"#;
    fails(src, src.len() - 2, "the `#pragma pack` the body began under");
    // None between a struct's keyword and its `{`, or its `}` and its attributes.
    fails(r#"void (*)(struct s _Pragma("pack(1)") { int i; })"#, 18, "and its `{`");
    let src = r#"void (*)(struct { int i; } _Pragma("pack(1)") __attribute__((aligned(8))))"#;
    fails(src, 27, "and its attributes");
    // A `_Pragma` that is no string literal is a word, not a pragma.
    fails(r#"_Pragma(pack) void (*)(int)"#, 0, "a type");
}
