//! Every callback type a C header declares, found by clang's own parser.
//!
//! `clang -x c -fsyntax-only -Xclang -ast-dump=json` parses the header (with the caller's
//! `-I` and `-D`), on the host. The declarations it reports are replayed into backcall's parser
//! ([`Declarations`]), in order: the library's typedefs, structs, unions and enums resolve as
//! backcall's types; the standard typedefs the ABIs size differently (`size_t`, `ssize_t`,
//! `intptr_t`, `wchar_t`, `long`, ...) stay what they are, so `long` is 4 bytes on Win64 and 8 on
//! SysV. The callback types are the function-pointer typedefs, struct members and function
//! parameters of the header itself (and of the headers in the directory named after it, as
//! `uv/` beside `uv.h`), each named by where it was found: `zlib.h:alloc_func`,
//! `sqlite3.h:sqlite3_io_methods.xRead`, `expat.h:XML_SetElementHandler.start`. A type backcall
//! cannot express is listed with the reason, never dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::signature::Declarations;
use crate::Signature;
use backcall_abi::Packing;
use serde_json::Value;

/// What to extract, and from which headers: the `--header` options of `backcall plan` and
/// `backcall verify`.
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct HeaderOptions {
    /// A C header whose callback types to plan or verify (repeatable)
    #[cfg_attr(feature = "cli", arg(long = "header", value_name = "FILE"))]
    pub headers: Vec<PathBuf>,
    /// A directory the header's own includes are found in (repeatable; clang's `-I`)
    #[cfg_attr(feature = "cli", arg(long = "include", value_name = "DIR"))]
    pub includes: Vec<PathBuf>,
    /// A macro the header needs (repeatable; clang's `-D`)
    #[cfg_attr(feature = "cli", arg(long = "define", value_name = "NAME[=VALUE]"))]
    pub defines: Vec<String>,
    /// Keep only this callback type: a full name (`zlib.h:alloc_func`) or the part after the
    /// header's name (`alloc_func`, `z_stream_s.zalloc`) (repeatable)
    #[cfg_attr(feature = "cli", arg(long = "only", value_name = "NAME"))]
    pub only: Vec<String>,
    /// The clang that parses the headers (default: `clang`)
    #[cfg_attr(feature = "cli", arg(skip))]
    pub clang: Option<String>,
}

impl HeaderOptions {
    /// Every header's callback types, in the order the headers were given; `Err` is the first
    /// header that does not parse (see [`extract`]).
    pub fn extract_all(&self) -> Result<Vec<Extracted>, String> {
        self.headers.iter().map(|h| extract(self, h)).collect()
    }
}

/// One callback type of a header.
#[derive(Clone, Debug)]
pub struct FoundCallback {
    /// `zlib.h:alloc_func`, `sqlite3.h:sqlite3_vfs.xOpen`, `expat.h:XML_Parse.parser`
    pub name: String,
    /// `file:line`
    pub location: String,
    /// the type as clang spells it in the header's scope (`voidpf (*)(voidpf, uInt, uInt)`)
    pub text: String,
    /// backcall's signature, or why backcall cannot express it
    pub signature: Result<Signature, String>,
}

/// The callback types of one header.
#[derive(Clone, Debug)]
pub struct Extracted {
    /// the header, as given
    pub header: String,
    /// in the order the header declares them
    pub callbacks: Vec<FoundCallback>,
    /// the clang command that parsed it
    pub command: String,
}

impl Extracted {
    /// How many callback types backcall can express.
    pub fn supported(&self) -> usize {
        self.callbacks.iter().filter(|c| c.signature.is_ok()).count()
    }
}

