//! Where format parsers put their verdicts: rules go to the caller, rejections to the report.

use crate::lists::normalize::{Reject, normalize};
use crate::lists::parse::{ParseReport, RejectedLine};
use crate::lists::rule::{Action, Rule, Scope};

/// Collects the outcome of each entry so the per-format code stays free of bookkeeping.
pub(crate) struct Sink<'a> {
    report: &'a mut ParseReport,
    emit: &'a mut dyn FnMut(Rule),
    /// The last rejection since [`Sink::take_reject`], to locate it.
    last_reject: Option<Reject>,
}

impl<'a> Sink<'a> {
    /// Counts into `report` and hands rules to `emit`.
    pub(crate) fn new(report: &'a mut ParseReport, emit: &'a mut dyn FnMut(Rule)) -> Self {
        Sink {
            report,
            emit,
            last_reject: None,
        }
    }

    /// Emits one rule.
    pub(crate) fn accept(&mut self, rule: Rule) {
        self.report.accepted += 1;
        (self.emit)(rule);
    }

    /// Counts one rejected entry; [`Reject::Unsupported`] has its own counter.
    pub(crate) fn reject(&mut self, reason: Reject) {
        if reason == Reject::Unsupported {
            self.report.unsupported += 1;
        } else {
            *self.report.rejected.entry(reason).or_default() += 1;
            self.last_reject = Some(reason);
        }
    }

    /// The reason of the last rejection since the previous call, if any.
    pub(crate) fn take_reject(&mut self) -> Option<Reject> {
        self.last_reject.take()
    }

    /// Keeps rejected line `line` (`text`) as a sample, while fewer than `keep` are kept.
    pub(crate) fn sample(&mut self, line: u64, reason: Reject, text: &str, keep: usize) {
        if self.report.rejected_lines.len() < keep {
            self.report.rejected_lines.push(RejectedLine {
                line,
                reason,
                text: text.chars().take(200).collect(),
            });
        }
    }

    /// Physical lines read so far.
    pub(crate) fn lines(&self) -> u64 {
        self.report.lines
    }

    /// Normalizes `name` and emits it as a rule, or counts why it is not a name.
    pub(crate) fn name(&mut self, name: &str, action: Action, scope: Scope) {
        match normalize(name) {
            Ok(name) => self.accept(Rule {
                name: name.into_owned(),
                action,
                scope,
            }),
            Err(reason) => self.reject(reason),
        }
    }

    /// Counts one physical line.
    pub(crate) fn line_read(&mut self) {
        self.report.lines += 1;
    }
}
