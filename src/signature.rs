//! The C signature parser (ARCHITECTURE.md §4): `int (*)(const void *, const void *)` → [`Signature`].
//!
//! The input is C declarator syntax: optional declarations, each ending in `;`, then one type
//! that must be a function pointer, optionally named and optionally followed by `;`:
//!
//! ```text
//! struct point { int x, y; }; typedef struct point pt; double (__cdecl *dist)(pt, pt *)
//! ```
//!
//! * Declarations are `typedef`s and `struct`/`union` definitions or forward declarations.
//! * The calling convention keyword goes just inside the parentheses: `(__stdcall *)`.
//! * Typedef names (including the built-in `size_t`, `int32_t`, ...) resolve to their types, so
//!   the [`Signature`] holds none; every pointer is [`Scalar::Pointer`].
//! * All tags share one scope (C would give tags declared in a parameter list their own). A tag
//!   may be defined again with an identical body, which is what the printer produces when a
//!   tagged type occurs twice: `parse_signature(&sig.to_string())` gives `sig` back.
//! * An untagged struct or union member without a name (C11's anonymous member) is named
//!   `__anon<i>` after its position `i` (a reserved name: it meets no member of the user's).
//! * A name that is no type, right before `*`, is an opaque pointee (`FILE *`, `uv_loop_t *`).
//! * Array parameters (`T x[]`, `T x[N]`, `T x[static N]`) and function parameters are adjusted
//!   to pointers, as C does; `restrict`, `_Atomic`, `register` and `volatile` are accepted
//!   wherever C allows them and change nothing.
//! * A struct's last member may be a flexible array (`T x[]`, held as GNU C's zero-length
//!   `T x[0]`): fine behind a pointer, unsupported by value.
//! * `enum` types are their underlying integer type: `unsigned int` when no enumerator is
//!   negative, else `int`; `long long` types when a value needs 64 bits (as GCC and clang
//!   choose on Linux; MSVC's enums are `int`, whose bits are the same for valid enumerators).
//! * `__attribute__((packed))` and `__attribute__((aligned(N)))` go on a struct or union (after
//!   its keyword or its closing brace) and on a member (after its declarator); `_Alignas(N)` and
//!   `alignas(N)` on a member. Each ABI lays them out by its compilers' rules
//!   ([`backcall_abi::RecordRules`]). They are refused on parameters, results and typedefs, as
//!   are `vector_size`, `mode`, `ms_struct` and `transparent_union`.
//! * `#pragma pack` (up to the end of its line) or `_Pragma("pack(...)")`, in the forms
//!   `pack(N)`, `pack(push, N)`, `pack(push)`, `pack(pop)` and `pack()`, between declarations,
//!   parameters and members (not between a struct's keyword and its `{`, nor between its `}`
//!   and its attributes): a body defined while `pack(N)` is in effect places no member on a
//!   boundary above `N` ([`Aggregate::pack`]), and must end under the pack it began under
//!   (GCC reads it at the `}`, clang at the `{`). The pack state starts empty in each input.
//! * Bit-fields (`unsigned ready : 1;`, unnamed `int : 3;` and `int : 0;`) of any integer type,
//!   enums and `_Bool` included; a member's `packed` may follow the width. Each ABI places them
//!   by its record rules (System V's or Microsoft's storage units).
//!
//! Errors carry the byte offset, what was expected and what was found; no input panics, and
//! nesting and size are bounded ([`MAX_NESTING`], [`MAX_TYPE_DEPTH`], [`MAX_TYPE_NODES`], and
//! the whole signature's [`MAX_SIGNATURE_NODES`]).

mod lexer;
mod specifiers;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use backcall_abi::{
    Aggregate, AggregateKind, Convention, Field, Packing, Scalar, Signature, Type,
    MAX_SIGNATURE_NODES,
};

use lexer::{Pragma, Tok, Token};
use specifiers::{Kw, Specifiers};

/// The deepest nesting of parentheses, brackets and braces the parser follows.
pub const MAX_NESTING: usize = 64;

/// The deepest nesting of structs, unions and array dimensions a type may have (typedefs can
/// build types deeper than their text, so this is checked on the types themselves).
pub const MAX_TYPE_DEPTH: usize = 32;

/// The most members and array types one type may contain, counting nested ones once per use.
/// Bounds the printed size of types built by stacking typedefs.
pub const MAX_TYPE_NODES: usize = 1 << 16;

/// The most elements an array may have, counting all of its dimensions.
pub const MAX_ARRAY_ELEMENTS: u64 = 1 << 24;

/// Why a signature did not parse: at byte `offset`, `expected` was expected but `found` was
/// there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset into the input where the problem is.
    pub offset: usize,
    /// What the parser expected, in words (`` `)` ``, `a type name`, ...).
    pub expected: String,
    /// What it found instead (`` `,` ``, `end of input`, ...).
    pub found: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: expected {}, found {}", self.offset, self.expected, self.found)
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    fn with_found(mut self, found: String) -> ParseError {
        self.found = found;
        self
    }
}

/// Parses a C function pointer type, with optional `typedef` and `struct` declarations before
/// it (see the [module documentation](self) for the accepted language).
///
/// ```
/// use backcall::abi::{Convention, Scalar, Type};
/// use backcall::parse_signature;
///
/// let sig = parse_signature("int (__stdcall *cmp)(const void *, const void *)").unwrap();
/// assert_eq!(sig.ret, Type::Scalar(Scalar::Int));
/// assert_eq!(sig.args, [Type::Scalar(Scalar::Pointer), Type::Scalar(Scalar::Pointer)]);
/// assert_eq!(sig.conv, Convention::Stdcall);
/// assert_eq!(parse_signature(&sig.to_string()), Ok(sig));
///
/// let err = parse_signature("int (*)(int, void)").unwrap_err();
/// assert_eq!(err.to_string(), "at byte 13: expected a parameter type other than `void`, found `void`");
/// ```
pub fn parse_signature(src: &str) -> Result<Signature, ParseError> {
    Parser::new(src)?.signature()
}

type PResult<T> = Result<T, ParseError>;

fn error_at(offset: usize, expected: impl Into<String>, found: impl Into<String>) -> ParseError {
    ParseError { offset, expected: expected.into(), found: found.into() }
}

/// A complete object type with the measures that keep types bounded.
#[derive(Clone, Debug)]
struct Obj {
    ty: Type,
    /// struct, union and array levels
    depth: usize,
    /// members and array types inside, counting this type
    nodes: usize,
}

impl Obj {
    fn leaf(ty: Type) -> Obj {
        Obj { ty, depth: 0, nodes: 1 }
    }

    fn pointer() -> Obj {
        Obj::leaf(Type::Scalar(Scalar::Pointer))
    }
}

/// A type while parsing: unlike [`Type`] it can be `void`, a function, or a not yet defined tag.
#[derive(Clone, Debug)]
enum Ty {
    Void,
    Obj(Obj),
    /// `struct tag` before (or without) its definition; only pointers to it are usable
    Incomplete(AggregateKind, String),
    Func(Box<FnTy>),
    /// kept apart from other pointers because the signature itself is one
    FnPtr(Box<FnTy>),
    /// `T x[]`: only a parameter may be one (it is adjusted to a pointer)
    Unsized,
}

/// A function type. Its result and parameters never hold functions (they decay to pointers), so
/// typedef chains cannot nest `FnTy`s.
#[derive(Clone, Debug)]
struct FnTy {
    ret: Ty,
    ret_offset: usize,
    params: Vec<Param>,
    variadic: bool,
    conv: Convention,
}

#[derive(Clone, Debug)]
struct Param {
    ty: Ty,
    offset: usize,
}

/// What declaration specifiers produced, and whether they were a `struct`/`union` specifier
/// (which may stand alone before `;`).
struct Base {
    ty: Ty,
    offset: usize,
    form: Form,
    /// `__attribute__((aligned(8)))` or `_Alignas(8)` among the specifiers (a member's)
    packing: Packing,
    packing_at: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Plain,
    /// `struct tag` or `struct tag { ... }`
    Tagged,
    /// `struct { ... }`
    AnonymousBody,
}

/// A declarator: the name, if any, and the derivations to apply to the base type, innermost
/// first (`*a[3]` is `[Pointer, Array 3]`: an array of pointers).
struct Declarator {
    name: Option<(String, usize)>,
    derivs: Vec<Deriv>,
    offset: usize,
    /// `__attribute__((packed, aligned(8)))` after the declarator (a member's)
    packing: Packing,
    packing_at: Option<usize>,
}

enum Deriv {
    Pointer,
    Array {
        len: u32,
        offset: usize,
    },
    /// `[]`, a parameter's
    Unsized,
    Function(FnParams),
    Conv {
        conv: Convention,
        offset: usize,
    },
}

struct FnParams {
    params: Vec<Param>,
    variadic: bool,
    offset: usize,
}

/// A tag's kind, where it was first declared, and its definition once seen.
#[derive(Clone)]
struct Tag {
    kind: AggregateKind,
    offset: usize,
    def: Option<Obj>,
}

/// The typedefs, tags and enumerators of declarations parsed so far, which later signatures
/// may name: what a header declares before its callback types
/// ([`Declarations::declare`], [`Declarations::signature`]).
#[derive(Clone, Default)]
pub struct Declarations {
    typedefs: HashMap<String, Ty>,
    /// enum tags, with their underlying integer type
    enums: HashMap<String, Scalar>,
    /// enumerators seen so far, usable in later constant expressions
    constants: HashMap<String, i128>,
    tags: HashMap<String, Tag>,
}

impl std::fmt::Debug for Declarations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Declarations({} typedefs, {} tags)", self.typedefs.len(), self.tags.len())
    }
}

impl Declarations {
    /// Adds the declarations of `src` (`typedef`s, `struct`/`union`/`enum` definitions, each
    /// ending in `;`); on an error nothing of `src` is added.
    ///
    /// ```
    /// let mut decls = backcall::signature::Declarations::default();
    /// decls.declare("typedef struct z_stream_s { int avail; } z_stream; typedef void *voidpf;").unwrap();
    /// decls.declare("typedef voidpf (*alloc_func)(voidpf, unsigned, unsigned);").unwrap();
    /// let sig = decls.signature("alloc_func").unwrap();
    /// assert_eq!(sig.args.len(), 3);
    /// assert!(decls.declare("typedef nonsense;").is_err());
    /// ```
    pub fn declare(&mut self, src: &str) -> Result<(), ParseError> {
        let mut p = Parser::with(src, self.clone())?;
        while p.peek().tok != Tok::Eof {
            p.declaration()?;
        }
        *self = p.decls;
        Ok(())
    }

    /// Parses a signature (a function pointer type, or a typedef name of one) with these
    /// declarations in scope, as [`parse_signature`] does.
    pub fn signature(&self, src: &str) -> Result<Signature, ParseError> {
        Parser::with(src, self.clone())?.signature()
    }
}

struct Parser<'a> {
    toks: Vec<Token<'a>>,
    /// where each `#pragma` or `_Pragma` starts and the `#pragma pack` in effect after it
    packs: Vec<(usize, Option<u32>)>,
    pos: usize,
    nesting: usize,
    decls: Declarations,
    /// tags whose bodies are being parsed (a nested definition of one is an error)
    defining: Vec<String>,
}

// Token access. The token list always ends in `Eof`, and `pos` never moves past it.
impl<'a> Parser<'a> {
    fn new(src: &'a str) -> PResult<Parser<'a>> {
        Parser::with(src, Declarations::default())
    }

    /// A parser over `src`; `Err` for the first pragma that is no `#pragma pack` backcall reads.
    fn with(src: &'a str, decls: Declarations) -> PResult<Parser<'a>> {
        let (toks, pragmas) = lexer::tokenize(src);
        let packs = pack_states(&pragmas)?;
        Ok(Parser { toks, packs, pos: 0, nesting: 0, decls, defining: Vec::new() })
    }

    fn peek(&self) -> Token<'a> {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> Token<'a> {
        let eof = self.toks.last().copied().unwrap_or(Token { tok: Tok::Eof, offset: 0 });
        self.toks.get(self.pos.saturating_add(ahead)).copied().unwrap_or(eof)
    }

    fn offset(&self) -> usize {
        self.peek().offset
    }

    fn bump(&mut self) {
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek().tok, Tok::Punct(q) if q == p)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek().tok, Tok::Ident(v) if v == w)
    }

    fn eat(&mut self, p: &str) -> bool {
        let hit = self.is_punct(p);
        if hit {
            self.bump();
        }
        hit
    }

    fn expect(&mut self, p: &str, expected: &str) -> PResult<()> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(self.error_here(expected))
        }
    }

    fn error_here(&self, expected: impl Into<String>) -> ParseError {
        let tok = self.peek();
        error_at(tok.offset, expected, tok.tok.describe())
    }

    /// Runs `f` one nesting level deeper, refusing to go past [`MAX_NESTING`] so that the
    /// recursive descent cannot exhaust the stack.
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        if self.nesting >= MAX_NESTING {
            let expected = format!("at most {MAX_NESTING} levels of nested brackets");
            return Err(self.error_here(expected));
        }
        self.nesting += 1;
        let result = f(self);
        self.nesting -= 1;
        result
    }
}

// The whole input, typedefs, and the final conversion to a `Signature`.
impl Parser<'_> {
    fn signature(&mut self) -> PResult<Signature> {
        loop {
            if self.is_word("typedef") {
                self.bump();
                self.typedef_declaration()?;
                continue;
            }
            let base = self.specifiers()?;
            if base.form != Form::Plain && self.eat(";") {
                continue;
            }
            let sig = self.function_pointer(&base)?;
            self.eat(";");
            if self.peek().tok != Tok::Eof {
                return Err(self.error_here("end of input"));
            }
            return Ok(sig);
        }
    }

    /// One declaration: a `typedef`, or a `struct`/`union`/`enum` definition or forward
    /// declaration, ending in `;`.
    fn declaration(&mut self) -> PResult<()> {
        if self.is_word("typedef") {
            self.bump();
            return self.typedef_declaration();
        }
        let base = self.specifiers()?;
        if base.form != Form::Plain && self.eat(";") {
            return Ok(());
        }
        Err(self.error_here("a declaration (`typedef`, or a struct, union or enum definition)"))
    }

    fn typedef_declaration(&mut self) -> PResult<()> {
        let base = self.specifiers()?;
        loop {
            let decl = self.declarator()?;
            no_layout_attributes(&base, &decl, "a typedef")?;
            let Some((name, offset)) = decl.name else {
                return Err(self.error_here("a typedef name"));
            };
            let ty = self.apply(&base, decl.derivs)?;
            if let Some(first) = self.typedef(&name) {
                // C11 allows a typedef again when it names the same type: here, the same on
                // every ABI (`typedef unsigned int uint32_t;`).
                if !same_on_every_abi(&first, &ty) {
                    let expected = "a new typedef name, or the same type again";
                    return Err(error_at(offset, expected, format!("`{name}` as another type")));
                }
                if !self.eat(",") {
                    return self.expect(";", "`;` or `,` after a typedef");
                }
                continue;
            }
            self.decls.typedefs.insert(name, ty);
            if !self.eat(",") {
                return self.expect(";", "`;` or `,` after a typedef");
            }
        }
    }

    /// The declarator after `base`, which must make a function pointer.
    fn function_pointer(&mut self, base: &Base) -> PResult<Signature> {
        let decl = self.declarator()?;
        no_layout_attributes(base, &decl, "a function pointer")?;
        let bare = decl.derivs.is_empty();
        match self.apply(base, decl.derivs)? {
            Ty::FnPtr(f) => self.signature_of(*f),
            _ if bare => Err(self.error_here("`(*)` and a parameter list")),
            Ty::Func(_) => {
                Err(error_at(decl.offset, "`(*)` before the parameter list", "a function"))
            }
            // stopped early, as in `int (*))(int)`: the next token is the culprit
            _ if !matches!(self.peek().tok, Tok::Eof | Tok::Punct(";")) => {
                Err(self.error_here("a parameter list `(...)`"))
            }
            other => Err(error_at(decl.offset, "a function pointer `(*)(...)`", describe(&other))),
        }
    }

    fn signature_of(&self, f: FnTy) -> PResult<Signature> {
        // The whole signature is bounded too, not only each type: 64 parameters of one
        // 65,000-node struct would cost gigabytes to plan.
        let mut nodes = 1u64;
        let mut count = |obj: &Obj, offset: usize| {
            nodes = nodes.saturating_add(obj.nodes as u64);
            if nodes > MAX_SIGNATURE_NODES {
                let expected = format!(
                    "a signature with at most {MAX_SIGNATURE_NODES} members, arrays and \
                     scalars in all (MAX_SIGNATURE_NODES; a struct counts once per use)"
                );
                return Err(error_at(offset, expected, "a larger signature"));
            }
            Ok(())
        };
        let ret = match f.ret {
            Ty::Void => Type::Void,
            other => {
                let obj = self.object(other, f.ret_offset, "result")?;
                count(&obj, f.ret_offset)?;
                obj.ty
            }
        };
        let mut args = Vec::with_capacity(f.params.len());
        for p in f.params {
            let obj = self.object(p.ty, p.offset, "parameter")?;
            count(&obj, p.offset)?;
            args.push(obj.ty);
        }
        Ok(Signature { ret, args, conv: f.conv, variadic: f.variadic })
    }

    /// `ty` as a complete object type for a `role` (member, parameter, ...).
    fn object(&self, ty: Ty, offset: usize, role: &str) -> PResult<Obj> {
        let a = if role.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        match ty {
            Ty::Obj(obj) => Ok(obj),
            Ty::FnPtr(_) => Ok(Obj::pointer()),
            Ty::Void => {
                Err(error_at(offset, format!("{a} {role} type other than `void`"), "`void`"))
            }
            Ty::Func(_) => Err(error_at(
                offset,
                format!("{a} {role} type other than a function"),
                "a function",
            )),
            Ty::Incomplete(kind, tag) => self.definition(kind, &tag).ok_or_else(|| {
                let found = format!("`{} {tag}`, which is not defined", kind_word(kind));
                error_at(offset, format!("a complete {role} type (or a pointer)"), found)
            }),
            Ty::Unsized => Err(error_at(
                offset,
                format!("{a} {role} type with a size (`[]` is for parameters)"),
                "an array without a size",
            )),
        }
    }

    fn definition(&self, kind: AggregateKind, tag: &str) -> Option<Obj> {
        self.decls.tags.get(tag).filter(|t| t.kind == kind).and_then(|t| t.def.clone())
    }

    fn typedef(&self, name: &str) -> Option<Ty> {
        let builtin = || match name {
            // each ABI's own type, resolved when it is laid out
            "va_list" | "__builtin_va_list" | "__gnuc_va_list" => {
                Some(Ty::Obj(Obj::leaf(Type::VaList)))
            }
            _ => builtin_typedef(name).map(|s| Ty::Obj(Obj::leaf(Type::Scalar(s)))),
        };
        self.decls.typedefs.get(name).cloned().or_else(builtin)
    }
}

