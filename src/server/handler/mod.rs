//! The request handler: one [`Decision`] per query ([`decision`]), then the reply as a
//! hickory-proto [`Message`] (`reply`): a refusal, the protocol's own answer, the
//! sinkhole, a SafeSearch CNAME or the upstream's reply.
//!
//! [`Handler::answer`] replies without waiting whenever it can (blocks, refusals, errors,
//! SafeSearch CNAMEs, fresh cache hits) and hands back a [`Pending`] only when upstream
//! must be asked; [`Handler::finish`] does that part. Every transport goes through these
//! two ([`super::wire`] decodes for them); the fast path ([`super::fastpath`]) writes
//! the same decision on bytes when it is a block or a cache hit, and otherwise passes its
//! decision here.

pub mod decision;
mod reply;

use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::identity::{EdnsOpt, Identify};
use super::local::ChaosAnswers;
use crate::answer::EdeCode;
use crate::lists::Blocklist;
use crate::lists::swap::LiveBlocklist;
use crate::metrics::{self, Metrics, Protocol};
use crate::policy::Client;
use crate::policy::decide::{Group, Policy};
use crate::querylog::QueryLog;
use crate::shutdown::Drain;
use crate::upstream::forwarder::QueryFlags;
use crate::upstream::resolve::{Resolved, Resolver};
pub use decision::Question;
use decision::{Asked, Block, ChainBlock, Decider, Decision, blocked_in_chain};

/// Answers every query: policy first, then sinkhole, SafeSearch or upstream. Cloning is
/// cheap (shared parts behind `Arc`s).
#[derive(Clone)]
pub struct Handler {
    /// What happens to each query, and its counting.
    decider: Decider,
    resolver: Resolver,
    pub(super) drain: Arc<Drain>,
    safesearch_ttl: u32,
    /// Which forwarders' device MAC and Client Subnet options are believed.
    identify: Arc<Identify>,
}

/// The reply to a query, as far as it is known without waiting.
pub enum Reply {
    /// Send this reply (its question section is left to the transport).
    Now(Message),
    /// Send nothing (a refused client with `refuse_action = "drop"`).
    Silent,
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
    /// The policy that decided the query (a reload meanwhile does not change it).
    policy: Arc<Policy>,
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
        policy: Arc<ArcSwap<Policy>>,
        drain: Arc<Drain>,
        safesearch_ttl: u32,
        metrics: Arc<Metrics>,
    ) -> Self {
        Handler {
            decider: Decider {
                lists,
                policy,
                metrics,
                querylog: None,
                chaos: Arc::default(),
                ddr: Arc::default(),
            },
            resolver,
            drain,
            safesearch_ttl,
            identify: Arc::default(),
        }
    }

    /// Reads who is asking as `identify` says (`server.trusted_forwarders`,
    /// `ecs_from_trusted`, `client_id_domain`); without it no EDNS identity is believed.
    pub fn with_identity(mut self, identify: Identify) -> Self {
        self.identify = Arc::new(identify);
        self
    }

    /// How the server reads who is asking.
    pub fn identity(&self) -> &Identify {
        &self.identify
    }

    /// `base` with what the query's EDNS `options` say about who is asking
    /// ([`Identify::identify`]); ignored options are counted.
    pub fn identify<'a>(
        &self,
        base: &Client,
        options: impl IntoIterator<Item = EdnsOpt<'a>>,
    ) -> Client {
        self.identify
            .identify(base, options, &self.decider.metrics.identity)
    }

    /// Answers CHAOS-class identity queries with `chaos` (`server.chaos_*`).
    pub fn with_chaos(mut self, chaos: ChaosAnswers) -> Self {
        self.decider.chaos = Arc::new(chaos);
        self
    }

    /// Answers DDR queries (`_dns.resolver.arpa`) with `ddr`: our bound DoT/DoH
    /// endpoints ([`super::ddr`]); without it they get NODATA.
    pub fn with_ddr(mut self, ddr: super::ddr::Ddr) -> Self {
        self.decider.ddr = Arc::new(ddr);
        self
    }

    /// Logs blocked queries to `log` (`[querylog]`).
    pub fn with_querylog(mut self, log: Option<QueryLog>) -> Self {
        self.decider.querylog = log;
        self
    }

    /// The per-client policy serving now (a config reload swaps it; a query keeps the one
    /// its [`Decision`] carries).
    pub fn policy(&self) -> Arc<Policy> {
        self.decider.policy.load_full()
    }

    /// The swappable policy itself, for the config reload to store a new one in.
    pub fn live_policy(&self) -> &Arc<ArcSwap<Policy>> {
        &self.decider.policy
    }

    /// The serving list.
    pub fn lists(&self) -> &Arc<LiveBlocklist> {
        &self.decider.lists
    }

    /// The metrics this handler counts into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.decider.metrics
    }

    /// Decides what happens to a query ([`Decider::decide`]), and counts it.
    pub fn decide(&self, asked: &impl Asked, client: &Client, protocol: Protocol) -> Decision {
        self.decider.decide(asked, client, protocol)
    }

    /// Counts a cache hit the fast path answered ([`Decider::count_hit`]).
    pub(super) fn count_hit(&self, group: usize) {
        self.decider.count_hit(group);
    }
}

