# i386 shared code (System V; the Win32 conventions use the same), at offset 0 of every
# code page (abi/src/thunks.rs): the entry of the context route, the resume point,
# return_from_context, and the typed stubs. A thunk jumps to its record's target with
# eax = its `thunk_pic` address; the record is RECORD_FROM_PIC bytes on.
#
# The entry (`bc_entry`; i386 has no float argument registers, so no `bc_entry_int`) is entered
# with [esp] = return address into the C caller, [esp + 4] = first stack argument,
# ecx, edx = fastcall/thiscall register arguments (spilled always; unused under cdecl).
# It builds a CallbackContext on its own stack, calls the dispatcher (its address is the data
# page's first word) as cdecl `ReturnCode dispatch(CallbackContext *ctx)`, then returns by the
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
# resume point and the dispatcher's word are addressed from it (offsets set below; clang
# refuses `label - label` inside a memory operand, so they are named constants).
#
# The typed stubs serve callbacks whose Rust type is known:
# * `bc_stub_thiscall` (stdcall signatures): the slot word goes in ecx and the stub tail-jumps
#   to the slot's typed entry, a `thiscall` function: ecx is its first argument, the C
#   caller's stack arguments are its others, and it pops them, as stdcall does.
# * `bc_stub_copy` (cdecl signatures): the stub copies the caller's RECORD_STACK_BYTES bytes of
#   stack arguments (the record's third word) below a new first argument, the slot word, calls
#   the typed entry (cdecl) and returns to the caller.
# The typed entry: the slot's first word is its handler's vtable (tag bits below SLOT_TAGS
# masked off), whose VTABLE_TYPED_ENTRY word is the entry.
#
# Memory operands use exactly one constant or a plain number (keystone traps: see
# emu-tests/src/asm.rs). The constants come from the generated abi/asm/constants/x86.s.

    .intel_syntax noprefix

    .set RECORD_FROM_PIC, PAGE_SIZE - 9         # a thunk's thunk_pic -> its record
    .set FRAME_SAVED, -12                       # ebp offset of the last saved register (edi)
    .set resume_from_pic, bc_resume - pic_base
    .set dispatch_from_pic, bc_entry + PAGE_SIZE - pic_base   # the data page's first word

bc_entry:
    .byte 0xf3, 0x0f, 0x1e, 0xfb                # endbr32: reached by a thunk's indirect jmp
    lea eax, [eax + RECORD_FROM_PIC]            # eax = the record
bc_page_ref_entry_record:
    push ebp                                    # standard frame; ebp also survives the
    mov ebp, esp                                # alignment below
    push ebx                                    # callee-saved registers: bc_resume restores
    push esi                                    # them from this frame, so they survive even a
    push edi                                    # dispatcher left through return_from_context
    sub esp, CTX_SIZE                           # the context ...
    and esp, -16                                # ... 16-aligned (ebp keeps the frame)
    mov dword ptr [esp + CTX_INT_REGS], ecx     # fastcall/thiscall argument 0
    mov dword ptr [esp + CTX_INT_REGS_1], edx   # fastcall argument 1
    mov dword ptr [esp + CTX_RECORD], eax
    lea ecx, [ebp + 8]                          # entry esp + 4: above the return address
    mov dword ptr [esp + CTX_STACK_ARGS], ecx
    mov dword ptr [esp + CTX_SAVED_SP], esp     # = ctx: the stack pointer bc_resume runs with
    mov dword ptr [esp + CTX_SAVED_FP], ebp     # the frame bc_resume restores from
    call pic_base                               # push eip; a call to the next instruction is
pic_base:                                       # not recorded on the CET shadow stack
    pop ebx                                     # ebx = address of pic_base
    lea ecx, [ebx + resume_from_pic]
    mov dword ptr [esp + CTX_RESUME], ecx
    mov eax, esp                                # ctx
    sub esp, 12                                 # padding: esp is 16-aligned at the call
    push eax                                    # cdecl argument
    call dword ptr [ebx + dispatch_from_pic]    # eax = dispatch(ctx)
bc_page_ref_dispatch:
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
    jne resume_not_double
    fld qword ptr [esp + CTX_RESULT_FLOAT]      # double result in st(0)
    jmp resume_int
resume_not_double:
    cmp eax, RC_LONG_DOUBLE
    jne resume_int
    fld tbyte ptr [esp + CTX_RESULT_FLOAT]      # x87 long double result in st(0): its 10 bytes
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
    # Unwinds to ctx's entry frame and returns from it (a longjmp).
    .byte 0xf3, 0x0f, 0x1e, 0xfb                # endbr32: called through a function pointer
    mov ecx, dword ptr [esp + 4]                # ctx
    mov eax, dword ptr [esp + 8]                # code, as if the dispatcher had returned it
    mov esp, dword ptr [ecx + CTX_SAVED_SP]     # the context is at saved_sp, as bc_resume expects
    mov ebp, dword ptr [ecx + CTX_SAVED_FP]
    jmp dword ptr [ecx + CTX_RESUME]            # to bc_resume

bc_stub_thiscall:
    .byte 0xf3, 0x0f, 0x1e, 0xfb                # endbr32: reached by a thunk's indirect jmp
    mov ecx, dword ptr [eax + RECORD_FROM_PIC]  # the slot word (the record's first word)
bc_page_ref_thiscall:
    mov edx, dword ptr [ecx + SLOT_STATE]       # the handler's vtable | tags (edx carries no
    and edx, -8                                 # stdcall argument); ~SLOT_TAGS
    jmp dword ptr [edx + VTABLE_TYPED_ENTRY]    # the handler's typed entry

bc_stub_copy:
    .byte 0xf3, 0x0f, 0x1e, 0xfb                # endbr32: reached by a thunk's indirect jmp
    lea eax, [eax + RECORD_FROM_PIC]            # eax = the record
bc_page_ref_copy:
    push ebp
    mov ebp, esp
    push esi                                    # callee-saved: the copy uses them
    push edi
    mov ecx, dword ptr [eax + RECORD_STACK_BYTES] # n: the caller's stack argument bytes
    mov eax, dword ptr [eax]                    # the slot word
    lea edx, [ecx + 4]                          # the slot word and n bytes ...
    mov edi, esp
    sub edi, edx
    and edi, -16                                # ... below, 16-aligned at the call
    mov esp, edi
    mov dword ptr [edi], eax                    # the new first argument
    add edi, 4
    lea esi, [ebp + 8]                          # the caller's first stack argument
    shr ecx, 2
    .byte 0xf3, 0xa5                            # rep movsd: copy n / 4 words up (the direction
                                                # flag is clear at a call, by both ABIs); bytes:
                                                # keystone reads movsd as the SSE move
    mov ecx, dword ptr [eax + SLOT_STATE]       # the handler's vtable | tags (ecx is spent)
    and ecx, -8                                 # ~SLOT_TAGS
    call dword ptr [ecx + VTABLE_TYPED_ENTRY]   # the handler's typed entry (cdecl); its result
                                                # is in eax, edx or st(0), untouched below
    lea esp, [ebp - 8]
    pop edi
    pop esi
    pop ebp
    ret                                         # cdecl: the caller pops its arguments
