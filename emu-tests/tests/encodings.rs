//! The encoded thunks and shared code ("two assemblers must agree").
//!
//! * The committed `abi/src/blobs/*.rs` and `abi/asm/constants/*.s` are exactly what the
//!   generator makes today (and keystone and clang's integrated assembler agree), for all six
//!   ABIs; the two that share another ABI's sources (`SAME_AS`) encode to the same bytes for
//!   their own target.
//! * Snapshots `snapshots/thunks__<abi>.snap`: bytes, disassembly, symbols, data page
//!   references and the context layout of each ABI's word size.
//! * Every thunk of a [`CodePage`], for every page size an architecture runs with, decodes to
//!   "find my record one page on, jump to its target"; the entries find the dispatcher at the
//!   data page's first word.

use backcall_abi::arch::PageRef;
use backcall_abi::blobs::{self, BlobPart};
use backcall_abi::context::ContextLayout;
use backcall_abi::thunks::{CodePage, PageError, DATA_DISPATCH, THUNK_STRIDE};
use backcall_abi::{Abi, Arch};
use backcall_emu_tests::asm::{self, ArchTools, Assembled};
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
        assert_eq!((a.symbols, a.page_refs, a.fill), (b.symbols, b.page_refs, b.fill), "{abi}");
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

/// The page sizes an architecture runs with (x86: 4 KiB only).
fn page_sizes(arch: Arch) -> &'static [u32] {
    match arch {
        Arch::X86 | Arch::X86_64 => &[4096],
        Arch::Aarch64 => &[4096, 16384, 65536],
    }
}

fn insn_texts(insns: &capstone::Instructions<'_>) -> Vec<String> {
    insns.iter().map(|i| format!("{} {}", i.mnemonic().unwrap(), i.op_str().unwrap())).collect()
}

fn x86_operands(cs: &Capstone, insn: &capstone::Insn<'_>) -> Vec<X86OperandType> {
    let detail = cs.insn_detail(insn).unwrap();
    let arch = detail.arch_detail();
    arch.x86().unwrap().operands().map(|op| op.op_type).collect()
}

fn a64_operands(cs: &Capstone, insn: &capstone::Insn<'_>) -> Vec<Arm64OperandType> {
    let detail = cs.insn_detail(insn).unwrap();
    let arch = detail.arch_detail();
    arch.arm64().unwrap().operands().map(|op| op.op_type).collect()
}

/// Checks that thunk `i` of `page` (at offset `at`) puts its record's address in the record
/// register and jumps through the record's target word.
fn check_thunk(page: &CodePage, i: u32) {
    let abi = page.abi;
    let arch = abi.arch();
    let cs = arch.capstone();
    let at = page.thunk_offset(i);
    let bytes = &page.bytes[at as usize..(at + THUNK_STRIDE) as usize];
    let blob = page.blob;
    assert!(bytes[blob.thunk.len()..].iter().all(|&b| b == blob.fill), "{abi} thunk {i}");
    let insns = cs.disasm_all(&bytes[..blob.thunk.len()], u64::from(at)).unwrap();
    let context = format!(
        "{abi} {}-byte pages, thunk {i} at {at:#x}: {:?}",
        page.page_size,
        insn_texts(&insns)
    );
    assert_eq!(insns.iter().map(|i| i.len()).sum::<usize>(), blob.thunk.len(), "{context}");
    let record = u64::from(at + page.page_size);
    let target_word = i64::from(ContextLayout::for_word(abi.word_size()).record_target());
    match arch {
        Arch::X86_64 => {
            // endbr64; lea r10, [rip + record]; jmp [r10 + 8]
            assert_eq!(insns.len(), 3, "{context}");
            assert_eq!(insns[0].mnemonic(), Some("endbr64"), "{context}");
            let next = insns[1].address() + insns[1].len() as u64;
            match x86_operands(&cs, &insns[1])[..] {
                [X86OperandType::Reg(r), X86OperandType::Mem(m)] => {
                    assert_eq!(cs.reg_name(r).as_deref(), Some("r10"), "{context}");
                    assert_eq!(cs.reg_name(m.base()).as_deref(), Some("rip"), "{context}");
                    assert_eq!(next.wrapping_add(m.disp() as u64), record, "{context}");
                }
                ref other => panic!("{context}: {other:?}"),
            }
            match x86_operands(&cs, &insns[2])[..] {
                [X86OperandType::Mem(m)] => {
                    assert_eq!(insns[2].mnemonic(), Some("jmp"), "{context}");
                    assert_eq!(cs.reg_name(m.base()).as_deref(), Some("r10"), "{context}");
                    assert_eq!(m.disp(), target_word, "{context}");
                }
                ref other => panic!("{context}: {other:?}"),
            }
        }
        Arch::X86 => {
            // endbr32; call next; pop eax; jmp [eax + record + 4 - pic]
            assert_eq!(insns.len(), 4, "{context}");
            assert_eq!(insns[0].mnemonic(), Some("endbr32"), "{context}");
            let pic = insns[2].address();
            match x86_operands(&cs, &insns[1])[..] {
                [X86OperandType::Imm(t)] => assert_eq!(t as u64, pic, "{context}: call next"),
                ref other => panic!("{context}: {other:?}"),
            }
            assert_eq!(insn_texts(&insns)[2].trim(), "pop eax", "{context}");
            match x86_operands(&cs, &insns[3])[..] {
                [X86OperandType::Mem(m)] => {
                    assert_eq!(insns[3].mnemonic(), Some("jmp"), "{context}");
                    assert_eq!(cs.reg_name(m.base()).as_deref(), Some("eax"), "{context}");
                    assert_eq!(pic as i64 + m.disp(), record as i64 + target_word, "{context}");
                }
                ref other => panic!("{context}: {other:?}"),
            }
        }
        Arch::Aarch64 => {
            // bti c; adr x16, record; ldr x17, [x16, #8]; br x17
            assert_eq!(insns.len(), 4, "{context}");
            assert_eq!(insn_texts(&insns)[0].trim(), "bti c", "{context}");
            match a64_operands(&cs, &insns[1])[..] {
                [Arm64OperandType::Reg(r), Arm64OperandType::Imm(t)] => {
                    assert_eq!(insns[1].mnemonic(), Some("adr"), "{context}");
                    assert_eq!(cs.reg_name(r).as_deref(), Some("x16"), "{context}");
                    assert_eq!(t as u64, record, "{context}");
                }
                ref other => panic!("{context}: {other:?}"),
            }
            assert_eq!(
                insn_texts(&insns)[2],
                format!("ldr x17, [x16, #{target_word}]"),
                "{context}"
            );
            assert_eq!(insn_texts(&insns)[3].trim(), "br x17", "{context}");
        }
    }
}