// Declaration specifiers: qualifiers, type keywords, typedef names, struct/union specifiers.
impl Parser<'_> {
    fn specifiers(&mut self) -> PResult<Base> {
        let offset = self.offset();
        let mut spec = Specifiers::default();
        let mut named = None;
        let (mut packing, mut packing_at) = (Packing::NONE, None);
        while let Tok::Ident(word) = self.peek().tok {
            if QUALIFIERS.contains(&word) {
                self.bump();
            } else if is_attribute(word) {
                let attrs = self.attributes()?;
                if let Some(conv) = attrs.conv {
                    let found = format!("`{}` here", conv.keyword().unwrap_or_default());
                    return Err(error_at(offset, "a calling convention inside `(*)`", found));
                }
                packing = merge(packing, attrs.packing);
                packing_at = packing_at.or(attrs.packing_at);
            } else if word == "_Alignas" || word == "alignas" {
                let at = self.offset();
                self.bump();
                self.expect("(", "`(` after `_Alignas`")?;
                let align = self.alignment()?;
                self.expect(")", "`)` after the alignment")?;
                packing = merge(packing, Packing { packed: false, align: Some(align) });
                packing_at = packing_at.or(Some(at));
            } else if word == "struct" || word == "union" {
                self.add_specifier(&mut spec, Kw::Named)?;
                named = Some(self.struct_specifier()?);
            } else if word == "enum" {
                self.add_specifier(&mut spec, Kw::Named)?;
                named = Some(self.enum_specifier()?);
            } else if let Some(kw) = Kw::from_word(word) {
                self.add_specifier(&mut spec, kw)?;
                self.bump();
            } else if spec.has_type() || is_keyword(word) {
                // C: an identifier after a type specifier is the declarator's name
                break;
            } else {
                let opaque = self.peek_at(1).tok == Tok::Punct("*");
                let ty = match self.typedef(word) {
                    Some(ty) => ty,
                    // An unknown name right before `*`: a pointer to something opaque.
                    None if library_typedef(word).is_some() => {
                        let instead = library_typedef(word).unwrap_or_default();
                        return Err(self.error_here(instead).with_found(format!("`{word}`")));
                    }
                    None if opaque => Ty::Incomplete(AggregateKind::Struct, word.to_string()),
                    None => {
                        return Err(self
                            .error_here("a type name")
                            .with_found(format!("`{word}`, not a type")))
                    }
                };
                self.add_specifier(&mut spec, Kw::Named)?;
                named = Some((ty, Form::Plain));
                self.bump();
            }
        }
        let mut base = self.resolve(&spec, named, offset)?;
        base.packing = packing;
        base.packing_at = packing_at;
        Ok(base)
    }

    fn add_specifier(&self, spec: &mut Specifiers, kw: Kw) -> PResult<()> {
        let tok = self.peek();
        let word = match tok.tok {
            Tok::Ident(w) => w,
            _ => "",
        };
        if spec.add(kw, word) {
            Ok(())
        } else {
            let expected = format!("a type specifier that combines with `{}`", spec.spelled());
            Err(error_at(tok.offset, expected, tok.tok.describe()))
        }
    }

    fn resolve(
        &self,
        spec: &Specifiers,
        named: Option<(Ty, Form)>,
        offset: usize,
    ) -> PResult<Base> {
        if let Some((ty, form)) = named {
            return Ok(Base { ty, offset, form, packing: Packing::NONE, packing_at: None });
        }
        if spec.is_lone_complex() {
            return Err(self.error_here("`float`, `double` or `long double` with `_Complex`"));
        }
        let ty = match spec.keyword_type() {
            Some(Type::Void) => Ty::Void,
            Some(ty) => Ty::Obj(Obj::leaf(ty)),
            None => return Err(self.error_here("a type")),
        };
        Ok(Base { ty, offset, form: Form::Plain, packing: Packing::NONE, packing_at: None })
    }
}

// GNU attributes.
impl Parser<'_> {
    /// `__attribute__((a, b(args), ...))`, repeated; the current token is `__attribute__`.
    /// Answers the calling convention one of them names and the layout attributes (`packed`,
    /// `aligned(N)`), for the caller to apply or refuse. Attributes that change a layout or a
    /// convention in ways backcall does not model (`vector_size`, `mode`, `regparm`, ...) are
    /// refused; the others change nothing a caller or callee sees and are skipped.
    fn attributes(&mut self) -> PResult<Attrs> {
        let mut attrs = Attrs::default();
        while let Tok::Ident(w) = self.peek().tok {
            if !is_attribute(w) {
                break;
            }
            self.bump();
            self.expect("(", "`((` after `__attribute__`")?;
            self.expect("(", "`((` after `__attribute__`")?;
            loop {
                let tok = self.peek();
                match tok.tok {
                    Tok::Punct(")") => break,
                    Tok::Ident(name) => {
                        let name = name.trim_start_matches("__").trim_end_matches("__");
                        self.bump();
                        self.attribute(name, tok.offset, &mut attrs)?;
                    }
                    _ => return Err(self.error_here("an attribute name")),
                }
                if !self.eat(",") {
                    break;
                }
            }
            self.expect(")", "`))` after the attributes")?;
            self.expect(")", "`))` after the attributes")?;
        }
        Ok(attrs)
    }

    /// One attribute `name` (its arguments, if any, are next).
    fn attribute(&mut self, name: &str, offset: usize, attrs: &mut Attrs) -> PResult<()> {
        let conv = match name {
            "cdecl" => Some(Convention::Cdecl),
            "stdcall" => Some(Convention::Stdcall),
            "fastcall" => Some(Convention::Fastcall),
            "thiscall" => Some(Convention::Thiscall),
            "ms_abi" => Some(Convention::MsAbi),
            "sysv_abi" => Some(Convention::SysvAbi),
            _ => None,
        };
        if conv.is_some() {
            attrs.conv = conv;
        }
        match name {
            "packed" => attrs.packing.packed = true,
            "aligned" => {
                if !self.is_punct("(") {
                    let expected = "`aligned(N)` with the alignment (a bare `aligned` is each \
                                    target's largest, which is not supported)";
                    return Err(self.error_here(expected));
                }
                self.bump();
                let align = self.alignment()?;
                self.expect(")", "`)` after the alignment")?;
                attrs.packing = merge(attrs.packing, Packing { packed: false, align: Some(align) });
            }
            "vector_size"
            | "mode"
            | "regparm"
            | "ms_struct"
            | "gcc_struct"
            | "transparent_union"
            | "scalar_storage_order" => {
                let expected = "an attribute that keeps the layout and convention \
                                (this one is not supported yet)";
                return Err(error_at(offset, expected, format!("`{name}`")));
            }
            _ if self.is_punct("(") => self.skip_balanced()?,
            _ => {}
        }
        if matches!(name, "packed" | "aligned") {
            attrs.packing_at.get_or_insert(offset);
        }
        Ok(())
    }

    /// An alignment in bytes, as `aligned(N)` and `_Alignas(N)` take it: a power of two up to
    /// [`MAX_ALIGNMENT`].
    fn alignment(&mut self) -> PResult<u32> {
        let at = self.offset();
        let expected = || format!("an alignment: a power of two from 1 to {MAX_ALIGNMENT}");
        if !matches!(self.peek().tok, Tok::Number(_) | Tok::Punct("(" | "-" | "+" | "~"))
            && !matches!(self.peek().tok, Tok::Ident(w) if self.decls.constants.contains_key(w))
        {
            return Err(self.error_here(expected()));
        }
        let n = self.constant()?;
        match u32::try_from(n) {
            Ok(n) if n.is_power_of_two() && n <= MAX_ALIGNMENT => Ok(n),
            _ => Err(error_at(at, expected(), format!("{n}"))),
        }
    }

    /// `: N` after a member's declarator (`derivs`, none for an unnamed bit-field), and the
    /// attributes after it; the current token is `:`. A bit-field is of an integer type (an
    /// enum, `_Bool`, `char` to `long long`, `__int128`); whether `N` fits the type's size is
    /// the ABI's to say.
    fn bit_width(
        &mut self,
        base: &Base,
        derivs: Option<&[Deriv]>,
        packing: Packing,
    ) -> PResult<(u32, Packing)> {
        let colon = self.offset();
        let integer = match (&base.ty, derivs) {
            (Ty::Obj(obj), None | Some([])) => match obj.ty {
                Type::Scalar(s) => !s.is_float() && s != Scalar::Pointer,
                _ => false,
            },
            _ => false,
        };
        if !integer {
            return Err(error_at(
                colon,
                "a bit-field of an integer type",
                "`:` after another type",
            ));
        }
        self.bump();
        let at = self.offset();
        let width = self.constant()?;
        let named = derivs.is_some();
        let width = u32::try_from(width).ok().filter(|&w| w <= 128 && (w > 0 || !named));
        let Some(width) = width else {
            let expected = match named {
                true => "a bit-field width from 1 to 128 (only an unnamed bit-field may be 0)",
                false => "a bit-field width from 0 to 128",
            };
            return Err(error_at(at, expected, "another width"));
        };
        let mut packing = packing;
        self.record_attributes(&mut packing)?;
        if packing.align.is_some() {
            let found = "`aligned(N)` on a bit-field";
            return Err(error_at(at, "a bit-field without `aligned(N)`", found));
        }
        Ok((width, packing))
    }

    /// The record's own attributes, before its tag or after its `}`.
    fn record_attributes(&mut self, packing: &mut Packing) -> PResult<()> {
        if !matches!(self.peek().tok, Tok::Ident(w) if is_attribute(w)) {
            return Ok(());
        }
        let at = self.offset();
        let attrs = self.attributes()?;
        if let Some(conv) = attrs.conv {
            let found = format!("`{}` on a struct or union", conv.keyword().unwrap_or_default());
            return Err(error_at(at, "a layout attribute (`packed`, `aligned(N)`)", found));
        }
        *packing = merge(*packing, attrs.packing);
        Ok(())
    }

    /// Skips `( ... )` with whatever nests inside; the current token is `(`.
    fn skip_balanced(&mut self) -> PResult<()> {
        self.nested(|p| {
            p.bump();
            loop {
                match p.peek().tok {
                    Tok::Punct(")") => {
                        p.bump();
                        return Ok(());
                    }
                    Tok::Punct("(") => p.skip_balanced()?,
                    Tok::Eof => return Err(p.error_here("`)`")),
                    _ => p.bump(),
                }
            }
        })
    }
}

fn is_attribute(word: &str) -> bool {
    matches!(word, "__attribute__" | "__attribute")
}

/// The largest alignment `aligned(N)` and `_Alignas(N)` may ask for.
pub const MAX_ALIGNMENT: u32 = 4096;

/// What a list of GNU attributes says.
#[derive(Default)]
struct Attrs {
    conv: Option<Convention>,
    packing: Packing,
    /// where the first layout attribute is
    packing_at: Option<usize>,
}

/// Both attributes' effects: `packed` from either, the larger alignment.
fn merge(a: Packing, b: Packing) -> Packing {
    Packing { packed: a.packed || b.packed, align: a.align.max(b.align) }
}

/// Refuses `packed` and `aligned` where C's layout attributes have no meaning for backcall: on
/// `what` (a parameter, a typedef, the function pointer itself).
fn no_layout_attributes(base: &Base, decl: &Declarator, what: &str) -> PResult<()> {
    match base.packing_at.or(decl.packing_at) {
        Some(at) => Err(error_at(
            at,
            "`packed` and `aligned` only on a struct or union and on its members",
            format!("a layout attribute on {what}"),
        )),
        None => Ok(()),
    }
}

// Enums and constant expressions.
impl Parser<'_> {
    /// `enum tag`, `enum tag { ... }` or `enum { ... }`; the current token is `enum`. The type
    /// is the enum's underlying integer type (see the module documentation).
    fn enum_specifier(&mut self) -> PResult<(Ty, Form)> {
        let offset = self.offset();
        self.bump();
        let tag = self.tag_name();
        if !self.is_punct("{") {
            let Some((name, tag_offset)) = tag else {
                return Err(self.error_here("a tag name or `{`"));
            };
            return match self.decls.enums.get(&name) {
                Some(&s) => Ok((Ty::Obj(Obj::leaf(Type::Scalar(s))), Form::Tagged)),
                None => {
                    Err(error_at(tag_offset, "an enum defined before", format!("`enum {name}`")))
                }
            };
        }
        let values = self.nested(|p| p.enum_body())?;
        let scalar = underlying(&values)
            .ok_or_else(|| error_at(offset, "enumerators within 64 bits", "a value beyond them"))?;
        let form = match tag {
            Some((name, at)) => {
                match self.decls.enums.get(&name) {
                    Some(&first) if first != scalar => {
                        let expected =
                            format!("the same underlying type as the first `enum {name}`");
                        return Err(error_at(at, expected, "a different one"));
                    }
                    _ => self.decls.enums.insert(name, scalar),
                };
                Form::Tagged
            }
            None => Form::AnonymousBody,
        };
        Ok((Ty::Obj(Obj::leaf(Type::Scalar(scalar))), form))
    }

    /// `{ A, B = expr, ... }`; the current token is `{`. Answers the values.
    fn enum_body(&mut self) -> PResult<Vec<i128>> {
        self.bump();
        let mut values = Vec::new();
        let mut next = 0i128;
        loop {
            if self.eat("}") && !values.is_empty() {
                return Ok(values);
            }
            let tok = self.peek();
            let Tok::Ident(name) = tok.tok else {
                return Err(self.error_here("an enumerator name"));
            };
            if is_keyword(name) {
                return Err(self.error_here("an enumerator name"));
            }
            self.bump();
            let value = if self.eat("=") { self.constant()? } else { next };
            self.decls.constants.insert(name.to_string(), value);
            values.push(value);
            next = value + 1;
            if !self.eat(",") {
                self.expect("}", "`,` or `}`")?;
                return Ok(values);
            }
        }
    }

    /// An integer constant expression: literals, enumerators, parentheses, the unary
    /// `- + ~ !` and the binary `* / % + - << >> & ^ |` with C's precedence.
    fn constant(&mut self) -> PResult<i128> {
        self.binary(0)
    }

    fn binary(&mut self, min: u8) -> PResult<i128> {
        let mut left = self.unary()?;
        loop {
            let tok = self.peek();
            let Tok::Punct(op) = tok.tok else { return Ok(left) };
            let prec = match op {
                "*" | "/" | "%" => 5,
                "+" | "-" => 4,
                "<<" | ">>" => 3,
                "&" => 2,
                "^" => 1,
                "|" => 0,
                _ => return Ok(left),
            };
            if prec < min {
                return Ok(left);
            }
            self.bump();
            let right = self.binary(prec + 1)?;
            let bad = |what: &str| error_at(tok.offset, "a constant expression C defines", what);
            left = match op {
                "*" => left.checked_mul(right).ok_or_else(|| bad("an overflow"))?,
                "/" | "%" if right == 0 => return Err(bad("a division by zero")),
                "/" => left / right,
                "%" => left % right,
                "+" => left.checked_add(right).ok_or_else(|| bad("an overflow"))?,
                "-" => left.checked_sub(right).ok_or_else(|| bad("an overflow"))?,
                "<<" if !(0..64).contains(&right) => return Err(bad("a shift out of range")),
                "<<" => left.checked_shl(right as u32).ok_or_else(|| bad("an overflow"))?,
                ">>" if !(0..64).contains(&right) => return Err(bad("a shift out of range")),
                ">>" => left >> right,
                "&" => left & right,
                "^" => left ^ right,
                _ => left | right,
            };
            if left.unsigned_abs() > u128::from(u64::MAX) {
                return Err(bad("a value beyond 64 bits"));
            }
        }
    }

    fn unary(&mut self) -> PResult<i128> {
        let tok = self.peek();
        match tok.tok {
            Tok::Punct("-") => {
                self.bump();
                Ok(-self.unary()?)
            }
            Tok::Punct("+") => {
                self.bump();
                self.unary()
            }
            Tok::Punct("~") => {
                self.bump();
                Ok(!self.unary()?)
            }
            Tok::Punct("!") => {
                self.bump();
                Ok(i128::from(self.unary()? == 0))
            }
            Tok::Punct("(") => {
                let value = self.nested(|p| {
                    p.bump();
                    let v = p.constant()?;
                    p.expect(")", "`)`")?;
                    Ok(v)
                })?;
                Ok(value)
            }
            Tok::Number(text) => {
                let value = parse_integer(text).ok_or_else(|| {
                    self.error_here("an integer constant (decimal, hex or octal)")
                })?;
                self.bump();
                Ok(i128::from(value))
            }
            Tok::Ident(name) => match self.decls.constants.get(name) {
                Some(&value) => {
                    self.bump();
                    Ok(value)
                }
                None => {
                    Err(self.error_here("a constant (a number or an enumerator defined before)"))
                }
            },
            _ => Err(self.error_here("a constant expression")),
        }
    }
}

