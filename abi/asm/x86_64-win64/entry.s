# x86-64 Win64 thunkEntry, the resume point, return_from_context and the dispatcher literal.
# One copy per code page, at offset 0 (abi/src/thunks.rs); every thunk of the page jumps here.
# Rules cited from Microsoft's "x64 calling convention" and "x64 stack usage".
#
# Entered by `jmp` from a thunk with
#   r10 = slot id, [rsp] = return address into the C caller,
#   rcx rdx r8 r9 / xmm0-xmm3 = the four positional argument slots,
#   [rsp + 8 ... + 40] = the caller's shadow (home) space for them, [rsp + 40] = argument 5.
# ctx.stack_args is entry rsp + 8, so Loc::Stack(0..32) is the shadow space and Loc::Stack(32)
# the fifth argument (abi/src/x86_64_win64.rs). Builds a CallbackContext on its own stack,
# calls the dispatcher (patched into bc_dispatch_literal) as `ReturnCode dispatch(
# CallbackContext *ctx)` by the Win64 convention (ctx in rcx, 32 bytes of shadow space), then
# returns the result areas in rax and xmm0. No switch on the ReturnCode is needed: Win64
# returns at most one register (rax, or xmm0 for a float or double; the hidden result pointer
# in rax), and loading both, plus rdx (volatile, so harmless), is right for every code.
#
# Frame while the dispatcher runs (rsp is 16-aligned at the call):
#   [rbp + 16]           the caller's shadow space, then stack arguments (ctx.stack_args)
#   [rbp + 8]            return address into the caller
#   [rbp]                caller's rbp                      (rbp = ctx.saved_fp)
#   [rbp - 8 ... - 56]   saved rbx, rsi, rdi, r12, r13, r14, r15
#   [rbp - 64]           8 bytes of padding for alignment
#   [ctx + SAVED_XMM6 ...] saved xmm6-xmm15, 16 bytes each, 16-aligned (callee-saved in full)
#   [ctx]                the CallbackContext, CTX_SIZE bytes (ctx = ctx.saved_sp)
#   [ctx - 32]           the dispatcher's shadow space (rsp at the call)
# Every register Win64 makes callee-saved (rbx rbp rdi rsi r12-r15 xmm6-xmm15) is saved here
# and restored by bc_resume, because return_from_context may skip the frames (Rust's or a VM's)
# that would otherwise restore them. The context sits exactly at the saved stack pointer, so
# bc_resume finds the result areas at [rsp + ...] whether it is reached by the dispatcher's
# return (after dropping the shadow space) or by return_from_context.
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
    .set CTX_FLOAT_REGS, 144
    .set CTX_FLOAT_REGS_1, CTX_FLOAT_REGS + 8
    .set CTX_FLOAT_REGS_2, CTX_FLOAT_REGS + 16
    .set CTX_FLOAT_REGS_3, CTX_FLOAT_REGS + 24
    .set CTX_RESULT_INT, 208
    .set CTX_RESULT_INT_1, CTX_RESULT_INT + 8
    .set CTX_RESULT_FLOAT, 224
    .set CTX_RESULT_FLOAT_1, CTX_RESULT_FLOAT + 8
    .set CTX_RESULT_FLOAT_2, CTX_RESULT_FLOAT + 16
    .set CTX_RESULT_FLOAT_3, CTX_RESULT_FLOAT + 24
    .set CTX_SIZE, 256

    # The xmm6-xmm15 save area, right above the context (rsp-relative, 16-aligned for movaps).
    .set SAVED_XMM6, CTX_SIZE
    .set SAVED_XMM7, SAVED_XMM6 + 16
    .set SAVED_XMM8, SAVED_XMM6 + 32
    .set SAVED_XMM9, SAVED_XMM6 + 48
    .set SAVED_XMM10, SAVED_XMM6 + 64
    .set SAVED_XMM11, SAVED_XMM6 + 80
    .set SAVED_XMM12, SAVED_XMM6 + 96
    .set SAVED_XMM13, SAVED_XMM6 + 112
    .set SAVED_XMM14, SAVED_XMM6 + 128
    .set SAVED_XMM15, SAVED_XMM6 + 144

    .set FRAME_SIZE, CTX_SIZE + 160 + 8 # context + xmm6-xmm15 + 8 bytes of padding: entry rsp
                                    # is 8 mod 16, so push rbp + 7 pushes + FRAME_SIZE leave
                                    # rsp 16-aligned
    .set FRAME_SAVED, -56           # rbp offset of the last saved register (r15)
    .set SHADOW_SPACE, 32           # home space for the dispatcher's four register slots

