// AArch64 thunk (AAPCS64; aarch64-apple uses the same one, see abi/asm/aarch64-apple/SAME_AS):
// one per callback, THUNK_STRIDE (16) bytes apart in a code page (abi/src/thunks.rs). It loads
// its pool slot id into w16 and branches to thunkEntry, leaving every argument register (x0-x8,
// v0-v7), the link register and the stack exactly as the C caller left them. x16 (IP0) is an
// intra-procedure-call scratch register: a veneer or PLT stub may clobber it between caller and
// callee, so it never carries an argument (AAPCS64 §6.1.1). x18 is not touched: Apple reserves it.
//
// Patch points. As on x86, each patched 4-byte field is labelled at its END: the field is the
// 4 bytes just before the label (emu-tests/src/asm.rs, `field_before`).
//   bc_thunk_slot  end of the literal word: the slot id (`ldr w16, slot_literal` reads it)
//   bc_thunk_jump  end of `b imm26`: the instruction whose imm26 becomes the word displacement to
//                  thunkEntry (Patch::Branch26)
//
// Assembled by keystone and by clang (ELF and Mach-O); all must give the same bytes (DESIGN §6).

    // Placeholder branch target, 0x100 bytes past the thunk: any in-range label would do, since
    // the page builder rewrites all 26 bits of the displacement; this one keeps the `b` free of
    // relocations and reads like the x86 placeholder.
    .set thunk_entry_placeholder, bc_thunk + 0x100

bc_thunk:
    hint #34                        // bti c: C calls the thunk indirectly (`blr`, or a tail
                                    // call's `br x16/x17`); a hint because keystone does not
                                    // know the mnemonic
    ldr w16, slot_literal           // w16 = slot id (PC-relative literal below, patched); a
                                    // 32-bit load zero-extends into the full x16
    b thunk_entry_placeholder       // tail-branch to thunkEntry (imm26, patched): no `bl`, so
                                    // x30 still holds the caller's return address
bc_thunk_jump:
slot_literal:
    .word 0                         // the slot id; data, never executed (it follows the `b`)
bc_thunk_slot:
