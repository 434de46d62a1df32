// AArch64 thunk (AAPCS64; aarch64-apple runs the same bytes, see abi/asm/aarch64-apple/SAME_AS):
// one per callback, THUNK_STRIDE (16) bytes apart in a code page (abi/src/thunks.rs). It puts
// the address of its record (its own offset in the data page right after the code page) in
// x16 and branches to the record's target through x17, leaving every argument register (x0-x8,
// v0-v7), the link register and the stack exactly as the C caller left them. x16 and x17 (IP0,
// IP1) are intra-procedure-call scratch registers: a veneer or PLT stub may clobber them
// between caller and callee, so they never carry an argument (AAPCS64 §6.1.1). x18 is not
// touched: Apple reserves it. Every code page holds the same bytes; only the `adr` offset
// depends on the page size (abi/src/thunks.rs moves it for pages other than PAGE_SIZE).
//
// bc_page_ref_* labels mark the END of an instruction that reaches the data page. The
// constants come from the generated abi/asm/constants/aarch64.s.
//
// Assembled by keystone and by clang (ELF and Mach-O); all must give the same bytes.

    .set record, bc_thunk + PAGE_SIZE   // this thunk's record: the same offset, one page on

bc_thunk:
    hint #34                        // bti c: C calls the thunk indirectly (`blr`, or a tail
                                    // call's `br x16/x17`); a hint because keystone does not
                                    // know the mnemonic
    adr x16, record                 // x16 = the record (slot word, target)
bc_page_ref_thunk:
    ldr x17, [x16, #RECORD_TARGET]
    br x17                          // no `blr`: x30 still holds the caller's return address
