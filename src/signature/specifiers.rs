//! Combining C type-specifier keywords (`long unsigned int`, `short signed`, `double _Complex`).
//!
//! C lets the keywords come in any order, so the parser counts them. After each keyword the
//! counts must still fit inside one of the combinations C allows; that catches `long float` at
//! `float`, the keyword that made it wrong.

use backcall_abi::{Scalar, Type};

/// A type-specifier keyword, or `Named` for a typedef name or `struct`/`union` specifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kw {
    Void,
    Bool,
    Char,
    Short,
    Int,
    Long,
    Signed,
    Unsigned,
    Float,
    Double,
    Complex,
    Int128,
    Named,
}

impl Kw {
    /// The specifier keyword spelled `word`, if it is one.
    pub fn from_word(word: &str) -> Option<Kw> {
        Some(match word {
            "void" => Kw::Void,
            "_Bool" | "bool" => Kw::Bool,
            "char" => Kw::Char,
            "short" => Kw::Short,
            "int" => Kw::Int,
            "long" => Kw::Long,
            "signed" => Kw::Signed,
            "unsigned" => Kw::Unsigned,
            "float" => Kw::Float,
            "double" => Kw::Double,
            "_Complex" => Kw::Complex,
            "__int128" => Kw::Int128,
            _ => return None,
        })
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How many of each [`Kw`] (indexed by `Kw as usize`).
type Counts = [u8; 13];

/// Every combination C allows, as the most of each keyword it may contain
/// (order: void bool char short int long signed unsigned float double _Complex __int128
/// named).
const COMBOS: [Counts; 13] = [
    [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
    [0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
    [0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 1, 2, 1, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 1, 2, 0, 1, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0],
    [0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0],
];

/// The specifier keywords of one declaration, as seen so far.
#[derive(Debug, Default)]
pub(super) struct Specifiers {
    counts: Counts,
    /// the spellings so far, for "combines with `long unsigned`" messages
    words: Vec<String>,
}

impl Specifiers {
    /// Adds `kw` (spelled `word`); `false` when no valid combination contains the result.
    pub fn add(&mut self, kw: Kw, word: &str) -> bool {
        let mut counts = self.counts;
        if let Some(c) = counts.get_mut(kw.index()) {
            *c = c.saturating_add(1);
        }
        let fits = COMBOS.iter().any(|combo| counts.iter().zip(combo).all(|(n, max)| n <= max));
        if fits {
            self.counts = counts;
            self.words.push(word.to_string());
        }
        fits
    }

    /// Whether a type specifier was seen (a later identifier is then a declarator name).
    pub fn has_type(&self) -> bool {
        self.counts.iter().any(|&n| n > 0)
    }

    /// The specifiers so far, as written: `long unsigned`.
    pub fn spelled(&self) -> String {
        self.words.join(" ")
    }

    fn count(&self, kw: Kw) -> u8 {
        self.counts.get(kw.index()).copied().unwrap_or(0)
    }

    /// The type the keywords name; `None` for a named type, no keyword at all, or a lone
    /// `_Complex`.
    pub fn keyword_type(&self) -> Option<Type> {
        let has = |kw| self.count(kw) > 0;
        let unsigned = has(Kw::Unsigned);
        let pick = |u, s| if unsigned { u } else { s };
        let scalar = if has(Kw::Void) {
            return Some(Type::Void);
        } else if has(Kw::Bool) {
            Scalar::Bool
        } else if has(Kw::Float) {
            Scalar::Float
        } else if has(Kw::Double) {
            if has(Kw::Long) {
                Scalar::LongDouble
            } else {
                Scalar::Double
            }
        } else if has(Kw::Int128) {
            pick(Scalar::UInt128, Scalar::Int128)
        } else if has(Kw::Char) {
            if has(Kw::Signed) {
                Scalar::SChar
            } else {
                pick(Scalar::UChar, Scalar::Char)
            }
        } else if has(Kw::Short) {
            pick(Scalar::UShort, Scalar::Short)
        } else if self.count(Kw::Long) == 2 {
            pick(Scalar::ULongLong, Scalar::LongLong)
        } else if has(Kw::Long) {
            pick(Scalar::ULong, Scalar::Long)
        } else if has(Kw::Int) || has(Kw::Signed) || unsigned {
            pick(Scalar::UInt, Scalar::Int)
        } else {
            return None;
        };
        Some(if has(Kw::Complex) { Type::Complex(scalar) } else { Type::Scalar(scalar) })
    }

    /// Whether the only keyword is `_Complex` (C requires a floating type with it).
    pub fn is_lone_complex(&self) -> bool {
        self.count(Kw::Complex) > 0 && self.keyword_type().is_none() && self.count(Kw::Named) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(words: &str) -> Option<Type> {
        let mut s = Specifiers::default();
        for w in words.split_whitespace() {
            if !s.add(Kw::from_word(w)?, w) {
                return None;
            }
        }
        s.keyword_type()
    }

    #[test]
    fn any_order_resolves() {
        assert_eq!(resolve("long unsigned int"), Some(Type::Scalar(Scalar::ULong)));
        assert_eq!(resolve("int long long"), Some(Type::Scalar(Scalar::LongLong)));
        assert_eq!(resolve("short signed"), Some(Type::Scalar(Scalar::Short)));
        assert_eq!(resolve("char signed"), Some(Type::Scalar(Scalar::SChar)));
        assert_eq!(resolve("_Complex double long"), Some(Type::Complex(Scalar::LongDouble)));
        assert_eq!(resolve("__int128 unsigned"), Some(Type::Scalar(Scalar::UInt128)));
        assert_eq!(resolve("signed __int128"), Some(Type::Scalar(Scalar::Int128)));
    }

    #[test]
    fn conflicts_are_refused() {
        for bad in [
            "long float",
            "unsigned double",
            "short long",
            "long long long",
            "signed unsigned",
            "long __int128",
            "__int128 int",
        ] {
            assert_eq!(resolve(bad), None, "{bad}");
        }
    }
}
