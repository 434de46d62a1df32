//! The C text of a batch: one caller per case that calls the callback with graffiti values
//! and stores the result's bytes where the oracle reads them.
//!
//! [`c_source`] writes ONE C file (no headers, no libc) with, per case `N`, a caller
//! `void bc_case_N(void (*fp)(void))` that casts `fp` to the case's function pointer type,
//! builds every argument from graffiti bytes (a `union { A v; unsigned char b[sizeof(A)]; }`
//! initialised with `.b = {...}`), calls it, and stores the result's bytes into the exported
//! buffer `unsigned char bc_ret_N[sizeof(R)]`. `_Static_assert`s pin every type's layout to
//! backcall's [`Layout`](backcall_abi::Layout), so a layout disagreement is a compile error
//! naming the case, not a puzzling byte mismatch.

use std::fmt::Write as _;

use backcall_abi::{Abi, Convention, Layout, Scalar, Shape, Type};

use crate::case::Prepared;
use crate::cgen;
use crate::graffiti::arg_graffiti;

/// `#define`s that give the i386 convention keywords their GNU C spelling (gcc on Linux knows
/// only `__attribute__((stdcall))` and friends; clang knows both; mingw-w64 defines them).
pub const CONVENTIONS: &str = "\
#ifndef __cdecl
#define __cdecl __attribute__((cdecl))
#endif
#ifndef __stdcall
#define __stdcall __attribute__((stdcall))
#endif
#ifndef __fastcall
#define __fastcall __attribute__((fastcall))
#endif
#ifndef __thiscall
#define __thiscall __attribute__((thiscall))
#endif
";

/// The C file for a batch on `abi`: [`cgen::PRELUDE`], [`CONVENTIONS`], then one caller per
/// case (see the [module documentation](self)).
///
/// Also answers, per case, the first and last line of its caller (to attribute compiler
/// messages).
pub fn c_source(abi: Abi, cases: &[Prepared]) -> (String, Vec<(usize, usize)>) {
    let mut out = format!(
        "/* backcall compiler oracle: {} cases for {abi} (generated; see \
         oracle/src/callers.rs) */\n",
        cases.len()
    );
    out.push_str(cgen::PRELUDE);
    out.push_str(cgen::va_list_typedef(abi));
    out.push_str(CONVENTIONS);
    let mut lines = Vec::with_capacity(cases.len());
    let mut line = out.lines().count();
    for p in cases {
        let mut caller = String::from("\n");
        write_caller(abi, p, &mut caller);
        if let Some(conv) = p.target {
            write_target(abi, p, conv, &mut caller);
        }
        let count = caller.lines().count();
        lines.push((line + 2, line + count));
        line += count;
        out.push_str(&caller);
    }
    (out, lines)
}

/// The name of case `n`'s caller function.
pub fn caller_name(n: usize) -> String {
    format!("bc_case_{n}")
}

/// The name of case `n`'s result buffer.
pub fn result_name(n: usize) -> String {
    format!("bc_ret_{n}")
}

/// The name of case `n`'s `long long bc_argw_N[args]`: C's own conversion of each integer
/// argument ([`widened`]) to `long long`, from the value in memory (0 for the others).
pub fn arg_wide_name(n: usize) -> String {
    format!("bc_argw_{n}")
}

/// The name of case `n`'s `long long bc_retw_N[2]` for an integer result ([`widened`]): the
/// call's value converted to `long long` straight from the call (`[0]`: the compiler may use
/// the result register as the ABI promises it, extended or not) and from the stored result
/// (`[1]`: the compiler extends it itself).
pub fn ret_wide_name(n: usize) -> String {
    format!("bc_retw_{n}")
}

/// The name of case `n`'s typed-route target, `R bc_target_N(void *env, args…)`: compiled C
/// that records what it received (written when [`Prepared::target`] is set).
pub fn target_name(n: usize) -> String {
    format!("bc_target_{n}")
}

/// The name of the `void *` where case `n`'s target stores the `env` it received.
pub fn env_name(n: usize) -> String {
    format!("bc_env_{n}")
}

/// The name of the bytes case `n`'s target received: every argument's bytes, one after the
/// other (argument `i` at the sum of the sizes before it).
pub fn got_name(n: usize) -> String {
    format!("bc_got_{n}")
}

