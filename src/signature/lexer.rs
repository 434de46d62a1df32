//! Splits a signature into tokens, each with its byte offset.
//!
//! The lexer never fails: a character that starts no token becomes [`Tok::Bad`], so the parser
//! reports it together with what it expected at that point.

/// One token kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tok<'a> {
    /// an identifier or keyword
    Ident(&'a str),
    /// an integer literal as written (validated by the parser, which knows the context)
    Number(&'a str),
    /// one of `( ) [ ] { } * , ; ...`
    Punct(&'static str),
    /// a character that starts no token
    Bad(char),
    /// the end of the input
    Eof,
}

/// A token and the byte offset where it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Token<'a> {
    pub tok: Tok<'a>,
    pub offset: usize,
}

impl Tok<'_> {
    /// How an error message names this token.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) | Tok::Number(s) => format!("`{s}`"),
            Tok::Punct(p) => format!("`{p}`"),
            Tok::Bad(c) => format!("`{}`", c.escape_debug()),
            Tok::Eof => "end of input".to_string(),
        }
    }
}

/// Punctuators, longest first where one starts another. The operators serve the constant
/// expressions of enumerators and array sizes, `:` bit-field widths.
const PUNCTS: [&str; 23] = [
    "...", "<<", ">>", "(", ")", "[", "]", "{", "}", "*", ",", ";", "=", "+", "-", "~", "!", "/",
    "%", "&", "|", "^", ":",
];

/// Tokenizes `src`; the result always ends with one [`Tok::Eof`].
pub(super) fn tokenize(src: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut offset = 0;
    while let Some(rest) = src.get(offset..) {
        let Some(c) = rest.chars().next() else { break };
        if c.is_ascii_whitespace() {
            offset += 1;
            continue;
        }
        let (tok, len) = next_token(rest, c);
        tokens.push(Token { tok, offset });
        offset += len;
    }
    tokens.push(Token { tok: Tok::Eof, offset: src.len() });
    tokens
}

/// The token at the start of `rest` (whose first character is `c`) and its length in bytes.
fn next_token(rest: &str, c: char) -> (Tok<'_>, usize) {
    let word_len =
        rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
    let word = rest.get(..word_len).unwrap_or_default();
    if c.is_ascii_alphabetic() || c == '_' {
        return (Tok::Ident(word), word_len);
    }
    if c.is_ascii_digit() {
        return (Tok::Number(word), word_len);
    }
    match PUNCTS.iter().find(|p| rest.starts_with(**p)) {
        Some(p) => (Tok::Punct(p), p.len()),
        None => (Tok::Bad(c), c.len_utf8()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok<'_>> {
        tokenize(src).into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn splits_words_numbers_and_punctuation() {
        assert_eq!(
            kinds("int a[0x10],...;"),
            [
                Tok::Ident("int"),
                Tok::Ident("a"),
                Tok::Punct("["),
                Tok::Number("0x10"),
                Tok::Punct("]"),
                Tok::Punct(","),
                Tok::Punct("..."),
                Tok::Punct(";"),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn offsets_are_bytes_and_bad_characters_become_tokens() {
        let toks = tokenize("é .. x");
        assert_eq!(toks.iter().map(|t| t.offset).collect::<Vec<_>>(), [0, 3, 4, 6, 7]);
        assert_eq!(toks.first().map(|t| t.tok), Some(Tok::Bad('é')));
        assert_eq!(toks.get(1).map(|t| t.tok), Some(Tok::Bad('.')));
    }
}
