//! The subscriber source format: one `<address-or-prefix> <profile-id>` row per line.
//!
//! The parser is written by hand: the format is two fields split on whitespace or a comma,
//! with `#` comments, and a CSV or text-parsing crate would add nothing but a dependency.
//! Every line that cannot be used is counted, located (line number and reason) and
//! skipped, never dropped silently.

use std::net::IpAddr;

use ipnet::IpNet;

/// Longest profile id accepted (ids are short: `p12`, `config:kids`).
pub const MAX_ID_LEN: usize = 64;

/// Malformed lines whose reasons are kept (the rest are only counted).
pub const MAX_REPORTED: usize = 20;

/// One usable row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The subscriber line: a host (`/32`, `/128`) or a prefix.
    pub net: IpNet,
    /// The profile it maps to.
    pub profile: String,
}

/// A line that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// What a parse found: the rows, and the lines it skipped.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    /// Usable rows, in file order.
    pub rows: Vec<Row>,
    /// How many lines were malformed.
    pub malformed: usize,
    /// The first [`MAX_REPORTED`] malformed lines, located.
    pub errors: Vec<LineError>,
}

/// Parses a whole source. Lines that are not UTF-8 are malformed, like any other bad line.
pub fn parse(text: &[u8]) -> Parsed {
    let mut out = Parsed::default();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let result = std::str::from_utf8(raw)
            .map_err(|_| "not UTF-8 text".to_owned())
            .and_then(parse_line);
        match result {
            Ok(Some(row)) => out.rows.push(row),
            Ok(None) => {}
            Err(reason) => {
                out.malformed += 1;
                if out.errors.len() < MAX_REPORTED {
                    out.errors.push(LineError {
                        line: i + 1,
                        reason,
                    });
                }
            }
        }
    }
    out
}

/// One line: `Ok(None)` for a blank or comment line, a reason for a malformed one.
///
/// # Errors
/// A message saying what is wrong with the line.
pub fn parse_line(line: &str) -> Result<Option<Row>, String> {
    let line = line.split('#').next().unwrap_or("").trim();
    if line.is_empty() {
        return Ok(None);
    }
    let mut fields = line
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|f| !f.is_empty());
    let (Some(addr), Some(profile)) = (fields.next(), fields.next()) else {
        return Err("expected `<address-or-prefix> <profile-id>`, found one field".into());
    };
    if fields.next().is_some() {
        return Err("expected two fields, found more".into());
    }
    Ok(Some(Row {
        net: parse_net(addr)?,
        profile: check_profile(profile)?.to_owned(),
    }))
}

/// An address (a host line) or a prefix; a prefix with host bits set is refused, since
/// `10.1.2.3/24` is more likely a typo than a way of writing `10.1.2.0/24`.
fn parse_net(text: &str) -> Result<IpNet, String> {
    if text.contains('/') {
        let net: IpNet = text
            .parse()
            .map_err(|_| format!("`{text}` is not an address or a prefix"))?;
        if net.trunc() != net {
            return Err(format!(
                "`{text}` has host bits set: write `{}`",
                net.trunc()
            ));
        }
        Ok(net)
    } else {
        let ip: IpAddr = text
            .parse()
            .map_err(|_| format!("`{text}` is not an address or a prefix"))?;
        Ok(IpNet::from(ip))
    }
}

/// Profile ids are printable ASCII without separators, at most [`MAX_ID_LEN`] long.
fn check_profile(id: &str) -> Result<&str, String> {
    if id.len() > MAX_ID_LEN {
        return Err(format!(
            "profile id is {} characters long; at most {MAX_ID_LEN}",
            id.len()
        ));
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("profile id `{id}` is not printable ASCII"));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_comments_and_separators() {
        let text = b"# ISP lines\n203.0.113.7 p12\n\n198.51.100.0/24,config:kids  # school\n\
                     2001:db8::/32\tp3\n 2001:db8::1 ,  p4 \n";
        let p = parse(text);
        assert_eq!(p.malformed, 0, "{:?}", p.errors);
        let got: Vec<(String, &str)> = p
            .rows
            .iter()
            .map(|r| (r.net.to_string(), r.profile.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("203.0.113.7/32".to_owned(), "p12"),
                ("198.51.100.0/24".to_owned(), "config:kids"),
                ("2001:db8::/32".to_owned(), "p3"),
                ("2001:db8::1/128".to_owned(), "p4"),
            ]
        );
    }

    #[test]
    fn malformed_lines_are_located() {
        let text = b"10.0.0.1 p1\n10.0.0.2\n10.0.0.300 p1\n10.0.0.1/24 p1\n10.0.0.3 p1 extra\n\
                     10.0.0.4 \xff\nok p1\n10.0.0.5 p5\n";
        let p = parse(text);
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.malformed, 6);
        let lines: Vec<usize> = p.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7]);
        assert!(p.errors[0].reason.contains("one field"));
        assert!(p.errors[1].reason.contains("10.0.0.300"));
        assert!(p.errors[2].reason.contains("10.0.0.0/24"));
        assert!(p.errors[3].reason.contains("more"));
        assert!(p.errors[4].reason.contains("UTF-8"));
    }

    #[test]
    fn long_or_odd_ids_are_refused() {
        assert!(parse_line(&format!("10.0.0.1 {}", "a".repeat(65))).is_err());
        assert!(parse_line("10.0.0.1 é").is_err());
        assert!(parse_line(&format!("10.0.0.1 {}", "a".repeat(64))).is_ok());
    }
}
