//! Reading the CSV files of a rule folder (code lists, `doctypes.csv`).

/// The records of an RFC 4180 CSV text, one at a time: quoted fields may hold commas, quotes
/// (doubled) and newlines; a quote anywhere toggles quoting; a `\r` outside quotes is dropped
/// wherever it is; the text after the last newline is a record unless it is empty once read.
/// Fields are borrowed from the text unless a quote or a `\r` changed them.
pub(crate) struct Records<'t> {
    text: &'t str,
    pos: usize,
}

impl<'t> Records<'t> {
    pub(crate) fn new(text: &'t str) -> Records<'t> {
        Records { text, pos: 0 }
    }

    /// Reads the next record into `row` (cleared first); `false`, with `row` empty, when
    /// there is none.
    pub(crate) fn next_into(&mut self, row: &mut Vec<std::borrow::Cow<'t, str>>) -> bool {
        use std::borrow::Cow;
        row.clear();
        let text = self.text;
        let b = text.as_bytes();
        let mut quoted = false;
        // The cell read so far: its owned part (once a quote or `\r` was met) and the run
        // of plain bytes since `run`.
        let mut owned: Option<String> = None;
        let mut run = self.pos;
        let mut i = self.pos;
        // Every byte this loop stops at is ASCII: the slices fall on character boundaries.
        let take = |owned: &mut Option<String>, run: usize, i: usize| -> Cow<'t, str> {
            match owned.take() {
                Some(mut s) => {
                    s.push_str(&text[run..i]);
                    Cow::Owned(s)
                }
                None => Cow::Borrowed(&text[run..i]),
            }
        };
        while i < b.len() {
            match b[i] {
                b'"' => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&text[run..i]);
                    if quoted && b.get(i + 1) == Some(&b'"') {
                        s.push('"');
                        i += 2;
                    } else {
                        quoted = !quoted;
                        i += 1;
                    }
                    run = i;
                }
                b'\r' if !quoted => {
                    owned
                        .get_or_insert_with(String::new)
                        .push_str(&text[run..i]);
                    i += 1;
                    run = i;
                }
                b',' if !quoted => {
                    row.push(take(&mut owned, run, i));
                    i += 1;
                    run = i;
                }
                b'\n' if !quoted => {
                    row.push(take(&mut owned, run, i));
                    self.pos = i + 1;
                    return true;
                }
                _ => i += 1,
            }
        }
        self.pos = b.len();
        let last = take(&mut owned, run, i);
        if last.is_empty() && row.is_empty() {
            return false;
        }
        row.push(last);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_csv(text: &str) -> Vec<Vec<String>> {
        let mut records = Records::new(text);
        let mut row = Vec::new();
        let mut rows = Vec::new();
        while records.next_into(&mut row) {
            rows.push(row.iter().map(|c| c.clone().into_owned()).collect());
        }
        rows
    }

    /// The reading rules of [`Records`], one character at a time.
    fn reference(text: &str) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        let mut row = Vec::new();
        let mut cell = String::new();
        let mut quoted = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted && chars.peek() == Some(&'"') => {
                    cell.push('"');
                    chars.next();
                }
                '"' => quoted = !quoted,
                ',' if !quoted => row.push(std::mem::take(&mut cell)),
                '\r' if !quoted => {}
                '\n' if !quoted => {
                    row.push(std::mem::take(&mut cell));
                    rows.push(std::mem::take(&mut row));
                }
                o => cell.push(o),
            }
        }
        if !cell.is_empty() || !row.is_empty() {
            row.push(cell);
            rows.push(row);
        }
        rows
    }

    #[test]
    fn csv_reads_like_the_reference_reader() {
        for t in [
            "",
            "\n",
            "a,b\n",
            "a,b",
            "a,b\r\nc,d\r\n",
            "a,,b\n\n,c\n\r",
            "x\ry,z\r\n\r",
            "version,code,description\n1,X,y z\n2,Y,\n",
            "\"\"",
            "\"\"\n",
            "a\"b,c\"d\ne",
            "\"\"\"\",\"\r\"\r",
        ] {
            assert_eq!(parse_csv(t), reference(t), "{t:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn csv_records_match_the_reference_on_any_text(t in "[ab,\"\r\né]{0,40}") {
            proptest::prop_assert_eq!(parse_csv(&t), reference(&t));
        }

        /// Any text a rule folder may hold (every Unicode scalar, multi-byte ones cut by
        /// nothing): read without a panic, as the reference reads it.
        #[test]
        fn csv_records_of_arbitrary_text_match_the_reference(
            t in proptest::prelude::any::<String>()
        ) {
            proptest::prop_assert_eq!(parse_csv(&t), reference(&t));
        }
    }

    #[test]
    fn csv_quotes() {
        let rows =
            parse_csv("version,code,description\n\"\",00,\"a, b\"\"c\"\r\n1,X,\"multi\nline\"\n");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1], ["", "00", "a, b\"c"]);
        assert_eq!(rows[2], ["1", "X", "multi\nline"]);
    }

    #[test]
    fn csv_fields_are_borrowed_unless_changed() {
        let mut records = Records::new("a,\"b\"\"c\",d\r\n");
        let mut row = Vec::new();
        assert!(records.next_into(&mut row));
        assert!(matches!(row[0], std::borrow::Cow::Borrowed("a")));
        assert_eq!(row[1], "b\"c");
        assert!(matches!(row[1], std::borrow::Cow::Owned(_)));
        assert_eq!(row[2], "d");
        assert!(!records.next_into(&mut row));
        assert!(row.is_empty());
    }
}
