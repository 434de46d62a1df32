//! The built-in signature corpus and the corpus-file reader (`#` comments, blank lines ignored).

use crate::signature::{parse_signature, ParseError};
use crate::Signature;

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
            let signature = parse_signature(l).map_err(|error| CorpusError { line, error })?;
            Ok(Entry { line, text: l.to_string(), signature })
        })
        .collect()
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
    fn corpus_errors_name_the_line() {
        let err = super::parse("int (*)(int)\n\nint (*)(int,)\n").unwrap_err();
        assert_eq!(err.line, 3);
    }
}
