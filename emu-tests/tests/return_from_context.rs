//! `return_from_context(ctx, code)` (ARCHITECTURE.md §5, "Return")
//! on every ABI, emulated with the byte-identical code page.
//!
//! The dispatcher here never returns: like a VM whose handler finishes on another stack, it
//! writes the result areas, clobbers every callee-saved register, moves the stack pointer to a
//! different stack and calls `return_from_context` by the ABI's convention. The C caller must
//! still get the result in its result register(s), its callee-saved registers back, its stack
//! pointer balanced (including an i386 callee pop) — all of which only thunkEntry's own frame can
//! provide, since every frame between it and `return_from_context` is skipped.

use std::cell::Cell;
use std::rc::Rc;

use backcall_abi::context::ContextLayout;
use backcall_abi::thunks::{CodePage, RESUME, RETURN_FROM_CONTEXT};
use backcall_abi::{Abi, RegisterFile, ReturnCode};
use backcall_emu_tests::asm::ArchTools;
use backcall_emu_tests::machine::{
    canary, low_bytes, read_vector, reg_id, vec_canary, write_vector,
};
use unicorn_engine::{Arch, Prot, RegisterARM64 as A, RegisterX86 as X, Unicorn};

const STOP: u64 = 0x0010_0000;
const CODE: u64 = 0x0020_0000;
const DATA: u64 = CODE + PAGE as u64;
const DISPATCH: u64 = 0x0030_0000;
const STACK: u64 = 0x0070_0000;
const VM_STACK: u64 = 0x0080_0000;
const STACK_SIZE: u64 = 0x1_0000;
const PAGE: u32 = 0x1000;

/// What the fake VM writes and what the C caller must receive.
const RESULT_INT: u64 = 0x1234_5678;
const RESULT_INT_1: u64 = 0x0bad_cafe;
const RESULT_DOUBLE: f64 = 2.5;
const SLOT: u32 = 3;

/// One ABI's registers, as this test needs them: the ABI's own register contract
/// (`AbiSpec::registers`) and result registers, by Unicorn id where the test reads them.
struct Regs {
    file: RegisterFile,
    sp: i32,
    /// the integer result register the caller reads
    ret_int: i32,
    /// the float result register the caller reads (i386: none, x87 st(0) is loaded only for the
    /// Float and Double codes)
    ret_float: Option<backcall_abi::Reg>,
}

fn regs(abi: Abi) -> Regs {
    let spec = abi.spec();
    let file = spec.registers();
    Regs {
        file,
        sp: reg_id(file.stack_pointer),
        ret_int: reg_id(spec.int_ret_reg(0).expect("a result register")),
        ret_float: (abi.word_size() == 8).then(|| spec.float_reg(0)).flatten(),
    }
}

fn write_word(uc: &mut Unicorn<'_, ()>, at: u64, word: u32, value: u64) {
    uc.mem_write(at, &value.to_le_bytes()[..word as usize]).unwrap();
}

fn read_word(uc: &Unicorn<'_, ()>, at: u64, word: u32) -> u64 {
    let mut b = [0u8; 8];
    uc.mem_read(at, &mut b[..word as usize]).unwrap();
    u64::from_le_bytes(b)
}

