//! The `pattern` facets of a compiled set, recompiled from our own translation of the XSD
//! regular expressions (XML Schema 1.0 Part 2, Appendix F) into the `regex` crate's syntax.
//!
//! `xsd-schema` 0.3 built without its `xsd11` feature (as we build it) translates a pattern
//! `p` into `^p$` with a few textual substitutions, which is wrong in ways that change
//! verdicts:
//! - a top-level `|` is not grouped: `^a|b$` accepts anything that starts with `a` (the
//!   CDA `ts` pattern `[0-9]{1,8}|(...)` accepted `2026 dicembre` and `2026-12-02`);
//! - `\s` / `\S` become the `regex` crate's Unicode classes; XSD's `\s` is only space, tab,
//!   CR and LF (so `[^\s]+`, the CDA `cs` type, refused a no-break space that XSD accepts);
//! - `\i` / `\c` become ASCII-only classes; XSD's are the XML name characters;
//! - `.` matches CR (XSD's does not); `^` and `$`, ordinary characters in XSD, become
//!   anchors; a character class subtraction `[a-z-[aeiou]]` becomes a union; `&&`, `--`,
//!   `~~`, `[:...:]` inside a class and `#`... take the `regex` crate's meaning.
//!
//! The crate's other path (its `xsd11` feature: the `regexml` engine, full-match) anchors
//! correctly, but the feature switches on XSD 1.1 code throughout the crate (assertions,
//! type alternatives, 1.1 built-in types, wildcards, overrides) and a parser generator at
//! build time; we keep the XSD 1.0 build and repair the facets instead. After the set is
//! compiled, each facet is replaced by one compiled from [`translate`]'s output, which uses
//! only constructs the crate's converter passes through unchanged (or, for `\d \w \p{..}`,
//! expands to its Unicode 3.0 ranges as before); the facet keeps the pattern as written, so
//! error messages quote the schema.

use xsd_schema::types::PatternFacet;
use xsd_schema::{RegexCompat, SchemaSet};

/// Replaces every `pattern` facet of `set` by one compiled from [`translate`]. Returns how
/// many facets were replaced; an error names a pattern we cannot translate (the set must
/// then not be used: its verdicts would be the crate's).
pub(super) fn correct(set: &mut SchemaSet) -> Result<usize, String> {
    let version = set.xsd_version;
    let mut count = 0;
    // `entries_mut` also drops the crate's cache of effective (inherited) facets.
    for (_, simple) in set.arenas.entries_mut().simple_types.iter_mut() {
        for step in &mut simple.facets.patterns {
            for facet in step.iter_mut() {
                let rust = translate(&facet.value)
                    .map_err(|e| format!("XSD pattern {:?}: {e}", facet.value))?;
                // `LenientMs` skips the crate's grammar check, which reads its input as XSD
                // (ours is the `regex` crate's syntax); the only other thing it does is to
                // drop `(?#...)` comments, which the translation never writes.
                let mut fixed =
                    PatternFacet::new(rust, facet.source.clone(), version, RegexCompat::LenientMs)
                        .map_err(|e| format!("XSD pattern {:?}: {e}", facet.value))?;
                fixed.value = std::mem::take(&mut facet.value);
                *facet = fixed;
                count += 1;
            }
        }
    }
    Ok(count)
}

/// The XSD whitespace class `\s`: space, tab, LF, CR.
const SPACES: &str = r"\x{20}\x{9}\x{A}\x{D}";

/// XML 1.0 (fifth edition) `NameStartChar`, the class `\i`.
const NAME_START: &str = concat!(
    r"\x{3A}A-Z\x{5F}a-z\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{2FF}\x{370}-\x{37D}",
    r"\x{37F}-\x{1FFF}\x{200C}-\x{200D}\x{2070}-\x{218F}\x{2C00}-\x{2FEF}",
    r"\x{3001}-\x{D7FF}\x{F900}-\x{FDCF}\x{FDF0}-\x{FFFD}\x{10000}-\x{EFFFF}"
);

/// What `NameChar` adds to `NameStartChar` (with it, the class `\c`).
const NAME_MORE: &str = r"\x{2D}\x{2E}0-9\x{B7}\x{300}-\x{36F}\x{203F}-\x{2040}";

/// Translates an XSD regular expression into the `regex` crate's syntax, to be matched
/// against the whole value: the whole expression in one group (the crate's converter adds
/// `^` and `$` around it). Multi-character escapes are written as classes of their own
/// (`\d` as `[\d]`), where the crate's converter expands `\d`, `\w` and `\p{..}` to
/// Unicode 3.0 as XSD 1.0 wants; every other character that is not an ASCII letter or digit
/// is written `\x{..}`, which the converter leaves as it is.
pub(super) fn translate(pattern: &str) -> Result<String, String> {
    let mut p = Parser {
        s: pattern.chars().collect(),
        i: 0,
        out: String::with_capacity(pattern.len() * 2 + 8),
    };
    p.out.push_str("(?:");
    p.reg_exp()?;
    if let Some(c) = p.peek() {
        return Err(format!("unexpected {c:?} at character {}", p.i + 1));
    }
    p.out.push(')');
    Ok(p.out)
}

