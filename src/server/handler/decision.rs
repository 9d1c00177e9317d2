//! What happens to a query, decided once, whichever transport read it.
//!
//! [`Decider::decide`] takes a query in either form a transport holds (decoded into a
//! message by the general path, [`Question`], or read in place by the fast path,
//! [`Request`]) through the same steps: admission (allowed client, rate limit), the client's
//! group, the protocol rules ([`super::super::local`]), then what the lists and the policy
//! say. It counts what it decided in the metrics (and logs a block), so a query is counted
//! the same whichever path answers it; the fast path's tests compare the counts too. The
//! reply is then an encoding of the [`Decision`]: on messages by [`super::Handler::answer`], or on
//! bytes by the fast path for the two commonest decisions (a block, a cache hit).
//!
//! Forwarded queries are counted when their answer is known (allowed, blocked in the CNAME
//! chain, or SERVFAIL): `Decider::count_forwarded`.

use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use hickory_proto::op::{Edns, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::rr::rdata::tsig::TSIG;
use hickory_proto::rr::{Name, RecordType};

use super::super::ddr::Ddr;
use super::super::local::{self, ChaosAnswers, Local};
use crate::activity;
use crate::answer::{self, EdeCode, SinkholeBuilder};
use crate::bypass::Kind;
use crate::dns::request::Request;
use crate::lists::swap::LiveBlocklist;
use crate::lists::{Blocklist, Decision as ListDecision, Verdict};
use crate::metrics::{self, Metrics, Protocol};
use crate::policy::decide::{Admission, BypassBlock, Group, Outcome, Policy, ServiceBlock};
use crate::policy::{Client, RefuseAction};
use crate::querylog::{self as qlog, QueryLog};

/// A query as the general path decoded it.
pub struct Question<'a> {
    /// The request's header fields.
    pub metadata: &'a Metadata,
    /// The request's OPT record, if any.
    pub edns: Option<&'a Edns>,
    /// The request's TSIG record, if it was signed.
    pub tsig: Option<&'a Record<TSIG>>,
    /// The single question with the client's spelling and its lowercased name, or `None`
    /// when the request does not carry exactly one question.
    pub query: Option<(&'a Query, &'a Name)>,
}

/// A query as a transport read it: what [`Decider::decide`] needs to know of it.
pub trait Asked {
    /// The question's type, when there is exactly one question (for the metrics).
    fn qtype(&self) -> Option<RecordType>;
    /// Whether the opcode is QUERY (others get NOTIMP).
    fn is_query(&self) -> bool;
    /// What the protocol rules make of it.
    fn local(&self, chaos: &ChaosAnswers) -> Local;
    /// Whether it carries exactly one question (others get FORMERR).
    fn has_question(&self) -> bool;
    /// The question's labels, lowercased, leftmost first (empty without a question).
    fn labels(&self) -> impl DoubleEndedIterator<Item = &[u8]>;
    /// The name (lowercased, no trailing dot) and type the query log writes.
    fn log_name(&self) -> (String, RecordType);
}

impl Asked for Question<'_> {
    fn qtype(&self) -> Option<RecordType> {
        self.query.map(|(query, _)| query.query_type())
    }

    fn is_query(&self) -> bool {
        self.metadata.op_code == OpCode::Query
    }

    fn local(&self, chaos: &ChaosAnswers) -> Local {
        let asked = self
            .query
            .map(|(query, name)| (query.query_type(), query.query_class(), name));
        local::check(self.edns, self.tsig, asked, chaos)
    }

    fn has_question(&self) -> bool {
        self.query.is_some()
    }

    fn labels(&self) -> impl DoubleEndedIterator<Item = &[u8]> {
        self.query.into_iter().flat_map(|(_, name)| name.iter())
    }

    fn log_name(&self) -> (String, RecordType) {
        let Some((query, lower)) = self.query else {
            return (String::new(), RecordType::NULL);
        };
        let name = lower.to_ascii();
        (name.trim_end_matches('.').to_owned(), query.query_type())
    }
}

/// A plain query read in place: one question of class IN, opcode QUERY, no TSIG, EDNS
/// version 0 and no meta-type ([`Request::parse`] leaves everything else to the general
/// path), so the protocol rules pass it by construction.
impl Asked for Request<'_> {
    fn qtype(&self) -> Option<RecordType> {
        Some(RecordType::from(self.qtype))
    }

    fn is_query(&self) -> bool {
        true
    }

    fn local(&self, _: &ChaosAnswers) -> Local {
        Local::Pass
    }

    fn has_question(&self) -> bool {
        true
    }

    fn labels(&self) -> impl DoubleEndedIterator<Item = &[u8]> {
        Request::labels(self)
    }

    fn log_name(&self) -> (String, RecordType) {
        (self.name_text(), RecordType::from(self.qtype))
    }
}