/// The integer type GCC and clang give an enum with `values` (C23 6.7.2.2, and GCC's choice
/// among the implementation-defined ones): `unsigned int` without negative values, else `int`;
/// the 64-bit types when 32 bits do not hold them.
fn underlying(values: &[i128]) -> Option<Scalar> {
    let (min, max) = (values.iter().min()?, values.iter().max()?);
    Some(if *min >= 0 {
        if *max <= i128::from(u32::MAX) {
            Scalar::UInt
        } else if *max <= i128::from(u64::MAX) {
            Scalar::ULongLong
        } else {
            return None;
        }
    } else if *min >= i128::from(i32::MIN) && *max <= i128::from(i32::MAX) {
        Scalar::Int
    } else if *min >= i128::from(i64::MIN) && *max <= i128::from(i64::MAX) {
        Scalar::LongLong
    } else {
        return None;
    })
}

// Structs and unions.
impl Parser<'_> {
    /// `struct tag`, `struct tag { ... }` or `struct { ... }`; the current token is the keyword.
    fn struct_specifier(&mut self) -> PResult<(Ty, Form)> {
        let offset = self.offset();
        let kind = if self.is_word("union") { AggregateKind::Union } else { AggregateKind::Struct };
        self.bump();
        let mut packing = Packing::NONE;
        let attributes_at = self.offset();
        self.record_attributes(&mut packing)?;
        let tag = self.tag_name();
        if !self.is_punct("{") {
            let Some((name, tag_offset)) = tag else {
                return Err(self.error_here("a tag name or `{`"));
            };
            if packing != Packing::NONE {
                let found = "a layout attribute on a reference to a tag";
                return Err(error_at(attributes_at, "attributes only where the body is", found));
            }
            return Ok((self.reference_tag(kind, name, tag_offset)?, Form::Tagged));
        }
        if let Some((name, tag_offset)) = &tag {
            self.check_definable(kind, name, *tag_offset)?;
            self.defining.push(name.clone());
        }
        let open = self.offset();
        self.no_pragma_between(offset, open, "its `{`")?;
        let pack = self.pack_at(open);
        let members = self.nested(|p| p.struct_body(kind));
        if tag.is_some() {
            self.defining.pop();
        }
        let members = members?;
        let close = self.same_pack_at_close(pack)?;
        let attributes = self.pos;
        self.record_attributes(&mut packing)?;
        if self.pos != attributes {
            let last = self.toks.get(self.pos - 1).map_or(close, |t| t.offset);
            self.no_pragma_between(close, last, "its attributes")?;
        }
        let (name, tag_offset) = tag.unzip();
        let layout = RecordLayout { packing, pack };
        let obj = aggregate(kind, name.clone(), members, layout, offset)?;
        match (name, tag_offset) {
            (Some(name), Some(at)) => Ok((Ty::Obj(self.define_tag(name, obj, at)?), Form::Tagged)),
            _ => Ok((Ty::Obj(obj), Form::AnonymousBody)),
        }
    }

    fn tag_name(&mut self) -> Option<(String, usize)> {
        let tok = self.peek();
        match tok.tok {
            Tok::Ident(w) if !is_keyword(w) => {
                self.bump();
                Some((w.to_string(), tok.offset))
            }
            _ => None,
        }
    }

    fn reference_tag(&mut self, kind: AggregateKind, name: String, offset: usize) -> PResult<Ty> {
        match self.decls.tags.get(&name) {
            Some(tag) if tag.kind != kind => Err(kind_mismatch(tag, kind, &name, offset)),
            Some(Tag { def: Some(obj), .. }) => Ok(Ty::Obj(obj.clone())),
            Some(_) => Ok(Ty::Incomplete(kind, name)),
            None => {
                self.decls.tags.insert(name.clone(), Tag { kind, offset, def: None });
                Ok(Ty::Incomplete(kind, name))
            }
        }
    }

    fn check_definable(&self, kind: AggregateKind, name: &str, offset: usize) -> PResult<()> {
        if self.defining.iter().any(|d| d == name) {
            let expected = format!("a tag other than `{name}`, whose body this is inside");
            return Err(error_at(offset, expected, format!("`{name}`")));
        }
        match self.decls.tags.get(name) {
            Some(tag) if tag.kind != kind => Err(kind_mismatch(tag, kind, name, offset)),
            _ => Ok(()),
        }
    }

    /// Records the definition of tag `name`; a repeated identical definition gives the first.
    fn define_tag(&mut self, name: String, obj: Obj, offset: usize) -> PResult<Obj> {
        let kind = match &obj.ty {
            Type::Aggregate(a) => a.kind,
            _ => AggregateKind::Struct,
        };
        if let Some(Tag { def: Some(first), offset: first_at, .. }) = self.decls.tags.get(&name) {
            if first.ty == obj.ty {
                return Ok(first.clone());
            }
            let what = format!("`{} {name}`", kind_word(kind));
            let expected = format!("the same body as the definition of {what} at byte {first_at}");
            return Err(error_at(offset, expected, "a different body"));
        }
        self.decls.tags.insert(name, Tag { kind, offset, def: Some(obj.clone()) });
        Ok(obj)
    }

    /// `{ members }`; the current token is `{`.
    fn struct_body(&mut self, kind: AggregateKind) -> PResult<Vec<Member>> {
        self.bump();
        let mut members = Vec::new();
        let mut names = HashMap::new();
        // where a flexible array member (`T x[]`) was: C allows it last in a struct only
        let mut flexible = None;
        loop {
            let at = self.offset();
            match self.peek().tok {
                Tok::Punct("}") if members.is_empty() => {
                    return Err(self.error_here("a member declaration"))
                }
                Tok::Punct("}") => {
                    self.bump();
                    return Ok(members);
                }
                Tok::Eof => return Err(self.error_here("a member declaration or `}`")),
                _ if flexible.is_some() => {
                    let found = "a member after a flexible array member";
                    return Err(error_at(at, "`}`: a flexible array member comes last", found));
                }
                _ => self.member_declaration(&mut members, &mut names, &mut flexible)?,
            }
            if let (Some(at), AggregateKind::Union) = (flexible, kind) {
                let found = "a flexible array member in a union";
                return Err(error_at(at, "a member with a size (`[0]` is GNU C's)", found));
            }
        }
    }

    /// `T a, *b, c[3];`, an anonymous `struct { ... };`, or a nested tag declaration.
    fn member_declaration(
        &mut self,
        members: &mut Vec<Member>,
        names: &mut HashMap<String, usize>,
        flexible: &mut Option<usize>,
    ) -> PResult<()> {
        let base = self.specifiers()?;
        if self.is_punct(":") {
            // `T : N;`: an unnamed bit-field (padding, or `: 0` to end a storage unit)
            let (bits, packing) = self.bit_width(&base, None, base.packing)?;
            let obj = self.object(base.ty.clone(), base.offset, "member")?;
            let name = String::new();
            members.push(Member { name, obj, packing, bits: Some(bits) });
            return self.expect(";", "`;` after an unnamed bit-field");
        }
        if self.is_punct(";") {
            match base.form {
                Form::Plain => return Err(self.error_here("a member name")),
                // C: a tagged struct without a member name only declares the tag
                Form::Tagged => {}
                Form::AnonymousBody => {
                    let obj = self.object(base.ty, base.offset, "member")?;
                    let name = format!("__anon{}", members.len());
                    let member = Member { name, obj, packing: base.packing, bits: None };
                    add_member(members, names, member, base.offset)?;
                }
            }
            self.bump();
            return Ok(());
        }
        loop {
            let decl = self.declarator()?;
            let Some((name, name_offset)) = decl.name else {
                return Err(self.error_here("a member name"));
            };
            let mut packing = merge(base.packing, decl.packing);
            let mut bits = None;
            if self.is_punct(":") {
                let width;
                (width, packing) = self.bit_width(&base, Some(&decl.derivs), packing)?;
                bits = Some(width);
            }
            let mut derivs = decl.derivs;
            // `T x[]` as a member: a flexible array member, laid out as GNU C's `T x[0]`.
            let unsized_last = matches!(derivs.last(), Some(Deriv::Unsized));
            if unsized_last {
                derivs.pop();
                if flexible.replace(name_offset).is_some() {
                    let found = "a second flexible array member";
                    return Err(error_at(name_offset, "one flexible array member, last", found));
                }
            }
            let ty = self.apply(&base, derivs)?;
            let ty = match unsized_last {
                true => self.array_of(ty, 0, name_offset)?,
                false => ty,
            };
            let obj = self.object(ty, base.offset, "member")?;
            add_member(members, names, Member { name, obj, packing, bits }, name_offset)?;
            if !self.eat(",") {
                return self.expect(";", "`;` or `,` after a member");
            }
        }
    }
}