impl Handler {
    /// Decides on `q` ([`Handler::decide`]) unless a transport already did (`decided`: the
    /// UDP fast path, which could not write that decision on bytes), and replies with
    /// everything that can be answered without waiting; see [`Reply`]. The caller holds
    /// the drain guard (shutdown) for as long as the query is being answered.
    pub fn answer(
        &self,
        q: &Question<'_>,
        client: &Client,
        protocol: Protocol,
        decided: Option<Decision>,
    ) -> Reply {
        let decision = decided.unwrap_or_else(|| self.decider.decide(q, client, protocol));
        let request = q.metadata;
        let (group, list, policy, query, ask, prefix) = match (decision, q.query) {
            (Decision::Drop, _) => return Reply::Silent,
            (Decision::Refused(text), _) => {
                let ede = Some((EdeCode::Prohibited, text));
                return Reply::Now(reply::error(request, q.edns, ResponseCode::Refused, ede));
            }
            (Decision::Local(local), _) => {
                return Reply::Now(reply::local(request, q.edns, local));
            }
            // `decide` gives the others only for a query with exactly one question.
            (_, None) => {
                return Reply::Now(reply::error(request, q.edns, ResponseCode::FormErr, None));
            }
            (Decision::Blocked(block), Some((query, _))) => {
                let group = &block.policy.groups()[block.group];
                let edns = reply::reply_edns(q.edns);
                return Reply::Now(reply::block(request, edns, query, group, &block));
            }
            (
                Decision::SafeSearch {
                    group,
                    list,
                    target,
                    policy,
                },
                Some((query, _)),
            ) => {
                let Ok(mut target) = Name::from_ascii(target) else {
                    return Reply::Now(reply::error(request, q.edns, ResponseCode::ServFail, None));
                };
                target.set_fqdn(true);
                let cname = Record::from_rdata(
                    query.name().clone(),
                    self.safesearch_ttl,
                    RData::CNAME(CNAME(target.clone())),
                );
                if query.query_type() == RecordType::CNAME {
                    let metadata = reply::reply_metadata(request, ResponseCode::NoError);
                    let mut m = reply::message(metadata, reply::reply_edns(q.edns));
                    m.answers.push(cname);
                    return Reply::Now(m);
                }
                let mut ask = query.clone();
                ask.set_name(target);
                (group, list, policy, query, ask, Some(cname))
            }
            (
                Decision::Forward {
                    group,
                    list,
                    policy,
                },
                Some((query, _)),
            ) => (group, list, policy, query, query.clone(), None),
        };
        let flags = QueryFlags {
            dnssec_ok: q.edns.is_some_and(|e| e.flags().dnssec_ok),
            checking_disabled: request.checking_disabled,
        };
        let pending = Pending {
            original: query.clone(),
            mask: policy.mask(&policy.groups()[group], list.manifest()),
            ask,
            flags,
            prefix,
            list,
            group,
            policy,
            metadata: *request,
            edns: reply::reply_edns(q.edns),
            client: client.addr,
        };
        match self.resolver.cached(&pending.ask, flags) {
            Some(resolved) => Reply::Now(self.conclude(pending, resolved, true)),
            None => Reply::Upstream(Box::new(pending)),
        }
    }

