//! The request handler: a question in, a decision from [`crate::policy::decide`], then a
//! sinkhole, a SafeSearch CNAME or the upstream's reply out, as a hickory-proto [`Message`]
//! whose question section the transport fills in.
//!
//! [`Handler::step`] decides without waiting: it answers everything it can (blocks,
//! refusals, errors, SafeSearch CNAMEs, fresh cache hits) and hands back a [`Pending`] only
//! when upstream must be asked; [`Handler::finish`] does that part. The UDP fast path
//! ([`super::udp`]) and the stream transports (TCP, DoT, DoH, via [`super::wire`]) go
//! through these two.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use hickory_proto::rr::rdata::tsig::TSIG;

use super::local::{self, ChaosAnswers, Local};
use crate::answer::{EDE_OPTION, EdeCode, ede_payload};
use crate::dns::EDNS_PAYLOAD;
use crate::lists::swap::LiveBlocklist;
use crate::lists::{Blocklist, Verdict};
use crate::metrics::{self, Metrics, Protocol};
use crate::policy::RefuseAction;
use crate::policy::decide::{Admission, Group, Outcome, Policy};
use crate::querylog::{self as qlog, QueryLog};
use crate::shutdown::Drain;
use crate::upstream::forwarder::QueryFlags;
use crate::upstream::resolve::{Resolved, Resolver};

/// Answers every query: policy first, then sinkhole, SafeSearch or upstream. Cloning is
/// cheap (shared parts behind `Arc`s).
#[derive(Clone)]
pub struct Handler {
    lists: Arc<LiveBlocklist>,
    resolver: Resolver,
    policy: Arc<Policy>,
    pub(super) drain: Arc<Drain>,
    safesearch_ttl: u32,
    metrics: Arc<Metrics>,
    querylog: Option<QueryLog>,
    chaos: Arc<ChaosAnswers>,
}

/// A query as either transport decoded it.
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
    /// The client's address.
    pub client: IpAddr,
    /// How the query arrived.
    pub protocol: Protocol,
}

/// What [`Handler::step`] decided.
pub enum Step {
    /// Send this reply (its question section is left to the transport).
    Reply(Message),
    /// Send nothing (a refused client with `refuse_action = "drop"`).
    Drop,
    /// The answer needs upstream: pass this to [`Handler::finish`].
    Upstream(Box<Pending>),
}

/// A question waiting on upstream, with everything decided so far; owns its data so it can
/// move to a task of its own.
pub struct Pending {
    /// The client's question.
    original: Query,
    /// What upstream is asked (the SafeSearch target, or the client's question).
    ask: Query,
    flags: QueryFlags,
    /// A SafeSearch CNAME to put before the upstream's answers.
    prefix: Option<Record>,
    /// Held for the whole query: a swap mid-query cannot change its verdict.
    list: Arc<Blocklist>,
    /// Index of the client's group in [`Policy::groups`].
    group: usize,
    /// The group's categories when the query arrived (for CNAME cloaking).
    mask: u32,
    metadata: Metadata,
    edns: Option<Edns>,
    client: IpAddr,
}

impl Handler {
    /// A handler reading `lists`, deciding with `policy`, resolving with `resolver`.
    pub fn new(
        lists: Arc<LiveBlocklist>,
        resolver: Resolver,
        policy: Arc<Policy>,
        drain: Arc<Drain>,
        safesearch_ttl: u32,
        metrics: Arc<Metrics>,
    ) -> Self {
        Handler {
            lists,
            resolver,
            policy,
            drain,
            safesearch_ttl,
            metrics,
            querylog: None,
            chaos: Arc::default(),
        }
    }

    /// Answers CHAOS-class identity queries with `chaos` (`server.chaos_*`).
    pub fn with_chaos(mut self, chaos: ChaosAnswers) -> Self {
        self.chaos = Arc::new(chaos);
        self
    }

    /// Logs blocked queries to `log` (`[querylog]`).
    pub fn with_querylog(mut self, log: Option<QueryLog>) -> Self {
        self.querylog = log;
        self
    }

    /// The per-client policy.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The serving list.
    pub fn lists(&self) -> &Arc<LiveBlocklist> {
        &self.lists
    }