/// Parses `header` with clang (`-I` and `-D` from `req`) and finds its callback types, keeping
/// those `req.only` names. `Err` is bad input (no such header, one clang cannot parse), with
/// clang's first diagnostic and the include path.
///
/// ```no_run
/// use backcall::harness::header::{extract, HeaderOptions};
///
/// let found = extract(&HeaderOptions::default(), "/usr/include/zlib.h".as_ref()).unwrap();
/// for callback in &found.callbacks {
///     println!("{} at {}: {:?}", callback.name, callback.location, callback.signature);
/// }
/// ```
pub fn extract(req: &HeaderOptions, header: &Path) -> Result<Extracted, String> {
    if !header.is_file() {
        return Err(format!("header `{}` does not exist", header.display()));
    }
    let clang = req.clang.clone().unwrap_or_else(|| "clang".to_string());
    let mut cmd = Command::new(&clang);
    cmd.args(["-x", "c", "-fsyntax-only", "-Xclang", "-ast-dump=json", "-ferror-limit=1"]);
    for dir in &req.includes {
        cmd.arg(format!("-I{}", dir.display()));
    }
    for def in &req.defines {
        cmd.arg(format!("-D{def}"));
    }
    cmd.arg(header);
    let shown = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().map_err(|e| format!("`{clang}` does not run ({e})"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().find(|l| l.contains("error")).unwrap_or("(no message)");
        let path: Vec<String> = req.includes.iter().map(|d| d.display().to_string()).collect();
        return Err(format!(
            "clang cannot parse `{}`: {first}\n  include path: {} (add --include DIR or \
             --define NAME[=VALUE])\n  command: {shown}",
            header.display(),
            if path.is_empty() { "the default one".to_string() } else { path.join(", ") }
        ));
    }
    let mut ast: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("clang's AST of `{}` is not JSON: {e}", header.display()))?;
    let packs = count_packs(&ast);
    if packs > 0 {
        let mut text = Command::new(&clang);
        text.args(
            cmd.get_args().map(|a| if a == "-ast-dump=json" { "-ast-dump".as_ref() } else { a }),
        );
        let dump = text.output().map_err(|e| format!("`{clang}` does not run ({e})"))?;
        let values = pack_values(&String::from_utf8_lossy(&dump.stdout));
        // (when the dumps disagree, no record gets a value that might be another's: each is
        // then refused with the reason)
        if values.len() == packs {
            annotate_packs(&mut ast, &mut values.into_iter());
        }
    }
    Locations::default().fill(&mut ast);
    let mut walk = Walk::new(header);
    if let Some(decls) = ast["inner"].as_array() {
        for node in decls {
            walk.top(node);
        }
    }
    let mut callbacks = walk.resolve();
    if !req.only.is_empty() {
        callbacks.retain(|c| {
            let short = c.name.split_once(':').map_or(c.name.as_str(), |(_, s)| s);
            req.only.iter().any(|o| *o == c.name || o == short)
        });
    }
    Ok(Extracted { header: header.display().to_string(), callbacks, command: shown })
}

/// The installed C headers the suites verify, with the Debian package of each
/// (`ci/install-deps.sh` installs them).
pub const REAL_HEADERS: [(&str, &str); 4] = [
    ("zlib.h", "zlib1g-dev"),
    ("sqlite3.h", "libsqlite3-dev"),
    ("expat.h", "libexpat1-dev"),
    ("uv.h", "libuv1-dev"),
];

/// `/usr/include/<header>` for one of [`REAL_HEADERS`]; `Err` names the package to install.
pub fn installed(header: &str) -> Result<PathBuf, String> {
    let path = Path::new("/usr/include").join(header);
    let package = REAL_HEADERS.iter().find(|(h, _)| *h == header).map_or("its package", |(_, p)| p);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} is missing: install {package} (ci/install-deps.sh does)", path.display()))
    }
}

/// A callback type before it is parsed.
struct Candidate {
    name: String,
    location: String,
    /// what backcall's parser reads: the typedef's name, or the type made target-neutral
    parsed: String,
    /// clang's spelling
    text: String,
}

/// The walk over clang's top-level declarations.
struct Walk {
    /// the header's file name (`zlib.h`), for names
    short: String,
    /// files whose callback types count: the header, and its directory's `<stem>/`
    header: PathBuf,
    family: Option<PathBuf>,
    /// the file of the last node that named one (clang's JSON names a file once)
    file: String,
    decls: Declarations,
    /// declarations backcall could not take, with why
    refused: Vec<(String, String)>,
    candidates: Vec<Candidate>,
    /// what to call an anonymous record in names: the typedef that names it (`foo_t`) or the
    /// member that holds it (`widget_vtable.keys`)
    display: std::collections::HashMap<String, String>,
    /// the tags given to anonymous records and enums, by clang's node id
    anonymous_ids: std::collections::HashMap<String, String>,
    /// the text of each file a record's body was looked at in
    sources: std::collections::HashMap<String, String>,
}

