//! The callback types of C headers, found by clang (feature `header`; `ci/test.sh` runs the
//! suites with `--all-features`): a fixture with every kind of callback type and every kind of
//! type backcall cannot express yet, bad input, and the installed headers of zlib, SQLite,
//! Expat and libuv (`ci/install-deps.sh` installs them), each type planned on all six ABIs.
#![cfg(feature = "header")]

use std::path::{Path, PathBuf};

use backcall::abi::Abi;
use backcall::harness::header::{self, extract, Extracted, FoundCallback, HeaderOptions};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/headers").join(name)
}

fn found(header: &Path, defines: &[&str]) -> Extracted {
    let options = HeaderOptions {
        defines: defines.iter().map(|d| d.to_string()).collect(),
        ..Default::default()
    };
    extract(&options, header).unwrap_or_else(|e| panic!("{e}"))
}

fn named<'a>(found: &'a Extracted, name: &str) -> &'a FoundCallback {
    let all: Vec<&str> = found.callbacks.iter().map(|c| c.name.as_str()).collect();
    found
        .callbacks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} in {all:?}"))
}

fn installed(header: &str) -> PathBuf {
    header::installed(header).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_kind_of_callback_type_is_found_and_named_by_where_it_is() {
    let found = found(&fixture("widget.h"), &[]);
    let names: Vec<&str> = found.callbacks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "widget.h:widget_event_fn",
            "widget.h:widget_measure_fn",
            "widget.h:widget_move_fn",
            "widget.h:widget_set_fn",
            "widget.h:widget_vtable.draw",
            "widget.h:widget_hooks.on_free",
            "widget.h:widget_hooks.on_move",
            "widget.h:widget_vtable.keys.accept",
            "widget.h:widget_flags_fn",
            "widget.h:widget_log_fn",
            "widget.h:widget_printf_fn",
            "widget.h:widget_precise_fn",
            "widget.h:widget_packed_fn",
            "widget.h:widget_aligned_fn",
            "widget.h:widget_pragma_fn",
            "widget.h:widget_each.visit",
            "widget.h:widget_sort.arg2",
            "widget.h:widget_handler.handler",
            "widget.h:widget_anon_t.cb",
            "widget.h:widget_anon_fn",
            "widget.h:widget_blob_fn",
            "widget.h:widget_frame_fn",
            "widget.h:widget_either_fn",
            "widget.h:widget_torn_fn",
        ]
    );
    assert_eq!(named(&found, "widget.h:widget_event_fn").location, "widget/events.h:2");
    assert_eq!(named(&found, "widget.h:widget_packed_fn").location, "widget.h:47");
    assert_eq!(named(&found, "widget.h:widget_each.visit").location, "widget.h:62");
}

#[test]
fn standard_typedefs_stay_symbolic_and_the_librarys_own_resolve() {
    let found = found(&fixture("widget.h"), &[]);
    let sig = |name: &str| named(&found, name).signature.clone().unwrap_or_else(|e| panic!("{e}"));
    // `long` and `size_t`: 4 and 8 bytes on Win64, 8 and 8 on SysV, 4 and 4 on IA-32.
    let measure = sig("widget.h:widget_measure_fn");
    let sizes = |abi: Abi| {
        let plan = abi.plan(&measure).unwrap();
        (plan.ret_layout.size, plan.args[1].layout.size)
    };
    assert_eq!(sizes(Abi::X86_64Win64), (4, 8));
    assert_eq!(sizes(Abi::X86_64Sysv), (8, 8));
    assert_eq!(sizes(Abi::I386Sysv), (4, 4));
    // `wchar_t`: 2 bytes on Windows, 4 elsewhere.
    let accept = sig("widget.h:widget_vtable.keys.accept");
    assert_eq!(Abi::X86_64Win64.plan(&accept).unwrap().args[1].layout.size, 2);
    assert_eq!(Abi::Aarch64Aapcs64.plan(&accept).unwrap().args[1].layout.size, 4);
    // The library's struct and union, by value: {double, double} is an HFA on AArch64.
    let moved = sig("widget.h:widget_move_fn");
    assert_eq!(Abi::X86_64Sysv.plan(&moved).unwrap().args[0].layout.size, 16);
    // A typedef'd anonymous struct by value (16 bytes) and a typedef'd anonymous enum.
    let anon = Abi::X86_64Win64.plan(&sig("widget.h:widget_anon_fn")).unwrap();
    assert_eq!((anon.args[0].layout.size, anon.args[1].layout.size), (16, 4));
    let set = sig("widget.h:widget_set_fn");
    assert_eq!(Abi::Aarch64Apple.plan(&set).unwrap().args[0].layout.size, 8);
}

