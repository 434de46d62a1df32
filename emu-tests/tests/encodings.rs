//! The encoded thunk and thunkEntry code (DESIGN §6, "Two assemblers must agree").
//!
//! * The committed `abi/src/blobs/*.rs` are exactly what keystone and clang's integrated
//!   assembler make of `abi/asm/` today (and both assemblers agree), for all six ABIs; the two
//!   that share another ABI's sources (`SAME_AS`) encode to the same bytes for their own target.
//! * Snapshots `snapshots/thunks__<abi>.snap`: bytes, disassembly, symbol offsets, patch fields
//!   and the context layout of each ABI's word size.
//! * Every thunk of a built [`CodePage`] decodes to "load my slot id, jump to thunkEntry".

use backcall_abi::blobs::{self, Blob, Patch};
use backcall_abi::thunks::{CodePage, PageError, THUNK_STRIDE};
use backcall_abi::Abi;
use backcall_emu_tests::asm::{self, Assembled, Isa};
use capstone::arch::arm64::Arm64OperandType;
use capstone::arch::x86::X86OperandType;
use capstone::arch::DetailsArchInsn;
use capstone::Capstone;

#[test]
fn committed_blobs_are_what_both_assemblers_make_of_abi_asm() {
    let abis = asm::abis_with_asm().unwrap();
    assert_eq!(abis, Abi::ALL, "every ABI has its code (abi/asm/<abi>/ or a SAME_AS)");
    for &abi in &abis {
        let encoded = asm::encode(abi).unwrap_or_else(|e| panic!("{e}"));
        let path = asm::blob_path(abi);
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run gen-blobs", path.display()));
        let fresh = asm::render_blob_file(&encoded.blob).unwrap();
        assert!(
            committed == fresh,
            "{} is stale: run `cargo run -p backcall-emu-tests --bin gen-blobs`",
            path.display()
        );
        // ... and the crate really compiles that file in for this ABI.
        let compiled = blobs::for_abi(abi)
            .unwrap_or_else(|| panic!("abi/src/blobs.rs does not list the {abi} blob"));
        assert_eq!(
            asm::describe_blob(compiled).unwrap(),
            asm::describe_blob(&encoded.blob).unwrap(),
            "{abi}"
        );
    }
    for blob in blobs::ALL {
        assert!(abis.contains(&blob.abi), "blob for {} has no abi/asm/{}/", blob.abi, blob.abi);
    }
}

#[test]
fn same_as_abis_share_their_sources_byte_for_byte() {
    // Apple's and Win32's differences are all in the plans: one copy of the assembly each.
    let pairs = [(Abi::Aarch64Apple, Abi::Aarch64Aapcs64), (Abi::I386Win32, Abi::I386Sysv)];
    for (abi, source) in pairs {
        assert_eq!(asm::source_abi(abi).unwrap(), source, "{abi}");
        assert_eq!(asm::source_abi(source).unwrap(), source, "{source}");
        let dir = asm::asm_dir(abi);
        assert!(!dir.join("thunk.s").exists() && !dir.join("entry.s").exists(), "{abi}");
        let encoded = asm::encode(abi).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(encoded.source, source);
        let (a, b) = (blobs::for_abi(abi).unwrap(), blobs::for_abi(source).unwrap());
        assert_eq!(a.entry, b.entry, "{abi}");
        assert_eq!(a.thunk, b.thunk, "{abi}");
        assert_eq!(
            (a.dispatch_literal, a.return_from_context, a.resume, a.thunk_slot, a.thunk_jump),
            (b.dispatch_literal, b.return_from_context, b.resume, b.thunk_slot, b.thunk_jump),
            "{abi}"
        );
        assert_eq!((a.jump, a.fill), (b.jump, b.fill), "{abi}");
    }
    // The other four have sources of their own.
    for abi in [Abi::X86_64Sysv, Abi::X86_64Win64, Abi::I386Sysv, Abi::Aarch64Aapcs64] {
        assert_eq!(asm::source_abi(abi).unwrap(), abi);
        assert!(asm::asm_dir(abi).join("entry.s").is_file(), "{abi}");
    }
}

#[test]
fn snapshots_of_thunks_entries_and_context_layouts() {
    for blob in blobs::ALL {
        let text = asm::describe_blob(blob).unwrap();
        insta::with_settings!({
            snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("thunks__{}", blob.abi.id()), text);
        });
    }
}

/// The register each ABI's thunk loads its slot id into (capstone's name for it).
fn slot_register(abi: Abi) -> &'static str {
    match abi {
        Abi::X86_64Sysv | Abi::X86_64Win64 => "r10d",
        Abi::I386Sysv | Abi::I386Win32 => "eax",
        Abi::Aarch64Aapcs64 | Abi::Aarch64Apple => "w16",
    }
}