impl Walk {
    fn new(header: &Path) -> Walk {
        let short =
            header.file_name().map_or("header".into(), |n| n.to_string_lossy().into_owned());
        let canonical = header.canonicalize().unwrap_or_else(|_| header.to_path_buf());
        let family = canonical.parent().zip(canonical.file_stem()).map(|(d, s)| d.join(s));
        Walk {
            short,
            header: canonical,
            family,
            file: String::new(),
            decls: Declarations::default(),
            refused: Vec::new(),
            candidates: Vec::new(),
            display: std::collections::HashMap::new(),
            anonymous_ids: std::collections::HashMap::new(),
            sources: std::collections::HashMap::new(),
        }
    }

    /// Moves to `node`'s location (where a macro was expanded, for one written by a macro);
    /// answers its line.
    fn locate(&mut self, node: &Value) -> u64 {
        let loc = &node["loc"];
        let at = if loc["expansionLoc"].is_object() { &loc["expansionLoc"] } else { loc };
        if let Some(f) = at["file"].as_str() {
            self.file = f.to_string();
        }
        at["line"].as_u64().unwrap_or(0)
    }

    /// The tag of an anonymous record or enum at `node` (remembered by its id, for the typedef
    /// that names it).
    fn anonymous(&mut self, node: &Value, line: u64) -> String {
        let loc = &node["loc"];
        let at = if loc["expansionLoc"].is_object() { &loc["expansionLoc"] } else { loc };
        let col = at["col"].as_u64().unwrap_or(0).to_string();
        let tag = anonymous_tag(&self.file, &line.to_string(), &col);
        if let Some(id) = node["id"].as_str() {
            self.anonymous_ids.insert(id.to_string(), tag.clone());
        }
        tag
    }

    /// Whether the current file's callback types count.
    fn ours(&self) -> bool {
        let path = Path::new(&self.file);
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        path == self.header || self.family.as_ref().is_some_and(|f| path.starts_with(f))
    }

    /// `file:line`, the file relative to the header's directory (`widget/events.h:2`).
    fn where_(&self, line: u64) -> String {
        let path = Path::new(&self.file);
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let dir = self.header.parent().unwrap_or(Path::new(""));
        let shown = match path.strip_prefix(dir) {
            Ok(relative) => relative.display().to_string(),
            Err(_) => path.file_name().map_or(String::new(), |n| n.to_string_lossy().into()),
        };
        format!("{shown}:{line}")
    }

    fn top(&mut self, node: &Value) {
        let line = self.locate(node);
        if node["isImplicit"].as_bool() == Some(true) {
            return;
        }
        match node["kind"].as_str() {
            Some("TypedefDecl") => self.typedef(node, line),
            Some("RecordDecl") => {
                self.record(node, line);
            }
            Some("EnumDecl") => self.enumeration(node),
            Some("FunctionDecl") => self.function(node, line),
            _ => {}
        }
    }

    fn candidate(&mut self, name: String, line: u64, parsed: String, ty: &Value) {
        let text = ty["qualType"].as_str().unwrap_or(&parsed).to_string();
        let location = self.where_(line);
        self.candidates.push(Candidate { name, location, parsed, text });
    }

    fn declare(&mut self, what: &str, text: &str) {
        if let Err(e) = self.decls.declare(text) {
            self.refused.push((what.to_string(), format!("{e} (in `{text}`)")));
        }
    }

