# x86-64 Win64 shared code, at offset 0 of every code page (abi/src/thunks.rs): the two
# entries of the context route, the resume point, return_from_context, and the typed stubs.
# A thunk jumps to its record's target with r10 = the record (slot word, target). Rules cited
# from Microsoft's "x64 calling convention" and "x64 stack usage".
#
# The entries (`bc_entry` spills every argument register, `bc_entry_int` only rcx rdx r8 r9:
# the runtime picks by the plan) are entered with
#   r10 = the record, [rsp] = return address into the C caller,
#   rcx rdx r8 r9 / xmm0-xmm3 = the four positional argument slots,
#   [rsp + 8 ... + 40] = the caller's shadow (home) space for them, [rsp + 40] = argument 5.
# ctx.stack_args is entry rsp + 8, so Loc::Stack(0..32) is the shadow space and Loc::Stack(32)
# the fifth argument (abi/src/x86_64_win64.rs). They build a CallbackContext on their own
# stack, call the dispatcher (its address is the data page's first word) as
# `ReturnCode dispatch(CallbackContext *ctx)` by the Win64 convention (ctx in rcx, 32 bytes of
# shadow space), then return the result areas in rax and xmm0. No switch on the ReturnCode is
# needed: Win64 returns at most one register (rax, or xmm0 for a float or double; the hidden
# result pointer in rax), and loading both, plus rdx (volatile, so harmless), is right for
# every code.
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
# The typed stubs (`bc_stub_shift_<k>`, k <= 3) serve callbacks whose Rust type is known: the
# slot word becomes a new first argument, and each of the k positional arguments moves up one
# position, integer and float register alike (a position holds one or the other, and moving
# the unused one is harmless); the stub tail-jumps to the slot's typed entry: the slot's first
# word is its handler's vtable (tag bits below SLOT_TAGS masked off), whose VTABLE_TYPED_ENTRY
# word is the entry (rax is volatile and carries no argument). The caller's shadow space holds four slots whatever the argument count,
# so the typed entry's four register arguments have their home space.
#
# Memory operands use exactly one constant or a plain number (keystone traps: see
# emu-tests/src/asm.rs). The constants come from the generated abi/asm/constants/x86_64.s.

    .intel_syntax noprefix

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
    .set dispatch_word, bc_entry + PAGE_SIZE    # the data page's first word

bc_entry:
    .byte 0xf3, 0x0f, 0x1e, 0xfa                # endbr64: reached by a thunk's indirect jmp
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
    movsd qword ptr [rsp + CTX_FLOAT_REGS], xmm0 # low 64 bits: a float or a double
    movsd qword ptr [rsp + CTX_FLOAT_REGS_1], xmm1
    movsd qword ptr [rsp + CTX_FLOAT_REGS_2], xmm2
    movsd qword ptr [rsp + CTX_FLOAT_REGS_3], xmm3
    jmp spill_ints

bc_entry_int:
    .byte 0xf3, 0x0f, 0x1e, 0xfa                # endbr64; the same frame as bc_entry
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
spill_ints:
    mov qword ptr [rsp + CTX_INT_REGS], rcx
    mov qword ptr [rsp + CTX_INT_REGS_1], rdx
    mov qword ptr [rsp + CTX_INT_REGS_2], r8
    mov qword ptr [rsp + CTX_INT_REGS_3], r9

    # Bookkeeping. The dispatcher fills in the rest (thunk, previous, callee_pop, results).
    mov qword ptr [rsp + CTX_RECORD], r10
    lea rax, [rbp + 16]                         # entry rsp + 8: above the return address, the
    mov qword ptr [rsp + CTX_STACK_ARGS], rax   # start of the caller's shadow space
    mov qword ptr [rsp + CTX_SAVED_SP], rsp     # = ctx: the stack pointer bc_resume runs with
    mov qword ptr [rsp + CTX_SAVED_FP], rbp     # the frame bc_resume restores from
    lea rax, [rip + bc_resume]                  # position-independent: pages live anywhere
    mov qword ptr [rsp + CTX_RESUME], rax

    mov rcx, rsp                                # dispatch(ctx): the first slot
    sub rsp, SHADOW_SPACE                       # the callee's home space; rsp stays 16-aligned
    call qword ptr [rip + dispatch_word]        # eax = ReturnCode (unused: see the header)
bc_page_ref_dispatch:
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
    # Unwinds to ctx's entry frame and returns from it (a longjmp).
    .byte 0xf3, 0x0f, 0x1e, 0xfa                # endbr64: called through a function pointer
    mov rsp, qword ptr [rcx + CTX_SAVED_SP]     # the context is at saved_sp, as bc_resume expects
    mov rbp, qword ptr [rcx + CTX_SAVED_FP]
    mov eax, edx                                # the code, as if the dispatcher had returned it
    jmp qword ptr [rcx + CTX_RESUME]            # to bc_resume

    # The typed stubs: position i (rcx/xmm0, rdx/xmm1, r8/xmm2, r9/xmm3) moves to i + 1;
    # endbr64 is a no-op when fallen into.
bc_stub_shift_3:
    .byte 0xf3, 0x0f, 0x1e, 0xfa
    mov r9, r8
    movaps xmm3, xmm2
bc_stub_shift_2:
    .byte 0xf3, 0x0f, 0x1e, 0xfa
    mov r8, rdx
    movaps xmm2, xmm1
bc_stub_shift_1:
    .byte 0xf3, 0x0f, 0x1e, 0xfa
    mov rdx, rcx
    movaps xmm1, xmm0
bc_stub_shift_0:
    .byte 0xf3, 0x0f, 0x1e, 0xfa
    mov rcx, qword ptr [r10]                    # the slot word: the new first argument
    mov rax, qword ptr [rcx + SLOT_STATE]       # the handler's vtable | tags
    and rax, -8                                 # ~SLOT_TAGS
    jmp qword ptr [rax + VTABLE_TYPED_ENTRY]    # the handler's typed entry
