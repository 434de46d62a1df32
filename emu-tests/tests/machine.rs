//! The emulated machine (ARCHITECTURE.md §1, §6): clang-compiled objects of every format loaded into
//! Unicorn, called by each ABI's convention with canaries in every callee-saved register, and
//! callbacks served by the runtime's own marshalling through the dispatch hook.
//!
//! * `loader_*`: all six triples, `-O0` and `-O2`; no thunk code needed.
//! * `dispatch_*`: all six ABIs; a C stand-in for thunkEntry builds a CallbackContext and calls
//!   the dispatcher address, so the hook, `Frame`, nested emulation and the invariant checks are
//!   exercised before an ABI's real thunkEntry exists.
//! * `thunks_*`: every ABI whose encoded thunk code exists (`backcall_abi::blobs`): compiled C
//!   calls the real thunks.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::Rc;

use backcall::harness::marshal::Frame;
use backcall::harness::memory::Memory;
use backcall::parse_signature;
use backcall_abi::context::ContextLayout;
use backcall_abi::{Abi, ArgPass, CallPlan, Convention, Loc, ReturnCode};
use backcall_emu_tests::guest::Opt;
use backcall_emu_tests::loader::LoadError;
use backcall_emu_tests::machine::{
    Machine, MachineError, Violation, CODE_BASE, DATA_BASE, DISPATCH_ADDR,
};

fn plan(abi: Abi, sig: &str) -> CallPlan {
    let sig = parse_signature(sig).unwrap_or_else(|e| panic!("{sig}: {e}"));
    abi.plan(&sig).unwrap_or_else(|e| panic!("{abi}: {e}"))
}

/// Argument `i` as a word-sized integer, sign-extended.
fn arg(frame: &Frame<'_>, i: usize) -> i64 {
    frame.scalar_bits(i).expect("a scalar argument").1 as i64
}

/// Writes a word-sized integer result.
fn ret(frame: &Frame<'_>, value: i64) -> ReturnCode {
    let size = frame.plan.ret_layout.size as usize;
    frame.write_result(&value.to_le_bytes()[..size])
}

/// Sign-extends a result register value of `abi`'s word size.
fn signed(abi: Abi, v: u64) -> i64 {
    if abi.word_size() == 4 {
        v as u32 as i32 as i64
    } else {
        v as i64
    }
}

fn machine(abi: Abi) -> Machine {
    Machine::new(abi).unwrap_or_else(|e| panic!("{abi}: {e}"))
}

fn load(m: &mut Machine, source: &str, opt: Opt) -> backcall_emu_tests::loader::Image {
    m.load_c(source, opt).unwrap_or_else(|e| panic!("{} {opt:?}: {e}", m.abi()))
}

fn sym(image: &backcall_emu_tests::loader::Image, name: &str) -> u64 {
    image.lookup(name).unwrap_or_else(|| panic!("no `{name}` in {:?}", image.symbols.keys()))
}

// ---------------------------------------------------------------------------------------------
// The loader, on every triple

/// Globals, a static string, a bss struct copied with `memcpy` (from the runtime object), a
/// function pointer in data (an absolute relocation), calls through a relocation, and a
/// floating-point constant (a literal section; `_fltused` on Windows).
const LOADER_C: &str = r#"
typedef __INTPTR_TYPE__ word;
struct Big { word v[24]; };
word counter = 3;
static const char table[] = "abcdefgh";
struct Big big_global;
word helper(word x) { return x * counter + table[2]; }
word (*helper_ptr)(word) = helper;
word entry(word y) {
    struct Big b = big_global;
    b.v[3] = y;
    big_global = b;
    counter += 1;
    return helper_ptr(y) + helper(y) + big_global.v[3];
}
word scaled(word x) { double d = (double)x; d *= 2.5; return (word)d; }
"#;