    fn typedef(&mut self, node: &Value, line: u64) {
        let (Some(name), Some(ty)) = (node["name"].as_str(), qual_type(node)) else { return };
        if crate::parse_signature(&format!("void (*)({name})")).is_ok() {
            return; // a standard name backcall knows (`size_t`, `int32_t`, ...)
        }
        if is_va_list(node) {
            // Each ABI's own type (an array of a struct on the host): it stays `va_list`, which
            // backcall's parser refuses with its reason, never the host's spelling.
            if name != "va_list" {
                self.declare(name, &format!("typedef va_list {name};"));
            }
            return;
        }
        let mut ty = neutral(&ty);
        // `typedef struct { ... } name;`: clang may spell the type `struct name`, though the
        // record has no tag; the node it owns says which record it is.
        let owned = node["inner"][0]["ownedTagDecl"]["id"].as_str();
        if let Some(tag) = owned.and_then(|id| self.anonymous_ids.get(id)) {
            let kind = node["inner"][0]["ownedTagDecl"]["kind"].as_str();
            ty = match kind {
                Some("EnumDecl") => format!("enum {tag}"),
                _ => format!("{} {tag}", ty.split(' ').next().unwrap_or("struct")),
            };
        }
        if let Some(tag) = anonymous_record(&ty) {
            self.display.entry(tag).or_insert_with(|| name.to_string());
        }
        if let Some(attribute) = layout_attribute(node) {
            let why = format!("typedef `{name}` has {attribute}: not supported yet");
            self.refused.push((name.to_string(), why));
        } else {
            self.declare(name, &format!("typedef {};", named(&ty, name)));
        }
        if self.ours() && is_function_pointer(node) {
            let full = format!("{}:{name}", self.short);
            self.candidate(full, line, name.to_string(), &node["type"]);
        }
    }

    /// Whether the source of a record's body (in the current file, when clang gives its
    /// byte range there) holds a `#pragma` or `_Pragma`.
    fn pragma_inside(&mut self, node: &Value) -> bool {
        let range = &node["range"];
        let (Some(begin), Some(end)) =
            (range["begin"]["offset"].as_u64(), range["end"]["offset"].as_u64())
        else {
            return false; // (written by a macro: no byte range in the file)
        };
        let file = self.file.clone();
        let text = self
            .sources
            .entry(file.clone())
            .or_insert_with(|| std::fs::read_to_string(&file).unwrap_or_default());
        let body = usize::try_from(begin).ok().zip(usize::try_from(end).ok());
        let body = body.and_then(|(b, e)| text.get(b..e)).unwrap_or("");
        body.contains("_Pragma")
            || body.lines().any(|l| {
                l.trim_start()
                    .strip_prefix('#')
                    .is_some_and(|d| d.trim_start().starts_with("pragma"))
            })
    }