// `#pragma pack`, the one pragma that changes a layout.
impl Parser<'_> {
    /// The `#pragma pack(N)` in effect at byte `offset`.
    fn pack_at(&self, offset: usize) -> Option<u32> {
        let before = self.packs.partition_point(|&(at, _)| at < offset);
        before.checked_sub(1).and_then(|i| self.packs.get(i)).and_then(|&(_, pack)| pack)
    }

    /// Refuses a body whose `}` (the token before the current one) is under another
    /// `#pragma pack` than its `{` (`pack`): compilers differ on when a record reads it (GCC
    /// at the `}`, clang at the `{`). Pragmas inside that restore it (around a member's own
    /// definition) are fine.
    fn same_pack_at_close(&self, pack: Option<u32>) -> PResult<usize> {
        let close = self.toks.get(self.pos.saturating_sub(1)).map_or(0, |t| t.offset);
        if self.pack_at(close) == pack {
            return Ok(close);
        }
        let expected = "the `#pragma pack` the body began under, at its `}`";
        Err(error_at(close, expected, "another one"))
    }

    /// Refuses a pragma between the bytes `from` and `to` of a struct or union specifier
    /// (compilers take none there).
    fn no_pragma_between(&self, from: usize, to: usize, before: &str) -> PResult<()> {
        match self.packs.iter().find(|&&(at, _)| at > from && at < to) {
            Some(&(at, _)) => {
                let expected = format!("no pragma between a struct or union and {before}");
                Err(error_at(at, expected, "a pragma"))
            }
            None => Ok(()),
        }
    }
}

/// Where each pragma starts and the `#pragma pack` in effect after it, reading each as a
/// `#pragma pack`: `Err` for the first that is none backcall reads.
fn pack_states(pragmas: &[Pragma]) -> PResult<Vec<(usize, Option<u32>)>> {
    let (mut current, mut stack, mut states) = (None, Vec::new(), Vec::new());
    for pragma in pragmas {
        match pack_pragma(pragma)? {
            PackPragma::Set(n) => current = n,
            PackPragma::Push(n) => {
                stack.push(current);
                current = n.or(current);
            }
            PackPragma::Pop => {
                let Some(top) = stack.pop() else {
                    let found = "`pack(pop)` with nothing pushed";
                    return Err(error_at(pragma.offset, "a `pack(push)` before it", found));
                };
                current = top;
            }
        }
        states.push((pragma.offset, current));
    }
    Ok(states)
}

/// What one `#pragma pack` does.
enum PackPragma {
    /// `pack(N)`, or `pack()` back to none
    Set(Option<u32>),
    /// `pack(push)`, or `pack(push, N)` then `pack(N)`
    Push(Option<u32>),
    /// `pack(pop)`
    Pop,
}

/// Reads a pragma as `#pragma pack` (in its forms GCC, clang and MSVC all share).
fn pack_pragma(pragma: &Pragma) -> PResult<PackPragma> {
    const FORMS: &str = "`#pragma pack` as `pack(N)`, `pack(push, N)`, `pack(push)`, `pack(pop)` \
         or `pack()`, N being 1, 2, 4, 8 or 16";
    let found = || format!("`{}`", pragma.text);
    let fail = || error_at(pragma.offset, FORMS, found());
    let args = pragma.text.strip_prefix("pack").map(str::trim_start);
    let args = args.and_then(|a| a.strip_prefix('(')?.strip_suffix(')')).ok_or_else(fail)?;
    let args: Vec<&str> = args.split(',').map(str::trim).collect();
    let value = |text: &str| match text.parse::<u32>() {
        Ok(n) if backcall_abi::PRAGMA_PACK_VALUES.contains(&n) => Ok(n),
        _ => Err(fail()),
    };
    Ok(match args.as_slice() {
        [""] => PackPragma::Set(None),
        ["push"] => PackPragma::Push(None),
        ["pop"] => PackPragma::Pop,
        ["push", n] => PackPragma::Push(Some(value(n)?)),
        [n] => PackPragma::Set(Some(value(n)?)),
        _ => return Err(fail()),
    })
}

/// A member as parsed: its name, its type, its layout attributes and a bit-field's width.
struct Member {
    name: String,
    obj: Obj,
    packing: Packing,
    bits: Option<u32>,
}

fn add_member(
    members: &mut Vec<Member>,
    names: &mut HashMap<String, usize>,
    member: Member,
    offset: usize,
) -> PResult<()> {
    let name = &member.name;
    if let Some(first) = names.get(name) {
        let found = format!("`{name}` again (first at byte {first})");
        return Err(error_at(
            offset,
            "a member name not used before in this struct or union",
            found,
        ));
    }
    names.insert(name.clone(), offset);
    members.push(member);
    Ok(())
}

/// A record's own layout attributes and the `#pragma pack` its body is under.
struct RecordLayout {
    packing: Packing,
    pack: Option<u32>,
}

fn aggregate(
    kind: AggregateKind,
    tag: Option<String>,
    members: Vec<Member>,
    layout: RecordLayout,
    offset: usize,
) -> PResult<Obj> {
    let RecordLayout { packing, pack } = layout;
    let depth = 1 + members.iter().map(|m| m.obj.depth).max().unwrap_or(0);
    let nodes = members.iter().fold(1usize, |n, m| n.saturating_add(m.obj.nodes));
    check_measures(depth, nodes, offset)?;
    let fields = members
        .into_iter()
        .map(|m| Field { name: m.name, ty: m.obj.ty, packing: m.packing, bits: m.bits })
        .collect();
    let ty = Type::Aggregate(Arc::new(Aggregate { kind, tag, fields, packing, pack }));
    Ok(Obj { ty, depth, nodes })
}

