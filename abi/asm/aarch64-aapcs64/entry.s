// AArch64 shared code (AAPCS64; aarch64-apple runs the same bytes, see
// abi/asm/aarch64-apple/SAME_AS), at offset 0 of every code page (abi/src/thunks.rs): the two
// entries of the context route, the resume point, return_from_context, and the typed stubs.
// A thunk branches to its record's target with x16 = the record (slot word, target).
//
// The entries (`bc_entry` spills every argument register, `bc_entry_int` only x0-x8: the
// runtime picks by the plan) are entered with
//   x16 = the record, x30 = return address into the C caller,
//   x0-x7 / v0-v7 = argument registers, x8 = indirect result address (§6.9),
//   sp = the first stack argument (16-aligned).
// They build a CallbackContext on their own stack, call the dispatcher (its address is the
// data page's first word) as `ReturnCode dispatch(CallbackContext *ctx)`, then return the
// result areas in x0, x1 and q0-q3. Like x86-64 SysV this needs no switch on the ReturnCode:
// loading all six registers is right for every code. An HFA of up to four long doubles comes
// back in q0-q3; one of doubles in d0-d3 and one of floats in s0-s3, the low bits of the same
// registers, which is where the runtime writes a double or a float in its 16-byte slot.
//
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
// The typed stubs (`bc_stub_shift_<k>`, k <= 7) serve callbacks whose Rust type is known: the
// slot word becomes a new first argument in x0 in front of the k integer register arguments of
// the C signature (each moved up one register; x8 and the v registers stay), and the stub
// branches to the typed entry whose address is the slot's first word. Each stub falls through
// to the next shorter one (a `bti` is a no-op when fallen into).
//
// `stp`/`ldp` offsets are multiples of 8 below 512 for x and d registers, of 16 below 1024 for
// q registers (the float slots are 16-aligned), and `str`/`ldr` ones multiples of 8 below
// 32768: every offset here fits. The constants come from the generated
// abi/asm/constants/aarch64.s.

    .set FRAME_SIZE, 160            // x29, x30, x19-x28, d8-d15: 20 registers of 8 bytes
    .set dispatch_word, bc_entry + PAGE_SIZE    // the data page's first word

bc_entry:
    hint #36                                    // bti j: reached by a thunk's `br x17`
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
    stp q0, q1, [sp, #CTX_FLOAT_REGS]           // all 128 bits: a float, a double, an HFA
    stp q2, q3, [sp, #CTX_FLOAT_REGS_2]         // member, or a quad-precision long double
    stp q4, q5, [sp, #CTX_FLOAT_REGS_4]         // (16-byte slots)
    stp q6, q7, [sp, #CTX_FLOAT_REGS_6]
    b spill_ints

bc_entry_int:
    hint #36                                    // bti j; the same frame as bc_entry
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
spill_ints:
    // Argument registers, in the ABI's order (int_regs[0..9]).
    stp x0, x1, [sp, #CTX_INT_REGS]
    stp x2, x3, [sp, #CTX_INT_REGS_2]
    stp x4, x5, [sp, #CTX_INT_REGS_4]
    stp x6, x7, [sp, #CTX_INT_REGS_6]
    str x8, [sp, #CTX_INT_REGS_8]               // the indirect result address (Loc::Int(8))

    // Bookkeeping. The dispatcher fills in the rest (thunk, previous, callee_pop, results).
    str x16, [sp, #CTX_RECORD]
    add x9, x29, #FRAME_SIZE                    // sp at entry: the first stack argument
    str x9, [sp, #CTX_STACK_ARGS]
    mov x9, sp                                  // (sp cannot be the source of a str)
    str x9, [sp, #CTX_SAVED_SP]                 // = ctx: the stack pointer bc_resume runs with
    str x29, [sp, #CTX_SAVED_FP]                // the frame bc_resume restores from
    adr x9, bc_resume                           // position-independent: pages live anywhere
    str x9, [sp, #CTX_RESUME]                   // (a label: keystone mis-encodes a number)

    mov x0, sp                                  // dispatch(ctx); the ReturnCode comes back in
    ldr x17, dispatch_word                      // w0 (unused here: see the header). x17 (IP1)
bc_page_ref_dispatch:
    blr x17                                     // is free scratch at this point

bc_resume:
    // Reached by the dispatcher's return, or by return_from_context's `br x16` with
    // sp = saved_sp, x29 = saved_fp, w0 = code.
    hint #36                                    // bti j: an indirect-branch target
    ldp x0, x1, [sp, #CTX_RESULT_INT]           // integer results (an indirect result needs
    ldp q0, q1, [sp, #CTX_RESULT_FLOAT]         // none: AAPCS64 does not return x8) and float
    ldp q2, q3, [sp, #CTX_RESULT_FLOAT_2]       // results, 128 bits each
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
    // Unwinds to ctx's entry frame and returns from it (a longjmp).
    hint #34                                    // bti c: called through a function pointer
    ldr x16, [x0, #CTX_RESUME]                  // x16: `br x16` may land on bti j (or c)
    ldr x29, [x0, #CTX_SAVED_FP]
    ldr x9, [x0, #CTX_SAVED_SP]                 // the context is at saved_sp, as bc_resume
    mov sp, x9                                  // expects
    mov w0, w1                                  // the code, as if the dispatcher had returned it
    br x16                                      // to bc_resume

    // The typed stubs: x0-x7 each move up one register (§6.8.2: integer arguments take the
    // next of x0-x7).
bc_stub_shift_7:
    hint #36
    mov x7, x6
bc_stub_shift_6:
    hint #36
    mov x6, x5
bc_stub_shift_5:
    hint #36
    mov x5, x4
bc_stub_shift_4:
    hint #36
    mov x4, x3
bc_stub_shift_3:
    hint #36
    mov x3, x2
bc_stub_shift_2:
    hint #36
    mov x2, x1
bc_stub_shift_1:
    hint #36
    mov x1, x0
bc_stub_shift_0:
    hint #36                                    // bti j: reached by a thunk's `br x17`
    ldr x0, [x16]                               // the slot word: the new first argument
    ldr x17, [x0, #SLOT_STATE]                  // the handler's vtable | tags
    and x17, x17, #-8                           // ~SLOT_TAGS
    ldr x17, [x17, #VTABLE_TYPED_ENTRY]         // the handler's typed entry
    br x17