    /// Declares a record (and the records and enums inside it first); answers its tag.
    fn record(&mut self, node: &Value, line: u64) -> Option<String> {
        let kind = node["tagUsed"].as_str().unwrap_or("struct").to_string();
        let tag = match node["name"].as_str().filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => self.anonymous(node, line),
        };
        let complete = node["completeDefinition"].as_bool() == Some(true);
        if !complete {
            self.declare(&tag, &format!("{kind} {tag};"));
            return Some(tag);
        }
        let mut members = Vec::new();
        let mut bitfield = None;
        let own = packing(node);
        let pack = pragma_pack(node);
        let mut layout = own.err().or(pack.err()).map(str::to_string);
        if self.pragma_inside(node) {
            // (clang reads the `#pragma pack` at the `{`, GCC at the `}`)
            layout.get_or_insert("a `#pragma` inside its body".to_string());
        }
        for (k, inner) in node["inner"].as_array().into_iter().flatten().enumerate() {
            let line = self.locate(inner);
            match inner["kind"].as_str() {
                Some("RecordDecl") => {
                    self.record(inner, line);
                }
                Some("EnumDecl") => self.enumeration(inner),
                Some("FieldDecl") => {
                    let Some(ty) = qual_type(inner) else { continue };
                    let ty = neutral(&ty);
                    let given = inner["name"].as_str().filter(|n| !n.is_empty());
                    let name = given.map_or(format!("__member{k}"), str::to_string);
                    if let Some(inner_tag) = anonymous_record(&ty) {
                        self.display.entry(inner_tag).or_insert_with(|| format!("{tag}.{name}"));
                    }
                    // A bit-field's width, as clang evaluated it (`: N` after the member).
                    let mut width = String::new();
                    if inner["isBitfield"].as_bool() == Some(true) {
                        match inner["inner"][0]["value"].as_str() {
                            Some(n) => width = format!(" : {n}"),
                            None => {
                                bitfield.get_or_insert(name.clone());
                            }
                        }
                    }
                    let attribute = match packing(inner) {
                        Ok(p) => p.attribute().map(|a| format!(" {a}")).unwrap_or_default(),
                        Err(why) => {
                            layout.get_or_insert(format!("{why} on `{name}`"));
                            String::new()
                        }
                    };
                    if self.ours() && is_function_pointer(inner) {
                        let full = format!("{}:{tag}.{name}", self.short);
                        self.candidate(full, line, ty.clone(), &inner["type"]);
                    }
                    let declarator = match (given, width.is_empty()) {
                        // an unnamed bit-field stays unnamed: it is padding
                        (None, false) => ty.clone(),
                        _ => named(&ty, &name),
                    };
                    members.push(format!("{declarator}{width}{attribute};"));
                }
                _ => {}
            }
        }
        let unsupported = match (bitfield, layout) {
            (Some(member), _) => Some(format!("has a bit-field of no known width (`{member}`)")),
            (None, Some(attribute)) => Some(format!("has {attribute}")),
            (None, None) => None,
        };
        if let Some(what) = unsupported {
            // Known by name (pointers to it are fine), never by a layout backcall would guess.
            self.declare(&tag, &format!("{kind} {tag};"));
            self.refused.push((tag.clone(), format!("`{kind} {tag}` {what}: not supported yet")));
            return Some(tag);
        }
        let attribute = own.ok().and_then(|p| p.attribute()).map(|a| format!(" {a}"));
        let attribute = attribute.unwrap_or_default();
        let mut body = format!("{kind}{attribute} {tag} {{ {} }};", members.join(" "));
        if let Ok(Some(n)) = pack {
            body = format!("_Pragma(\"pack(push, {n})\") {body} _Pragma(\"pack(pop)\")");
        }
        if let Err(e) = self.decls.declare(&body) {
            self.declare(&tag, &format!("{kind} {tag};"));
            self.refused.push((tag.clone(), format!("`{kind} {tag}`: {e}")));
        }
        Some(tag)
    }

    fn enumeration(&mut self, node: &Value) {
        let line = self.locate(node);
        let tag = match node["name"].as_str().filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => self.anonymous(node, line),
        };
        let mut items = Vec::new();
        for item in node["inner"].as_array().into_iter().flatten() {
            if item["kind"].as_str() != Some("EnumConstantDecl") {
                continue;
            }
            let Some(name) = item["name"].as_str() else { continue };
            match constant_value(item) {
                Some(v) => items.push(format!("{name} = {v}")),
                None => items.push(name.to_string()),
            }
        }
        if !items.is_empty() {
            self.declare(&tag, &format!("enum {tag} {{ {} }};", items.join(", ")));
        }
    }

    fn function(&mut self, node: &Value, line: u64) {
        let Some(function) = node["name"].as_str() else { return };
        if !self.ours() {
            return;
        }
        let params = node["inner"].as_array().into_iter().flatten();
        let params = params.filter(|p| p["kind"].as_str() == Some("ParmVarDecl"));
        for (k, param) in params.enumerate() {
            if !is_function_pointer(param) {
                continue;
            }
            let Some(ty) = qual_type(param) else { continue };
            let name = param["name"].as_str().filter(|n| !n.is_empty());
            let name = name.map_or(format!("arg{k}"), str::to_string);
            let full = format!("{}:{function}.{name}", self.short);
            self.candidate(full, line, neutral(&ty), &param["type"]);
        }
    }

    /// `name` with its anonymous tags (`__anon_30_5.accept`) replaced by what holds them
    /// (`widget_vtable.keys.accept`), nested ones too.
    fn displayed(&self, name: &str) -> String {
        let mut name = name.to_string();
        for _ in 0..16 {
            let Some((head, rest)) = name.split_once(':') else { break };
            let (tag, member) = rest.split_once('.').unwrap_or((rest, ""));
            let Some(shown) = self.display.get(tag) else { break };
            name = format!("{head}:{shown}.{member}");
        }
        name
    }

    /// Parses every candidate with every declaration in scope.
    fn resolve(self) -> Vec<FoundCallback> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for Candidate { name, location, parsed, text } in &self.candidates {
            let name = self.displayed(name);
            if !seen.insert(name.clone()) {
                continue;
            }
            let signature = self.decls.signature(parsed).map_err(|e| {
                // The reason a type it names was refused says more than "not a type".
                let e = e.to_string();
                let named = self
                    .refused
                    .iter()
                    .find(|(what, _)| mentions(parsed, what) || mentions(&e, what));
                named.map_or(e, |(_, why)| why.clone())
            });
            let (location, text) = (location.clone(), text.clone());
            out.push(FoundCallback { name, location, text, signature });
        }
        out
    }
}

