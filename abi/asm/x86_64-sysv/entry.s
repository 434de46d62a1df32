# x86-64 System V thunkEntry, the resume point, return_from_context and the dispatcher literal.
# One copy per code page, at offset 0 (abi/src/thunks.rs); every thunk of the page jumps here.
#
# Entered by `jmp` from a thunk with
#   r10 = slot id, [rsp] = return address into the C caller,
#   rdi rsi rdx rcx r8 r9 / xmm0-xmm7 = argument registers, [rsp + 8] = first stack argument.
# Builds a CallbackContext on its own stack, calls the dispatcher (patched into
# bc_dispatch_literal) as `ReturnCode dispatch(CallbackContext *ctx)`, then returns the result
# areas in rax, rdx, xmm0, xmm1. SysV needs no switch on the ReturnCode: loading all four
# registers is right for every code (the caller reads only what the signature says).
#
# Frame while the dispatcher runs (rsp is 16-aligned at the call):
#   [rbp + 16]          first stack argument            (ctx.stack_args)
#   [rbp + 8]           return address into the caller
#   [rbp]               caller's rbp                     (rbp = ctx.saved_fp)
#   [rbp - 8 ... - 40]  saved rbx, r12, r13, r14, r15
#   [rbp - 48]          8 bytes of padding for alignment
#   [rsp]               the CallbackContext, CTX_SIZE bytes (rsp = ctx = ctx.saved_sp)
# The context sits exactly at the saved stack pointer, so bc_resume finds the result areas at
# [rsp + ...] whether it is reached by the dispatcher's return or by return_from_context.
#
# Symbols the generator reads: bc_thunk_entry (must be 0), bc_resume, bc_return_from_context,
# bc_dispatch_literal; and every CTX_* constant, which it checks against
# ContextLayout::for_word(8) (abi/src/context.rs).

    .intel_syntax noprefix

    # CallbackContext offsets for 8-byte words (abi/src/context.rs). CTX_<FIELD>_<i> is slot i
    # of an area. Memory operands use exactly one such constant or a plain number, never
    # arithmetic on a symbol: keystone drops the minus of `[reg - SYM]`, ignores the scale of
    # `[reg + SYM*2]` and encodes `[reg + SYM + 8]` with a disp32 where clang uses a disp8.
    .set CTX_THUNK, 0
    .set CTX_SLOT, 8
    .set CTX_STACK_ARGS, 16
    .set CTX_SAVED_SP, 24
    .set CTX_SAVED_FP, 32
    .set CTX_RESUME, 40
    .set CTX_PREVIOUS, 48
    .set CTX_CALLEE_POP, 56
    .set CTX_INT_REGS, 64
    .set CTX_INT_REGS_1, CTX_INT_REGS + 8
    .set CTX_INT_REGS_2, CTX_INT_REGS + 16
    .set CTX_INT_REGS_3, CTX_INT_REGS + 24
    .set CTX_INT_REGS_4, CTX_INT_REGS + 32
    .set CTX_INT_REGS_5, CTX_INT_REGS + 40
    .set CTX_FLOAT_REGS, 144
    .set CTX_FLOAT_REGS_1, CTX_FLOAT_REGS + 8
    .set CTX_FLOAT_REGS_2, CTX_FLOAT_REGS + 16
    .set CTX_FLOAT_REGS_3, CTX_FLOAT_REGS + 24
    .set CTX_FLOAT_REGS_4, CTX_FLOAT_REGS + 32
    .set CTX_FLOAT_REGS_5, CTX_FLOAT_REGS + 40
    .set CTX_FLOAT_REGS_6, CTX_FLOAT_REGS + 48
    .set CTX_FLOAT_REGS_7, CTX_FLOAT_REGS + 56
    .set CTX_RESULT_INT, 208
    .set CTX_RESULT_INT_1, CTX_RESULT_INT + 8
    .set CTX_RESULT_FLOAT, 224
    .set CTX_RESULT_FLOAT_1, CTX_RESULT_FLOAT + 8
    .set CTX_RESULT_FLOAT_2, CTX_RESULT_FLOAT + 16
    .set CTX_RESULT_FLOAT_3, CTX_RESULT_FLOAT + 24
    .set CTX_SIZE, 256

    .set FRAME_SIZE, CTX_SIZE + 8   # context + 8 bytes of padding: entry rsp is 8 mod 16, so
                                    # push rbp + 5 pushes + FRAME_SIZE leave rsp 16-aligned
    .set FRAME_SAVED, -40           # rbp offset of the last saved register (r15)