#[test]
fn bit_fields_keep_their_widths_and_unnamed_ones_stay_unnamed() {
    let found = found(&fixture("widget.h"), &[]);
    let flags = named(&found, "widget.h:widget_flags_fn").signature.clone().unwrap();
    let text = flags.to_string();
    assert!(text.contains("unsigned int visible : 1; unsigned int : 2; unsigned int dirty : 1;"));
    assert_eq!(Abi::X86_64Sysv.plan(&flags).unwrap().args[0].layout.size, 4);
}

#[test]
fn what_backcall_cannot_express_is_reported_with_the_reason() {
    let found = found(&fixture("widget.h"), &[]);
    let why = |name: &str| named(&found, name).signature.clone().err().unwrap_or_default();
    assert!(why("widget.h:widget_either_fn").contains("transparent_union"), "{found:?}");
    assert!(why("widget.h:widget_torn_fn").contains("a `#pragma` inside its body"), "{found:?}");
    assert_eq!(found.supported(), 22);
    // `va_list` stays each ABI's own type.
    let log = named(&found, "widget.h:widget_log_fn").signature.clone().unwrap();
    assert_eq!(log.to_string(), "void (*)(void *, va_list)");
    // A variadic callback: every ABI plans its named parameters.
    let printf = named(&found, "widget.h:widget_printf_fn").signature.clone().unwrap();
    assert!(printf.variadic && Abi::ALL.iter().all(|abi| abi.plan(&printf).is_ok()));
    // `long double`: x87's on i386 and x86-64 System V, `double` on Windows and Apple arm64,
    // binary128 on AArch64 Linux: every ABI plans it.
    let precise = named(&found, "widget.h:widget_precise_fn").signature.clone().unwrap();
    let refused: Vec<Abi> =
        Abi::ALL.into_iter().filter(|abi| abi.plan(&precise).is_err()).collect();
    assert_eq!(refused, []);
}

