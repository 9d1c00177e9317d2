//! Splitting zone-file text into records, one physical line at a time.
//!
//! Hand-written on purpose, and only at the structural level: hickory-proto's zone parser
//! (`hickory_proto::serialize::txt::Parser`) takes a whole file as one string, builds a map of
//! every record set, and fails the whole file on the first bad record; its lexer is not
//! public. Feeds are large and sometimes slightly broken, so records are cut out here (a
//! record ends at a newline outside parentheses and quotes; `;` starts a comment) and each
//! one is handed to hickory on its own. A bad record then costs one count, not the list.

use super::line::BLANKS;

/// Longest record kept. An unbalanced `(` or `"` would otherwise swallow the rest of the
/// file into one record; past this size the record is dropped and splitting starts afresh.
const MAX_RECORD: usize = 64 * 1024;

/// What a line did to the record being built.
pub(crate) enum Step<'a> {
    /// Nothing complete yet: a comment or blank line, or a record still inside `( )`/`" "`.
    Pending,
    /// A complete record, comments removed, lines joined with `\n`, leading blanks kept.
    Record(&'a str),
    /// The open record grew past the size cap and was dropped.
    Overflow,
}

/// Joins physical lines into records.
#[derive(Default)]
pub(crate) struct RecordSplitter {
    pending: String,
    complete: bool,
    depth: u32,
    in_quote: bool,
}

impl RecordSplitter {
    /// Feeds one physical line (without its line terminator).
    pub(crate) fn push(&mut self, line: &str) -> Step<'_> {
        if std::mem::take(&mut self.complete) {
            self.pending.clear();
        }
        let content = self.scan(line);
        if self.pending.is_empty() {
            if content.trim_matches(BLANKS).is_empty() && !self.is_open() {
                return Step::Pending;
            }
        } else {
            self.pending.push('\n');
        }
        self.pending.push_str(content);
        if self.pending.len() > MAX_RECORD {
            *self = RecordSplitter::default();
            return Step::Overflow;
        }
        if self.is_open() {
            return Step::Pending;
        }
        self.complete = true;
        Step::Record(&self.pending)
    }

    /// Whether input ended inside a record (unbalanced `(` or `"`).
    pub(crate) fn is_open(&self) -> bool {
        self.depth > 0 || self.in_quote
    }

    /// Tracks quotes and parentheses through `line` and returns it without its comment.
    fn scan<'l>(&mut self, line: &'l str) -> &'l str {
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                // `\"`, `\;`, `\(`: the next byte is literal. Skipping into a multi-byte
                // character is harmless because only ASCII bytes are inspected.
                b'\\' => i += 1,
                b'"' => self.in_quote = !self.in_quote,
                b';' if !self.in_quote => return &line[..i],
                b'(' if !self.in_quote => self.depth += 1,
                // A stray `)` is left for hickory to reject with the record.
                b')' if !self.in_quote => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
            i += 1;
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &str) -> Vec<String> {
        let mut splitter = RecordSplitter::default();
        let mut out = Vec::new();
        for line in input.lines() {
            match splitter.push(line) {
                Step::Pending => {}
                Step::Record(record) => out.push(record.to_owned()),
                Step::Overflow => out.push("<overflow>".to_owned()),
            }
        }
        if splitter.is_open() {
            out.push("<open>".to_owned());
        }
        out
    }

    #[test]
    fn one_line_records_and_comments() {
        assert_eq!(
            split("; c\na CNAME . ; why\n\n  NS x.\n"),
            ["a CNAME . ", "  NS x."]
        );
    }

    #[test]
    fn parentheses_join_lines() {
        let input = "@ SOA ns. host. (\n  1 ; serial\n  2 3 4 5 )\nnext CNAME .";
        assert_eq!(
            split(input),
            ["@ SOA ns. host. (\n  1 \n  2 3 4 5 )", "next CNAME ."]
        );
    }

    #[test]
    fn quotes_hide_comment_and_paren_characters() {
        assert_eq!(
            split("a TXT \"x ; ( y\" ; real comment\nb CNAME ."),
            ["a TXT \"x ; ( y\" ", "b CNAME ."]
        );
        assert_eq!(split("a TXT \"two\nlines\""), ["a TXT \"two\nlines\""]);
        assert_eq!(split("a\\;b CNAME ."), ["a\\;b CNAME ."]);
        assert_eq!(split("a TXT \"esc \\\" ;\""), ["a TXT \"esc \\\" ;\""]);
    }

    #[test]
    fn unbalanced_input_is_reported() {
        assert_eq!(split("a SOA ( 1 2\n"), ["<open>"]);
        assert_eq!(split("a TXT \"open\n"), ["<open>"]);
        assert_eq!(
            split("a CNAME . )\nb CNAME ."),
            ["a CNAME . )", "b CNAME ."]
        );
    }

    #[test]
    fn runaway_record_is_dropped_and_splitting_recovers() {
        let mut input = String::from("a SOA (\n");
        for _ in 0..2000 {
            input.push_str(&"x".repeat(40));
            input.push('\n');
        }
        input.push_str("b CNAME .\n");
        let out = split(&input);
        assert_eq!(out.first().map(String::as_str), Some("<overflow>"));
        assert_eq!(out.last().map(String::as_str), Some("b CNAME ."));
    }
}