    /// The metrics this handler counts into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

/// The OPT record of our reply: present when the client sent one (RFC 6891), advertising
/// at most 1232 bytes, which also caps what a UDP reply may take (beyond it the reply is
/// truncated with TC=1).
fn reply_edns(theirs: Option<&Edns>) -> Option<Edns> {
    let theirs = theirs?;
    let mut edns = Edns::new();
    edns.set_max_payload(theirs.max_payload().clamp(512, EDNS_PAYLOAD));
    edns.set_dnssec_ok(theirs.flags().dnssec_ok);
    Some(edns)
}

fn with_ede(mut edns: Option<Edns>, code: EdeCode, text: &str) -> Option<Edns> {
    if let Some(e) = edns.as_mut() {
        e.options_mut()
            .insert(EdnsOption::Unknown(EDE_OPTION, ede_payload(code, text)));
    }
    edns
}

/// The first name in the upstream answer's CNAME chain that the list blocks for this group
/// (CNAME cloaking: an innocent-looking name aliased to a listed site).
fn blocked_in_chain(list: &Blocklist, mask: u32, reply: &Message) -> Option<Verdict> {
    for record in &reply.answers {
        let target = match &record.data {
            RData::CNAME(c) => Some(&c.0),
            _ => None,
        };
        for name in std::iter::once(&record.name).chain(target) {
            let verdict = list.lookup_labels(name.iter(), mask);
            if verdict.is_blocked() {
                return Some(verdict);
            }
        }
    }
    None
}

fn reply_metadata(request: &Metadata, code: ResponseCode) -> Metadata {
    let mut metadata = Metadata::response_from_request(request);
    metadata.response_code = code;
    metadata.recursion_available = true;
    metadata
}

/// A reply without a question section: the transport adds the client's.
fn message(metadata: Metadata, edns: Option<Edns>) -> Message {
    let mut m = Message::new(metadata.id, metadata.message_type, metadata.op_code);
    m.metadata = metadata;
    m.edns = edns;
    m
}

fn error(
    request: &Metadata,
    edns: Option<&Edns>,
    code: ResponseCode,
    ede: Option<(EdeCode, &str)>,
) -> Message {
    let mut edns = reply_edns(edns);
    if let Some((c, text)) = ede {
        edns = with_ede(edns, c, text);
    }
    message(reply_metadata(request, code), edns)
}

/// The reply to a query the protocol rules answer ([`local::check`]).
fn local_reply(request: &Metadata, edns: Option<&Edns>, local: Local) -> Message {
    let code = match &local {
        Local::Code(code) => *code,
        Local::BadVers => ResponseCode::BADVERS,
        Local::BadKey(_) => ResponseCode::NotAuth,
        Local::Chaos(_) | Local::Pass => ResponseCode::NoError,
    };
    // BADVERS needs an OPT for its extended RCODE: there is one, as only a query with an
    // OPT can ask for another EDNS version, and `error` answers it with ours.
    let mut reply = error(request, edns, code, None);
    match local {
        Local::BadKey(tsig) => reply.signature = Some(tsig),
        Local::Chaos(record) => {
            reply.metadata.authoritative = true;
            reply.answers.push(*record);
        }
        Local::Pass | Local::Code(_) | Local::BadVers => {}
    }
    reply
}

/// The sinkhole reply for a blocked name, in the group's mode, with the EDE `code`.
fn block(
    request: &Metadata,
    edns: Option<Edns>,
    query: &Query,
    list: &Blocklist,
    group: &Group,
    verdict: &Verdict,
    code: EdeCode,
) -> Message {
    let listed = verdict.rule.as_ref().map_or("", |r| r.name.as_str());
    let serial = list.manifest().serial as u32;
    let hole = group
        .sinkhole
        .build(query.name(), query.query_type(), listed, serial);
    let mut metadata = reply_metadata(request, hole.rcode);
    metadata.authoritative = true;
    let text = block_ede_text(list, group, verdict, code);
    let mut m = message(metadata, with_ede(edns, code, &text));
    m.answers = hole.answers;
    m.authorities = hole.soa.into_iter().collect();
    m
}

/// A query's name and type as the query log writes them.
fn log_name(query: &Query) -> (String, RecordType) {
    let name = query.name().to_lowercase().to_ascii();
    (name.trim_end_matches('.').to_owned(), query.query_type())
}

/// The EDE text of a block: the categories (or the deny list) and the group.
pub(super) fn block_ede_text(
    list: &Blocklist,
    group: &Group,
    verdict: &Verdict,
    code: EdeCode,
) -> String {
    let mut text = Vec::with_capacity(64);
    push_block_ede_text(&mut text, list, group, verdict, code);
    String::from_utf8_lossy(&text).into_owned()
}

/// Appends [`block_ede_text`] to `out` without allocating on its own (the UDP fast path
/// writes it straight into the reply): `blocked: adult, gambling (group school)`,
/// `blocked (kidsafe-dns)` without categories, `blocked: deny list (...)` for `Filtered`.
pub(super) fn push_block_ede_text(
    out: &mut Vec<u8>,
    list: &Blocklist,
    group: &Group,
    verdict: &Verdict,
    code: EdeCode,
) {
    out.extend_from_slice(b"blocked");
    if code == EdeCode::Filtered {
        out.extend_from_slice(b": deny list");
    } else {
        let manifest = list.manifest();
        let names = (0..32)
            .filter(|b| verdict.categories & (1 << b) != 0)
            .filter_map(|b| manifest.category_name(b));
        for (i, name) in names.enumerate() {
            out.extend_from_slice(if i == 0 { b": " } else { b", " });
            out.extend_from_slice(name.as_bytes());
        }
    }
    out.extend_from_slice(b" (");
    if group.named {
        out.extend_from_slice(b"group ");
        out.extend_from_slice(group.name.as_bytes());
    } else {
        out.extend_from_slice(b"kidsafe-dns");
    }
    out.push(b')');
}

/// Upstream failed: SERVFAIL with EDE 22, never silence.
fn unreachable(request: &Metadata, edns: Option<Edns>) -> Message {
    let text = "no upstream answered (kidsafe-dns)";
    let edns = with_ede(edns, EdeCode::NoReachableAuthority, text);
    message(reply_metadata(request, ResponseCode::ServFail), edns)
}

/// Relays an upstream reply: RCODE, sections, AD bit and TTLs as the upstream sent them.
fn forwarded(
    request: &Metadata,
    mut edns: Option<Edns>,
    resolved: Resolved,
    prefix: Option<Record>,
) -> Message {
    let reply = resolved.message;
    let mut metadata = reply_metadata(request, reply.metadata.response_code);
    // AD only to a client that asked for it, with AD or DO (RFC 6840 §5.7); upstream is
    // always asked with AD set, so its reply says what it validated.
    let dnssec_ok = edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
    metadata.authentic_data =
        reply.metadata.authentic_data && (request.authentic_data || dnssec_ok);
    // Pass the upstream's own Extended DNS Errors on (e.g. a DNSSEC failure reason).
    if let (Some(ours), Some(theirs)) = (edns.as_mut(), reply.edns.as_ref())
        && let Some(ede) = theirs.option(EdnsCode::Unknown(EDE_OPTION))
    {
        ours.options_mut().insert(ede.clone());
    }
    if resolved.stale {
        edns = with_ede(
            edns,
            EdeCode::StaleAnswer,
            "upstream unreachable, answer from cache (kidsafe-dns)",
        );
    }
    let mut m = message(metadata, edns);
    m.answers = match prefix {
        Some(cname) => std::iter::once(cname).chain(reply.answers).collect(),
        None => reply.answers,
    };
    m.authorities = reply.authorities;
    m.additionals = reply.additionals;
    m
}

impl Handler {
    /// Everything that can be answered without waiting; see [`Step`]. The caller holds the
    /// drain guard (shutdown) for as long as the query is being answered.
    pub fn step(&self, q: &Question<'_>) -> Step {
        self.metrics
            .query(q.protocol, q.query.map(|(query, _)| query.query_type()));
        self.step_admitted(q, self.policy.admit(q.client))
    }

