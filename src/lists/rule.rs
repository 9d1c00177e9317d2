//! What one list line means once parsed: a name, block or allow, exact or with subdomains.

/// Whether a rule keeps a name out or lets it through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Answer with the sinkhole.
    Block,
    /// Let the name through even when a less specific rule blocks it.
    Allow,
}

/// How far a rule reaches below its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Only the listed name itself (hosts files, RPZ without a `*.` record).
    Exact,
    /// The listed name and every name below it (the RPZ/Blocky/AdGuard convention).
    Subtree,
}

/// One parsed list entry. `name` is already normalized (see [`crate::lists::normalize`]):
/// lowercase ASCII, A-labels for IDN, no trailing dot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rule {
    /// The normalized listed name, e.g. `example.com`.
    pub name: String,
    /// Block or allow.
    pub action: Action,
    /// Exact name only, or the name and its subdomains.
    pub scope: Scope,
}

impl Rule {
    /// A rule on `name` (normalized) with the given action and scope.
    pub fn new(name: impl Into<String>, action: Action, scope: Scope) -> Self {
        Rule {
            name: name.into(),
            action,
            scope,
        }
    }

    /// A rule blocking `name` and everything below it.
    pub fn block(name: impl Into<String>) -> Self {
        Rule::new(name, Action::Block, Scope::Subtree)
    }

    /// A rule allowing `name` and everything below it.
    pub fn allow(name: impl Into<String>) -> Self {
        Rule::new(name, Action::Allow, Scope::Subtree)
    }
}