fn check_page(blob: &Blob, base: u64, dispatch: u64, first_slot: u32) {
    let abi = blob.abi;
    let page = CodePage::build(abi, base, 4096, dispatch, first_slot).unwrap();
    let word = abi.word_size() as usize;

    // thunkEntry: the blob's bytes, with the dispatcher's address in the literal.
    let lit = blob.dispatch_literal as usize;
    assert_eq!(page.bytes[..lit], blob.entry[..lit], "{abi}");
    assert_eq!(page.bytes[lit..lit + word], dispatch.to_le_bytes()[..word], "{abi}");
    assert_eq!(page.bytes[lit + word..blob.entry.len()], blob.entry[lit + word..], "{abi}");
    let gap = &page.bytes[blob.entry.len()..page.first_thunk as usize];
    assert!(gap.iter().all(|&b| b == blob.fill), "{abi}: padding after thunkEntry");
    assert_eq!(page.first_thunk % THUNK_STRIDE, 0);
    assert!(page.first_thunk as usize >= blob.entry.len());
    assert_eq!(page.thunks, (4096 - page.first_thunk) / THUNK_STRIDE);

    let cs = Isa::of(abi).capstone();
    let entry = page.base + u64::from(page.entry);
    for i in 0..page.thunks {
        let at = page.thunk_address(i);
        let offset = (at - base) as usize;
        let bytes = &page.bytes[offset..offset + THUNK_STRIDE as usize];
        assert!(bytes[blob.thunk.len()..].iter().all(|&b| b == blob.fill), "{abi} thunk {i}");
        let thunk = Thunk { blob, bytes, at, entry, slot: u64::from(first_slot + i), i };
        match blob.jump {
            Patch::Rel32 => check_x86_thunk(&cs, &thunk),
            Patch::Branch26 => check_a64_thunk(&cs, &thunk),
        }
    }
}

/// Thunk `i` of a built page, at address `at`, which must load `slot` and reach `entry`.
struct Thunk<'a> {
    blob: &'a Blob,
    bytes: &'a [u8],
    at: u64,
    entry: u64,
    slot: u64,
    i: u32,
}

fn insn_texts(insns: &capstone::Instructions<'_>) -> Vec<String> {
    insns.iter().map(|i| format!("{} {}", i.mnemonic().unwrap(), i.op_str().unwrap())).collect()
}

/// `endbr; mov <scratch>, slot; jmp thunkEntry`.
fn check_x86_thunk(cs: &Capstone, t: &Thunk<'_>) {
    let Thunk { blob, bytes, at, entry, slot, i } = *t;
    let abi = blob.abi;
    let insns = cs.disasm_all(&bytes[..blob.thunk.len()], at).unwrap();
    let context = format!("{abi} thunk {i} at {at:#x}: {:?}", insn_texts(&insns));
    assert_eq!(insns.len(), 3, "{context}");
    assert_eq!(insns.iter().map(|i| i.len()).sum::<usize>(), blob.thunk.len(), "{context}");
    assert!(insns[0].mnemonic().unwrap().starts_with("endbr"), "{context}");

    let operands = |insn| {
        let detail = cs.insn_detail(insn).unwrap();
        let arch = detail.arch_detail();
        arch.x86().unwrap().operands().map(|op| op.op_type).collect::<Vec<_>>()
    };
    // mov <scratch>, slot
    match operands(&insns[1])[..] {
        [X86OperandType::Reg(reg), X86OperandType::Imm(imm)] => {
            assert_eq!(insns[1].mnemonic(), Some("mov"), "{context}");
            assert_eq!(cs.reg_name(reg).as_deref(), Some(slot_register(abi)), "{context}");
            assert_eq!(imm as u64, slot, "{context}");
        }
        ref other => panic!("{context}: operands {other:?}"),
    }
    // jmp thunkEntry
    match operands(&insns[2])[..] {
        [X86OperandType::Imm(target)] => {
            assert_eq!(insns[2].mnemonic(), Some("jmp"), "{context}");
            assert_eq!(target as u64, entry, "{context}: jumps to {target:#x}");
        }
        ref other => panic!("{context}: operands {other:?}"),
    }
}