/// The fake VM at the dispatcher's address: fills the result areas of the context it was given,
/// wrecks every callee-saved register, switches stacks and calls `return_from_context(ctx,
/// code)`.
fn vm_dispatch(uc: &mut Unicorn<'_, ()>, abi: Abi, rfc: u64, callee_pop: u64, seen: &Cell<u64>) {
    let word = abi.word_size();
    let w = u64::from(word);
    let r = regs(abi);
    let layout = ContextLayout::for_word(word);
    let sp = uc.reg_read(r.sp).unwrap();
    let ctx = match abi {
        Abi::I386Sysv | Abi::I386Win32 => read_word(uc, sp + 4, 4),
        Abi::X86_64Sysv => uc.reg_read(X::RDI).unwrap(),
        Abi::X86_64Win64 => uc.reg_read(X::RCX).unwrap(),
        Abi::Aarch64Aapcs64 | Abi::Aarch64Apple => uc.reg_read(A::X0).unwrap(),
    };
    seen.set(ctx);
    let record = read_word(uc, ctx + u64::from(layout.record), word);
    let page = CodePage::template(abi, PAGE).unwrap();
    assert_eq!(record, DATA + u64::from(page.thunk_offset(SLOT)), "{abi}: ctx.record");
    assert_eq!(read_word(uc, record, word), u64::from(SLOT), "{abi}: the record's slot word");
    assert_eq!(read_word(uc, ctx + u64::from(layout.saved_sp), word), ctx, "{abi}: saved_sp");
    let resume = read_word(uc, ctx + u64::from(layout.resume), word);
    let blob = backcall_abi::blobs::for_abi(abi).unwrap();
    assert_eq!(resume, CODE + u64::from(blob.symbol(RESUME).unwrap()), "{abi}: ctx.resume");

    let mask = if word == 4 { 0xffff_ffff } else { u64::MAX };
    write_word(uc, ctx + u64::from(layout.result_int), word, RESULT_INT & mask);
    write_word(uc, ctx + u64::from(layout.result_int) + w, word, RESULT_INT_1 & mask);
    let double = RESULT_DOUBLE.to_bits().to_le_bytes();
    uc.mem_write(ctx + u64::from(layout.result_float), &double).unwrap();
    write_word(uc, ctx + u64::from(layout.callee_pop), word, callee_pop);

    for (i, name) in r.file.callee_saved.iter().enumerate() {
        uc.reg_write(reg_id(name), 0xDEAD_0000 | i as u64).unwrap();
    }
    for name in r.file.callee_saved_float {
        write_vector(uc, name, u128::MAX).unwrap();
    }

    // Another stack, as a VM's handler would finish on; then the call by the ABI's convention.
    let code = ReturnCode::Word as u64;
    let vm_sp = VM_STACK + STACK_SIZE - 256;
    let garbage_return = 0xDEAD_0000u64;
    match abi {
        Abi::I386Sysv | Abi::I386Win32 => {
            write_word(uc, vm_sp + 8, 4, code);
            write_word(uc, vm_sp + 4, 4, ctx);
            write_word(uc, vm_sp, 4, garbage_return);
            uc.reg_write(X::ESP, vm_sp).unwrap();
        }
        Abi::X86_64Sysv => {
            uc.reg_write(X::RDI, ctx).unwrap();
            uc.reg_write(X::RSI, code).unwrap();
            write_word(uc, vm_sp - 8, 8, garbage_return);
            uc.reg_write(X::RSP, vm_sp - 8).unwrap();
        }
        Abi::X86_64Win64 => {
            uc.reg_write(X::RCX, ctx).unwrap();
            uc.reg_write(X::RDX, code).unwrap();
            write_word(uc, vm_sp - 8, 8, garbage_return); // below the 32-byte shadow space
            uc.reg_write(X::RSP, vm_sp - 8).unwrap();
        }
        Abi::Aarch64Aapcs64 | Abi::Aarch64Apple => {
            uc.reg_write(A::X0, ctx).unwrap();
            uc.reg_write(A::X1, code).unwrap();
            uc.reg_write(A::X30, garbage_return).unwrap();
            uc.reg_write(A::SP, vm_sp).unwrap();
        }
    }
    uc.set_pc(rfc).unwrap();
}

