# x86-64 System V shared code, at offset 0 of every code page (abi/src/thunks.rs): the two
# entries of the context route, the resume point, return_from_context, and the typed stubs.
# A thunk jumps to its record's target with r10 = the record (slot word, target).
#
# The entries (`bc_entry` spills every argument register, `bc_entry_int` only the integer
# ones: the runtime picks by the plan) build a CallbackContext on their own stack, call the
# dispatcher (its address is the data page's first word) as
# `ReturnCode dispatch(CallbackContext *ctx)`, then return the result areas in rax, rdx, xmm0,
# xmm1, and an x87 `long double` in st(0). Loading all four registers is right for every
# code (the caller reads only what the signature says); st(0) is loaded for RC_LONG_DOUBLE
# alone. Entered with
#   r10 = the record, [rsp] = return address into the C caller,
#   rdi rsi rdx rcx r8 r9 / xmm0-xmm7 = argument registers, [rsp + 8] = first stack argument.
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
# The typed stubs (`bc_stub_shift_<k>`) serve callbacks whose Rust type is known: the slot
# word becomes a new first argument in front of the k integer register arguments of the C
# signature (each moved up one register; float registers stay), and the stub tail-jumps to
# the slot's typed entry: the slot's first word is its handler's vtable (tag bits below
# SLOT_TAGS masked off), whose VTABLE_TYPED_ENTRY word is the entry. The return comes straight
# from the typed entry to the C caller. Each stub falls through to the next shorter one.
# rax is free at a call of a function that is not variadic (§3.2.3: al counts vector
# registers only for variadic calls).
#
# Memory operands use exactly one constant or a plain number, never arithmetic on a symbol
# (keystone drops the minus of `[reg - SYM]`, the scale of `[reg + SYM*2]`, and encodes
# `[reg + SYM + 8]` with a disp32 where clang uses a disp8). The constants come from the
# generated abi/asm/constants/x86_64.s.

    .intel_syntax noprefix

    .set FRAME_SIZE, CTX_SIZE + 8   # context + 8 bytes of padding: entry rsp is 8 mod 16, so
                                    # push rbp + 5 pushes + FRAME_SIZE leave rsp 16-aligned
    .set FRAME_SAVED, -40           # rbp offset of the last saved register (r15)
    .set dispatch_word, bc_entry + PAGE_SIZE    # the data page's first word

bc_entry:
    .byte 0xf3, 0x0f, 0x1e, 0xfa                # endbr64: reached by a thunk's indirect jmp
    push rbp                                    # standard frame: unwinders and debuggers see
    mov rbp, rsp                                # a normal function
    push rbx                                    # callee-saved registers: bc_resume restores
    push r12                                    # them from this frame, so they survive even a
    push r13                                    # dispatcher left through return_from_context
    push r14
    push r15
    sub rsp, FRAME_SIZE                         # the context; rsp is now 16-aligned
    movsd qword ptr [rsp + CTX_FLOAT_REGS], xmm0 # low 64 bits: a float or a double
    movsd qword ptr [rsp + CTX_FLOAT_REGS_1], xmm1
    movsd qword ptr [rsp + CTX_FLOAT_REGS_2], xmm2
    movsd qword ptr [rsp + CTX_FLOAT_REGS_3], xmm3
    movsd qword ptr [rsp + CTX_FLOAT_REGS_4], xmm4
    movsd qword ptr [rsp + CTX_FLOAT_REGS_5], xmm5
    movsd qword ptr [rsp + CTX_FLOAT_REGS_6], xmm6
    movsd qword ptr [rsp + CTX_FLOAT_REGS_7], xmm7
    jmp spill_ints

bc_entry_int:
    .byte 0xf3, 0x0f, 0x1e, 0xfa                # endbr64; the same frame as bc_entry
    push rbp
    mov rbp, rsp
    push rbx
    push r12
    push r13
    push r14
    push r15
    sub rsp, FRAME_SIZE