#[test]
fn records_keep_the_pragma_pack_they_were_defined_under() {
    let found = found(&fixture("widget.h"), &[]);
    let sig = |name: &str| named(&found, name).signature.clone().unwrap_or_else(|e| panic!("{e}"));
    let size = |abi: Abi, sig: &backcall::Signature, arg: usize| {
        abi.plan(sig).unwrap_or_else(|e| panic!("{e}")).args[arg].layout.size
    };
    // `pack(push, 2)`: `{ char; int; { char; double; }; unsigned : 3 }` is 18 bytes under
    // System V's rules, 20 under Microsoft's (the bit-field takes a whole `unsigned`).
    let pragma = sig("widget.h:widget_pragma_fn");
    assert_eq!(size(Abi::X86_64Sysv, &pragma, 0), 18);
    assert_eq!(size(Abi::Aarch64Aapcs64, &pragma, 0), 18);
    assert_eq!(size(Abi::X86_64Win64, &pragma, 0), 20);
    // `pack(1)` then `pack()`: the 11-byte record keeps its pack inside one defined after.
    let frame = sig("widget.h:widget_frame_fn");
    assert_eq!(size(Abi::X86_64Sysv, &frame, 1), 11);
    assert_eq!(size(Abi::X86_64Sysv, &frame, 0), 24);
    assert_eq!(size(Abi::I386Sysv, &frame, 0), 20);
    let text = frame.to_string();
    assert!(text.contains(r#"struct widget_frame { char kind; _Pragma("pack(push, 1)") struct"#));
}

#[test]
fn only_keeps_the_types_named() {
    let options = HeaderOptions {
        only: vec!["widget_move_fn".into(), "widget.h:widget_hooks.on_free".into()],
        ..Default::default()
    };
    let found = extract(&options, &fixture("widget.h")).unwrap();
    let names: Vec<&str> = found.callbacks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["widget.h:widget_move_fn", "widget.h:widget_hooks.on_free"]);
}

#[test]
fn bad_headers_are_clear_errors() {
    let none = HeaderOptions::default();
    let missing = extract(&none, &fixture("no_such_header.h")).unwrap_err();
    assert!(missing.contains("does not exist"), "{missing}");
    let include = extract(&none, &fixture("missing_include.h")).unwrap_err();
    assert!(include.contains("'no_such_library.h' file not found"), "{include}");
    assert!(include.contains("include path"), "{include}");
    let define = extract(&none, &fixture("needs_define.h")).unwrap_err();
    assert!(define.contains("define WIDGET_API"), "{define}");
    // With the macro it needs, the header parses.
    let found = found(&fixture("needs_define.h"), &["WIDGET_API="]);
    assert_eq!(found.callbacks[0].name, "needs_define.h:widget_api_fn");
}

/// Every type of a real header backcall can express plans on all six ABIs; answers the names.
fn planned_everywhere(found: &Extracted) -> Vec<&str> {
    for callback in &found.callbacks {
        let sig = callback.signature.as_ref().unwrap_or_else(|e| panic!("{}: {e}", callback.name));
        for abi in Abi::ALL {
            abi.plan(sig).unwrap_or_else(|e| panic!("{} on {abi}: {e}", callback.name));
        }
    }
    found.callbacks.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn zlib_h() {
    let found = found(&installed("zlib.h"), &[]);
    let names = planned_everywhere(&found);
    assert_eq!(
        names,
        [
            "zlib.h:alloc_func",
            "zlib.h:free_func",
            "zlib.h:z_stream_s.zalloc",
            "zlib.h:z_stream_s.zfree",
            "zlib.h:in_func",
            "zlib.h:out_func",
            "zlib.h:inflateBack.in",
            "zlib.h:inflateBack.out",
        ]
    );
    // `alloc_func` is `voidpf (*)(voidpf opaque, uInt items, uInt size)`.
    let alloc = named(&found, "zlib.h:alloc_func").signature.clone().unwrap();
    assert_eq!(alloc.to_string(), "void * (*)(void *, unsigned int, unsigned int)");
}

#[test]
fn sqlite3_h() {
    let found = found(&installed("sqlite3.h"), &[]);
    let names = planned_everywhere(&found);
    assert!(names.len() > 150, "{}", names.len());
    for name in [
        "sqlite3.h:sqlite3_io_methods.xRead",
        "sqlite3.h:sqlite3_vfs.xOpen",
        "sqlite3.h:sqlite3_vfs.xDlSym",
        "sqlite3.h:sqlite3_module.xBestIndex",
        "sqlite3.h:sqlite3_exec.callback",
    ] {
        assert!(names.contains(&name), "{name}");
    }
    // `sqlite3_int64` resolves to `long long`: 8 bytes everywhere, a register pair on IA-32.
    let read = named(&found, "sqlite3.h:sqlite3_io_methods.xRead").signature.clone().unwrap();
    assert_eq!(Abi::I386Sysv.plan(&read).unwrap().args[3].layout.size, 8);
}

#[test]
fn expat_h() {
    let found = found(&installed("expat.h"), &[]);
    let names = planned_everywhere(&found);
    for name in [
        "expat.h:XML_StartElementHandler",
        "expat.h:XML_SetElementHandler.start",
        "expat.h:XML_Memory_Handling_Suite.malloc_fcn",
    ] {
        assert!(names.contains(&name), "{name}");
    }
}

#[test]
fn uv_h() {
    let found = found(&installed("uv.h"), &[]);
    let names = planned_everywhere(&found);
    for name in ["uv.h:uv_read_cb", "uv.h:uv_stream_s.read_cb", "uv.h:uv__io_cb"] {
        assert!(names.contains(&name), "{name}");
    }
    // `uv_read_cb` takes an `ssize_t`: 4 bytes on IA-32, 8 on the 64-bit ABIs.
    let read = named(&found, "uv.h:uv_read_cb").signature.clone().unwrap();
    assert_eq!(Abi::I386Win32.plan(&read).unwrap().args[1].layout.size, 4);
    assert_eq!(Abi::X86_64Win64.plan(&read).unwrap().args[1].layout.size, 8);
    // From `uv/unix.h`, the directory named after the header.
    assert_eq!(named(&found, "uv.h:uv__io_cb").location, "uv/unix.h:89");
}

/// `RET (*)(P1, P2, ...)` split into the result and parameter types, when `text` has that
/// shape (not a function returning a function pointer, not variadic).
fn split_function_pointer(text: &str) -> Option<(String, Vec<String>)> {
    let (ret, rest) = text.split_once("(*)(")?;
    let mut depth = 1;
    let mut params = vec![String::new()];
    let mut end = None;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 1 => {
                params.push(String::new());
                continue;
            }
            _ => {}
        }
        if depth == 0 {
            end = Some(i);
            break;
        }
        params.last_mut()?.push(c);
    }
    let end = end?;
    let params: Vec<String> = params.iter().map(|p| p.trim().to_string()).collect();
    if !rest[end + 1..].trim().is_empty() || params.iter().any(|p| p == "...") {
        return None;
    }
    let params = if params == ["void"] { Vec::new() } else { params };
    Some((ret.trim().to_string(), params))
}

