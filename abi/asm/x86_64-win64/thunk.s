# x86-64 Win64 thunk: one per callback, THUNK_STRIDE (16) bytes apart in a code page
# (abi/src/thunks.rs). It loads its pool slot id into r10 and jumps to thunkEntry, leaving every
# argument register (rcx rdx r8 r9, xmm0-xmm3) and the stack (return address, shadow space,
# stack arguments) exactly as the C caller left them. r10 is volatile in the Microsoft x64
# convention and carries no argument ("x64 calling convention", Caller/callee saved registers).
# The bytes equal the x86_64-sysv thunk's, which relies on the same two facts about r10.
#
# Patch points. A label cannot point into an instruction, so each patched 4-byte field is the
# last 4 bytes of its instruction and its label marks the END of that instruction: the field is
# the 4 bytes just before the label (emu-tests/src/asm.rs, `field_before`).
#   bc_thunk_slot  end of `mov r10d, imm32`: the imm32 is the slot id
#   bc_thunk_jump  end of `jmp rel32`: the rel32 is the displacement to thunkEntry
#
# Assembled by keystone and by clang; both must give the same bytes (DESIGN §6).

    .intel_syntax noprefix

    # Placeholder jump target, 0x100 bytes past the jmp: out of reach of a short (EB rel8) jmp,
    # so both assemblers choose the 5-byte E9 rel32 form, and the rel32 reads 0x100. The real
    # displacement is written when a page is built. (keystone rejects `jmp label + 0x100`
    # written inline, hence the .set.)
    .set thunk_entry_placeholder, bc_thunk_jump + 0x100

bc_thunk:
    .byte 0xf3, 0x0f, 0x1e, 0xfa    # endbr64: C calls the thunk indirectly (CET IBT landing pad);
                                    # bytes because keystone does not know the mnemonic
    mov r10d, 0                     # r10 = slot id (imm32, patched); a 32-bit mov zero-extends
                                    # into the full r10
bc_thunk_slot:
    jmp thunk_entry_placeholder     # tail-jump to thunkEntry (rel32, patched): no call, so the
                                    # caller's return address stays on top of the stack
bc_thunk_jump:
