//! "Is this name blocked, and why?": one walk over the FST along the query's reversed labels.
//!
//! Semantics:
//! - a subtree rule on `example.com` covers `example.com` and every name below it;
//!   an exact rule covers only the name itself;
//! - the most specific rule (the one on the longest suffix of the query) wins;
//! - on a tie (rules on the same name) allow beats block;
//! - so an allow rule on `safe.example.com` lets it and its subdomains through even when
//!   `example.com` is blocked, and a block rule on `ads.safe.example.com` blocks again below it.
//!
//! Walking `com.example.www` byte by byte, every time the walk has just crossed a `.` and
//! sits on a final state, a subtree rule for the labels so far exists; at the end of the key
//! the exact rule (no dot) and the subtree rule (one more `.`) for the full name are checked.
//! A miss usually stops within the first label or two, which is what makes misses cheap.

use fst::raw::Output;

use crate::lists::bloom;
use crate::lists::key::{self, ALLOW, BLOCK, MAX_KEY};
use crate::lists::load::Blocklist;
use crate::lists::normalize::normalize;
use crate::lists::rule::Scope;

/// The outcome of a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A block rule applies: answer with the sinkhole.
    Blocked,
    /// An allow rule applies: forward, whatever less specific rules say.
    Allowed,
    /// No rule applies: forward.
    NotListed,
}

/// The rule that decided a lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchedRule {
    /// The listed name (a suffix of the query, or the query itself).
    pub name: String,
    /// Whether it matched as an exact rule or as a subtree rule.
    pub scope: Scope,
}

/// A lookup's answer: decision, the categories involved and the deciding rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Blocked, allowed or not listed.
    pub decision: Decision,
    /// Category bits of the deciding rule's block entries (bit `i` is
    /// `manifest().categories[i]`); 0 for allow-only and unlisted names.
    pub categories: u32,
    /// The deciding rule, `None` when nothing matched.
    pub rule: Option<MatchedRule>,
}

impl Verdict {
    /// Nothing matched.
    pub const NOT_LISTED: Verdict = Verdict {
        decision: Decision::NotListed,
        categories: 0,
        rule: None,
    };

    /// True when the name must be sinkholed.
    pub fn is_blocked(&self) -> bool {
        self.decision == Decision::Blocked
    }
}

/// The deepest applicable rule found so far: key length, merged value, scope.
#[derive(Clone, Copy)]
struct Hit {
    len: usize,
    value: u64,
    scope: Scope,
}

impl Blocklist {
    /// Looks `name` up with every category enabled. The name is normalized the same way list
    /// entries are (case, one trailing dot, IDN); a name that is not a valid hostname is
    /// never listed.
    pub fn lookup(&self, name: &str) -> Verdict {
        self.lookup_masked(name, u32::MAX)
    }

    /// Looks `name` up, counting only block rules in the categories of `mask`.
    /// Allow rules always count.
    pub fn lookup_masked(&self, name: &str, mask: u32) -> Verdict {
        let Ok(name) = normalize(name) else {
            return Verdict::NOT_LISTED;
        };
        let mut buf = [0u8; MAX_KEY];
        match key::reverse_into(name.as_bytes(), &mut buf) {
            Some(len) => self.lookup_key(&buf[..len], mask),
            None => Verdict::NOT_LISTED,
        }
    }