/// The extraction's own oracle: clang, in the header's scope, must give every result and
/// parameter type of every callback type the size and alignment backcall planned for it, on
/// x86-64 and on i686 (where `long`, `size_t` and pointers are 4 bytes). Types spelled by a
/// typedef of the header are checked through that typedef's spelling; clang's spellings that
/// are not C (anonymous records) are left out. Answers how many types were checked.
fn layouts_agree_with_clang(found: &Extracted, header: &Path) -> usize {
    let typedefs: std::collections::HashMap<&str, &str> = found
        .callbacks
        .iter()
        .filter_map(|c| Some((c.name.split_once(':')?.1, c.text.as_str())))
        .collect();
    let mut checked = 0;
    for (target, abi) in [("x86_64-linux-gnu", Abi::X86_64Sysv), ("i686-linux-gnu", Abi::I386Sysv)]
    {
        let mut c = format!("#include \"{}\"\n", header.display());
        for callback in &found.callbacks {
            let Ok(sig) = &callback.signature else { continue };
            let text = typedefs.get(callback.text.as_str()).copied().unwrap_or(&callback.text);
            let Some((ret, params)) = split_function_pointer(text) else { continue };
            let Ok(plan) = abi.plan(sig) else { continue };
            let mut types = vec![(ret, plan.ret_layout.clone())];
            types.extend(params.into_iter().zip(plan.args.iter().map(|a| a.layout.clone())));
            for (ty, layout) in types {
                if ty == "void" || ty.contains("unnamed ") || ty.contains("anonymous ") {
                    continue;
                }
                let what = format!("{} on {abi}: `{ty}`", callback.name);
                c.push_str(&format!(
                    "_Static_assert(sizeof({ty}) == {} && _Alignof({ty}) == {}, \"{what}\");\n",
                    layout.size, layout.align
                ));
                checked += 1;
            }
        }
        let out = std::process::Command::new("clang")
            .args(["-x", "c", "-std=gnu11", "-fsyntax-only", &format!("--target={target}"), "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(c.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        let errors = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "clang disagrees on {target}:\n{errors}");
    }
    checked
}

#[test]
fn extracted_layouts_agree_with_clang_on_two_targets() {
    let headers = [
        fixture("widget.h"),
        installed("zlib.h"),
        installed("sqlite3.h"),
        installed("expat.h"),
        installed("uv.h"),
    ];
    for header in headers {
        let found = found(&header, &[]);
        let checked = layouts_agree_with_clang(&found, &header);
        // Most of each header's types are checked (a few have shapes the splitter leaves out).
        assert!(checked >= found.callbacks.len(), "{}: {checked} checked", header.display());
    }
}