#[test]
fn loader_links_and_runs_every_format() {
    let mut report = String::new();
    for abi in Abi::ALL {
        for opt in Opt::ALL {
            let mut m = machine(abi);
            let image = load(&mut m, LOADER_C, opt);
            let entry = sym(&image, "entry");
            // counter 3 -> 4: helper(5) = 5 * 4 + 'c' = 119, twice, + 5.
            assert_eq!(m.call(entry, &[5]).unwrap(), 243, "{abi} {opt:?} entry(5)");
            assert_eq!(m.call(entry, &[5]).unwrap(), 253, "{abi} {opt:?} entry(5) again");
            let scaled = sym(&image, "scaled");
            assert_eq!(m.call(scaled, &[4]).unwrap(), 10, "{abi} {opt:?} scaled(4)");
            let counter = sym(&image, "counter");
            assert_eq!(m.mem().read_word(counter, abi.word_size()), 5, "{abi} {opt:?} counter");
            m.assert_invariants();
            let relocs: Vec<_> =
                image.relocations.iter().map(|(k, n)| format!("{k} x{n}")).collect();
            writeln!(report, "{abi} {opt:?}: {}", relocs.join(", ")).unwrap();
        }
    }
    eprintln!("{report}");
}

/// Loads and stores of every width (AArch64's scaled `LDST*` forms, 16-byte vectors for
/// `LDST128`), a tail call (`JUMP26`), symbol + offset references (Mach-O `ADDEND` pairs, ELF
/// addends) in code and in data.
const LOADER_WIDTHS_C: &str = r#"
typedef __INTPTR_TYPE__ word;
typedef int v4 __attribute__((vector_size(16)));
signed char gchar = -3;
short gshort = -300;
int gint = 70000;
word gwords[8] = {1, 2, 3, 4, 5, 6, 7, 8};
v4 gvec = {1, 2, 3, 4};
v4 gvec2;
word *table[2] = {&gwords[3], 0};
word helper2(word x) __attribute__((noinline));
word helper2(word x) { return x * 3; }
word tail(word x) { return helper2(x + 1); }
word store_small(void) { gchar = 9; gshort = 5; gint = 7; return gchar + gshort + gint; }
word read_all(word i) {
    gvec2 = gvec + gvec;
    return gchar + gshort + gint + gwords[5] + gwords[i] + gvec2[3];
}
word *p5(void) { return &gwords[5]; }
word g5(void) { return gwords[5]; }
word via_table(void) { return *table[0]; }
"#;

#[test]
fn loader_applies_addends_and_every_access_width() {
    for abi in Abi::ALL {
        let mut seen = std::collections::BTreeSet::new();
        for opt in Opt::ALL {
            let mut m = machine(abi);
            let image = load(&mut m, LOADER_WIDTHS_C, opt);
            let call = |m: &mut Machine, name: &str, args: &[u64]| {
                let r = m.call(sym(&image, name), args);
                r.unwrap_or_else(|e| panic!("{abi} {opt:?} {name}: {e}"))
            };
            assert_eq!(call(&mut m, "tail", &[4]), 15, "{abi} {opt:?}");
            assert_eq!(call(&mut m, "store_small", &[]), 21, "{abi} {opt:?}");
            assert_eq!(call(&mut m, "read_all", &[2]), 9 + 5 + 7 + 6 + 3 + 8, "{abi} {opt:?}");
            assert_eq!(call(&mut m, "g5", &[]), 6, "{abi} {opt:?}");
            let gwords = sym(&image, "gwords");
            let p5 = call(&mut m, "p5", &[]);
            assert_eq!(p5, gwords + 5 * u64::from(abi.word_size()), "{abi} {opt:?}");
            assert_eq!(call(&mut m, "via_table", &[]), 4, "{abi} {opt:?}");
            m.assert_invariants();
            seen.extend(image.relocations.keys().copied());
        }
        if abi == Abi::Aarch64Aapcs64 {
            for name in ["LDST8", "LDST16", "LDST32", "LDST64", "LDST128", "JUMP26", "CALL26"] {
                let name = format!("R_AARCH64_{name}");
                assert!(
                    seen.iter().any(|s| s.starts_with(&name)),
                    "{name} not exercised: {seen:?}"
                );
            }
        }
    }
}