bc_thunk_entry:
    .byte 0xf3, 0x0f, 0x1e, 0xfa                # endbr64 (reached by a direct jmp: harmless)
    push rbp                                    # standard frame: unwinders and debuggers see
    mov rbp, rsp                                # a normal function
    push rbx                                    # callee-saved registers: bc_resume restores
    push rsi                                    # them from this frame, so they survive even a
    push rdi                                    # dispatcher left through return_from_context
    push r12
    push r13
    push r14
    push r15
    sub rsp, FRAME_SIZE                         # the context; rsp is now 16-aligned
    movaps xmmword ptr [rsp + SAVED_XMM6], xmm6 # the callee-saved xmm registers, in full
    movaps xmmword ptr [rsp + SAVED_XMM7], xmm7
    movaps xmmword ptr [rsp + SAVED_XMM8], xmm8
    movaps xmmword ptr [rsp + SAVED_XMM9], xmm9
    movaps xmmword ptr [rsp + SAVED_XMM10], xmm10
    movaps xmmword ptr [rsp + SAVED_XMM11], xmm11
    movaps xmmword ptr [rsp + SAVED_XMM12], xmm12
    movaps xmmword ptr [rsp + SAVED_XMM13], xmm13
    movaps xmmword ptr [rsp + SAVED_XMM14], xmm14
    movaps xmmword ptr [rsp + SAVED_XMM15], xmm15

    # The four positional slots: int_regs[0..4] and float_regs[0..4]. Both registers of every
    # slot are spilled; the plan says which one carries the argument.
    mov qword ptr [rsp + CTX_INT_REGS], rcx
    mov qword ptr [rsp + CTX_INT_REGS_1], rdx
    mov qword ptr [rsp + CTX_INT_REGS_2], r8
    mov qword ptr [rsp + CTX_INT_REGS_3], r9
    movsd qword ptr [rsp + CTX_FLOAT_REGS], xmm0 # low 64 bits: a float or a double
    movsd qword ptr [rsp + CTX_FLOAT_REGS_1], xmm1
    movsd qword ptr [rsp + CTX_FLOAT_REGS_2], xmm2
    movsd qword ptr [rsp + CTX_FLOAT_REGS_3], xmm3

    # Bookkeeping.
    mov qword ptr [rsp + CTX_SLOT], r10         # already zero-extended by the thunk's 32-bit mov
    lea rax, [rbp + 16]                         # entry rsp + 8: above the return address, the
    mov qword ptr [rsp + CTX_STACK_ARGS], rax   # start of the caller's shadow space
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

    mov rcx, rsp                                # dispatch(ctx): the first slot
    sub rsp, SHADOW_SPACE                       # the callee's home space; rsp stays 16-aligned
    call qword ptr [rip + bc_dispatch_literal]  # eax = ReturnCode (unused: see the header)
    add rsp, SHADOW_SPACE                       # rsp = ctx again

bc_resume:
    # Reached by the dispatcher's return, or by return_from_context's jmp with rsp = saved_sp,
    # rbp = saved_fp, eax = code.
    .byte 0xf3, 0x0f, 0x1e, 0xfa                # endbr64: an indirect-jump target
    mov rax, qword ptr [rsp + CTX_RESULT_INT]   # the integer result or the hidden result
    mov rdx, qword ptr [rsp + CTX_RESULT_INT_1] # pointer (Win64 returns it in rax)
    movsd xmm0, qword ptr [rsp + CTX_RESULT_FLOAT] # a float or double result
    movaps xmm6, xmmword ptr [rsp + SAVED_XMM6]
    movaps xmm7, xmmword ptr [rsp + SAVED_XMM7]
    movaps xmm8, xmmword ptr [rsp + SAVED_XMM8]
    movaps xmm9, xmmword ptr [rsp + SAVED_XMM9]
    movaps xmm10, xmmword ptr [rsp + SAVED_XMM10]
    movaps xmm11, xmmword ptr [rsp + SAVED_XMM11]
    movaps xmm12, xmmword ptr [rsp + SAVED_XMM12]
    movaps xmm13, xmmword ptr [rsp + SAVED_XMM13]
    movaps xmm14, xmmword ptr [rsp + SAVED_XMM14]
    movaps xmm15, xmmword ptr [rsp + SAVED_XMM15]
    lea rsp, [rbp + FRAME_SAVED]                # drop the context, xmm area and padding
    pop r15
    pop r14
    pop r13
    pop r12
    pop rdi
    pop rsi
    pop rbx
    pop rbp
    ret                                         # a plain ret, not `jmp [reg]`: the CET shadow
                                                # stack sees a normal return

bc_return_from_context:
    # void return_from_context(CallbackContext *ctx /* rcx */, ReturnCode code /* edx */)
    # Unwinds to ctx's thunkEntry frame and returns from it (the seed's longjmp).
    .byte 0xf3, 0x0f, 0x1e, 0xfa                # endbr64: called through a function pointer
    mov rsp, qword ptr [rcx + CTX_SAVED_SP]     # the context is at saved_sp, as bc_resume expects
    mov rbp, qword ptr [rcx + CTX_SAVED_FP]
    mov eax, edx                                # the code, as if the dispatcher had returned it
    jmp qword ptr [rcx + CTX_RESUME]            # to bc_resume

    .balign 8, 0xcc                             # int3 padding; the literal is 8-aligned
bc_dispatch_literal:
    .quad 0                                     # address of the dispatcher (patched per page)
