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

/// A pragma: `_Pragma("text")`, or `#pragma text` up to the end of its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pragma<'a> {
    /// what follows `pragma` (`pack(push, 2)`)
    pub text: &'a str,
    /// where the pragma starts
    pub offset: usize,
}

/// Tokenizes `src`; the tokens always end with one [`Tok::Eof`]. Pragmas are set apart, as a
/// preprocessor would: they are no tokens of the declarations around them.
pub(super) fn tokenize(src: &str) -> (Vec<Token<'_>>, Vec<Pragma<'_>>) {
    let mut tokens = Vec::new();
    let mut pragmas = Vec::new();
    let mut offset = 0;
    while let Some(rest) = src.get(offset..) {
        let Some(c) = rest.chars().next() else { break };
        if c.is_ascii_whitespace() {
            offset += 1;
            continue;
        }
        if let Some((text, len)) = pragma(rest) {
            pragmas.push(Pragma { text, offset });
            offset += len;
            continue;
        }
        let (tok, len) = next_token(rest, c);
        tokens.push(Token { tok, offset });
        offset += len;
    }
    tokens.push(Token { tok: Tok::Eof, offset: src.len() });
    (tokens, pragmas)
}

/// The pragma at the start of `rest`, if one is, and its length in bytes. A malformed
/// `_Pragma` stays an identifier, which the parser then reports.
fn pragma(rest: &str) -> Option<(&str, usize)> {
    if let Some(after) = rest.strip_prefix('#') {
        let text = after.trim_start_matches([' ', '\t']).strip_prefix("pragma")?;
        let line = text.find('\n').unwrap_or(text.len());
        let text_at = rest.len() - text.len();
        return Some((text[..line].trim(), text_at + line));
    }
    let after = rest.strip_prefix("_Pragma")?.trim_start().strip_prefix('(')?.trim_start();
    let literal = after.strip_prefix('"')?;
    let end = literal.find(['"', '\\', '\n'])?;
    let close = literal[end..].strip_prefix('"')?.trim_start().strip_prefix(')')?;
    Some((literal[..end].trim(), rest.len() - close.len()))
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
        tokenize(src).0.into_iter().map(|t| t.tok).collect()
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
        let (toks, _) = tokenize("é .. x");
        assert_eq!(toks.iter().map(|t| t.offset).collect::<Vec<_>>(), [0, 3, 4, 6, 7]);
        assert_eq!(toks.first().map(|t| t.tok), Some(Tok::Bad('é')));
        assert_eq!(toks.get(1).map(|t| t.tok), Some(Tok::Bad('.')));
    }

    #[test]
    fn pragmas_are_set_apart_with_their_text_and_offset() {
        let src = "_Pragma ( \"pack(push, 2)\" ) int #pragma pack(pop)\nx _Pragma(\"a\\\"\")";
        let (toks, pragmas) = tokenize(src);
        let texts: Vec<_> = pragmas.iter().map(|p| (p.text, p.offset)).collect();
        assert_eq!(texts, [("pack(push, 2)", 0), ("pack(pop)", 32)]);
        let kinds: Vec<_> = toks.iter().map(|t| t.tok).collect();
        // (an escape in the string is no pragma backcall reads: `_Pragma` stays a word)
        assert_eq!(&kinds[..3], [Tok::Ident("int"), Tok::Ident("x"), Tok::Ident("_Pragma")]);
    }
}