const LIBRARY_C: &str = r#"
typedef __INTPTR_TYPE__ word;
word shared_counter = 11;
word shared_fn(word x) { return x + shared_counter; }
"#;

const CLIENT_C: &str = r#"
typedef __INTPTR_TYPE__ word;
extern word shared_counter;
word shared_fn(word x);
word client(word x) { shared_counter += 1; return shared_fn(x) * 2; }
"#;

#[test]
fn loader_resolves_symbols_across_objects() {
    // Mach-O reaches another object's data through the GOT (GOT_LOAD_PAGE21/PAGEOFF12).
    for abi in Abi::ALL {
        for opt in Opt::ALL {
            let mut m = machine(abi);
            let lib = load(&mut m, LIBRARY_C, opt);
            let client = load(&mut m, CLIENT_C, opt);
            assert_eq!(m.call(sym(&client, "client"), &[5]).unwrap(), 34, "{abi} {opt:?}");
            assert_eq!(m.mem().read_word(sym(&lib, "shared_counter"), abi.word_size()), 12);
            assert_eq!(m.symbol("shared_fn"), lib.lookup("shared_fn"), "{abi}");
            m.assert_invariants();
        }
    }
}

#[test]
fn loader_fills_a_got_for_position_independent_code() {
    for abi in [Abi::X86_64Sysv, Abi::Aarch64Aapcs64] {
        let mut m = machine(abi);
        m.load_runtime().unwrap();
        let lib = load(&mut m, LIBRARY_C, Opt::O2);
        let object =
            backcall_emu_tests::guest::compile_c_with(abi, CLIENT_C, Opt::O2, &["-fPIC"]).unwrap();
        let client = m.load(&object).unwrap();
        let got: Vec<_> =
            client.relocations.keys().filter(|k| k.contains("GOT")).copied().collect();
        assert!(!got.is_empty(), "{abi}: no GOT relocation in {:?}", client.relocations);
        assert_eq!(m.call(sym(&client, "client"), &[5]).unwrap(), 34, "{abi}");
        assert_eq!(m.mem().read_word(sym(&lib, "shared_counter"), 8), 12);
    }
}

#[test]
fn loader_names_an_undefined_symbol() {
    for abi in Abi::ALL {
        let mut m = machine(abi);
        let src = "int missing_function(int); int f(int x) { return missing_function(x) + 1; }";
        match m.load_c(src, Opt::O2) {
            Err(MachineError::Load(LoadError::Undefined { symbol })) => {
                assert!(symbol.contains("missing_function"), "{abi}: {symbol}");
            }
            other => panic!("{abi}: expected an undefined symbol error, got {other:?}"),
        }
    }
}

#[test]
fn loader_refuses_another_architecture() {
    let object = backcall_emu_tests::guest::compile_c(Abi::Aarch64Aapcs64, "int x;", Opt::O0)
        .expect("compile");
    let mut m = machine(Abi::X86_64Sysv);
    assert!(matches!(m.load(&object), Err(MachineError::Load(LoadError::Architecture { .. }))));
}

// ---------------------------------------------------------------------------------------------
// Invariant checks catch what they should, on every ABI

/// A function that overwrites one callee-saved register behind the compiler's back.
fn clobber_source(abi: Abi) -> &'static str {
    match abi {
        Abi::I386Sysv | Abi::I386Win32 => {
            "void clobber(void) { __asm__ volatile(\"movl $1, %%esi\" ::: \"memory\"); }"
        }
        Abi::X86_64Sysv | Abi::X86_64Win64 => {
            "void clobber(void) { __asm__ volatile(\"movq $1, %%r12\" ::: \"memory\"); }"
        }
        Abi::Aarch64Aapcs64 | Abi::Aarch64Apple => {
            "void clobber(void) { __asm__ volatile(\"mov x21, #1\" ::: \"memory\"); }"
        }
    }
}