    /// Looks up a name given as wire-format labels, leftmost first (as hickory's
    /// `Name::iter()` yields them), without allocating. A name with bytes outside ASCII
    /// (a client sending raw UTF-8) goes through [`Blocklist::lookup_masked`] so IDN
    /// normalization applies.
    pub fn lookup_labels<'a, I>(&self, labels: I, mask: u32) -> Verdict
    where
        I: DoubleEndedIterator<Item = &'a [u8]>,
    {
        let mut buf = [0u8; MAX_KEY];
        let mut at = 0;
        let mut ascii = true;
        for (i, label) in labels.rev().enumerate() {
            let need = label.len() + usize::from(i > 0);
            if at + need >= MAX_KEY {
                return Verdict::NOT_LISTED;
            }
            if i > 0 {
                buf[at] = b'.';
                at += 1;
            }
            for &b in label {
                ascii &= b.is_ascii();
                buf[at] = b.to_ascii_lowercase();
                at += 1;
            }
        }
        if at == 0 {
            return Verdict::NOT_LISTED;
        }
        if !ascii {
            return self.lookup_masked(&key::unreverse(&buf[..at]), mask);
        }
        self.lookup_key(&buf[..at], mask)
    }

    /// The walk itself, on a reversed key without the scope dot (`com.example.www`).
    fn lookup_key(&self, key: &[u8], mask: u32) -> Verdict {
        if !bloom::any_candidate(self.bloom.as_ref(), key) {
            return Verdict::NOT_LISTED;
        }
        let fst = self.map.as_fst();
        let relevant = |v: u64| {
            let v = v & (ALLOW | BLOCK | u64::from(mask));
            (v & ALLOW != 0 || v & u64::from(u32::MAX) != 0).then_some(v)
        };
        let mut node = fst.root();
        let mut out = Output::zero();
        let mut best: Option<Hit> = None;
        let mut complete = true;
        for (i, &b) in key.iter().enumerate() {
            let Some(ix) = node.find_input(b) else {
                complete = false;
                break;
            };
            let t = node.transition(ix);
            out = out.cat(t.out);
            node = fst.node(t.addr);
            if b == b'.'
                && node.is_final()
                && let Some(value) = relevant(out.cat(node.final_output()).value())
            {
                best = Some(Hit {
                    len: i,
                    value,
                    scope: Scope::Subtree,
                });
            }
        }
        if complete {
            // Rules on the full name: exact (no dot) and subtree (one more dot) tie.
            let mut here: Option<Hit> = None;
            if node.is_final()
                && let Some(value) = relevant(out.cat(node.final_output()).value())
            {
                here = Some(Hit {
                    len: key.len(),
                    value,
                    scope: Scope::Exact,
                });
            }
            if let Some(ix) = node.find_input(b'.') {
                let t = node.transition(ix);
                let sub = fst.node(t.addr);
                if sub.is_final()
                    && let Some(value) = relevant(out.cat(t.out).cat(sub.final_output()).value())
                {
                    here = Some(match here {
                        Some(h) => Hit {
                            value: h.value | value,
                            ..h
                        },
                        None => Hit {
                            len: key.len(),
                            value,
                            scope: Scope::Subtree,
                        },
                    });
                }
            }
            if here.is_some() {
                best = here;
            }
        }
        let Some(hit) = best else {
            return Verdict::NOT_LISTED;
        };
        let categories = (hit.value & u64::from(mask)) as u32;
        let decision = if hit.value & ALLOW != 0 {
            Decision::Allowed
        } else {
            Decision::Blocked
        };
        Verdict {
            decision,
            categories: if decision == Decision::Blocked {
                categories
            } else {
                0
            },
            rule: Some(MatchedRule {
                name: key::unreverse(&key[..hit.len]),
                scope: hit.scope,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::compile::{InlineRules, compile};
    use crate::lists::rule::{Action, Rule};

    /// Compiles `rules` (category, rule) into a temp dir and loads the result.
    fn build(rules: Vec<(Option<&str>, Rule)>) -> (tempfile::TempDir, Blocklist) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("list.fst");
        let inline = InlineRules {
            rules: rules
                .into_iter()
                .map(|(c, r)| (c.map(str::to_owned), r))
                .collect(),
        };
        compile(&[], &inline, &out, &mut |_| {}).unwrap();
        let list = Blocklist::open(&out).unwrap();
        (dir, list)
    }

    fn sample() -> (tempfile::TempDir, Blocklist) {
        use Action::*;
        use Scope::*;
        build(vec![
            (Some("adult"), Rule::new("example.com", Block, Subtree)),
            (Some("gambling"), Rule::new("example.com", Block, Subtree)),
            (None, Rule::new("safe.example.com", Allow, Subtree)),
            (
                Some("adult"),
                Rule::new("ads.safe.example.com", Block, Subtree),
            ),
            (Some("gambling"), Rule::new("casino.test", Block, Exact)),
            (Some("adult"), Rule::new("tie.test", Block, Exact)),
            (None, Rule::new("tie.test", Allow, Exact)),
            (Some("drugs"), Rule::new("com", Block, Exact)),
        ])
    }

    #[test]
    fn subtree_rule_blocks_name_and_subdomains() {
        let (_d, list) = sample();
        for name in [
            "example.com",
            "www.example.com",
            "a.b.c.example.com",
            "EXAMPLE.com.",
        ] {
            let v = list.lookup(name);
            assert_eq!(v.decision, Decision::Blocked, "{name}");
            assert_eq!(
                list.manifest().category_names(v.categories),
                ["adult", "gambling"]
            );
            assert_eq!(v.rule.as_ref().unwrap().name, "example.com");
        }
        assert_eq!(
            list.lookup("www.example.com").rule.unwrap().scope,
            Scope::Subtree
        );
    }

    #[test]
    fn similar_names_do_not_match() {
        let (_d, list) = sample();
        for name in [
            "examples.com",
            "xexample.com",
            "example.co",
            "example.com.vn",
            "other.org",
        ] {
            assert_eq!(list.lookup(name), Verdict::NOT_LISTED, "{name}");
        }
    }

    #[test]
    fn exact_rule_does_not_reach_subdomains() {
        let (_d, list) = sample();
        assert!(list.lookup("casino.test").is_blocked());
        assert_eq!(list.lookup("casino.test").rule.unwrap().scope, Scope::Exact);
        assert!(!list.lookup("www.casino.test").is_blocked());
        // An exact rule on `com` blocks `com` only, not every .com name.
        assert!(list.lookup("com").is_blocked());
        assert_eq!(list.lookup("other.com"), Verdict::NOT_LISTED);
    }

    #[test]
    fn most_specific_rule_wins_and_allow_wins_ties() {
        let (_d, list) = sample();
        let v = list.lookup("safe.example.com");
        assert_eq!(v.decision, Decision::Allowed);
        assert_eq!(v.rule.unwrap().name, "safe.example.com");
        assert_eq!(
            list.lookup("x.safe.example.com").decision,
            Decision::Allowed
        );
        let v = list.lookup("ads.safe.example.com");
        assert_eq!(v.decision, Decision::Blocked);
        assert_eq!(list.manifest().category_names(v.categories), ["adult"]);
        assert_eq!(list.lookup("tie.test").decision, Decision::Allowed);
    }

    #[test]
    fn masks_select_categories() {
        let (_d, list) = sample();
        let gambling_only = 1 << 1;
        assert_eq!(list.manifest().categories, ["adult", "gambling", "drugs"]);
        let v = list.lookup_masked("www.example.com", gambling_only);
        assert!(v.is_blocked());
        assert_eq!(v.categories, gambling_only);
        // ads.safe.example.com is adult only: with adult off, the allow above it decides.
        let v = list.lookup_masked("ads.safe.example.com", gambling_only);
        assert_eq!(v.decision, Decision::Allowed);
        assert_eq!(
            list.lookup_masked("casino.test", 1).decision,
            Decision::NotListed
        );
    }

    #[test]
    fn wire_labels_match_like_text() {
        let (_d, list) = sample();
        let labels: Vec<&[u8]> = vec![b"www", b"Example", b"com"];
        let v = list.lookup_labels(labels.iter().copied(), u32::MAX);
        assert!(v.is_blocked());
        let root: Vec<&[u8]> = vec![];
        assert_eq!(
            list.lookup_labels(root.iter().copied(), u32::MAX),
            Verdict::NOT_LISTED
        );
    }

    #[test]
    fn invalid_names_are_not_listed() {
        let (_d, list) = sample();
        for name in ["", ".", "..", "a..example.com", &"a".repeat(300)] {
            assert!(!list.lookup(name).is_blocked(), "{name:?}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::lists::compile::{InlineRules, compile};
    use crate::lists::rule::{Action, Rule};
    use proptest::prelude::*;

    /// The semantics written the slow, obvious way.
    fn reference(rules: &[(u32, Rule)], query: &str) -> (Decision, u32, Option<String>) {
        let applies = |r: &Rule| {
            r.name == query
                || (r.scope == Scope::Subtree && query.ends_with(&format!(".{}", r.name)))
        };
        let depth = |n: &str| n.split('.').count();
        let Some(best) = rules
            .iter()
            .filter(|(_, r)| applies(r))
            .map(|(_, r)| depth(&r.name))
            .max()
        else {
            return (Decision::NotListed, 0, None);
        };
        let here: Vec<&(u32, Rule)> = rules
            .iter()
            .filter(|(_, r)| applies(r) && depth(&r.name) == best)
            .collect();
        let name = here[0].1.name.clone();
        if here.iter().any(|(_, r)| r.action == Action::Allow) {
            return (Decision::Allowed, 0, Some(name));
        }
        let cats = here.iter().fold(0, |m, (c, _)| m | c);
        (Decision::Blocked, cats, Some(name))
    }

    fn arb_name() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "ab"]), 1..4)
            .prop_map(|l| l.join("."))
    }

    fn arb_rule() -> impl Strategy<Value = (u32, Rule)> {
        (arb_name(), any::<bool>(), any::<bool>(), 0u32..3).prop_map(|(name, allow, exact, cat)| {
            let rule = Rule {
                name,
                action: if allow { Action::Allow } else { Action::Block },
                scope: if exact { Scope::Exact } else { Scope::Subtree },
            };
            (if allow { 0 } else { 1 << cat }, rule)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn matcher_agrees_with_the_reference(rules in prop::collection::vec(arb_rule(), 1..12), queries in prop::collection::vec(arb_name(), 1..20)) {
            prop_assume!(rules.iter().any(|(_, r)| r.action == Action::Block));
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("p.fst");
            let cats = ["c0", "c1", "c2"];
            let inline = InlineRules {
                rules: rules.iter().map(|(c, r)| {
                    let cat = (*c != 0).then(|| cats[c.trailing_zeros() as usize].to_owned());
                    (cat, r.clone())
                }).collect(),
            };
            compile(&[], &inline, &out, &mut |_| {}).unwrap();
            let list = Blocklist::open(&out).unwrap();
            for q in &queries {
                let v = list.lookup(q);
                let (decision, cats_ref, name) = reference(&rules, q);
                prop_assert_eq!(v.decision, decision, "query {}", q);
                prop_assert_eq!(v.rule.map(|r| r.name), name, "query {}", q);
                // Category bits are assigned in order of first appearance: map names back.
                let got: Vec<&str> = list.manifest().category_names(v.categories);
                let want: Vec<&str> = (0..3).filter(|b| cats_ref & (1 << b) != 0).map(|b| cats[b]).collect();
                let mut got = got; got.sort();
                prop_assert_eq!(got, want, "query {}", q);
            }
        }

        #[test]
        fn lookup_never_panics(name in any::<String>(), bytes in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..70), 0..6)) {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("p.fst");
            let inline = InlineRules { rules: vec![(Some("x".into()), Rule::block("a.b"))] };
            compile(&[], &inline, &out, &mut |_| {}).unwrap();
            let list = Blocklist::open(&out).unwrap();
            let _ = list.lookup(&name);
            let _ = list.lookup_labels(bytes.iter().map(|l| l.as_slice()), u32::MAX);
        }
    }
}