fn check_measures(depth: usize, nodes: usize, offset: usize) -> PResult<()> {
    if depth > MAX_TYPE_DEPTH {
        let expected =
            format!("at most {MAX_TYPE_DEPTH} levels of nested structs, unions and arrays");
        return Err(error_at(offset, expected, "a deeper type"));
    }
    if nodes > MAX_TYPE_NODES {
        let expected = format!("a type with at most {MAX_TYPE_NODES} members and arrays in all");
        return Err(error_at(offset, expected, "a larger type"));
    }
    Ok(())
}

fn kind_mismatch(tag: &Tag, kind: AggregateKind, name: &str, offset: usize) -> ParseError {
    let expected = format!("`{} {name}` as declared at byte {}", kind_word(tag.kind), tag.offset);
    error_at(offset, expected, format!("`{} {name}`", kind_word(kind)))
}

// Declarators: pointers, names, arrays, parameter lists and conventions.
impl Parser<'_> {
    fn declarator(&mut self) -> PResult<Declarator> {
        let offset = self.offset();
        let mut pointers = 0;
        while self.eat("*") {
            pointers += 1;
            while let Tok::Ident(w) = self.peek().tok {
                if !QUALIFIERS.contains(&w) {
                    break;
                }
                self.bump();
            }
        }
        let mut name = None;
        let mut inner = None;
        let tok = self.peek();
        match tok.tok {
            Tok::Punct("(") if self.starts_nested_declarator() => {
                inner = Some(self.nested(|p| p.nested_declarator())?);
            }
            Tok::Ident(w) if !is_keyword(w) => {
                name = Some((w.to_string(), tok.offset));
                self.bump();
            }
            _ => {}
        }
        let suffixes = self.suffixes()?;
        let (mut packing, mut packing_at) = (Packing::NONE, None);
        if matches!(self.peek().tok, Tok::Ident(w) if is_attribute(w)) {
            let at = self.offset();
            let attrs = self.attributes()?;
            if let Some(conv) = attrs.conv {
                let found = format!("`{}` after a declarator", conv.keyword().unwrap_or_default());
                return Err(error_at(at, "a calling convention inside `(*)`", found));
            }
            (packing, packing_at) = (attrs.packing, attrs.packing_at);
        }
        let mut derivs: Vec<Deriv> =
            std::iter::repeat_with(|| Deriv::Pointer).take(pointers).collect();
        // `a[2][3]` is an array of 2 arrays of 3: the last suffix applies first
        derivs.extend(suffixes.into_iter().rev());
        if let Some((conv, inner)) = inner {
            derivs.extend(conv);
            derivs.extend(inner.derivs);
            name = inner.name;
            packing = merge(packing, inner.packing);
            packing_at = packing_at.or(inner.packing_at);
        }
        Ok(Declarator { name, derivs, offset, packing, packing_at })
    }

    /// Whether the `(` here opens a nested declarator (`(*)`, `(name)`) rather than a
    /// parameter list (`(int)`, `()`).
    fn starts_nested_declarator(&self) -> bool {
        match self.peek_at(1).tok {
            Tok::Punct("*" | "(" | "[") => true,
            Tok::Ident(w) => {
                convention(w).is_some() || (!is_keyword(w) && self.typedef(w).is_none())
            }
            _ => false,
        }
    }

    /// `( [convention] declarator )`; the current token is `(`.
    fn nested_declarator(&mut self) -> PResult<(Option<Deriv>, Declarator)> {
        self.bump();
        let conv = self.convention()?;
        let inner = self.declarator()?;
        self.expect(")", "`)`")?;
        Ok((conv, inner))
    }

    fn convention(&mut self) -> PResult<Option<Deriv>> {
        let tok = self.peek();
        let Tok::Ident(word) = tok.tok else { return Ok(None) };
        if let Some(conv) = convention(word) {
            self.bump();
            return Ok(Some(Deriv::Conv { conv, offset: tok.offset }));
        }
        if is_attribute(word) {
            let attrs = self.attributes()?;
            if let Some(at) = attrs.packing_at {
                let expected = "a calling convention or `*` (layout attributes belong to members)";
                return Err(error_at(at, expected, "a layout attribute"));
            }
            return Ok(attrs.conv.map(|conv| Deriv::Conv { conv, offset: tok.offset }));
        }
        if self.peek_at(1).tok == Tok::Punct("*") {
            // a name right before `*` can only be meant as a convention keyword
            let expected = "a calling convention (`__cdecl`, `__stdcall`, `__fastcall` or \
                            `__thiscall`) or `*`";
            return Err(error_at(tok.offset, expected, tok.tok.describe()));
        }
        Ok(None)
    }

    fn suffixes(&mut self) -> PResult<Vec<Deriv>> {
        let mut out = Vec::new();
        loop {
            if self.is_punct("[") {
                out.push(self.array_suffix()?);
            } else if self.is_punct("(") {
                out.push(Deriv::Function(self.nested(|p| p.parameter_list())?));
            } else {
                return Ok(out);
            }
        }
    }

    /// `[N]`, or `[]` and `[static N]` (C's array parameters, adjusted to pointers); the
    /// current token is `[`.
    fn array_suffix(&mut self) -> PResult<Deriv> {
        self.bump();
        while let Tok::Ident(w) = self.peek().tok {
            if !QUALIFIERS.contains(&w) {
                break;
            }
            self.bump();
        }
        if self.eat("]") {
            return Ok(Deriv::Unsized);
        }
        let tok = self.peek();
        if !matches!(tok.tok, Tok::Number(_) | Tok::Ident(_) | Tok::Punct("(" | "-" | "+" | "~")) {
            return Err(self.error_here("an array size"));
        }
        let size = self.constant()?;
        // `[0]`: GNU C's zero-length array (a struct's variable tail, like `[]`).
        let len = u32::try_from(size).ok().filter(|&n| u64::from(n) <= MAX_ARRAY_ELEMENTS);
        let Some(len) = len else {
            let expected = format!("an array size from 0 to {MAX_ARRAY_ELEMENTS}");
            return Err(error_at(tok.offset, expected, format!("{size}")));
        };
        self.expect("]", "`]`")?;
        Ok(Deriv::Array { len, offset: tok.offset })
    }

    /// `(params)`, `()`, `(void)` or `(params, ...)`; the current token is `(`.
    fn parameter_list(&mut self) -> PResult<FnParams> {
        let offset = self.offset();
        self.bump();
        let mut params = Vec::new();
        if self.eat(")") {
            return Ok(FnParams { params, variadic: false, offset });
        }
        loop {
            if self.eat("...") {
                self.expect(")", "`)` after `...`")?;
                return Ok(FnParams { params, variadic: true, offset });
            }
            let at = self.offset();
            let base = self.specifiers()?;
            let decl = self.declarator()?;
            no_layout_attributes(&base, &decl, "a parameter")?;
            let bare = decl.derivs.is_empty() && decl.name.is_none();
            match self.apply(&base, decl.derivs)? {
                Ty::Void if bare && params.is_empty() && self.eat(")") => {
                    return Ok(FnParams { params, variadic: false, offset });
                }
                Ty::Void if bare && params.is_empty() => {
                    return Err(self.error_here("`)` (`void` must be the only parameter)"));
                }
                Ty::Void => {
                    return Err(error_at(at, "a parameter type other than `void`", "`void`"));
                }
                ty => params.push(Param { ty: decay(ty), offset: at }),
            }
            if !self.eat(",") {
                self.expect(")", "`,` or `)`")?;
                return Ok(FnParams { params, variadic: false, offset });
            }
        }
    }

    /// Applies the declarator's derivations to the base type.
    fn apply(&self, base: &Base, derivs: Vec<Deriv>) -> PResult<Ty> {
        let mut ty = base.ty.clone();
        for deriv in derivs {
            ty = match deriv {
                Deriv::Pointer => pointer_to(ty),
                Deriv::Array { len, offset } => self.array_of(ty, len, offset)?,
                Deriv::Unsized => Ty::Unsized,
                Deriv::Function(params) => function_returning(ty, base.offset, params)?,
                Deriv::Conv { conv, offset } => with_convention(ty, conv, offset)?,
            };
        }
        Ok(ty)
    }

    fn array_of(&self, elem: Ty, len: u32, offset: usize) -> PResult<Ty> {
        let elem = self.object(elem, offset, "array element")?;
        let count = u64::from(len).saturating_mul(array_elements(&elem.ty));
        if count > MAX_ARRAY_ELEMENTS {
            let expected = format!("an array of at most {MAX_ARRAY_ELEMENTS} elements in all");
            return Err(error_at(offset, expected, format!("{count} elements")));
        }
        let (depth, nodes) = (elem.depth + 1, elem.nodes.saturating_add(1));
        check_measures(depth, nodes, offset)?;
        Ok(Ty::Obj(Obj { ty: Type::Array(Box::new(elem.ty), len), depth, nodes }))
    }
}