#[test]
fn canaries_catch_a_clobbered_callee_saved_register() {
    for abi in Abi::ALL {
        let mut m = machine(abi);
        let image = load(&mut m, clobber_source(abi), Opt::O2);
        m.call(sym(&image, "clobber"), &[]).unwrap();
        let v = m.take_violations();
        let expected = match abi {
            Abi::I386Sysv | Abi::I386Win32 => "esi",
            Abi::X86_64Sysv | Abi::X86_64Win64 => "r12",
            _ => "x21",
        };
        assert!(
            matches!(v.as_slice(), [Violation::CalleeSaved { register, found: 1, .. }] if register.name() == expected),
            "{abi}: {v:?}"
        );
    }
}

#[test]
fn canaries_cover_callee_saved_vector_registers() {
    // Win64: xmm6-xmm15 whole; AArch64: the low 64 bits of v8-v15 (d8-d15) only.
    let cases = [
        (
            Abi::X86_64Win64,
            "void clobber(void) { __asm__ volatile(\"pxor %%xmm7, %%xmm7\" ::: \"memory\"); }",
            Some("xmm7"),
        ),
        (
            Abi::Aarch64Aapcs64,
            "void clobber(void) { __asm__ volatile(\"movi d9, #0\" ::: \"memory\"); }",
            Some("d9"),
        ),
        (
            Abi::Aarch64Apple,
            "void clobber(void) { __asm__ volatile(\"movi d12, #0\" ::: \"memory\"); }",
            Some("d12"),
        ),
        (
            // The upper half of v8 is not preserved by AAPCS64: no violation.
            Abi::Aarch64Aapcs64,
            "void clobber(void) { __asm__ volatile(\"mov v8.d[1], xzr\" ::: \"memory\"); }",
            None,
        ),
        (
            // xmm7 is caller-saved on SysV: no violation.
            Abi::X86_64Sysv,
            "void clobber(void) { __asm__ volatile(\"pxor %%xmm7, %%xmm7\" ::: \"memory\"); }",
            None,
        ),
    ];
    for (abi, src, expected) in cases {
        let mut m = machine(abi);
        let image = load(&mut m, src, Opt::O2);
        m.call(sym(&image, "clobber"), &[]).unwrap();
        let v = m.take_violations();
        match expected {
            Some(reg) => assert!(
                matches!(v.as_slice(), [Violation::CalleeSaved { register, found: 0, .. }] if register.name() == reg),
                "{abi}: {v:?}"
            ),
            None => assert!(v.is_empty(), "{abi}: {v:?}"),
        }
    }
}