/// Writes the file and line into every location of clang's JSON AST. Clang writes each only
/// when it differs from the location written just before (in document order: a node's `loc`,
/// its `range` begin and end, then its `inner` nodes; a macro's spelling before its
/// expansion), so a node's own location is often incomplete.
#[derive(Default)]
struct Locations {
    file: Option<Value>,
    line: Option<Value>,
}

impl Locations {
    fn fill(&mut self, node: &mut Value) {
        self.location(&mut node["loc"]);
        self.location(&mut node["range"]["begin"]);
        self.location(&mut node["range"]["end"]);
        if let Some(inner) = node.get_mut("inner").and_then(Value::as_array_mut) {
            for child in inner {
                self.fill(child);
            }
        }
    }

    fn location(&mut self, loc: &mut Value) {
        if loc.get("spellingLoc").is_some() {
            self.bare(&mut loc["spellingLoc"]);
            self.bare(&mut loc["expansionLoc"]);
        } else {
            self.bare(loc);
        }
    }

    fn bare(&mut self, loc: &mut Value) {
        let Some(map) = loc.as_object_mut().filter(|m| m.contains_key("offset")) else { return };
        match map.get("file") {
            Some(file) => self.file = Some(file.clone()),
            None => {
                if let Some(file) = &self.file {
                    map.insert("file".into(), file.clone());
                }
            }
        }
        match map.get("line") {
            Some(line) => self.line = Some(line.clone()),
            None => {
                if let Some(line) = &self.line {
                    map.insert("line".into(), line.clone());
                }
            }
        }
    }
}

/// The declared type of a node (`int (*)(void *)`).
fn qual_type(node: &Value) -> Option<String> {
    node["type"]["qualType"].as_str().map(str::to_string)
}

/// Whether a node's type is a pointer to a function (through typedefs too).
fn is_function_pointer(node: &Value) -> bool {
    let ty = &node["type"];
    let text = ty["desugaredQualType"].as_str().or(ty["qualType"].as_str()).unwrap_or("");
    text.contains("(*)(") || text.contains("(*)(void)")
}

/// The attribute on a typedef that changes a layout from what its C types say, in words.
fn layout_attribute(node: &Value) -> Option<&'static str> {
    node["inner"].as_array()?.iter().find_map(|a| match a["kind"].as_str()? {
        "PackedAttr" => Some("`__attribute__((packed))`"),
        "AlignedAttr" => Some("`__attribute__((aligned))` (or `_Alignas`)"),
        _ => None,
    })
}

/// The node kind clang gives the `#pragma pack` in effect at a record's definition.
const PACK_ATTR: &str = "MaxFieldAlignmentAttr";

/// The value of every `#pragma pack` attribute in clang's text AST dump, in bytes, in the
/// order the dump shows them: the JSON dump leaves the value out (`MaxFieldAlignmentAttr 0x…
/// <<invalid sloc>> Implicit 16` is in bits).
fn pack_values(dump: &str) -> Vec<Option<u32>> {
    // (a node's line: tree drawing, then its kind and address; a name may hold the word too)
    let node = |l: &&str| {
        let kind = l.trim_start_matches(['|', '`', '-', ' ']);
        kind.strip_prefix(PACK_ATTR).is_some_and(|rest| rest.starts_with(" 0x"))
    };
    let values = dump.lines().filter(node);
    let bits = values.map(|l| l.split_whitespace().last().and_then(|v| v.parse::<u32>().ok()));
    bits.map(|b| b.filter(|b| b % 8 == 0).map(|b| b / 8)).collect()
}