bc_thunk_entry:
    .byte 0xf3, 0x0f, 0x1e, 0xfa                # endbr64 (reached by a direct jmp: harmless)
    push rbp                                    # standard frame: unwinders and debuggers see
    mov rbp, rsp                                # a normal function
    push rbx                                    # callee-saved registers: bc_resume restores
    push r12                                    # them from this frame, so they survive even a
    push r13                                    # dispatcher left through return_from_context
    push r14
    push r15
    sub rsp, FRAME_SIZE                         # the context; rsp is now 16-aligned

    # Argument registers, in the ABI's order (int_regs[0..6], float_regs[0..8]).
    mov qword ptr [rsp + CTX_INT_REGS], rdi
    mov qword ptr [rsp + CTX_INT_REGS_1], rsi
    mov qword ptr [rsp + CTX_INT_REGS_2], rdx
    mov qword ptr [rsp + CTX_INT_REGS_3], rcx
    mov qword ptr [rsp + CTX_INT_REGS_4], r8
    mov qword ptr [rsp + CTX_INT_REGS_5], r9
    movsd qword ptr [rsp + CTX_FLOAT_REGS], xmm0 # low 64 bits: a float or a double
    movsd qword ptr [rsp + CTX_FLOAT_REGS_1], xmm1
    movsd qword ptr [rsp + CTX_FLOAT_REGS_2], xmm2
    movsd qword ptr [rsp + CTX_FLOAT_REGS_3], xmm3
    movsd qword ptr [rsp + CTX_FLOAT_REGS_4], xmm4
    movsd qword ptr [rsp + CTX_FLOAT_REGS_5], xmm5
    movsd qword ptr [rsp + CTX_FLOAT_REGS_6], xmm6
    movsd qword ptr [rsp + CTX_FLOAT_REGS_7], xmm7

    # Bookkeeping.
    mov qword ptr [rsp + CTX_SLOT], r10         # already zero-extended by the thunk's 32-bit mov
    lea rax, [rbp + 16]                         # entry rsp + 8: above the return address
    mov qword ptr [rsp + CTX_STACK_ARGS], rax
    mov qword ptr [rsp + CTX_SAVED_SP], rsp     # = ctx: the stack pointer bc_resume runs with
    mov qword ptr [rsp + CTX_SAVED_FP], rbp     # the frame bc_resume restores from
    lea rax, [rip + bc_resume]                  # position-independent: pages live anywhere
    mov qword ptr [rsp + CTX_RESUME], rax

    # Zero what the dispatcher fills in, so one that writes nothing returns zeros.
    xor eax, eax
    mov qword ptr [rsp + CTX_THUNK], rax
    mov qword ptr [rsp + CTX_PREVIOUS], rax
    mov qword ptr [rsp + CTX_CALLEE_POP], rax
    mov qword ptr [rsp + CTX_RESULT_INT], rax
    mov qword ptr [rsp + CTX_RESULT_INT_1], rax
    mov qword ptr [rsp + CTX_RESULT_FLOAT], rax
    mov qword ptr [rsp + CTX_RESULT_FLOAT_1], rax
    mov qword ptr [rsp + CTX_RESULT_FLOAT_2], rax
    mov qword ptr [rsp + CTX_RESULT_FLOAT_3], rax

    mov rdi, rsp                                # dispatch(ctx); the ReturnCode comes back in
    call qword ptr [rip + bc_dispatch_literal]  # eax (unused here: see the header)

bc_resume:
    # Reached by the dispatcher's return, or by return_from_context's jmp with rsp = saved_sp,
    # rbp = saved_fp, eax = code.
    .byte 0xf3, 0x0f, 0x1e, 0xfa                # endbr64: an indirect-jump target
    mov rax, qword ptr [rsp + CTX_RESULT_INT]   # integer results (or the hidden result
    mov rdx, qword ptr [rsp + CTX_RESULT_INT_1] # pointer, which SysV returns in rax)
    movsd xmm0, qword ptr [rsp + CTX_RESULT_FLOAT] # float results
    movsd xmm1, qword ptr [rsp + CTX_RESULT_FLOAT_1]
    lea rsp, [rbp + FRAME_SAVED]                # drop the context and padding
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret                                         # a plain ret, not `jmp [reg]`: the CET shadow
                                                # stack sees a normal return

bc_return_from_context:
    # void return_from_context(CallbackContext *ctx /* rdi */, ReturnCode code /* esi */)
    # Unwinds to ctx's thunkEntry frame and returns from it (the seed's longjmp).
    .byte 0xf3, 0x0f, 0x1e, 0xfa                # endbr64: called through a function pointer
    mov rsp, qword ptr [rdi + CTX_SAVED_SP]     # the context is at saved_sp, as bc_resume expects
    mov rbp, qword ptr [rdi + CTX_SAVED_FP]
    mov eax, esi                                # the code, as if the dispatcher had returned it
    jmp qword ptr [rdi + CTX_RESUME]            # to bc_resume

    .balign 8, 0xcc                             # int3 padding; the literal is 8-aligned
bc_dispatch_literal:
    .quad 0                                     # address of the dispatcher (patched per page)