fn pointer_to(ty: Ty) -> Ty {
    match ty {
        Ty::Func(f) => Ty::FnPtr(f),
        _ => Ty::Obj(Obj::pointer()),
    }
}

/// C's parameter adjustment: arrays and functions are passed as pointers.
fn decay(ty: Ty) -> Ty {
    match ty {
        Ty::Func(_) | Ty::FnPtr(_) | Ty::Unsized => Ty::Obj(Obj::pointer()),
        Ty::Obj(Obj { ty: Type::Array(..), .. }) => Ty::Obj(Obj::pointer()),
        other => other,
    }
}

fn function_returning(ret: Ty, ret_offset: usize, fp: FnParams) -> PResult<Ty> {
    let ret = match ret {
        Ty::FnPtr(_) => Ty::Obj(Obj::pointer()),
        Ty::Func(_) | Ty::Obj(Obj { ty: Type::Array(..), .. }) => {
            let found = format!("a function returning {}", describe(&ret));
            return Err(error_at(
                fp.offset,
                "a result type that is not an array or function",
                found,
            ));
        }
        other => other,
    };
    let f = FnTy {
        ret,
        ret_offset,
        params: fp.params,
        variadic: fp.variadic,
        conv: Convention::Default,
    };
    Ok(Ty::Func(Box::new(f)))
}

fn with_convention(ty: Ty, conv: Convention, offset: usize) -> PResult<Ty> {
    match ty {
        Ty::Func(mut f) if f.conv == Convention::Default => {
            f.conv = conv;
            Ok(Ty::Func(f))
        }
        _ => {
            let found = format!("`{}`", conv.keyword().unwrap_or_default());
            let expected = "a calling convention only as `(convention *)` before a parameter list";
            Err(error_at(offset, expected, found))
        }
    }
}

/// Elements of `ty` counting all array dimensions (1 for a non-array).
fn array_elements(ty: &Type) -> u64 {
    match ty {
        Type::Array(elem, n) => u64::from(*n).saturating_mul(array_elements(elem)),
        _ => 1,
    }
}

/// A C integer literal: decimal, `0x` hex or `0` octal, with an optional `u`/`l`/`ll` suffix.
/// Saturates instead of overflowing, so a huge size reads as too large rather than malformed.
fn parse_integer(text: &str) -> Option<u64> {
    let digits = text.trim_end_matches(['u', 'U', 'l', 'L']);
    let suffix = text.get(digits.len()..)?.to_ascii_lowercase();
    if !["", "u", "l", "ul", "lu", "ll", "ull", "llu"].contains(&suffix.as_str()) {
        return None;
    }
    let (digits, radix) = if let Some(hex) = digits.strip_prefix("0x").or(digits.strip_prefix("0X"))
    {
        (hex, 16)
    } else if let Some(oct) = digits.strip_prefix('0').filter(|o| !o.is_empty()) {
        (oct, 8)
    } else {
        (digits, 10)
    };
    if digits.is_empty() {
        return None;
    }
    digits.chars().try_fold(0u64, |n, c| {
        c.to_digit(radix).map(|d| n.saturating_mul(u64::from(radix)).saturating_add(u64::from(d)))
    })
}

/// A type in words, for errors about the wrong kind of type.
fn describe(ty: &Ty) -> String {
    match ty {
        Ty::Void => "`void`".to_string(),
        Ty::Obj(obj) => match &obj.ty {
            Type::Scalar(Scalar::Pointer) => "a pointer that does not point to a function".into(),
            Type::Array(..) => "an array".to_string(),
            Type::Aggregate(a) => format!("a {}", kind_word(a.kind)),
            other => format!("`{other}`"),
        },
        Ty::Incomplete(kind, tag) => format!("`{} {tag}`", kind_word(*kind)),
        Ty::Func(_) => "a function".to_string(),
        Ty::FnPtr(_) => "a function pointer".to_string(),
        Ty::Unsized => "an array without a size".to_string(),
    }
}

/// Whether two typedef meanings are the same type on every ABI (the same type, or scalars of
/// one size, alignment and signedness everywhere, as `uint32_t` and `unsigned int`).
fn same_on_every_abi(a: &Ty, b: &Ty) -> bool {
    match (a, b) {
        (Ty::Obj(x), Ty::Obj(y)) if x.ty == y.ty => true,
        (Ty::Obj(x), Ty::Obj(y)) => match (&x.ty, &y.ty) {
            (Type::Scalar(p), Type::Scalar(q)) => backcall_abi::Abi::ALL.into_iter().all(|abi| {
                let (lp, lq) = (abi.layout(&x.ty), abi.layout(&y.ty));
                let signed = |s| backcall_abi::is_signed(abi, s);
                matches!((lp, lq), (Ok(lp), Ok(lq)) if (lp.size, lp.align) == (lq.size, lq.align))
                    && signed(*p) == signed(*q)
                    && p.is_float() == q.is_float()
            }),
            _ => false,
        },
        (Ty::Void, Ty::Void) => true,
        _ => false,
    }
}

fn kind_word(kind: AggregateKind) -> &'static str {
    match kind {
        AggregateKind::Struct => "struct",
        AggregateKind::Union => "union",
    }
}

/// Qualifiers accepted among the specifiers and ignored.
/// Qualifiers and storage words C allows where types are written; none changes how a value is
/// passed.
const QUALIFIERS: [&str; 11] = [
    "const",
    "volatile",
    "restrict",
    "__restrict",
    "__restrict__",
    "_Atomic",
    "register",
    "__const",
    "__volatile__",
    "__extension__",
    "static",
];

fn is_keyword(word: &str) -> bool {
    backcall_abi::types::C_KEYWORDS.contains(&word)
}

fn convention(word: &str) -> Option<Convention> {
    match word {
        "__cdecl" => Some(Convention::Cdecl),
        "__stdcall" => Some(Convention::Stdcall),
        "__fastcall" => Some(Convention::Fastcall),
        "__thiscall" => Some(Convention::Thiscall),
        _ => None,
    }
}

/// The `<stdint.h>`, `<stddef.h>`, `<wchar.h>` and `<uchar.h>` names, as scalars: those the ABIs
/// size themselves keep their own (`size_t`, `wchar_t`); the fixed-width families resolve to
/// the exact-width types they equal on every ABI covered (`int_least16_t` is `int16_t`,
/// `intmax_t` is `int64_t`, `char16_t` is `uint16_t`).
fn builtin_typedef(name: &str) -> Option<Scalar> {
    Some(match name {
        "int8_t" | "int_least8_t" | "int_fast8_t" => Scalar::I8,
        "uint8_t" | "uint_least8_t" | "uint_fast8_t" => Scalar::U8,
        "int16_t" | "int_least16_t" => Scalar::I16,
        "uint16_t" | "uint_least16_t" | "char16_t" => Scalar::U16,
        "int32_t" | "int_least32_t" => Scalar::I32,
        "uint32_t" | "uint_least32_t" | "char32_t" => Scalar::U32,
        "int64_t" | "int_least64_t" | "int_fast64_t" | "intmax_t" => Scalar::I64,
        "uint64_t" | "uint_least64_t" | "uint_fast64_t" | "uintmax_t" => Scalar::U64,
        "size_t" => Scalar::SizeT,
        "ssize_t" | "ptrdiff_t" => Scalar::SSizeT,
        "intptr_t" => Scalar::IntPtr,
        "uintptr_t" => Scalar::UIntPtr,
        "wchar_t" => Scalar::WChar,
        "__int128_t" => Scalar::Int128,
        "__uint128_t" => Scalar::UInt128,
        _ => return None,
    })
}

/// Typedef names whose meaning is a C library's choice rather than the ABI's, so that no
/// signature can name them portably.
fn library_typedef(name: &str) -> Option<&'static str> {
    Some(match name {
        "int_fast16_t" | "uint_fast16_t" | "int_fast32_t" | "uint_fast32_t" => {
            "the type it stands for (glibc makes it `long` on 64-bit targets, MSVC `int`)"
        }
        _ => return None,
    })
}