/// How many `#pragma pack` attribute nodes the JSON AST holds.
fn count_packs(node: &Value) -> usize {
    let own = usize::from(node["kind"].as_str() == Some(PACK_ATTR));
    let inner = node["inner"].as_array().into_iter().flatten();
    own + inner.map(count_packs).sum::<usize>()
}

/// Gives each `#pragma pack` attribute node of the JSON AST its value (as `"bytes"`), from
/// `values` in document order (both dumps walk the AST alike).
fn annotate_packs(node: &mut Value, values: &mut impl Iterator<Item = Option<u32>>) {
    if node["kind"].as_str() == Some(PACK_ATTR) {
        if let (Some(map), Some(Some(bytes))) = (node.as_object_mut(), values.next()) {
            map.insert("bytes".into(), bytes.into());
        }
    }
    for child in node.get_mut("inner").and_then(Value::as_array_mut).into_iter().flatten() {
        annotate_packs(child, values);
    }
}

/// The `#pragma pack` a record's body was defined under, in bytes (`None`: none).
fn pragma_pack(node: &Value) -> Result<Option<u32>, &'static str> {
    let attrs = node["inner"].as_array().into_iter().flatten();
    match attrs.into_iter().find(|a| a["kind"].as_str() == Some(PACK_ATTR)) {
        None => Ok(None),
        Some(attr) => match attr["bytes"].as_u64().and_then(|b| u32::try_from(b).ok()) {
            Some(bytes) => Ok(Some(bytes)),
            None => Err("`#pragma pack` of a value clang's dump does not show"),
        },
    }
}

/// The layout attributes of a record or member, spelled the way a signature takes them
/// (`__attribute__((packed, aligned(16)))`), or in words the one backcall cannot take.
fn packing(node: &Value) -> Result<Packing, &'static str> {
    let mut packing = Packing::NONE;
    for attr in node["inner"].as_array().into_iter().flatten() {
        match attr["kind"].as_str() {
            Some("PackedAttr") => packing.packed = true,
            Some("AlignedAttr") => {
                // clang folds `aligned(N * 2)` or `_Alignas(T)` into a value; a bare `aligned`
                // means "the target's largest alignment", which differs per ABI.
                let value = attr["inner"][0]["value"].as_str().and_then(|v| v.parse().ok());
                let n: u32 = value.ok_or("a bare `__attribute__((aligned))` (no value)")?;
                packing.align = Some(packing.align.map_or(n, |m| m.max(n)));
            }
            Some("MSStructAttr") => return Err("`__attribute__((ms_struct))`"),
            Some("TransparentUnionAttr") => return Err("`__attribute__((transparent_union))`"),
            _ => {}
        }
    }
    Ok(packing)
}

/// Whether a typedef is `va_list` or one of its spellings (`__gnuc_va_list`,
/// `__builtin_va_list`).
fn is_va_list(node: &Value) -> bool {
    const SPELLINGS: [&str; 3] = ["va_list", "__gnuc_va_list", "__builtin_va_list"];
    let ty = node["type"]["qualType"].as_str().unwrap_or("");
    node["name"].as_str() == Some("va_list") || SPELLINGS.contains(&ty)
}

/// Whether `text` names `word` as a whole identifier.
fn mentions(text: &str, word: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).any(|w| w == word)
}

/// The value clang computed for an enumerator (`ConstantExpr`'s `value`), if it wrote one.
fn constant_value(item: &Value) -> Option<String> {
    item["inner"].as_array()?.iter().find_map(|e| e["value"].as_str().map(str::to_string))
}

/// The tag of the anonymous record `ty` is (after [`anonymous_tags`]), if it is one:
/// `struct __anon_12_3` gives `__anon_12_3`; a pointer to one does not count.
fn anonymous_record(ty: &str) -> Option<String> {
    let tag = ty.strip_prefix("struct ").or(ty.strip_prefix("union "))?.trim();
    tag.starts_with("__anon_").then(|| tag.to_string())
}