    /// [`Handler::step`] for a query already counted and judged by
    /// [`Policy::admit`](crate::policy::decide::Policy::admit) (which must run once per
    /// query: it spends rate-limit tokens).
    pub fn step_admitted(&self, q: &Question<'_>, admission: Admission) -> Step {
        let request = q.metadata;
        match admission {
            Admission::Admit => {}
            Admission::NotAllowed(RefuseAction::Refuse) => {
                let ede = (
                    EdeCode::Prohibited,
                    "not allowed to use this resolver (kidsafe-dns)",
                );
                return Step::Reply(error(request, q.edns, ResponseCode::Refused, Some(ede)));
            }
            Admission::RateLimited(RefuseAction::Refuse) => {
                let ede = (EdeCode::Prohibited, "rate limited (kidsafe-dns)");
                return Step::Reply(error(request, q.edns, ResponseCode::Refused, Some(ede)));
            }
            Admission::NotAllowed(RefuseAction::Drop)
            | Admission::RateLimited(RefuseAction::Drop) => return Step::Drop,
        }
        let index = self.policy.group_index(q.client);
        let group = &self.policy.groups()[index];
        if request.op_code != OpCode::Query {
            self.metrics.answer(index, metrics::Verdict::Error);
            return Step::Reply(error(request, q.edns, ResponseCode::NotImp, None));
        }
        let asked = q
            .query
            .map(|(query, name)| (query.query_type(), query.query_class(), name));
        match local::check(q.edns, q.tsig, asked, &self.chaos) {
            Local::Pass => {}
            other => {
                self.metrics.answer(index, metrics::Verdict::Error);
                return Step::Reply(local_reply(request, q.edns, other));
            }
        }
        let Some((query, name)) = q.query else {
            // Not exactly one question.
            self.metrics.answer(index, metrics::Verdict::Error);
            return Step::Reply(error(request, q.edns, ResponseCode::FormErr, None));
        };
        let list = self.lists.current();
        let outcome = self.policy.decide(group, &list, || name.iter());
        let flags = QueryFlags {
            dnssec_ok: q.edns.is_some_and(|e| e.flags().dnssec_ok),
            checking_disabled: request.checking_disabled,
        };
        let edns = reply_edns(q.edns);
        let (ask, prefix) = match outcome {
            Outcome::Blocked(v) => {
                let how = metrics::Verdict::Blocked;
                self.count_block(index, &list, &v, how, &|| log_name(query), q.client);
                let m = block(request, edns, query, &list, group, &v, EdeCode::Blocked);
                return Step::Reply(m);
            }
            Outcome::Filtered(v) => {
                let how = metrics::Verdict::Filtered;
                self.count_block(index, &list, &v, how, &|| log_name(query), q.client);
                let m = block(request, edns, query, &list, group, &v, EdeCode::Filtered);
                return Step::Reply(m);
            }
            Outcome::SafeSearch(target) => {
                self.metrics.answer(index, metrics::Verdict::SafeSearch);
                let Ok(mut target) = Name::from_ascii(target) else {
                    return Step::Reply(error(request, q.edns, ResponseCode::ServFail, None));
                };
                target.set_fqdn(true);
                let cname = Record::from_rdata(
                    query.name().clone(),
                    self.safesearch_ttl,
                    RData::CNAME(CNAME(target.clone())),
                );
                if query.query_type() == RecordType::CNAME {
                    let mut m = message(reply_metadata(request, ResponseCode::NoError), edns);
                    m.answers.push(cname);
                    return Step::Reply(m);
                }
                let mut ask = query.clone();
                ask.set_name(target);
                (ask, Some(cname))
            }
            Outcome::Forward => (query.clone(), None),
        };
        let pending = Pending {
            original: query.clone(),
            mask: self.policy.mask(group, list.manifest()),
            ask,
            flags,
            prefix,
            list,
            group: index,
            metadata: *request,
            edns,
            client: q.client,
        };
        match self.resolver.cached(&pending.ask, flags) {
            Some(resolved) => {
                self.metrics.cache(true);
                Step::Reply(self.conclude(pending, resolved))
            }
            None => Step::Upstream(Box::new(pending)),
        }
    }