/// The name of `long long bc_gotw_N[args]`: the target's own conversion of each integer
/// argument it received ([`widened`]), as [`arg_wide_name`] is the caller's.
pub fn got_wide_name(n: usize) -> String {
    format!("bc_gotw_{n}")
}

/// Whether a value of this layout is an integer C converts to `long long` in the oracle's
/// callers (every integer scalar, `_Bool` and `char` included; not pointers or floats): its
/// widening shows the extension a caller relies on and the signedness C gives it. Not an
/// `__int128`, which `long long` cannot hold.
pub fn widened(layout: &Layout) -> bool {
    layout.scalar().is_some_and(|s| !s.is_float() && s != Scalar::Pointer) && layout.size <= 8
}

fn hex_list(bytes: &[u8]) -> String {
    let items: Vec<String> = bytes.iter().map(|b| format!("0x{b:02x}")).collect();
    items.join(", ")
}

fn write_caller(abi: Abi, p: &Prepared, out: &mut String) {
    let n = p.index;
    let sig = &p.case.signature;
    let _ = writeln!(out, "/* case {n}: {} */", sig.to_string().replace("*/", "* /"));
    let void_ret = matches!(p.ret.shape, Shape::Void);
    if !void_ret {
        let _ = writeln!(out, "unsigned char {}[{}];", result_name(n), p.ret.size);
    }
    let wide_args: Vec<usize> = (0..p.args.len()).filter(|&i| widened(&p.args[i])).collect();
    if !wide_args.is_empty() {
        let _ = writeln!(out, "long long {}[{}];", arg_wide_name(n), p.args.len());
    }
    let wide_ret = widened(&p.ret);
    if wide_ret {
        let _ = writeln!(out, "long long {}[2];", ret_wide_name(n));
    }
    let _ = writeln!(out, "void {}(void (*bc_fp)(void)) {{", caller_name(n));
    // One printer for the function's scope: a tag is defined on its first use only.
    let mut printer = cgen::TypePrinter::new();
    let mut types: Vec<(String, &Type, &Layout)> = Vec::new();
    types.push(("bc_r".into(), &sig.ret, &p.ret));
    for (i, (ty, layout)) in p.case.arg_types().zip(&p.args).enumerate() {
        types.push((format!("bc_a{i}"), ty, layout));
    }
    for (name, ty, layout) in &types {
        let declaration = printer.declaration(ty, name);
        for line in printer.take_definitions().lines() {
            let _ = writeln!(out, "  {line}");
        }
        let _ = writeln!(out, "  typedef {declaration};");
        for fact in cgen::layout_facts(name, layout) {
            let _ = writeln!(out, "  {}", fact.static_assert());
        }
    }
    let conv = sig.conv.keyword().map(|k| format!("{k} ")).unwrap_or_default();
    let params: Vec<String> = (0..sig.args.len()).map(|i| format!("bc_a{i}")).collect();
    let params = match (params.is_empty(), sig.variadic) {
        (true, false) => "void".to_string(),
        (true, true) => "...".to_string(),
        (false, false) => params.join(", "),
        (false, true) => format!("{}, ...", params.join(", ")),
    };
    let _ = writeln!(out, "  typedef bc_r ({conv}*bc_f)({params});");
    for (i, layout) in p.args.iter().enumerate() {
        let bytes = arg_graffiti(abi, i, layout);
        let _ = writeln!(
            out,
            "  union {{ bc_a{i} v; unsigned char b[{}]; }} a{i} = {{ .b = {{ {} }} }};",
            layout.size,
            hex_list(&bytes)
        );
    }
    for &i in &wide_args {
        // C's conversion of the argument's value, read from memory: the reference for the
        // handler's integer getters (the signedness of `char`, `_Bool` as 0 or 1).
        let _ = writeln!(out, "  {}[{i}] = (long long)a{i}.v;", arg_wide_name(n));
    }
    let call_args: Vec<String> = (0..p.args.len()).map(|i| format!("a{i}.v")).collect();
    let call = format!("((bc_f)bc_fp)({})", call_args.join(", "));
    if void_ret {
        let _ = writeln!(out, "  {call};");
        out.push_str("}\n");
        return;
    }
    let size = p.ret.size;
    let _ = writeln!(out, "  union {{ bc_r v; unsigned char b[{size}]; }} r;");
    if wide_ret {
        // Converted straight from the call: where the ABI promises an extended register, the
        // compiler uses it as it is.
        let _ = writeln!(out, "  long long w = {call};");
        let _ = writeln!(out, "  r.v = (bc_r)w;");
    } else {
        let _ = writeln!(out, "  r.v = {call};");
    }
    // volatile: a plain copy loop may become a call to memcpy, and this file has no libc.
    let _ = writeln!(
        out,
        "  for (unsigned i = 0; i < {size}; i++) ((volatile unsigned char *){})[i] = r.b[i];",
        result_name(n)
    );
    if wide_ret {
        let wide = ret_wide_name(n);
        let _ = writeln!(out, "  union {{ bc_r v; unsigned char b[{size}]; }} m;");
        let _ = writeln!(
            out,
            "  for (unsigned i = 0; i < {size}; i++) m.b[i] = ((volatile unsigned char *){})[i];",
            result_name(n)
        );
        let _ = writeln!(out, "  {wide}[0] = w;");
        let _ = writeln!(out, "  {wide}[1] = (long long)m.v;");
    }
    out.push_str("}\n");
}