struct Parser {
    s: Vec<char>,
    i: usize,
    out: String,
}

/// A class item that may start or end a range (a character), or one that may not (a
/// multi-character escape, already written as a class).
enum Item {
    Char(char),
    Class(String),
}

fn literal(c: char, out: &mut String) {
    if c.is_ascii_alphanumeric() || !c.is_ascii() {
        out.push(c);
    } else {
        out.push_str(&format!(r"\x{{{:X}}}", u32::from(c)));
    }
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.s.get(self.i + k).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        let yes = self.peek() == Some(c);
        if yes {
            self.i += 1;
        }
        yes
    }

    fn fail<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at character {}", self.i + 1))
    }

    /// regExp ::= branch ( '|' branch )*
    fn reg_exp(&mut self) -> Result<(), String> {
        self.branch()?;
        while self.eat('|') {
            self.out.push('|');
            self.branch()?;
        }
        Ok(())
    }

    /// branch ::= piece*
    fn branch(&mut self) -> Result<(), String> {
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            self.atom()?;
            self.quantifier()?;
        }
        Ok(())
    }

    /// atom ::= Char | charClass | '(' regExp ')'
    fn atom(&mut self) -> Result<(), String> {
        let Some(c) = self.peek() else {
            return self.fail("missing atom");
        };
        match c {
            '(' => {
                self.i += 1;
                self.out.push_str("(?:");
                self.reg_exp()?;
                if !self.eat(')') {
                    return self.fail("unclosed group");
                }
                self.out.push(')');
            }
            '[' => {
                let class = self.class_expr()?;
                self.out.push_str(&class);
            }
            '.' => {
                self.i += 1;
                self.out.push_str(r"[^\x{A}\x{D}]");
            }
            '\\' => match self.escape()? {
                Item::Char(c) => literal(c, &mut self.out),
                Item::Class(class) => self.out.push_str(&class),
            },
            '?' | '*' | '+' => return self.fail("quantifier without an atom"),
            ']' => return self.fail("unmatched ']'"),
            c => {
                self.i += 1;
                literal(c, &mut self.out);
            }
        }
        Ok(())
    }

    /// quantifier ::= [?*+] | '{' quantity '}'
    fn quantifier(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(c @ ('?' | '*' | '+')) => {
                self.i += 1;
                self.out.push(c);
            }
            Some('{') => {
                self.i += 1;
                let min = self.number();
                let Some(min) = min else {
                    return self.fail("a quantity must start with a number");
                };
                let max = if self.eat(',') {
                    self.number()
                } else {
                    Some(min)
                };
                if !self.eat('}') {
                    return self.fail("unclosed quantity");
                }
                if max.is_some_and(|m| m < min) {
                    return self.fail("quantity with its maximum below its minimum");
                }
                match max {
                    Some(m) if m == min => self.out.push_str(&format!("{{{min}}}")),
                    Some(m) => self.out.push_str(&format!("{{{min},{m}}}")),
                    None => self.out.push_str(&format!("{{{min},}}")),
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let digits: String = self.s[start..self.i].iter().collect();
        digits.parse().ok()
    }

    /// An escape (the `\` at the reading position): a single-character escape as its
    /// character, a multi-character or category escape as a class.
    fn escape(&mut self) -> Result<Item, String> {
        self.i += 1;
        let Some(c) = self.peek() else {
            return self.fail("'\\' at the end");
        };
        self.i += 1;
        let class =
            |body: &str, negated: bool| format!("[{}{body}]", if negated { "^" } else { "" });
        Ok(match c {
            'n' => Item::Char('\n'),
            'r' => Item::Char('\r'),
            't' => Item::Char('\t'),
            '\\' | '|' | '.' | '?' | '*' | '+' | '(' | ')' | '{' | '}' | '-' | '[' | ']' | '^' => {
                Item::Char(c)
            }
            's' | 'S' => Item::Class(class(SPACES, c == 'S')),
            'i' | 'I' => Item::Class(class(NAME_START, c == 'I')),
            'c' | 'C' => Item::Class(class(&format!("{NAME_START}{NAME_MORE}"), c == 'C')),
            'd' | 'D' => Item::Class(class(r"\d", c == 'D')),
            'w' | 'W' => Item::Class(class(r"\w", c == 'W')),
            'p' | 'P' => {
                if !self.eat('{') {
                    return self.fail("'\\p' without '{'");
                }
                let start = self.i;
                while self.peek().is_some_and(|n| n != '}') {
                    self.i += 1;
                }
                let name: String = self.s[start..self.i].iter().collect();
                if !self.eat('}') || name.is_empty() {
                    return self.fail("unclosed category escape");
                }
                if !name.chars().all(|n| n.is_ascii_alphanumeric() || n == '-') {
                    return self.fail("bad category name");
                }
                Item::Class(class(&format!(r"\p{{{name}}}"), c == 'P'))
            }
            other => return self.fail(&format!("unknown escape '\\{other}'")),
        })
    }

    /// charClassExpr ::= '[' charGroup ']', with charGroup ::= posCharGroup | negCharGroup
    /// | charClassSub (a subtraction `A-[B]`, written as `[[A]&&[^B]]`).
    fn class_expr(&mut self) -> Result<String, String> {
        self.i += 1;
        let negated = self.eat('^');
        let mut items = String::new();
        let mut count = 0;
        loop {
            match self.peek() {
                None => return self.fail("unclosed character class"),
                Some(']') if count > 0 => {
                    self.i += 1;
                    return Ok(format!("[{}{items}]", if negated { "^" } else { "" }));
                }
                Some('-') if count > 0 && self.peek_at(1) == Some('[') => {
                    self.i += 1;
                    let minus = self.class_expr()?;
                    if !self.eat(']') {
                        return self.fail("a subtraction must end its class");
                    }
                    let base = format!("[{}{items}]", if negated { "^" } else { "" });
                    return Ok(format!("[{base}&&[^{minus}]]"));
                }
                Some('[' | ']') => return self.fail("'[' or ']' inside a class"),
                Some(_) => {
                    self.class_item(&mut items)?;
                    count += 1;
                }
            }
        }
    }

    /// One character, range or escape of a class, appended to `items`.
    fn class_item(&mut self, items: &mut String) -> Result<(), String> {
        let first = match self.class_char()? {
            Item::Class(class) => {
                items.push_str(&class);
                return Ok(());
            }
            Item::Char(c) => c,
        };
        // `a-z`; a `-` before `]` or `[` is a literal or a subtraction, read by the caller.
        let ranged =
            self.peek() == Some('-') && self.peek_at(1).is_some_and(|n| n != ']' && n != '[');
        if !ranged {
            literal(first, items);
            return Ok(());
        }
        self.i += 1;
        let Item::Char(last) = self.class_char()? else {
            return self.fail("a range must end with a character");
        };
        if last < first {
            return self.fail("range out of order");
        }
        literal(first, items);
        items.push('-');
        literal(last, items);
        Ok(())
    }

    fn class_char(&mut self) -> Result<Item, String> {
        match self.peek() {
            Some('\\') => self.escape(),
            Some(c) => {
                self.i += 1;
                Ok(Item::Char(c))
            }
            None => self.fail("unclosed character class"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xsd_schema::XsdVersion;

    /// The facet as [`correct`] builds it, matched as the engine matches.
    fn facet(pattern: &str) -> PatternFacet {
        let rust = translate(pattern).unwrap();
        PatternFacet::new(rust, None, XsdVersion::V1_0, RegexCompat::LenientMs).unwrap()
    }

    #[test]
    fn patterns_match_whole_values_as_xsd_says() {
        // (pattern, accepted, refused)
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                r"[0-9]{1,8}|([0-9]{9,14}|[0-9]{14,14}\.[0-9]+)([+\-][0-9]{1,4})?",
                &[
                    "2026",
                    "20261202",
                    "20261202103000+0100",
                    "20261202103000.5",
                ],
                &["2026 dicembre", "2026-12-02", "x2026", "20261202+0100x", ""],
            ),
            ("true|false", &["true", "false"], &["truex", "xfalse", "1"]),
            (
                r"[^\s]+",
                &["it-IT", "a\u{A0}b", "a\u{2003}"],
                &["a b", "a\tb", ""],
            ),
            (
                r"[0-2](\.(0|[1-9][0-9]*))*",
                &["2.16.840.1", "0"],
                &["1.02", "3"],
            ),
            (r"[a-z-[aeiou]]+", &["bcd"], &["bad", "-"]),
            (r"[^a-z-[aeiou]]", &["B", "-"], &["a", "b"]),
            (r"[\i-[:]][\c-[:]]*", &["é_1", "a.b-c"], &["1a", "a:b", ":"]),
            (r"^a$", &["^a$"], &["a"]),
            (r"a.c", &["abc", "a c"], &["a\rc", "a\nc", "ac"]),
            (
                r"[a-c-]x|[&&~#]",
                &["-x", "bx", "&", "~", "#"],
                &["dx", "a"],
            ),
            (
                r"\d{2}\p{Lu}\P{Lu}\w\W",
                &["12Aab!", "12Bcz "],
                &["1AAa!!", "12aaa!"],
            ),
            (r"(a|)b", &["ab", "b"], &["aab"]),
            (r"\[\]\-\^\\\.", &[r"[]-^\."], &["a"]),
        ];
        for (pattern, good, bad) in cases {
            let f = facet(pattern);
            for v in *good {
                assert!(f.matches(v), "{pattern} should accept {v:?}");
            }
            for v in *bad {
                assert!(!f.matches(v), "{pattern} should refuse {v:?}");
            }
        }
    }

    #[test]
    fn what_is_not_an_xsd_regular_expression_is_refused() {
        for bad in [
            "(a", "a)", "*a", "a**", "a*?", "[]", "[a", "[z-a]", "a{2", "a{3,2}", "a{,2}", r"\q",
            r"\p{L", "[a-[b]x]", "a]",
        ] {
            assert!(translate(bad).is_err(), "{bad:?} was translated");
        }
    }
}
