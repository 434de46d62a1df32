# i386 thunkEntry (System V; the Win32 conventions use the same one), the resume point,
# return_from_context and the dispatcher literal. One copy per code page, at offset 0
# (abi/src/thunks.rs); every thunk of the page jumps here.
#
# Entered by `jmp` from a thunk with
#   eax = slot id, [esp] = return address into the C caller, [esp + 4] = first stack argument,
#   ecx, edx = fastcall/thiscall register arguments (spilled always; unused under cdecl).
# Builds a CallbackContext on its own stack, calls the dispatcher (patched into
# bc_dispatch_literal) as cdecl `ReturnCode dispatch(CallbackContext *ctx)`, then returns by the
# ReturnCode: Float / Double push result_float[0] on the x87 stack (st(0)); every code loads
# edx:eax from result_int. Finally it pops ctx.callee_pop bytes of stack arguments (stdcall,
# fastcall, thiscall, and the hidden struct-result pointer) like `ret n` with a run-time n.
#
# Frame while the dispatcher runs:
#   [ebp + 8]            first stack argument            (ctx.stack_args)
#   [ebp + 4]            return address into the caller
#   [ebp]                caller's ebp                     (ebp = ctx.saved_fp)
#   [ebp - 4 ... - 12]   saved ebx, esi, edi
#   ...                  0-15 bytes of alignment padding
#   [ctx]                the CallbackContext, CTX_SIZE bytes, 16-aligned (ctx = ctx.saved_sp)
#   [ctx - 12 ... - 4]   padding, so esp is 16-aligned at the call
#   [ctx - 16]           the dispatcher's argument: ctx
# The context sits exactly at the saved stack pointer, so bc_resume finds the result areas at
# [esp + ...] whether it is reached by the dispatcher's return or by return_from_context.
#
# i386 has no eip-relative addressing: `call pic_base; pic_base: pop ebx` reads eip, and the
# resume point and the dispatcher literal are addressed from it (offsets set below; clang
# refuses `label - label` inside a memory operand, so they are named constants).
#
# Symbols the generator reads: bc_thunk_entry (must be 0), bc_resume, bc_return_from_context,
# bc_dispatch_literal; and every CTX_* and RC_* constant, which it checks against
# ContextLayout::for_word(4) (abi/src/context.rs) and ReturnCode (abi/src/plan.rs).

    .intel_syntax noprefix

    # CallbackContext offsets for 4-byte words (abi/src/context.rs). CTX_<FIELD>_<i> is slot i
    # of an area. Memory operands use exactly one such constant or a plain number, never
    # arithmetic on a symbol: keystone drops the minus of `[reg - SYM]`, ignores the scale of
    # `[reg + SYM*2]` and encodes `[reg + SYM + 4]` with a disp32 where clang uses a disp8.
    .set CTX_THUNK, 0
    .set CTX_SLOT, 4
    .set CTX_STACK_ARGS, 8
    .set CTX_SAVED_SP, 12
    .set CTX_SAVED_FP, 16
    .set CTX_RESUME, 20
    .set CTX_PREVIOUS, 24
    .set CTX_CALLEE_POP, 28
    .set CTX_INT_REGS, 32
    .set CTX_INT_REGS_1, CTX_INT_REGS + 4
    .set CTX_FLOAT_REGS, 72
    .set CTX_RESULT_INT, 136
    .set CTX_RESULT_INT_1, CTX_RESULT_INT + 4
    .set CTX_RESULT_FLOAT, 144
    .set CTX_SIZE, 176

    # ReturnCode values bc_resume switches on (abi/src/plan.rs).
    .set RC_DOUBLE, 3
    .set RC_FLOAT, 5

    .set FRAME_SAVED, -12                       # ebp offset of the last saved register (edi)
    .set resume_from_pic, bc_resume - pic_base
    .set literal_from_pic, bc_dispatch_literal - pic_base

bc_thunk_entry:
    .byte 0xf3, 0x0f, 0x1e, 0xfb                # endbr32 (reached by a direct jmp: harmless)
    push ebp                                    # standard frame; ebp also survives the
    mov ebp, esp                                # alignment below
    push ebx                                    # callee-saved registers: bc_resume restores
    push esi                                    # them from this frame, so they survive even a
    push edi                                    # dispatcher left through return_from_context
    sub esp, CTX_SIZE                           # the context ...
    and esp, -16                                # ... 16-aligned (ebp keeps the frame)

    # Register arguments and the slot id, before anything clobbers them.
    mov dword ptr [esp + CTX_INT_REGS], ecx     # fastcall/thiscall argument 0
    mov dword ptr [esp + CTX_INT_REGS_1], edx   # fastcall argument 1
    mov dword ptr [esp + CTX_SLOT], eax         # from the thunk

    # Bookkeeping.
    lea ecx, [ebp + 8]                          # entry esp + 4: above the return address
    mov dword ptr [esp + CTX_STACK_ARGS], ecx
    mov dword ptr [esp + CTX_SAVED_SP], esp     # = ctx: the stack pointer bc_resume runs with
    mov dword ptr [esp + CTX_SAVED_FP], ebp     # the frame bc_resume restores from
    call pic_base                               # push eip; a call to the next instruction is
pic_base:                                       # not recorded on the CET shadow stack
    pop ebx                                     # ebx = address of pic_base
    lea ecx, [ebx + resume_from_pic]
    mov dword ptr [esp + CTX_RESUME], ecx

    # Zero what the dispatcher fills in, so one that writes nothing returns zeros.
    xor ecx, ecx
    mov dword ptr [esp + CTX_THUNK], ecx
    mov dword ptr [esp + CTX_PREVIOUS], ecx
    mov dword ptr [esp + CTX_CALLEE_POP], ecx
    mov dword ptr [esp + CTX_RESULT_INT], ecx
    mov dword ptr [esp + CTX_RESULT_INT_1], ecx
    lea edi, [esp + CTX_RESULT_FLOAT]           # result_float: 4 slots of 8 bytes
    mov dword ptr [edi], ecx
    mov dword ptr [edi + 4], ecx
    mov dword ptr [edi + 8], ecx
    mov dword ptr [edi + 12], ecx
    mov dword ptr [edi + 16], ecx
    mov dword ptr [edi + 20], ecx
    mov dword ptr [edi + 24], ecx
    mov dword ptr [edi + 28], ecx

    mov eax, esp                                # ctx
    sub esp, 12                                 # padding: esp is 16-aligned at the call
    push eax                                    # cdecl argument
    call dword ptr [ebx + literal_from_pic]     # eax = dispatch(ctx)
    add esp, 16                                 # drop argument and padding: esp = ctx again

bc_resume:
    # Reached by the dispatcher's return, or by return_from_context's jmp with esp = saved_sp,
    # ebp = saved_fp, eax = code.
    .byte 0xf3, 0x0f, 0x1e, 0xfb                # endbr32: an indirect-jump target
    cmp eax, RC_FLOAT
    jne resume_not_float
    fld dword ptr [esp + CTX_RESULT_FLOAT]      # float result in st(0)
    jmp resume_int
resume_not_float:
    cmp eax, RC_DOUBLE
    jne resume_int
    fld qword ptr [esp + CTX_RESULT_FLOAT]      # double result in st(0)
resume_int:
    mov eax, dword ptr [esp + CTX_RESULT_INT]   # integer results, or the hidden result pointer
    mov edx, dword ptr [esp + CTX_RESULT_INT_1]
    mov ecx, dword ptr [esp + CTX_CALLEE_POP]   # n: bytes of stack arguments to pop
    mov ebx, dword ptr [ebp + 4]                # the return address moves up by n, onto the
    mov dword ptr [ebp + ecx + 4], ebx          # last word of the popped arguments
    lea esp, [ebp + FRAME_SAVED]                # drop the context and padding
    pop edi
    pop esi
    pop ebx
    pop ebp                                     # esp -> the return address's old slot
    add esp, ecx                                # esp -> its new slot
    ret                                         # a plain ret, not `jmp [reg]`: the CET shadow
                                                # stack sees a normal return

bc_return_from_context:
    # cdecl void return_from_context(CallbackContext *ctx, ReturnCode code)
    # Unwinds to ctx's thunkEntry frame and returns from it (the seed's longjmp).
    .byte 0xf3, 0x0f, 0x1e, 0xfb                # endbr32: called through a function pointer
    mov ecx, dword ptr [esp + 4]                # ctx
    mov eax, dword ptr [esp + 8]                # code, as if the dispatcher had returned it
    mov esp, dword ptr [ecx + CTX_SAVED_SP]     # the context is at saved_sp, as bc_resume expects
    mov ebp, dword ptr [ecx + CTX_SAVED_FP]
    jmp dword ptr [ecx + CTX_RESUME]            # to bc_resume

    .balign 4, 0xcc                             # int3 padding; the literal is 4-aligned
bc_dispatch_literal:
    .long 0                                     # address of the dispatcher (patched per page)