/// A tag for an anonymous record or enum, from where clang saw it: `__anon_expat_h_221_9`
/// (its `struct` keyword is at `expat.h:221:9`).
fn anonymous_tag(file: &str, line: &str, col: &str) -> String {
    let base = Path::new(file).file_name().map_or(String::new(), |n| n.to_string_lossy().into());
    let base: String =
        base.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("__anon_{base}_{line}_{col}")
}

/// A type as clang spells it, made target-neutral: anonymous tags named ([`anonymous_tags`]),
/// and the host's `va_list` (an array of `struct __va_list_tag`, which a parameter decays to a
/// pointer to) spelled `va_list` again, so that no ABI sees the host's type.
fn neutral(text: &str) -> String {
    anonymous_tags(text).replace("struct __va_list_tag *", "va_list")
}

/// `text` with clang's spellings of anonymous tags (`struct (unnamed struct at f.h:12:3)`,
/// `(anonymous union at f.h:4:1)`) replaced by the tags [`anonymous_tag`] gives them.
fn anonymous_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('(') {
        let inner = &rest[start + 1..];
        let anonymous = inner.starts_with("unnamed ") || inner.starts_with("anonymous ");
        match (anonymous, inner.find(')')) {
            (true, Some(end)) => {
                let inside = &inner[..end];
                let mut parts = inside.rsplitn(3, ':');
                let col = parts.next().unwrap_or("0");
                let line = parts.next().unwrap_or("0");
                let file = parts.next().unwrap_or("").rsplit(" at ").next().unwrap_or("");
                out.push_str(&rest[..start]);
                out.push_str(&anonymous_tag(file, line, col));
                rest = &inner[end + 1..];
            }
            _ => {
                out.push_str(&rest[..=start]);
                rest = inner;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A declaration of `name` with the abstract type `ty` (`int (*)(int)` and `f` make
/// `int (*f)(int)`; `char [16]` and `s` make `char s[16]`).
fn named(ty: &str, name: &str) -> String {
    if let Some(at) = ty.find("(*)") {
        return format!("{}(*{name}){}", &ty[..at], &ty[at + 3..]);
    }
    if let Some(at) = ty.find("(**)") {
        return format!("{}(**{name}){}", &ty[..at], &ty[at + 4..]);
    }
    if let Some(at) = ty.find(" [").or(ty.find('[')) {
        return format!("{} {name}{}", ty[..at].trim_end(), &ty[at..].trim_start());
    }
    format!("{ty} {name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_values_come_from_attribute_nodes_only() {
        let dump = "|-RecordDecl 0x1 <p.h:2:1, col:27> col:8 struct s definition\n\
                    | |-MaxFieldAlignmentAttr 0x2 <<invalid sloc>> Implicit 16\n\
                    |-RecordDecl 0x3 <line:5:1> col:8 struct MaxFieldAlignmentAttr_s definition\n\
                    | `-MaxFieldAlignmentAttr 0x4 <<invalid sloc>> Implicit 8\n";
        assert_eq!(pack_values(dump), [Some(2), Some(1)]);
    }

    #[test]
    fn names_go_where_c_puts_them() {
        assert_eq!(named("int (*)(int)", "f"), "int (*f)(int)");
        assert_eq!(named("char [16]", "s"), "char s[16]");
        assert_eq!(named("int (*[4])(int)", "t"), "int (* t[4])(int)");
        assert_eq!(named("unsigned long", "n"), "unsigned long n");
        let text = "struct (unnamed struct at /usr/include/x.h:12:3) *";
        assert_eq!(anonymous_tags(text), "struct __anon_x_h_12_3 *");
        assert_eq!(
            anonymous_tags("void (*)(int (anonymous union at a.h:4:1))"),
            "void (*)(int __anon_a_h_4_1)"
        );
        assert_eq!(
            neutral("void (*)(const char *, struct __va_list_tag *)"),
            "void (*)(const char *, va_list)"
        );
    }
}
