//! TEMPORARY placeholder, replaced by the parser work.
#![allow(missing_docs)]
use crate::lists::{
    normalize::{Reject, normalize},
    rule::Rule,
};
use std::collections::BTreeMap;
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Format {
    #[default]
    Auto,
    Domains,
    Hosts,
    Adblock,
    Rpz,
}
impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Format::Auto),
            "domains" => Ok(Format::Domains),
            "hosts" => Ok(Format::Hosts),
            "adblock" => Ok(Format::Adblock),
            "rpz" => Ok(Format::Rpz),
            _ => Err(format!("unknown format {s}")),
        }
    }
}
impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParseReport {
    pub format: Format,
    pub lines: u64,
    pub accepted: u64,
    pub rejected: BTreeMap<Reject, u64>,
    pub unsupported: u64,
}
pub fn parse<R: std::io::BufRead>(
    mut reader: R,
    _format: Format,
    emit: &mut dyn FnMut(Rule),
) -> std::io::Result<ParseReport> {
    let mut rep = ParseReport {
        format: Format::Domains,
        ..Default::default()
    };
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        rep.lines += 1;
        let Ok(s) = std::str::from_utf8(&buf) else {
            continue;
        };
        let s = s.trim();
        if s.is_empty() || s.starts_with('#') {
            continue;
        }
        let (allow, s) = match s.strip_prefix("@@") {
            Some(r) => (true, r),
            None => (false, s),
        };
        match normalize(s) {
            Ok(n) => {
                rep.accepted += 1;
                emit(if allow {
                    Rule::allow(n.into_owned())
                } else {
                    Rule::block(n.into_owned())
                })
            }
            Err(r) => *rep.rejected.entry(r).or_default() += 1,
        }
    }
    Ok(rep)
}
