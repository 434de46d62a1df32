# i386 thunk (System V; the Win32 conventions use the same one): one per callback,
# THUNK_STRIDE (16) bytes apart in a code page (abi/src/thunks.rs). i386 has no eip-relative
# addressing: the thunk reads eip with a call to the next instruction and a pop (a call of
# displacement 0 is not recorded on the CET shadow stack), then jumps to its record's target
# (its record is its own offset in the data page right after the code page) with eax = the
# address of `thunk_pic` (the record is PAGE_SIZE - 9 bytes on: the entries add that). eax
# carries no argument in any convention backcall covers (cdecl, stdcall, fastcall, thiscall).
# The call writes the word below the caller's esp, which is free. Every code page holds the
# same bytes: nothing here is patched.
#
# bc_page_ref_* labels mark the END of an instruction that reaches the data page (its last 4
# bytes are a displacement assembled for PAGE_SIZE; abi/src/thunks.rs moves it for other page
# sizes). The constants come from the generated abi/asm/constants/x86.s.
#
# Assembled by keystone and by clang; both must give the same bytes (emu-tests/src/asm.rs).

    .intel_syntax noprefix

    .set target_from_pic, PAGE_SIZE - 9 + RECORD_TARGET   # thunk_pic -> the record's target

bc_thunk:
    .byte 0xf3, 0x0f, 0x1e, 0xfb        # endbr32: C calls the thunk indirectly (CET IBT
                                        # landing pad); bytes: keystone lacks the mnemonic
    call thunk_pic                      # push eip
thunk_pic:
    pop eax                             # eax = thunk_pic (bc_thunk + 9)
    jmp dword ptr [eax + target_from_pic] # a tail jump: the caller's return address stays on
bc_page_ref_thunk:                      # top of the stack for the target
