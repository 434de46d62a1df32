//! Property tests of the signature parser: printing any signature and parsing it back gives the
//! same signature, and no input (random, token soup, or a damaged valid signature) panics.
//! Whenever any of these inputs parses, its printed form parses back to the same signature,
//! and whenever it does not, the error offset is a character boundary of the input.

use backcall::abi::arbitrary::{any_signature, any_supported_signature};
use backcall::abi::Signature;
use backcall::{corpus, parse_signature};
use proptest::prelude::*;
use proptest::sample::{select, Index};

/// If `src` parses, its printed form must parse back to the same signature; if not, the error
/// must point at a character boundary of `src` (callers slice the input there).
fn check_reparse(src: &str) -> Result<(), TestCaseError> {
    match parse_signature(src) {
        Ok(sig) => {
            let printed = sig.to_string();
            prop_assert_eq!(parse_signature(&printed), Ok(sig), "{} printed as {}", src, printed);
        }
        Err(e) => {
            prop_assert!(src.is_char_boundary(e.offset), "{}: {}", src, e);
            prop_assert!(!e.expected.is_empty() && !e.found.is_empty(), "{}: {}", src, e);
        }
    }
    Ok(())
}

/// One edit of a signature's text.
#[derive(Clone, Debug)]
enum Edit {
    Delete(Index),
    Insert(Index, String),
    Replace(Index, String),
}

fn any_edit() -> impl Strategy<Value = Edit> {
    let piece = prop_oneof![
        select(vec!["(", ")", "{", "}", "[", "]", "*", ",", ";", "...", " ", "0", "x", "_"]),
        select(vec!["struct ", "union ", "typedef ", "void", "int", "long ", "__stdcall ", "[3]"]),
        select(vec!["_Complex ", "const ", "unsigned ", "double", "a", "(*)", "(void)", "é"]),
    ]
    .prop_map(str::to_string);
    prop_oneof![
        any::<Index>().prop_map(Edit::Delete),
        (any::<Index>(), piece.clone()).prop_map(|(i, p)| Edit::Insert(i, p)),
        (any::<Index>(), piece).prop_map(|(i, p)| Edit::Replace(i, p)),
    ]
}

/// Applies `edits` to `text` at character boundaries.
fn edit(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<String> = text.chars().map(String::from).collect();
    for e in edits {
        let len = chars.len().max(1);
        match e {
            Edit::Delete(i) if !chars.is_empty() => {
                chars.remove(i.index(len));
            }
            Edit::Insert(i, p) => chars.insert(i.index(len + 1), p.clone()),
            Edit::Replace(i, p) if !chars.is_empty() => chars[i.index(len)] = p.clone(),
            _ => {}
        }
    }
    chars.concat()
}

fn corpus_text() -> impl Strategy<Value = String> {
    select(corpus::builtin().into_iter().map(|e| e.text).collect::<Vec<_>>())
}

/// Sequences of the words and symbols signatures are made of.
fn token_soup() -> impl Strategy<Value = String> {
    let token = select(vec![
        "int",
        "char",
        "long",
        "short",
        "signed",
        "unsigned",
        "float",
        "double",
        "void",
        "_Bool",
        "bool",
        "_Complex",
        "const",
        "volatile",
        "struct",
        "union",
        "typedef",
        "size_t",
        "int8_t",
        "__cdecl",
        "__stdcall",
        "__vectorcall",
        "enum",
        "x",
        "y",
        "pt",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        "*",
        ",",
        ";",
        "...",
        "0",
        "3",
        "0x10",
        "16777217",
        "(*)",
        "(void)",
    ]);
    proptest::collection::vec(token, 0..40).prop_map(|t| t.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_signature_round_trips(sig in any_signature()) {
        let printed = sig.to_string();
        prop_assert_eq!(parse_signature(&printed), Ok(sig), "{}", printed);
    }

    #[test]
    fn supported_signature_round_trips(sig in any_supported_signature()) {
        let printed = sig.to_string();
        prop_assert_eq!(parse_signature(&printed), Ok(sig), "{}", printed);
    }

    #[test]
    fn arbitrary_strings_never_panic(src in ".*") {
        check_reparse(&src)?;
    }

    #[test]
    fn token_soup_never_panics(src in token_soup()) {
        check_reparse(&src)?;
    }

    #[test]
    fn damaged_signatures_never_panic(
        sig in any_signature(),
        edits in proptest::collection::vec(any_edit(), 1..6),
    ) {
        check_reparse(&edit(&sig.to_string(), &edits))?;
    }

    #[test]
    fn damaged_corpus_entries_never_panic(
        text in corpus_text(),
        edits in proptest::collection::vec(any_edit(), 1..4),
    ) {
        check_reparse(&edit(&text, &edits))?;
    }

}

#[test]
fn every_corpus_entry_round_trips() {
    for entry in corpus::builtin() {
        let sig: Signature = entry.signature;
        assert_eq!(parse_signature(&sig.to_string()), Ok(sig), "line {}", entry.line);
    }
}
