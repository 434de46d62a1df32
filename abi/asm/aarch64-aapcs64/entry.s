// AArch64 thunkEntry (AAPCS64; aarch64-apple uses the same code, see abi/asm/aarch64-apple/
// SAME_AS), the resume point, return_from_context and the dispatcher literal. One copy per code
// page, at offset 0 (abi/src/thunks.rs); every thunk of the page branches here.
//
// Entered by `b` from a thunk with
//   w16 = slot id (zero-extended in x16), x30 = return address into the C caller,
//   x0-x7 / v0-v7 = argument registers, x8 = indirect result address (§6.9),
//   sp = the first stack argument (16-aligned).
// Builds a CallbackContext on its own stack, calls the dispatcher (patched into
// bc_dispatch_literal) as `ReturnCode dispatch(CallbackContext *ctx)`, then returns the result
// areas in x0, x1 and d0-d3. Like x86-64 SysV this needs no switch on the ReturnCode: loading
// all six registers is right for every code. An HFA of up to four doubles comes back in d0-d3;
// one of floats in s0-s3, the low 32 bits of the same registers, which is where the runtime
// writes a float in its 8-byte slot.
//
// Frame while the dispatcher runs (sp is 16-aligned at the call, as it always is on AArch64):
//   [x29 + 160]          first stack argument = sp at entry      (ctx.stack_args)
//   [x29 + 96 ... 152]   saved d8-d15 (their low 64 bits are callee-saved, §6.1.2)
//   [x29 + 16 ... 88]    saved x19-x28
//   [x29 + 8]            x30, the return address into the caller
//   [x29]                caller's x29                             (x29 = ctx.saved_fp)
//   [sp]                 the CallbackContext, CTX_SIZE bytes      (sp = ctx = ctx.saved_sp)
// The context sits exactly at the saved stack pointer, so bc_resume finds the result areas at
// [sp + ...] whether it is reached by the dispatcher's return or by return_from_context. Every
// callee-saved register is saved here and restored by bc_resume, because return_from_context
// may skip the frames (Rust's or a VM's) that would otherwise restore them.
//
// Symbols the generator reads: bc_thunk_entry (must be 0), bc_resume, bc_return_from_context,
// bc_dispatch_literal; and every CTX_* constant, which it checks against
// ContextLayout::for_word(8) (abi/src/context.rs).

    // CallbackContext offsets for 8-byte words (abi/src/context.rs). CTX_<FIELD>_<i> is slot i
    // of an area. As on x86, every memory operand uses exactly one such constant or a plain
    // number. `stp`/`ldp` offsets are multiples of 8 below 512 and `str`/`ldr` ones multiples
    // of 8 below 32768: every offset here fits.
    .set CTX_THUNK, 0
    .set CTX_SLOT, 8
    .set CTX_STACK_ARGS, 16
    .set CTX_SAVED_SP, 24
    .set CTX_SAVED_FP, 32
    .set CTX_RESUME, 40
    .set CTX_PREVIOUS, 48
    .set CTX_CALLEE_POP, 56
    .set CTX_INT_REGS, 64
    .set CTX_INT_REGS_2, CTX_INT_REGS + 16
    .set CTX_INT_REGS_4, CTX_INT_REGS + 32
    .set CTX_INT_REGS_6, CTX_INT_REGS + 48
    .set CTX_INT_REGS_8, CTX_INT_REGS + 64
    .set CTX_FLOAT_REGS, 144
    .set CTX_FLOAT_REGS_2, CTX_FLOAT_REGS + 16
    .set CTX_FLOAT_REGS_4, CTX_FLOAT_REGS + 32
    .set CTX_FLOAT_REGS_6, CTX_FLOAT_REGS + 48
    .set CTX_RESULT_INT, 208
    .set CTX_RESULT_FLOAT, 224
    .set CTX_RESULT_FLOAT_2, CTX_RESULT_FLOAT + 16
    .set CTX_SIZE, 256

    .set FRAME_SIZE, 160            // x29, x30, x19-x28, d8-d15: 20 registers of 8 bytes