    /// The part of an answer that waits on upstream (or on a coalesced fetch).
    pub async fn finish(&self, pending: Box<Pending>) -> Message {
        let result = self.resolver.resolve(&pending.ask, pending.flags).await;
        match result {
            Ok(resolved) => self.conclude(*pending, resolved),
            Err(error) => {
                self.resolver.note_failure(&error);
                if pending.prefix.is_none() {
                    self.metrics
                        .answer(pending.group, metrics::Verdict::ServFail);
                }
                unreachable(&pending.metadata, pending.edns)
            }
        }
    }

    /// An upstream (or cached) reply to the client: blocked if its CNAME chain leads to a
    /// listed name, relayed otherwise.
    fn conclude(&self, p: Pending, resolved: Resolved) -> Message {
        // SafeSearch targets are not checked against the list: the operator chose them.
        if p.prefix.is_none()
            && let Some(verdict) = blocked_in_chain(&p.list, p.mask, &resolved.message)
        {
            let groups = self.policy.groups();
            let group = groups.get(p.group).or(groups.last());
            if let Some(group) = group {
                let how = metrics::Verdict::BlockedCname;
                let name = || log_name(&p.original);
                self.count_block(p.group, &p.list, &verdict, how, &name, p.client);
                return block(
                    &p.metadata,
                    p.edns,
                    &p.original,
                    &p.list,
                    group,
                    &verdict,
                    EdeCode::Blocked,
                );
            }
        }
        if p.prefix.is_none() {
            self.metrics.answer(p.group, metrics::Verdict::Allowed);
        }
        forwarded(&p.metadata, p.edns, resolved, p.prefix)
    }

