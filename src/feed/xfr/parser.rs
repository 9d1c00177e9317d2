//! The SOA framing of a transfer: answer records in (across messages), an
//! [`XfrOutcome`] out. Independent of the network, so it is tested offline.

use hickory_proto::rr::{Name, Record};

use super::diff::NetDiff;
use super::{MAX_XFR_RECORDS, XfrOutcome, ZoneSnapshot, secs, serial_gt, serial_lt, soa_of};

#[derive(Debug, PartialEq, Eq)]
pub(super) enum ParseError {
    Malformed(String),
    SerialBehind { have: u32, primary_serial: u32 },
    TooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expect the opening SOA.
    Start,
    /// Opening SOA seen: the next record decides AXFR vs IXFR.
    Second,
    /// AXFR body until the closing SOA.
    Axfr,
    /// IXFR: deletions of the current sequence, until its new SOA.
    Deleting,
    /// IXFR: additions, until the next sequence's old SOA or the final SOA.
    Adding,
    /// The closing SOA has been seen.
    Done,
}

/// Turns the answer records of a transfer (across messages) into an outcome,
/// validating the SOA framing. Independent of the network for testing.
pub(super) struct XfrParser {
    zone: Name,
    have: Option<u32>,
    state: State,
    count: usize,
    first_soa: Option<Record>,
    serial: u32,
    /// AXFR body (without the SOAs).
    body: Vec<Record>,
    /// IXFR: serial the current sequence moves to (then from).
    cur: u32,
    net: NetDiff,
    result_full: bool,
}

impl XfrParser {
    pub(super) fn new(zone: Name, have: Option<u32>) -> Self {
        Self {
            zone,
            have,
            state: State::Start,
            count: 0,
            first_soa: None,
            serial: 0,
            body: Vec::new(),
            cur: 0,
            net: NetDiff::default(),
            result_full: false,
        }
    }

    fn apex_soa(&self, rec: &Record) -> Result<Option<u32>, ParseError> {
        match soa_of(rec) {
            Some(soa) if rec.name == self.zone => Ok(Some(soa.serial)),
            Some(_) => Err(ParseError::Malformed(format!(
                "SOA record at {} is not at the zone apex",
                rec.name
            ))),
            None => Ok(None),
        }
    }

    pub(super) fn push(&mut self, rec: Record) -> Result<(), ParseError> {
        self.count += 1;
        if self.count > MAX_XFR_RECORDS {
            return Err(ParseError::TooLarge);
        }
        if !self.zone.zone_of(&rec.name) {
            return Err(ParseError::Malformed(format!(
                "record {} {} is outside the zone",
                rec.name,
                rec.record_type()
            )));
        }
        let soa_serial = self.apex_soa(&rec)?;
        match (self.state, soa_serial) {
            (State::Start, Some(serial)) => {
                self.serial = serial;
                self.first_soa = Some(rec);
                self.state = State::Second;
            }
            (State::Start, None) => {
                return Err(ParseError::Malformed(format!(
                    "transfer starts with {} {} instead of the zone's SOA",
                    rec.name,
                    rec.record_type()
                )));
            }
            (State::Second, Some(serial)) if serial == self.serial => {
                // SOA, SOA: an AXFR of a zone that is just its SOA.
                self.result_full = true;
                self.state = State::Done;
            }
            (State::Second, Some(serial)) => match self.have {
                Some(have) if serial == have => {
                    self.cur = have;
                    self.net.delete(rec);
                    self.state = State::Deleting;
                }
                Some(have) => {
                    return Err(ParseError::Malformed(format!(
                        "IXFR from {have} starts its first sequence at serial {serial}"
                    )));
                }
                None => {
                    return Err(ParseError::Malformed(format!(
                        "AXFR has a second SOA (serial {serial}) right after the first ({})",
                        self.serial
                    )));
                }
            },
            (State::Second, None) => {
                self.result_full = true;
                self.body.push(rec);
                self.state = State::Axfr;
            }
            (State::Axfr, None) => self.body.push(rec),
            (State::Axfr, Some(serial)) => {
                if serial != self.serial {
                    return Err(ParseError::Malformed(format!(
                        "AXFR closes with serial {serial}, opened with {}",
                        self.serial
                    )));
                }
                self.state = State::Done;
            }
            (State::Deleting, None) => self.net.delete(rec),
            (State::Deleting, Some(serial)) => {
                if !serial_gt(serial, self.cur) {
                    return Err(ParseError::Malformed(format!(
                        "IXFR sequence goes from {} to {serial}, which is not newer",
                        self.cur
                    )));
                }
                self.cur = serial;
                self.net.add(rec);
                self.state = State::Adding;
            }
            (State::Adding, None) => self.net.add(rec),
            (State::Adding, Some(serial)) => {
                if serial == self.serial && self.cur == self.serial {
                    self.state = State::Done;
                } else if serial == self.cur {
                    self.net.delete(rec);
                    self.state = State::Deleting;
                } else {
                    return Err(ParseError::Malformed(format!(
                        "IXFR sequence starts at serial {serial} but the previous one ended at {}",
                        self.cur
                    )));
                }
            }
            (State::Done, _) => {
                return Err(ParseError::Malformed(format!(
                    "record {} {} after the closing SOA",
                    rec.name,
                    rec.record_type()
                )));
            }
        }
        Ok(())
    }

    /// Called after each message; `Some` once the transfer is complete.
    pub(super) fn end_of_message(&mut self) -> Result<Option<XfrOutcome>, ParseError> {
        match self.state {
            State::Start => Err(ParseError::Malformed(
                "answer without records (the primary may not have the zone)".to_owned(),
            )),
            // A lone SOA in reply to IXFR: up to date (RFC 1995 §2), unless
            // the serial is newer, in which case more must follow.
            State::Second => match self.have {
                Some(have) if self.serial == have => Ok(Some(XfrOutcome::UpToDate)),
                Some(have) if serial_lt(self.serial, have) => Err(ParseError::SerialBehind {
                    have,
                    primary_serial: self.serial,
                }),
                _ => Ok(None),
            },
            State::Done => Ok(Some(self.finish())),
            _ => Ok(None),
        }
    }

    fn finish(&mut self) -> XfrOutcome {
        let soa = self.first_soa.take().expect("Done implies an opening SOA");
        if self.result_full {
            let (refresh, retry) = soa_of(&soa)
                .map(|s| (secs(s.refresh), secs(s.retry)))
                .unwrap_or_default();
            let mut records = Vec::with_capacity(self.body.len() + 1);
            records.push(soa);
            records.append(&mut self.body);
            XfrOutcome::Full(ZoneSnapshot {
                serial: self.serial,
                refresh,
                retry,
                records,
            })
        } else {
            let (deleted, added) = std::mem::take(&mut self.net).into_parts();
            XfrOutcome::Incremental {
                serial: self.serial,
                deleted,
                added,
            }
        }
    }
}