/// What is to happen to a query; every transport encodes the same decision.
pub enum Decision {
    /// Send nothing: a refused client with `refuse_action = "drop"`.
    Drop,
    /// REFUSED with EDE 18 (Prohibited) and this text: a client not allowed, or over its
    /// rate limit.
    Refused(&'static str),
    /// Answered by the protocol rules: NOTIMP for an opcode other than QUERY, FORMERR
    /// without exactly one question, and [`local::check`]'s answers.
    Local(Local),
    /// The sinkhole.
    Blocked(Block),
    /// A CNAME to this SafeSearch host, followed by upstream's answer for the host.
    SafeSearch {
        /// Index of the client's group in [`Policy::groups`](crate::policy::decide::Policy::groups).
        group: usize,
        /// The list as it was when the query arrived.
        list: Arc<Blocklist>,
        /// The SafeSearch host.
        target: &'static str,
        /// The policy that decided it (a reload mid-query does not change it).
        policy: Arc<Policy>,
    },
    /// Upstream's (or the cache's) answer, checked for a listed name in its CNAME chain.
    Forward {
        /// Index of the client's group.
        group: usize,
        /// The list as it was when the query arrived: a swap mid-query cannot change the
        /// verdict on the answer.
        list: Arc<Blocklist>,
        /// The policy that decided it: the CNAME check uses the same one.
        policy: Arc<Policy>,
    },
}

/// A blocked query: why, and for whom.
pub struct Block {
    /// Index of the client's group.
    pub group: usize,
    /// The list that blocked it.
    pub list: Arc<Blocklist>,
    /// The rule and categories that matched.
    pub verdict: Verdict,
    /// [`EdeCode::Blocked`] (the shared list) or [`EdeCode::Filtered`] (the group's own
    /// deny list, or a service it blocks).
    pub code: EdeCode,
    /// The blocked service's catalog id, when a service blocked it.
    pub service: Option<Arc<str>>,
    /// Bypass protection or `block_unsafe_search` blocked it.
    pub guard: Option<Guard>,
    /// The policy that decided it (its [`Policy::groups`] holds `group`).
    pub policy: Arc<Policy>,
}

/// A guard of the profile's that blocked a name, beyond lists and services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// Bypass protection, for this kind of bypass.
    Bypass(Kind),
    /// `block_unsafe_search`: a search engine whose SafeSearch cannot be forced.
    UnsafeSearch,
}

impl Block {
    /// How `group` answers this block: NXDOMAIN for the network signals of bypass
    /// protection (the documented answer), else the group's sinkhole.
    pub fn hole<'g>(&self, group: &'g Group) -> &'g SinkholeBuilder {
        match self.guard {
            Some(Guard::Bypass(kind)) if kind.is_signal() => &group.nxdomain,
            _ => &group.sinkhole,
        }
    }

    /// Appends the EDE text ([`answer::push_block_text`]) for a client of `group`.
    pub fn push_text(&self, group: &Group, out: &mut Vec<u8>) {
        if let Some(guard) = self.guard {
            let what = match guard {
                Guard::Bypass(kind) => kind.as_str(),
                Guard::UnsafeSearch => "unsafe search",
            };
            let domain = self.verdict.rule.as_ref().map_or("", |r| r.name.as_str());
            let group = group.named.then_some(group.name.as_str());
            let bypass = matches!(guard, Guard::Bypass(_));
            answer::push_guard_text(out, bypass, what, domain, group);
            return;
        }
        if let Some(service) = &self.service {
            let group = group.named.then_some(group.name.as_str());
            answer::push_service_text(out, service, group);
            return;
        }
        let manifest = self.list.manifest();
        let categories = (0..32)
            .filter(|b| self.verdict.categories & (1 << b) != 0)
            .filter_map(|b| manifest.category_name(b));
        let group = group.named.then_some(group.name.as_str());
        answer::push_block_text(out, self.code, categories, group);
    }

    /// How the metrics count it.
    fn how(&self) -> metrics::Verdict {
        match self.code {
            EdeCode::Filtered => metrics::Verdict::Filtered,
            _ => metrics::Verdict::Blocked,
        }
    }
}