    /// The part of an answer that waits on upstream (or on a coalesced fetch); the reply
    /// carries the client's question.
    pub async fn finish(&self, pending: Box<Pending>) -> Message {
        let result = self.resolver.resolve(&pending.ask, pending.flags).await;
        let question = pending.original.clone();
        let mut reply = match result {
            Ok(resolved) => self.conclude(*pending, resolved, false),
            Err(error) => {
                self.resolver.note_failure(&error);
                if pending.prefix.is_none() {
                    self.decider
                        .count_forwarded(pending.group, metrics::Verdict::ServFail);
                }
                reply::unreachable(&pending.metadata, pending.edns)
            }
        };
        reply.queries = vec![question];
        reply
    }

    /// An upstream (or cached, `from_cache`) reply to the client: blocked if its CNAME chain
    /// leads to a listed name, relayed otherwise.
    fn conclude(&self, p: Pending, resolved: Resolved, from_cache: bool) -> Message {
        if from_cache {
            self.decider.metrics.cache(true);
        }
        // SafeSearch targets are not checked against the list: the operator chose them.
        let groups = p.policy.groups();
        let group = groups.get(p.group).or(groups.last());
        if p.prefix.is_none()
            && let Some(group) = group
            && let Some(found) =
                blocked_in_chain(&p.list, p.mask, Some((&p.policy, group)), &resolved.message)
        {
            let (verdict, service) = match found {
                ChainBlock::List(v) => (v, None),
                ChainBlock::Service(s) => (s.verdict, Some(s.id)),
            };
            let block = Block {
                group: p.group,
                list: p.list.clone(),
                verdict,
                code: if service.is_some() {
                    EdeCode::Filtered
                } else {
                    EdeCode::Blocked
                },
                service,
                guard: None,
                policy: p.policy.clone(),
            };
            let how = metrics::Verdict::BlockedCname;
            let original = &p.original;
            let name = || {
                let name = original.name().to_lowercase().to_ascii();
                (name.trim_end_matches('.').to_owned(), original.query_type())
            };
            self.decider.count_block(&block, how, name, p.client);
            return reply::block(&p.metadata, p.edns, &p.original, group, &block);
        }
        if p.prefix.is_none() {
            self.decider
                .count_forwarded(p.group, metrics::Verdict::Allowed);
        }
        reply::forwarded(&p.metadata, p.edns, resolved, p.prefix)
    }

    /// The resolver's response cache, if configured.
    pub(super) fn cache(&self) -> Option<&crate::upstream::cache::ResponseCache> {
        self.resolver.cache()
    }

    /// What [`Handler::answer`] replies to a plain query for `query` with a cache hit `message`
    /// (ID 0, RD and AD set, CD `cd`; an OPT with payload and DO bit `edns` when set), encoded
    /// without a size limit: the bytes [`super::hitpath`] memoizes. `None` when the answer's
    /// CNAME chain is blocked for `mask` or for the group's services (`services`); the
    /// general path answers and counts that.
    pub(super) fn encode_hit(
        query: Query,
        cd: bool,
        edns: Option<(u16, bool)>,
        (list, mask): (&Blocklist, u32),
        services: Option<(&Policy, &Group)>,
        message: Message,
    ) -> Option<Vec<u8>> {
        if blocked_in_chain(list, mask, services, &message).is_some() {
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
        let mut reply =
            reply::forwarded(&request, reply::reply_edns(theirs.as_ref()), resolved, None);
        reply.queries = vec![query];
        let mut out = Vec::with_capacity(512);
        crate::dns::encode::encode(&mut out, &reply, u16::MAX);
        Some(out)
    }
}