/// The pc-relative data page references of the shared code (x86-64 and AArch64 name the data
/// page's first word directly) reach the dispatcher's word.
fn check_entry_refs(page: &CodePage) {
    let abi = page.abi;
    let arch = abi.arch();
    let cs = arch.capstone();
    for r in page.blob.page_refs.iter().filter(|r| r.part == BlobPart::Entry) {
        let insns = cs.disasm_all(&page.bytes[..page.blob.entry.len()], 0).unwrap();
        let insn = insns.iter().find(|i| i.address() + i.len() as u64 == u64::from(r.end)).unwrap();
        let context = format!(
            "{abi} {}-byte pages: {} {}",
            page.page_size,
            insn.mnemonic().unwrap(),
            insn.op_str().unwrap()
        );
        let target = match (arch, r.kind) {
            (Arch::X86_64, PageRef::Disp32) => match x86_operands(&cs, insn)[..] {
                [X86OperandType::Mem(m)] if cs.reg_name(m.base()).as_deref() == Some("rip") => {
                    u64::from(r.end).wrapping_add(m.disp() as u64)
                }
                _ => continue,
            },
            (Arch::Aarch64, _) => match a64_operands(&cs, insn)[..] {
                [_, Arm64OperandType::Imm(t)] => t as u64,
                ref other => panic!("{context}: {other:?}"),
            },
            _ => continue,
        };
        assert_eq!(target, u64::from(page.page_size + DATA_DISPATCH), "{context}");
    }
}

#[test]
fn every_thunk_finds_its_record_and_the_entries_find_the_dispatcher() {
    assert!(!blobs::ALL.is_empty());
    for blob in blobs::ALL {
        for &size in page_sizes(blob.abi.arch()) {
            let page = CodePage::template(blob.abi, size).unwrap();
            assert_eq!(page.first_thunk % THUNK_STRIDE, 0);
            assert!(page.first_thunk as usize >= blob.entry.len());
            assert_eq!(page.thunks, (size - page.first_thunk) / THUNK_STRIDE);
            let gap = &page.bytes[blob.entry.len()..page.first_thunk as usize];
            assert!(
                gap.iter().all(|&b| b == blob.fill),
                "{}: padding after the shared code",
                blob.abi
            );
            for i in 0..page.thunks {
                check_thunk(&page, i);
            }
            check_entry_refs(&page);
        }
        assert_eq!(
            CodePage::template(blob.abi, 16).unwrap_err(),
            PageError::BadSize { page_size: 16 }
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
    assert!(ok(Abi::X86_64Sysv, "CTX_RESULT_FLOAT_1", 304));
    assert!(ok(Abi::I386Sysv, "CTX_INT_REGS_1", 36));
    assert!(ok(Abi::I386Sysv, "CTX_SIZE", 176));
    assert!(ok(Abi::I386Sysv, "RC_FLOAT", 5));
    assert!(ok(Abi::I386Sysv, "FRAME_SAVED", 12345), "other constants are not checked");
    assert!(!ok(Abi::X86_64Sysv, "CTX_RECORD", 4), "a 4-byte-word offset on x86-64");
    assert!(!ok(Abi::I386Sysv, "CTX_RESULT_INT_2", 144), "past the area");
    assert!(!ok(Abi::I386Sysv, "CTX_RECORD_1", 8), "not an area");
    assert!(!ok(Abi::I386Sysv, "CTX_NOPE", 0));
    assert!(!ok(Abi::I386Sysv, "RC_DOUBLE", 5));
    assert!(ok(Abi::Aarch64Aapcs64, "CTX_INT_REGS_8", 128), "x8, the indirect result address");
    assert!(ok(Abi::Aarch64Apple, "CTX_FLOAT_REGS_6", 240));
    assert!(!ok(Abi::Aarch64Aapcs64, "CTX_INT_REGS_10", 144), "past the area");
}

#[test]
fn the_generated_constants_are_committed() {
    for arch in Arch::ALL {
        let path = asm::constants_path(arch);
        let committed =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            committed == asm::constants_text(arch),
            "{} is stale: run gen-blobs",
            path.display()
        );
    }
}