/// Calls thunk `SLOT` of a fresh code page as a C caller would and lets the fake VM return
/// through `return_from_context`; answers the problems found.
fn run(abi: Abi, callee_pop: u64) -> Vec<String> {
    let (arch, mode) = abi.arch().unicorn();
    let word = abi.word_size();
    let w = u64::from(word);
    let r = regs(abi);
    let page = CodePage::template(abi, PAGE).unwrap();
    let blob = backcall_abi::blobs::for_abi(abi).unwrap();
    let fill = vec![blob.fill; PAGE as usize];
    let mut data = vec![0u8; PAGE as usize];
    page.init_data(&mut data, DISPATCH);
    page.write_record(
        &mut data,
        SLOT,
        u64::from(SLOT),
        CODE + u64::from(page.context_entry(true)),
        0,
    );

    let mut uc = Unicorn::new(arch, mode).unwrap();
    uc.mem_map(STOP, u64::from(PAGE), Prot::READ | Prot::EXEC).unwrap();
    uc.mem_map(CODE, u64::from(PAGE), Prot::READ | Prot::EXEC).unwrap();
    uc.mem_map(DATA, u64::from(PAGE), Prot::READ | Prot::WRITE).unwrap();
    uc.mem_map(DISPATCH, u64::from(PAGE), Prot::READ | Prot::EXEC).unwrap();
    uc.mem_map(STACK, STACK_SIZE, Prot::READ | Prot::WRITE).unwrap();
    uc.mem_map(VM_STACK, STACK_SIZE, Prot::READ | Prot::WRITE).unwrap();
    uc.mem_write(STOP, &fill).unwrap();
    uc.mem_write(CODE, &page.bytes).unwrap();
    uc.mem_write(DATA, &data).unwrap();
    uc.mem_write(DISPATCH, &fill).unwrap();
    if arch == Arch::ARM64 {
        uc.reg_write(A::CPACR_EL1, 3 << 20).unwrap(); // FP/SIMD on
    }

    let seen = Rc::new(Cell::new(0u64));
    let rfc = CODE + u64::from(page.symbol(RETURN_FROM_CONTEXT).unwrap());
    let hook_seen = seen.clone();
    uc.add_code_hook(DISPATCH, DISPATCH, move |uc, _, _| {
        vm_dispatch(uc, abi, rfc, callee_pop, &hook_seen);
    })
    .unwrap();

    // The C caller: canaries in every callee-saved register, one word of stack arguments (what
    // the callee pops, if anything), the return address at STOP.
    let sp_call = STACK + STACK_SIZE - 512;
    for i in 0..4 {
        write_word(&mut uc, sp_call + i * w, word, 0x5700 + i);
    }
    for (i, name) in r.file.callee_saved.iter().enumerate() {
        uc.reg_write(reg_id(name), canary(word, 0, i)).unwrap();
    }
    for (i, name) in r.file.callee_saved_float.iter().enumerate() {
        write_vector(&mut uc, name, vec_canary(0, i)).unwrap();
    }
    match r.file.link_register {
        None => {
            write_word(&mut uc, sp_call - w, word, STOP);
            uc.reg_write(r.sp, sp_call - w).unwrap();
        }
        Some(lr) => {
            uc.reg_write(reg_id(lr), STOP).unwrap();
            uc.reg_write(r.sp, sp_call).unwrap();
        }
    }

    let mut problems = Vec::new();
    let thunk = CODE + u64::from(page.thunk_offset(SLOT));
    if let Err(e) = uc.emu_start(thunk, STOP, 5_000_000, 100_000) {
        problems.push(format!("emulation failed: {e:?} at pc {:#x}", uc.pc_read().unwrap()));
        return problems;
    }
    let pc = uc.pc_read().unwrap();
    if pc != STOP {
        problems.push(format!("stopped at {pc:#x}, not at the caller's return address"));
        return problems;
    }
    if seen.get() == 0 {
        problems.push("the dispatcher was never called".into());
    }
    let mask = if word == 4 { 0xffff_ffff } else { u64::MAX };
    let got = uc.reg_read(r.ret_int).unwrap() & mask;
    if got != RESULT_INT & mask {
        problems.push(format!("result register {got:#x}, expected {RESULT_INT:#x}"));
    }
    if let Some(name) = r.ret_float {
        let got = low_bytes(read_vector(&uc, name).unwrap(), 8) as u64;
        if got != RESULT_DOUBLE.to_bits() {
            problems.push(format!("float result {got:#x}, expected {RESULT_DOUBLE}"));
        }
    }
    for (i, name) in r.file.callee_saved.iter().enumerate() {
        let got = uc.reg_read(reg_id(name)).unwrap() & mask;
        if got != canary(word, 0, i) {
            problems.push(format!("callee-saved register {name}: {got:#x}"));
        }
    }
    let keep = r.file.callee_saved_float_bytes;
    for (i, name) in r.file.callee_saved_float.iter().enumerate() {
        let got = low_bytes(read_vector(&uc, name).unwrap(), keep);
        if got != low_bytes(vec_canary(0, i), keep) {
            problems.push(format!("callee-saved vector register {name}: {got:#x}"));
        }
    }
    let expected_sp = match r.file.link_register {
        None => sp_call + callee_pop,
        Some(_) => sp_call,
    };
    let sp = uc.reg_read(r.sp).unwrap();
    if sp != expected_sp {
        problems.push(format!("sp {sp:#x} after return, expected {expected_sp:#x}"));
    }
    problems
}

#[test]
fn return_from_context_skips_frames_and_restores_the_callers_state() {
    let mut failures = Vec::new();
    for abi in Abi::ALL {
        assert!(backcall_abi::blobs::for_abi(abi).is_some(), "{abi}: no blob");
        let mut pops = vec![0];
        if matches!(abi, Abi::I386Sysv | Abi::I386Win32) {
            pops.push(8); // a stdcall-like callee pop, done by bc_resume after the jump
        }
        for pop in pops {
            for problem in run(abi, pop) {
                failures.push(format!("{abi} (callee pop {pop}): {problem}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
