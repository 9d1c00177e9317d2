//! Where format parsers put their verdicts: rules go to the caller, rejections to the report.

use crate::lists::normalize::{Reject, normalize};
use crate::lists::parse::ParseReport;
use crate::lists::rule::{Action, Rule, Scope};

/// Collects the outcome of each entry so the per-format code stays free of bookkeeping.
pub(crate) struct Sink<'a> {
    report: &'a mut ParseReport,
    emit: &'a mut dyn FnMut(Rule),
}

impl<'a> Sink<'a> {
    /// Counts into `report` and hands rules to `emit`.
    pub(crate) fn new(report: &'a mut ParseReport, emit: &'a mut dyn FnMut(Rule)) -> Self {
        Sink { report, emit }
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
        }
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