bc_thunk_entry:
    // Reached by a direct `b` from a thunk: no BTI landing pad needed.
    stp x29, x30, [sp, #-FRAME_SIZE]!           // standard frame record: unwinders and
    mov x29, sp                                 // debuggers see a normal function
    stp x19, x20, [sp, #16]                     // callee-saved registers: bc_resume restores
    stp x21, x22, [sp, #32]                     // them from this frame, so they survive even a
    stp x23, x24, [sp, #48]                     // dispatcher left through return_from_context
    stp x25, x26, [sp, #64]
    stp x27, x28, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    sub sp, sp, #CTX_SIZE                       // the context; sp stays 16-aligned

    // Argument registers, in the ABI's order (int_regs[0..9], float_regs[0..8]).
    stp x0, x1, [sp, #CTX_INT_REGS]
    stp x2, x3, [sp, #CTX_INT_REGS_2]
    stp x4, x5, [sp, #CTX_INT_REGS_4]
    stp x6, x7, [sp, #CTX_INT_REGS_6]
    str x8, [sp, #CTX_INT_REGS_8]               // the indirect result address (Loc::Int(8))
    stp d0, d1, [sp, #CTX_FLOAT_REGS]           // low 64 bits: a float, a double, or an HFA
    stp d2, d3, [sp, #CTX_FLOAT_REGS_2]         // member
    stp d4, d5, [sp, #CTX_FLOAT_REGS_4]
    stp d6, d7, [sp, #CTX_FLOAT_REGS_6]

    // Bookkeeping.
    str x16, [sp, #CTX_SLOT]                    // already zero-extended by the thunk's ldr w16
    add x9, x29, #FRAME_SIZE                    // sp at entry: the first stack argument
    str x9, [sp, #CTX_STACK_ARGS]
    mov x9, sp                                  // (sp cannot be the source of a str)
    str x9, [sp, #CTX_SAVED_SP]                 // = ctx: the stack pointer bc_resume runs with
    str x29, [sp, #CTX_SAVED_FP]                // the frame bc_resume restores from
    adr x9, bc_resume                           // position-independent: pages live anywhere
    str x9, [sp, #CTX_RESUME]                   // (a label: keystone mis-encodes a number)

    // Zero what the dispatcher fills in, so one that writes nothing returns zeros.
    str xzr, [sp, #CTX_THUNK]
    stp xzr, xzr, [sp, #CTX_PREVIOUS]           // previous, callee_pop
    stp xzr, xzr, [sp, #CTX_RESULT_INT]         // result_int[0..2]
    stp xzr, xzr, [sp, #CTX_RESULT_FLOAT]       // result_float[0..4]
    stp xzr, xzr, [sp, #CTX_RESULT_FLOAT_2]

    mov x0, sp                                  // dispatch(ctx); the ReturnCode comes back in
    ldr x17, bc_dispatch_literal                // w0 (unused here: see the header). x17 (IP1)
    blr x17                                     // is free scratch at this point

bc_resume:
    // Reached by the dispatcher's return, or by return_from_context's `br x16` with
    // sp = saved_sp, x29 = saved_fp, w0 = code.
    hint #36                                    // bti j: an indirect-branch target
    ldp x0, x1, [sp, #CTX_RESULT_INT]           // integer results (an indirect result needs
    ldp d0, d1, [sp, #CTX_RESULT_FLOAT]         // none: AAPCS64 does not return x8) and float
    ldp d2, d3, [sp, #CTX_RESULT_FLOAT_2]       // results
    mov sp, x29                                 // drop the context
    ldp d14, d15, [sp, #144]
    ldp d12, d13, [sp, #128]
    ldp d10, d11, [sp, #112]
    ldp d8, d9, [sp, #96]
    ldp x27, x28, [sp, #80]
    ldp x25, x26, [sp, #64]
    ldp x23, x24, [sp, #48]
    ldp x21, x22, [sp, #32]
    ldp x19, x20, [sp, #16]
    ldp x29, x30, [sp], #FRAME_SIZE
    ret                                         // to x30: a return, as the caller expects

bc_return_from_context:
    // void return_from_context(CallbackContext *ctx /* x0 */, ReturnCode code /* w1 */)
    // Unwinds to ctx's thunkEntry frame and returns from it (the seed's longjmp).
    hint #34                                    // bti c: called through a function pointer
    ldr x16, [x0, #CTX_RESUME]                  // x16: `br x16` may land on bti j (or c)
    ldr x29, [x0, #CTX_SAVED_FP]
    ldr x9, [x0, #CTX_SAVED_SP]                 // the context is at saved_sp, as bc_resume
    mov sp, x9                                  // expects
    mov w0, w1                                  // the code, as if the dispatcher had returned it
    br x16                                      // to bc_resume

    // Both assemblers pad code with `nop` for alignment even when told to fill with 0: the
    // padding (if any) is a nop, never executed (it follows `br`).
    .balign 8
bc_dispatch_literal:
    .quad 0                                     // address of the dispatcher (patched per page)