/// Decides what happens to each query, and counts it: the parts of the handler that every
/// transport's decision reads.
#[derive(Clone)]
pub struct Decider {
    /// The serving list.
    pub(super) lists: Arc<LiveBlocklist>,
    /// The per-client policy, swapped whole by a config reload; each query loads it once.
    pub(super) policy: Arc<ArcSwap<Policy>>,
    /// Where queries and answers are counted.
    pub(super) metrics: Arc<Metrics>,
    /// Blocked queries are logged here when `[querylog]` is on.
    pub(super) querylog: Option<QueryLog>,
    /// What CHAOS identity queries are told.
    pub(super) chaos: Arc<ChaosAnswers>,
    /// What DDR queries (`_dns.resolver.arpa`) are told.
    pub(super) ddr: Arc<Ddr>,
}

impl Decider {
    /// Decides what happens to a query from `client` that arrived over `protocol`, and
    /// counts it; see the module doc. Runs once per query: admission spends rate-limit
    /// tokens. Admission (and the query log) go by `client.addr`, the profile by the most
    /// specific identity ([`Policy::choose`]).
    pub fn decide(&self, asked: &impl Asked, client: &Client, protocol: Protocol) -> Decision {
        self.metrics.query(protocol, asked.qtype());
        // One policy from start to end: a reload swaps in a new one for later queries.
        let policy = self.policy.load_full();
        match policy.admit(client.addr) {
            Admission::Admit => {}
            Admission::NotAllowed(RefuseAction::Refuse) => {
                return Decision::Refused("not allowed to use this resolver (kidsafe-dns)");
            }
            Admission::RateLimited(RefuseAction::Refuse) => {
                return Decision::Refused("rate limited (kidsafe-dns)");
            }
            Admission::NotAllowed(RefuseAction::Drop)
            | Admission::RateLimited(RefuseAction::Drop) => return Decision::Drop,
        }
        let index = policy.group_index(client);
        let group = &policy.groups()[index];
        group
            .activity(&self.metrics.activity)
            .query(crate::clock::now_unix() as i64);
        let local = if !asked.is_query() {
            Local::Code(ResponseCode::NotImp)
        } else {
            match asked.local(&self.chaos) {
                Local::Pass if !asked.has_question() => Local::Code(ResponseCode::FormErr),
                other => other,
            }
        };
        if !matches!(local, Local::Pass) {
            self.metrics.answer(index, metrics::Verdict::Error);
            return Decision::Local(local);
        }
        // DDR: never forwarded (upstream would name its own endpoints), for every profile
        // (it names only us); counted as an allowed answer.
        if Ddr::asks(asked.labels()) {
            let qname = Name::from_labels(asked.labels()).unwrap_or_default();
            let qtype = asked.qtype().unwrap_or(RecordType::NULL);
            self.metrics.answer(index, metrics::Verdict::Allowed);
            return Decision::Local(Local::Ddr(Box::new(self.ddr.answer(&qname, qtype))));
        }
        let list = self.lists.current();
        let code = match policy.decide(group, &list, || asked.labels()) {
            Outcome::Blocked(verdict) => (verdict, EdeCode::Blocked, None, None),
            Outcome::Filtered(verdict) => (verdict, EdeCode::Filtered, None, None),
            Outcome::Service(ServiceBlock { id, verdict }) => {
                (verdict, EdeCode::Filtered, Some(id), None)
            }
            Outcome::Bypass(BypassBlock { kind, verdict }) => {
                (verdict, EdeCode::Filtered, None, Some(Guard::Bypass(kind)))
            }
            Outcome::UnsafeSearch(verdict) => {
                (verdict, EdeCode::Filtered, None, Some(Guard::UnsafeSearch))
            }
            Outcome::SafeSearch(target) => {
                self.metrics.answer(index, metrics::Verdict::SafeSearch);
                return Decision::SafeSearch {
                    group: index,
                    list,
                    target,
                    policy,
                };
            }
            Outcome::Forward => {
                return Decision::Forward {
                    group: index,
                    list,
                    policy,
                };
            }
        };
        let block = Block {
            group: index,
            list,
            verdict: code.0,
            code: code.1,
            service: code.2,
            guard: code.3,
            policy,
        };
        self.count_block(&block, block.how(), || asked.log_name(), client.addr);
        Decision::Blocked(block)
    }

    /// Counts a forwarded query's answer: `Allowed` or `ServFail` (a listed name in the
    /// CNAME chain goes through [`Decider::count_block`]). A SafeSearch rewrite was counted
    /// when decided and is not counted again.
    pub(super) fn count_forwarded(&self, group: usize, how: metrics::Verdict) {
        self.metrics.answer(group, how);
    }

