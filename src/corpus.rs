//! The built-in signature corpus and the corpus-file reader (`#` comments, blank lines ignored).
//!
//! A variadic signature's line may end in `| T, U, ...`: the unnamed arguments the oracles'
//! callers pass it (already promoted, as a C caller passes them).

use crate::signature::{parse_signature, ParseError};
use crate::{Signature, Type};

/// The built-in corpus, one C signature per line (see `src/corpus.txt`).
pub const BUILTIN: &str = include_str!("corpus.txt");

/// One corpus entry: where it came from and what it parsed to.
#[derive(Clone, Debug)]
pub struct Entry {
    /// 1-based line number in the corpus text
    pub line: usize,
    /// the signature as written
    pub text: String,
    /// the parsed signature
    pub signature: Signature,
    /// the unnamed arguments a call passes (after `|`; empty without one)
    pub unnamed: Vec<Type>,
}

/// A corpus line that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorpusError {
    /// 1-based line number
    pub line: usize,
    /// the parser's error
    pub error: ParseError,
}

impl std::fmt::Display for CorpusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.error)
    }
}

impl std::error::Error for CorpusError {}

/// Parses a corpus text: one signature per line, `#` starts a comment line, blank lines ignored.
///
/// ```
/// let entries = backcall::harness::corpus::parse("# two\nint (*)(int)\n\nvoid (*)(void)\n").unwrap();
/// assert_eq!(entries.len(), 2);
/// assert_eq!(entries[1].line, 4);
/// ```
pub fn parse(text: &str) -> Result<Vec<Entry>, CorpusError> {
    text.lines()
        .enumerate()
        .map(|(i, raw)| (i + 1, raw.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(line, l)| {
            let (signature, unnamed) =
                parse_call(l).map_err(|error| CorpusError { line, error })?;
            Ok(Entry { line, text: l.to_string(), signature, unnamed })
        })
        .collect()
}

/// Parses `signature [| T, U, ...]`: a signature and, after `|`, the types of the unnamed
/// arguments one call of it passes (the signature must then end in `...`).
///
/// ```
/// let (sig, unnamed) =
///     backcall::harness::corpus::parse_call("int (*)(const char *, ...) | double, long").unwrap();
/// assert!(sig.variadic);
/// assert_eq!(unnamed.len(), 2);
/// ```
pub fn parse_call(text: &str) -> Result<(Signature, Vec<Type>), ParseError> {
    let Some((sig_text, tail)) = text.split_once('|') else {
        return Ok((parse_signature(text)?, Vec::new()));
    };
    let signature = parse_signature(sig_text)?;
    let at = sig_text.len() + 1;
    if !signature.variadic {
        let found = "`|` after a signature without `...`".to_string();
        let expected = "end of input (only a variadic signature takes unnamed arguments)".into();
        return Err(ParseError { offset: sig_text.len(), expected, found });
    }
    // The types parse as the parameters of a function type: `void (*)(` is 9 bytes.
    const WRAP: &str = "void (*)(";
    let list = parse_signature(&format!("{WRAP}{tail})")).map_err(|e| ParseError {
        offset: (at + e.offset).saturating_sub(WRAP.len()).min(text.len()),
        ..e
    })?;
    if list.variadic || list.args.is_empty() {
        let expected = "the types of the unnamed arguments, `T, U, ...`".to_string();
        return Err(ParseError { offset: at, expected, found: format!("`{}`", tail.trim()) });
    }
    Ok((signature, list.args))
}

/// The built-in corpus, parsed.
pub fn builtin() -> Vec<Entry> {
    parse(BUILTIN).expect("the built-in corpus parses (checked by a test)")
}

#[cfg(test)]
mod tests {
    #[test]
    fn builtin_corpus_parses_and_is_large_enough() {
        let entries = super::parse(super::BUILTIN).unwrap();
        assert!(entries.len() >= 60, "only {} signatures", entries.len());
    }

    #[test]
    fn unnamed_arguments_follow_a_bar() {
        let (sig, unnamed) = super::parse_call("void (*)(int, ...) | double, char *").unwrap();
        assert!(sig.variadic && sig.args.len() == 1);
        assert_eq!(unnamed.iter().map(|t| t.to_string()).collect::<Vec<_>>(), ["double", "void *"]);
        let err = super::parse_call("void (*)(int) | double").unwrap_err();
        assert_eq!(err.offset, 14, "{err}");
        let err = super::parse_call("void (*)(int, ...) | double, bogus").unwrap_err();
        assert_eq!(err.offset, 29, "{err}");
        assert!(super::parse_call("void (*)(int, ...) | ").is_err());
    }

    #[test]
    fn corpus_errors_name_the_line() {
        let err = super::parse("int (*)(int)\n\nint (*)(int,)\n").unwrap_err();
        assert_eq!(err.line, 3);
    }
}
