//! Physical lines of a list: bounded, byte-oriented reading and the cleanup every format shares.

use std::io::{self, BufRead, Read};

/// Longest line kept. Real list lines are far shorter (a name is at most 253 octets, and even
/// hosts lines with many names stay under a few KiB); the cap keeps a newline-free stream,
/// such as a decompressed bomb, from growing one buffer without bound.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// Spaces and tabs: the only separators list formats use.
pub(crate) const BLANKS: [char; 2] = [' ', '\t'];

/// One physical line after cleanup.
pub(crate) enum Line<'a> {
    /// Text without line terminator, BOM or trailing blanks; leading blanks are kept
    /// because they are significant in zone files.
    Text(&'a str),
    /// The line is not UTF-8.
    NotUtf8,
    /// The line is longer than [`MAX_LINE`]; its content was skipped.
    TooLong,
}

/// Reads lines into one reused buffer.
pub(crate) struct Lines<R> {
    reader: R,
    buf: Vec<u8>,
    first: bool,
}

impl<R: BufRead> Lines<R> {
    /// Wraps `reader`; the first line read may start with a UTF-8 BOM.
    pub(crate) fn new(reader: R) -> Self {
        Lines {
            reader,
            buf: Vec::with_capacity(256),
            first: true,
        }
    }

    /// The next line, or `None` at end of input.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let limit = MAX_LINE as u64 + 1;
        // `Read::take` on `&mut R` borrows the reader instead of consuming it.
        let n = Read::take(&mut self.reader, limit).read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        let first = std::mem::replace(&mut self.first, false);
        if self.buf.last() != Some(&b'\n') && self.buf.len() > MAX_LINE {
            skip_to_newline(&mut self.reader)?;
            return Ok(Some(Line::TooLong));
        }
        Ok(Some(match clean(&self.buf, first) {
            Some(text) => Line::Text(text),
            None => Line::NotUtf8,
        }))
    }
}

/// Drops input up to and including the next newline.
fn skip_to_newline<R: BufRead>(reader: &mut R) -> io::Result<()> {
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        if let Some(pos) = chunk.iter().position(|&b| b == b'\n') {
            reader.consume(pos + 1);
            return Ok(());
        }
        let len = chunk.len();
        reader.consume(len);
    }
}

/// Strips LF, one CR before it, a BOM on the first line and trailing blanks, then decodes.
pub(crate) fn clean(raw: &[u8], first: bool) -> Option<&str> {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let raw = if first {
        raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
    } else {
        raw
    };
    std::str::from_utf8(raw)
        .ok()
        .map(|text| text.trim_end_matches(BLANKS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8]) -> Vec<String> {
        let mut lines = Lines::new(input);
        let mut out = Vec::new();
        while let Ok(Some(line)) = lines.next_line() {
            out.push(match line {
                Line::Text(text) => text.to_owned(),
                Line::NotUtf8 => "<not utf8>".to_owned(),
                Line::TooLong => "<too long>".to_owned(),
            });
        }
        out
    }

    #[test]
    fn strips_bom_cr_and_trailing_blanks_keeps_leading() {
        let input = b"\xEF\xBB\xBFa.com \t\r\n  NS x.\r\n\xEF\xBB\xBFb.com\nlast";
        assert_eq!(
            collect(input),
            ["a.com", "  NS x.", "\u{feff}b.com", "last"],
            "BOM only stripped on the first line"
        );
    }

    #[test]
    fn invalid_utf8_is_flagged_not_fatal() {
        assert_eq!(collect(b"a\n\xff\xfe\nb\n"), ["a", "<not utf8>", "b"]);
    }

    #[test]
    fn overlong_line_is_skipped_as_one_line() {
        let mut input = b"a.com\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE * 2 + 10));
        input.extend(b"\nb.com\n");
        assert_eq!(collect(&input), ["a.com", "<too long>", "b.com"]);
        // Exactly MAX_LINE octets plus the newline still fits.
        let mut exact = vec![b'y'; MAX_LINE];
        exact.push(b'\n');
        assert_eq!(collect(&exact), ["y".repeat(MAX_LINE)]);
    }

    #[test]
    fn blank_input_has_no_lines() {
        assert!(collect(b"").is_empty());
        assert_eq!(collect(b"\n"), [""]);
    }
}