    /// Counts an allowed answer from the cache, as the general path counts one (a cache
    /// hit, then `Allowed`): for the fast path's hits.
    pub(super) fn count_hit(&self, group: usize) {
        self.metrics.cache(true);
        self.count_forwarded(group, metrics::Verdict::Allowed);
    }

    /// Counts a blocked answer `how` (a block, a group's deny list, a listed name in the
    /// CNAME chain) and logs it when the query log is on.
    pub(super) fn count_block(
        &self,
        block: &Block,
        how: metrics::Verdict,
        name: impl FnOnce() -> (String, RecordType),
        client: IpAddr,
    ) {
        let (group, list, v) = (block.group, &block.list, &block.verdict);
        self.metrics.answer(group, how);
        let why = if let Some(Guard::Bypass(kind)) = block.guard {
            self.metrics.bypass_attempt(group, kind);
            activity::Blocked::Bypass(kind)
        } else if block.guard.is_some() {
            // An unsafe search engine: counted by its answer's verdict alone.
            activity::Blocked::UnsafeSearch
        } else if let Some(service) = &block.service {
            self.metrics.service_blocked(service);
            activity::Blocked::Service(service)
        } else if how != metrics::Verdict::Filtered {
            self.metrics.blocked(group, v.categories, |bit| {
                list.manifest().category_name(bit).map(str::to_owned)
            });
            activity::Blocked::Categories(v.categories)
        } else {
            // The group's own deny list has no list categories.
            activity::Blocked::OwnList
        };
        if let Some(g) = block.policy.groups().get(group) {
            g.activity(&self.metrics.activity).blocked(why);
        }
        let Some(log) = &self.querylog else { return };
        let group = block.policy.groups().get(group).map(|g| g.name.clone());
        let categories = match how {
            _ if block.guard.is_some() => match block.guard {
                Some(Guard::Bypass(kind)) => vec![format!("bypass {}", kind.as_str())],
                _ => vec!["unsafe search".to_owned()],
            },
            _ if block.service.is_some() => {
                vec![format!(
                    "service {}",
                    block.service.as_deref().unwrap_or_default()
                )]
            }
            metrics::Verdict::Filtered => vec!["deny list".to_owned()],
            _ => list
                .manifest()
                .category_names(v.categories)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        };
        let (name, qtype) = name();
        log.blocked(qlog::Event {
            name,
            qtype: qtype.to_string(),
            group: group.unwrap_or_default(),
            verdict: how.as_str(),
            categories,
            client,
        });
    }
}

/// Why a name in an answer's CNAME chain is blocked.
pub(super) enum ChainBlock {
    /// The shared list, in one of the group's categories.
    List(Verdict),
    /// A service the group blocks.
    Service(ServiceBlock),
}

/// The first name in the upstream answer's CNAME chain that the list blocks for this group
/// (CNAME cloaking: an innocent-looking name aliased to a listed site), or that a service
/// the group blocks covers (`services` is the policy and the group, `None` for none).
/// A name the group's own allow list lets through is not blocked here either.
pub(super) fn blocked_in_chain(
    list: &Blocklist,
    mask: u32,
    services: Option<(&Policy, &Group)>,
    reply: &hickory_proto::op::Message,
) -> Option<ChainBlock> {
    for record in &reply.answers {
        let target: Option<&Name> = match &record.data {
            hickory_proto::rr::RData::CNAME(c) => Some(&c.0),
            _ => None,
        };
        for name in std::iter::once(&record.name).chain(target) {
            // Mandatory categories first: no allow list or exception lets them through.
            if let Some((policy, _)) = services
                && let Some(verdict) = policy.mandatory(list, name.iter())
            {
                return Some(ChainBlock::List(verdict));
            }
            if let Some((policy, group)) = services
                && policy.excepted(group, || name.iter())
            {
                continue;
            }
            if let Some((_, group)) = services
                && let Some(own) = &group.own
                && own.current().lookup_labels(name.iter(), u32::MAX).decision
                    == ListDecision::Allowed
            {
                continue;
            }
            if let Some((policy, group)) = services
                && let Some(block) = policy.service(group, name.iter())
            {
                return Some(ChainBlock::Service(block));
            }
            let verdict = list.lookup_labels(name.iter(), mask);
            if verdict.is_blocked() {
                return Some(ChainBlock::List(verdict));
            }
        }
    }
    None
}