#[test]
fn stack_balance_checks_callee_pops_on_i386() {
    let src = "int __attribute__((stdcall)) add(int a, int b) { return a + b; }";
    for abi in [Abi::I386Sysv, Abi::I386Win32] {
        let mut m = machine(abi);
        let image = load(&mut m, src, Opt::O2);
        let add = sym(&image, "add");
        assert_eq!(m.call_conv(add, &[40, 2], Convention::Stdcall).unwrap(), 42);
        m.assert_invariants();
        // Called as cdecl, the callee's `ret $8` leaves the stack 8 bytes higher than expected.
        assert_eq!(m.call(add, &[40, 2]).unwrap(), 42);
        let v = m.take_violations();
        assert!(
            matches!(v.as_slice(), [Violation::StackBalance { expected, found, .. }] if found - expected == 8),
            "{abi}: {v:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The dispatch hook, through a C stand-in for thunkEntry (every ABI)

/// C that builds a CallbackContext (its layout pinned by `_Static_assert`s from
/// [`ContextLayout`]) for a `word (*)(word, word)` call of slot `slot` and calls the dispatcher.
/// Arguments go where `plan` says the thunkEntry would have found them: spilled registers into
/// `int_regs`, stack arguments into a buffer `stack_args` points at.
fn mock_entry_source(abi: Abi, plan: &CallPlan) -> String {
    let l = ContextLayout::for_word(abi.word_size());
    let mut place = String::new();
    for (i, a) in plan.args.iter().enumerate() {
        let ArgPass::Direct(pieces) = &a.pass else { panic!("{abi}: word argument by reference") };
        match pieces[0].loc {
            Loc::Int(r) => writeln!(place, "    c.int_regs[{r}] = (uword)a{i};").unwrap(),
            Loc::Stack(o) => {
                writeln!(place, "    *(word *)((char *)stack + {o}) = a{i};").unwrap();
            }
            other => panic!("{abi}: word argument in {other:?}"),
        }
    }
    let mut asserts = String::new();
    for (name, offset, _) in l.fields() {
        writeln!(
            asserts,
            "_Static_assert(__builtin_offsetof(struct ctx, {name}) == {offset}, \"{name}\");"
        )
        .unwrap();
    }
    format!(
        r#"
typedef __INTPTR_TYPE__ word;
typedef __UINTPTR_TYPE__ uword;
struct ctx {{
    uword thunk, record, stack_args, saved_sp, saved_fp, resume, previous, callee_pop;
    uword int_regs[10];
    uword float_regs[16];               /* 8 slots of two words */
    uword result_int[2];
    uword result_float[8];              /* 4 slots of two words */
}};
{asserts}
typedef unsigned (*dispatch_fn)(struct ctx *);

static word mock(uword slot, word a0, word a1) {{
    struct ctx c;
    /* zeroed word by word: `= {{0}}` of this size becomes a memset/bzero call, which the
       loader does not import */
    for (volatile uword *w = (volatile uword *)&c; w < (volatile uword *)(&c + 1); w++) *w = 0;
    word stack[8] = {{0}};
    uword record[2] = {{slot, 0}};       /* a hand-made record: its first word names the slot */
    c.record = (uword)record;
{place}    c.stack_args = (uword)stack;
    unsigned code = ((dispatch_fn){DISPATCH_ADDR:#x})(&c);
    if (code != {word_code}) return -1000 - (word)code;
    return (word)c.result_int[0];
}}
word thunk0(word a, word b) {{ return mock(0, a, b); }}
word thunk1(word a, word b) {{ return mock(1, a, b); }}
word outer(word x) {{ return thunk1(x, 1) + 1; }}
word twice(word x) {{ return 2 * x; }}
"#,
        word_code = ReturnCode::Word as u32,
    )
}

const WORD2: &str = "intptr_t (*)(intptr_t, intptr_t)";

#[test]
fn dispatch_hook_serves_a_c_thunk_entry() {
    for abi in Abi::ALL {
        for opt in Opt::ALL {
            let p = plan(abi, WORD2);
            let mut m = machine(abi);
            let image = load(&mut m, &mock_entry_source(abi, &p), opt);
            let (thunk0, twice) = (sym(&image, "thunk0"), sym(&image, "twice"));
            let s0 = m.add_slot(p.clone(), |_, f| ret(f, arg(f, 0) + arg(f, 1))).unwrap();
            // Slot 1 calls back into the guest twice, once through slot 0 (nested dispatch).
            let s1 = m
                .add_slot(p.clone(), move |guest, f| {
                    let (a, b) = (arg(f, 0), arg(f, 1));
                    let sum = guest.call(thunk0, &[(a * 10) as u64, b as u64]).expect("thunk0");
                    let doubled = guest.call(twice, &[sum]).expect("twice");
                    ret(f, doubled as i64)
                })
                .unwrap();
            assert_eq!((s0, s1), (0, 1));

            assert_eq!(signed(abi, m.call(thunk0, &[40, 2]).unwrap()), 42, "{abi} {opt:?}");
            assert_eq!(signed(abi, m.call(thunk0, &[(-5i64) as u64, 2]).unwrap()), -3);
            // outer(4) = thunk1(4, 1) + 1 = 2 * thunk0(40, 1) + 1
            assert_eq!(m.call(sym(&image, "outer"), &[4]).unwrap(), 83, "{abi} {opt:?} nested");
            m.assert_invariants();

            let depths: Vec<(u64, u32)> =
                m.dispatches().iter().map(|d| (d.slot, d.depth)).collect();
            assert_eq!(depths, [(0, 1), (0, 1), (0, 2), (1, 1)], "{abi} {opt:?}");
            for d in m.dispatches() {
                assert_eq!(d.code, ReturnCode::Word as u32);
            }
        }
    }
}

#[test]
fn a_panicking_handler_fails_the_call_without_aborting() {
    for abi in Abi::ALL {
        let p = plan(abi, WORD2);
        let mut m = machine(abi);
        let image = load(&mut m, &mock_entry_source(abi, &p), Opt::O2);
        m.add_slot(p, |_, _| panic!("handler says no")).unwrap();
        match m.call(sym(&image, "thunk0"), &[1, 2]) {
            Err(MachineError::HandlerPanicked { slot: 0, message }) => {
                assert!(message.contains("handler says no"));
            }
            other => panic!("{abi}: {other:?}"),
        }
        // The machine is still usable.
        assert_eq!(m.call(sym(&image, "twice"), &[21]).unwrap(), 42);
    }
}

#[test]
fn a_misaligned_dispatch_is_a_violation() {
    // Calls the dispatcher straight from function entry, where rsp is 8 mod 16.
    let abi = Abi::X86_64Sysv;
    let src = format!(
        "__asm__(\".globl misaligned\\nmisaligned:\\n movabs ${DISPATCH_ADDR:#x}, %rax\\n \
         call *%rax\\n ret\\n\");"
    );
    let mut m = machine(abi);
    let image = load(&mut m, &src, Opt::O0);
    m.add_slot(plan(abi, WORD2), |_, f| ret(f, 0)).unwrap();
    let l = ContextLayout::for_word(8);
    let ctx = m.alloc(u64::from(l.size), 16).unwrap();
    // Thunk 0's record names slot 0.
    m.mem().write_word(ctx + u64::from(l.record), 8, m.record_address(0).unwrap());
    m.call(sym(&image, "misaligned"), &[ctx]).unwrap();
    let v = m.take_violations();
    assert!(
        matches!(v.as_slice(), [Violation::Alignment { slot: 0, sp_at_call, required: 16 }] if sp_at_call % 16 == 8),
        "{v:?}"
    );
    assert_eq!(m.dispatches()[0].sp_mod16, 8);
}

#[test]
fn an_unknown_slot_is_a_violation() {
    let abi = Abi::X86_64Sysv;
    let p = plan(abi, WORD2);
    let mut m = machine(abi);
    let image = load(&mut m, &mock_entry_source(abi, &p), Opt::O2);
    // No slot registered: the context names slot 0, which has no callback.
    let _ = m.call(sym(&image, "thunk0"), &[1, 2]).unwrap();
    let v = m.take_violations();
    assert!(matches!(v.as_slice(), [Violation::UnknownSlot { slot: 0, .. }]), "{v:?}");
}

// ---------------------------------------------------------------------------------------------
// Real thunks (ABIs with encoded thunk code)

fn abis_with_thunks() -> Vec<Abi> {
    let abis: Vec<Abi> =
        Abi::ALL.into_iter().filter(|&a| backcall_abi::blobs::for_abi(a).is_some()).collect();
    let missing: Vec<Abi> = Abi::ALL.into_iter().filter(|a| !abis.contains(a)).collect();
    if !missing.is_empty() {
        eprintln!("no thunk code yet for {missing:?}: their thunk tests are skipped");
    }
    abis
}

const CALLERS_C: &str = r#"
typedef __INTPTR_TYPE__ word;
word call2(word (*f)(word, word)) { return f(40, 2) + 1; }

struct P { word a, b, c; };
word call_struct(struct P (*f)(word)) {
    struct P p = f(7);
    return p.a + 10 * p.b + 100 * p.c;
}

word call9(word (*f)(word, word, word, word, word, word, word, word, word)) {
    return f(1, 2, 3, 4, 5, 6, 7, 8, 9);
}

word call_twice(word (*f)(word), word x) { return f(x) + f(x + 1); }
"#;

#[test]
fn thunks_return_what_the_handler_wrote() {
    for abi in abis_with_thunks() {
        for opt in Opt::ALL {
            let mut m = machine(abi);
            let image = load(&mut m, CALLERS_C, opt);
            let add = m.add_callback(plan(abi, WORD2), |f| ret(f, arg(f, 0) + arg(f, 1))).unwrap();
            assert_eq!(m.call(sym(&image, "call2"), &[add]).unwrap(), 43, "{abi} {opt:?}");

            let sp = plan(abi, "struct { intptr_t a, b, c; } (*)(intptr_t)");
            let make = m
                .add_callback(sp, |f| {
                    let w = f.plan.abi.word_size() as usize;
                    let mut bytes = Vec::new();
                    for v in [arg(f, 0) + 1, 2, 3] {
                        bytes.extend_from_slice(&v.to_le_bytes()[..w]);
                    }
                    f.write_result(&bytes)
                })
                .unwrap();
            assert_eq!(m.call(sym(&image, "call_struct"), &[make]).unwrap(), 328, "{abi} {opt:?}");

            let p9 = plan(abi, &format!("intptr_t (*)({})", ["intptr_t"; 9].join(", ")));
            let seen = Rc::new(RefCell::new(Vec::new()));
            let log = seen.clone();
            let nine = m
                .add_callback(p9, move |f| {
                    let args: Vec<i64> = (0..9).map(|i| arg(f, i)).collect();
                    let weighted = args.iter().enumerate().map(|(i, a)| (i as i64 + 1) * a).sum();
                    log.borrow_mut().push(args);
                    ret(f, weighted)
                })
                .unwrap();
            // 1*1 + 2*2 + ... + 9*9
            assert_eq!(m.call(sym(&image, "call9"), &[nine]).unwrap(), 285, "{abi} {opt:?}");
            assert_eq!(seen.borrow().as_slice(), [vec![1, 2, 3, 4, 5, 6, 7, 8, 9]]);

            m.assert_invariants();
            for d in m.dispatches() {
                assert_eq!(d.sp_mod16, 0, "{abi} {opt:?}: {d:?}");
            }
        }
    }
}

#[test]
fn thunks_nest_callback_c_callback() {
    for abi in abis_with_thunks() {
        for opt in Opt::ALL {
            let mut m = machine(abi);
            let image = load(&mut m, CALLERS_C, opt);
            let call2 = sym(&image, "call2");
            let add = m.add_callback(plan(abi, WORD2), |f| ret(f, arg(f, 0) + arg(f, 1))).unwrap();
            // outer callback: x -> call2(add) * x, i.e. it calls C, which calls a callback.
            let outer = m
                .add_nested_callback(plan(abi, "intptr_t (*)(intptr_t)"), move |guest, f| {
                    let inner = guest.call(call2, &[add]).expect("nested call2");
                    ret(f, inner as i64 * arg(f, 0))
                })
                .unwrap();
            // call_twice(outer, 2) = 43 * 2 + 43 * 3
            let got = m.call(sym(&image, "call_twice"), &[outer, 2]).unwrap();
            assert_eq!(got, 215, "{abi} {opt:?}");
            m.assert_invariants();
            let depths: Vec<u32> = m.dispatches().iter().map(|d| d.depth).collect();
            assert_eq!(depths, [2, 1, 2, 1], "{abi} {opt:?}");
        }
    }
}

#[test]
fn the_code_page_is_the_blob_laid_out() {
    for abi in abis_with_thunks() {
        let m = machine(abi);
        let page = m.code_page().expect("a code page");
        let blob = backcall_abi::blobs::for_abi(abi).unwrap();
        let mut guest = vec![0; page.bytes.len()];
        m.mem().read(CODE_BASE, &mut guest);
        assert_eq!(guest, page.bytes, "{abi}: guest code differs from CodePage::template");
        let w = abi.word_size();
        assert_eq!(m.mem().read_word(DATA_BASE, w), DISPATCH_ADDR, "{abi}: the data page");
        assert_eq!(&guest[..blob.entry.len()], blob.entry, "{abi}: the shared code");
        // Thunk 0's record names slot 0 and the full entry until a callback is added.
        let record = m.record_address(0).unwrap();
        assert_eq!(m.mem().read_word(record, w), 0);
        let entry = CODE_BASE + u64::from(page.context_entry(true));
        assert_eq!(m.mem().read_word(record + u64::from(w), w), entry);
    }
}