/// `bti c; ldr w16, <literal>; b thunkEntry; <literal> = slot`.
fn check_a64_thunk(cs: &Capstone, t: &Thunk<'_>) {
    let Thunk { blob, bytes, at, entry, slot, i } = *t;
    let abi = blob.abi;
    let code = &bytes[..blob.thunk_slot as usize];
    let insns = cs.disasm_all(code, at).unwrap();
    let context = format!("{abi} thunk {i} at {at:#x}: {:?}", insn_texts(&insns));
    assert_eq!(insns.len(), 3, "{context}");
    assert_eq!(insns.iter().map(|i| i.len()).sum::<usize>(), code.len(), "{context}");
    assert_eq!(insns[0].mnemonic(), Some("bti"), "{context}");
    assert_eq!(insns[0].op_str(), Some("c"), "{context}");

    let operands = |insn| {
        let detail = cs.insn_detail(insn).unwrap();
        let arch = detail.arch_detail();
        arch.arm64().unwrap().operands().map(|op| op.op_type).collect::<Vec<_>>()
    };
    // ldr w16, <literal>, and the literal holds the slot id
    match operands(&insns[1])[..] {
        [Arm64OperandType::Reg(reg), Arm64OperandType::Imm(literal)] => {
            assert_eq!(insns[1].mnemonic(), Some("ldr"), "{context}");
            assert_eq!(cs.reg_name(reg).as_deref(), Some(slot_register(abi)), "{context}");
            assert_eq!(literal as u64, at + u64::from(blob.thunk_slot), "{context}");
            let field = &bytes[blob.thunk_slot as usize..][..4];
            assert_eq!(u64::from(u32::from_le_bytes(field.try_into().unwrap())), slot, "{context}");
        }
        ref other => panic!("{context}: operands {other:?}"),
    }
    // b thunkEntry
    match operands(&insns[2])[..] {
        [Arm64OperandType::Imm(target)] => {
            assert_eq!(insns[2].mnemonic(), Some("b"), "{context}");
            assert_eq!(target as u64, entry, "{context}: branches to {target:#x}");
        }
        ref other => panic!("{context}: operands {other:?}"),
    }
}

#[test]
fn every_thunk_of_a_page_loads_its_slot_and_jumps_to_thunk_entry() {
    assert!(!blobs::ALL.is_empty());
    for blob in blobs::ALL {
        let (bases, dispatch): (&[u64], u64) = match blob.abi.word_size() {
            4 => (&[0x1000_0000, 0xffff_f000], 0x8765_4321),
            _ => (&[0x7f12_3456_7000, 0x1000], 0x1122_3344_5566_7788),
        };
        for &base in bases {
            check_page(blob, base, dispatch, 1000);
        }
        assert_eq!(
            CodePage::build(blob.abi, 0x1000, 16, dispatch, 0).unwrap_err(),
            PageError::TooSmall { page_size: 16 }
        );
    }
}

#[test]
fn asm_constants_are_checked_against_the_context_layout_and_return_codes() {
    let with = |name: &str, value: u64| Assembled {
        bytes: vec![],
        labels: Default::default(),
        constants: [(name.to_string(), value)].into_iter().collect(),
    };
    let ok = |abi, name, value| asm::check_constants(abi, &with(name, value)).is_ok();
    assert!(ok(Abi::X86_64Sysv, "CTX_RESULT_FLOAT_1", 232));
    assert!(ok(Abi::I386Sysv, "CTX_INT_REGS_1", 36));
    assert!(ok(Abi::I386Sysv, "CTX_SIZE", 176));
    assert!(ok(Abi::I386Sysv, "RC_FLOAT", 5));
    assert!(ok(Abi::I386Sysv, "FRAME_SAVED", 12345), "other constants are not checked");
    assert!(!ok(Abi::X86_64Sysv, "CTX_SLOT", 4), "a 4-byte-word offset on x86-64");
    assert!(!ok(Abi::I386Sysv, "CTX_RESULT_INT_2", 144), "past the area");
    assert!(!ok(Abi::I386Sysv, "CTX_SLOT_1", 8), "not an area");
    assert!(!ok(Abi::I386Sysv, "CTX_NOPE", 0));
    assert!(!ok(Abi::I386Sysv, "RC_DOUBLE", 5));
    assert!(ok(Abi::Aarch64Aapcs64, "CTX_INT_REGS_8", 128), "x8, the indirect result address");
    assert!(ok(Abi::Aarch64Apple, "CTX_FLOAT_REGS_6", 192));
    assert!(!ok(Abi::Aarch64Aapcs64, "CTX_INT_REGS_10", 144), "past the area");
}

#[test]
fn a64_decoders_read_the_thunk_fields() {
    // `ldr w16, #0xc` at 4, `b #0x100` at 8 (the template), and both directions of each.
    assert_eq!(asm::a64_ldr_w_literal_target(0x1800_0050, 4), Some(0xc));
    assert_eq!(asm::a64_ldr_w_literal_target(0x18ff_fff0, 0x1000), Some(0x1000 - 4));
    assert_eq!(asm::a64_ldr_w_literal_target(0x5800_0331, 0x8c), None, "ldr x17 is 64-bit");
    assert_eq!(asm::a64_branch26_target(0x1400_003e, 8), Some(0x100));
    assert_eq!(asm::a64_branch26_target(0x17ff_ffff, 0x100), Some(0xfc));
    assert_eq!(asm::a64_branch26_target(0x9400_0001, 0), None, "bl is not b");
}
