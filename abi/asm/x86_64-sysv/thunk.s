# x86-64 System V thunk: one per callback, THUNK_STRIDE (16) bytes apart in a code page
# (abi/src/thunks.rs). It puts the address of its record (its own offset in the data page
# right after the code page) in r10 and jumps to the record's target, leaving every argument
# register and the stack exactly as the C caller left them. r10 carries no argument (psABI
# §3.2.3, Figure 3.4: "used for passing a function's static chain pointer", which C does not
# use). Every code page holds the same bytes: nothing here is patched.
#
# bc_page_ref_* labels mark the END of an instruction that reaches the data page (its last 4
# bytes are a displacement assembled for PAGE_SIZE; abi/src/thunks.rs moves it for other page
# sizes). The CTX_*, RECORD_* and PAGE_SIZE constants come from the generated
# abi/asm/constants/x86_64.s, which the generator assembles in front of this file.
#
# Assembled by keystone and by clang; both must give the same bytes (emu-tests/src/asm.rs).

    .intel_syntax noprefix

    .set record, bc_thunk + PAGE_SIZE   # this thunk's record: the same offset, one page on

bc_thunk:
    .byte 0xf3, 0x0f, 0x1e, 0xfa        # endbr64: C calls the thunk indirectly (CET IBT
                                        # landing pad); bytes: keystone lacks the mnemonic
    lea r10, [rip + record]             # r10 = the record (slot word, target)
bc_page_ref_thunk:
    jmp qword ptr [r10 + RECORD_TARGET] # a tail jump: the caller's return address stays on top
                                        # of the stack for the target