    /// The resolver's response cache, if configured.
    pub(super) fn cache(&self) -> Option<&crate::upstream::cache::ResponseCache> {
        self.resolver.cache()
    }

    /// What [`Handler::step`] answers a plain query for `query` with a cache hit `message`
    /// (ID 0, RD and AD set, CD `cd`; an OPT with payload and DO bit `edns` when set), encoded
    /// without a size limit: the bytes [`super::hitpath`] memoizes. `None` when the answer's
    /// CNAME chain is blocked for `mask`; the general path answers and counts that.
    pub(super) fn encode_hit(
        query: Query,
        cd: bool,
        edns: Option<(u16, bool)>,
        list: &Blocklist,
        mask: u32,
        message: Message,
    ) -> Option<Vec<u8>> {
        if blocked_in_chain(list, mask, &message).is_some() {
            return None;
        }
        let mut request = Metadata::new(0, MessageType::Query, OpCode::Query);
        request.recursion_desired = true;
        request.checking_disabled = cd;
        // Encoded as for a client that set AD: the bytes carry the upstream's AD, and
        // hitpath clears it for a client that asked with neither AD nor DO.
        request.authentic_data = true;
        let theirs = edns.map(|(payload, dnssec_ok)| {
            let mut e = Edns::new();
            e.set_max_payload(payload);
            e.set_dnssec_ok(dnssec_ok);
            e
        });
        let resolved = Resolved {
            message,
            stale: false,
        };
        let mut reply = forwarded(&request, reply_edns(theirs.as_ref()), resolved, None);
        reply.queries = vec![query];
        let mut out = Vec::with_capacity(512);
        crate::dns::encode::encode(&mut out, &reply, u16::MAX);
        Some(out)
    }

    /// Counts a blocked answer, and logs it when the query log is on.
    pub(super) fn count_block(
        &self,
        group: usize,
        list: &Blocklist,
        v: &Verdict,
        how: metrics::Verdict,
        query: &dyn Fn() -> (String, RecordType),
        client: IpAddr,
    ) {
        self.metrics.answer(group, how);
        if how == metrics::Verdict::Filtered {
            // The group's own deny list has no list categories.
        } else {
            self.metrics.blocked(group, v.categories, |bit| {
                list.manifest().category_name(bit).map(str::to_owned)
            });
        }
        let Some(log) = &self.querylog else { return };
        let group = self.policy.groups().get(group).map(|g| g.name.clone());
        let categories = match how {
            metrics::Verdict::Filtered => vec!["deny list".to_owned()],
            _ => list
                .manifest()
                .category_names(v.categories)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        };
        let (name, qtype) = query();
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