/// `ty` with every struct and union tag dropped (the same layout): the targets' types live at
/// file scope, where two cases' tags could clash.
fn untagged(ty: &Type) -> Type {
    match ty {
        Type::Aggregate(agg) => Type::Aggregate(std::sync::Arc::new(backcall_abi::Aggregate {
            kind: agg.kind,
            tag: None,
            fields: agg
                .fields
                .iter()
                .map(|f| backcall_abi::Field { ty: untagged(&f.ty), ..f.clone() })
                .collect(),
            ..(**agg).clone()
        })),
        Type::Array(elem, n) => Type::Array(Box::new(untagged(elem)), *n),
        other => other.clone(),
    }
}

/// Case `n`'s target: receives `env` and the arguments under `conv`, records them, and returns
/// the result graffiti.
fn write_target(abi: Abi, p: &Prepared, conv: Convention, out: &mut String) {
    let n = p.index;
    let sig = &p.case.signature;
    let t = |what: &str| format!("bc_t{n}_{what}");
    // (file scope: the out-of-line records of each case get tags of their own)
    let mut printer = cgen::TypePrinter::with_prefix(&t(""));
    let types = std::iter::once((&sig.ret, t("r")));
    let types = types.chain(sig.args.iter().enumerate().map(|(i, ty)| (ty, t(&format!("a{i}")))));
    for (ty, name) in types {
        let declaration = printer.declaration(&untagged(ty), &name);
        out.push_str(&printer.take_definitions());
        let _ = writeln!(out, "typedef {declaration};");
    }
    let total: u32 = p.args.iter().map(|l| l.size).sum();
    let _ = writeln!(out, "void *{};", env_name(n));
    let _ = writeln!(out, "unsigned char {}[{}];", got_name(n), total.max(1));
    let _ = writeln!(out, "long long {}[{}];", got_wide_name(n), p.args.len().max(1));
    let keyword = conv.keyword().map(|k| format!("{k} ")).unwrap_or_default();
    let mut params = vec!["void *env".to_string()];
    params.extend((0..sig.args.len()).map(|i| format!("{} x{i}", t(&format!("a{i}")))));
    let _ = writeln!(out, "{} {keyword}{}({}) {{", t("r"), target_name(n), params.join(", "));
    let _ = writeln!(out, "  {} = env;", env_name(n));
    let mut at = 0;
    for (i, layout) in p.args.iter().enumerate() {
        let size = layout.size;
        let _ = writeln!(
            out,
            "  {{ union {{ {} v; unsigned char b[{size}]; }} u; u.v = x{i}; \
             for (unsigned i = 0; i < {size}; i++) ((volatile unsigned char *){})[{at} + i] = u.b[i]; }}",
            t(&format!("a{i}")),
            got_name(n)
        );
        if widened(layout) {
            let _ = writeln!(out, "  {}[{i}] = (long long)x{i};", got_wide_name(n));
        }
        at += size;
    }
    if matches!(p.ret.shape, Shape::Void) {
        out.push_str("}\n");
        return;
    }
    let returned = p.case.returned_bytes(abi, &p.ret);
    let _ = writeln!(
        out,
        "  union {{ {} v; unsigned char b[{}]; }} r = {{ .b = {{ {} }} }};",
        t("r"),
        p.ret.size,
        hex_list(&returned)
    );
    out.push_str("  return r.v;\n}\n");
}