spill_ints:
    # Argument registers, in the ABI's order (int_regs[0..6]).
    mov qword ptr [rsp + CTX_INT_REGS], rdi
    mov qword ptr [rsp + CTX_INT_REGS_1], rsi
    mov qword ptr [rsp + CTX_INT_REGS_2], rdx
    mov qword ptr [rsp + CTX_INT_REGS_3], rcx
    mov qword ptr [rsp + CTX_INT_REGS_4], r8
    mov qword ptr [rsp + CTX_INT_REGS_5], r9

    # Bookkeeping. The dispatcher fills in the rest (thunk, previous, callee_pop, results).
    mov qword ptr [rsp + CTX_RECORD], r10
    lea rax, [rbp + 16]                         # entry rsp + 8: above the return address
    mov qword ptr [rsp + CTX_STACK_ARGS], rax
    mov qword ptr [rsp + CTX_SAVED_SP], rsp     # = ctx: the stack pointer bc_resume runs with
    mov qword ptr [rsp + CTX_SAVED_FP], rbp     # the frame bc_resume restores from
    lea rax, [rip + bc_resume]                  # position-independent: pages live anywhere
    mov qword ptr [rsp + CTX_RESUME], rax

    mov rdi, rsp                                # dispatch(ctx); the ReturnCode comes back in
    call qword ptr [rip + dispatch_word]        # eax (unused here: see the header)
bc_page_ref_dispatch:

bc_resume:
    # Reached by the dispatcher's return, or by return_from_context's jmp with rsp = saved_sp,
    # rbp = saved_fp, eax = code.
    .byte 0xf3, 0x0f, 0x1e, 0xfa                # endbr64: an indirect-jump target
    cmp eax, RC_COMPLEX_LONG_DOUBLE             # §3.2.3 COMPLEX_X87: the imaginary part
    jne resume_not_complex                      # (bytes 16..26) goes in st(1), below the
    fld tbyte ptr [rsp + CTX_RESULT_FLOAT_1]    # real part (slot 1 starts at byte 16)
    jmp resume_x87
resume_not_complex:
    cmp eax, RC_LONG_DOUBLE                     # §3.2.3 class X87: the result goes in st(0)
    jne resume_registers                        # (pushed only then: the x87 stack must keep
resume_x87:                                     # its depth otherwise); its 10 bytes
    fld tbyte ptr [rsp + CTX_RESULT_FLOAT]
resume_registers:
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
    # Unwinds to ctx's entry frame and returns from it (a longjmp).
    .byte 0xf3, 0x0f, 0x1e, 0xfa                # endbr64: called through a function pointer
    mov rsp, qword ptr [rdi + CTX_SAVED_SP]     # the context is at saved_sp, as bc_resume expects
    mov rbp, qword ptr [rdi + CTX_SAVED_FP]
    mov eax, esi                                # the code, as if the dispatcher had returned it
    jmp qword ptr [rdi + CTX_RESUME]            # to bc_resume

    # The typed stubs: rdi rsi rdx rcx r8 r9 each move up one register (psABI §3.2.3: integer
    # arguments take the next of these six); endbr64 is a no-op when fallen into.
bc_stub_shift_5:
    .byte 0xf3, 0x0f, 0x1e, 0xfa
    mov r9, r8
bc_stub_shift_4:
    .byte 0xf3, 0x0f, 0x1e, 0xfa
    mov r8, rcx
bc_stub_shift_3:
    .byte 0xf3, 0x0f, 0x1e, 0xfa
    mov rcx, rdx
bc_stub_shift_2:
    .byte 0xf3, 0x0f, 0x1e, 0xfa
    mov rdx, rsi
bc_stub_shift_1:
    .byte 0xf3, 0x0f, 0x1e, 0xfa
    mov rsi, rdi
bc_stub_shift_0:
    .byte 0xf3, 0x0f, 0x1e, 0xfa
    mov rdi, qword ptr [r10]                    # the slot word: the new first argument
    mov rax, qword ptr [rdi + SLOT_STATE]       # the handler's vtable | tags
    and rax, -8                                 # ~SLOT_TAGS
    jmp qword ptr [rax + VTABLE_TYPED_ENTRY]    # the handler's typed entry
