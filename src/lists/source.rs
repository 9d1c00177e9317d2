//! TEMPORARY placeholder, replaced by the parser work.
#![allow(missing_docs)]
use crate::lists::{
    parse::{Format, ParseReport, parse},
    rule::Rule,
};
use std::path::{Path, PathBuf};
#[derive(Clone, Debug)]
pub struct SourceReport {
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
    pub parse: ParseReport,
}
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open list {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read list {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("list {} has no valid entries ({lines} lines read)", path.display())]
    Empty { path: PathBuf, lines: u64 },
}
pub fn read_source(
    path: &Path,
    format: Format,
    emit: &mut dyn FnMut(Rule),
) -> Result<SourceReport, SourceError> {
    let f = std::fs::File::open(path).map_err(|source| SourceError::Open {
        path: path.into(),
        source,
    })?;
    let p =
        parse(std::io::BufReader::new(f), format, emit).map_err(|source| SourceError::Read {
            path: path.into(),
            source,
        })?;
    if p.accepted == 0 {
        return Err(SourceError::Empty {
            path: path.into(),
            lines: p.lines,
        });
    }
    Ok(SourceReport {
        path: path.into(),
        sha256: String::new(),
        bytes: 0,
        parse: p,
    })
}
