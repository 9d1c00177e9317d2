//! The request handler: hickory `Request` in, a decision from [`crate::policy::decide`],
//! then a sinkhole, a SafeSearch CNAME or the upstream's reply out. This file only
//! translates between hickory's types and the decisions made elsewhere.

use std::sync::Arc;

use hickory_proto::op::{Edns, Header, Message, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::answer::{EDE_OPTION, EdeCode, block_text, ede_payload};
use crate::config::RefuseAction;
use crate::lists::swap::LiveBlocklist;
use crate::lists::{Blocklist, Verdict};
use crate::policy::decide::{Admission, Group, Outcome, Policy};
use crate::shutdown::Drain;
use crate::upstream::forwarder::{EDNS_PAYLOAD, QueryFlags};
use crate::upstream::resolve::{Resolved, Resolver};

/// Answers every query: policy first, then sinkhole, SafeSearch or upstream.
pub struct Handler {
    lists: Arc<LiveBlocklist>,
    resolver: Resolver,
    policy: Arc<Policy>,
    drain: Arc<Drain>,
    safesearch_ttl: u32,
}

impl Handler {
    /// A handler reading `lists`, deciding with `policy`, resolving with `resolver`.
    pub fn new(
        lists: Arc<LiveBlocklist>,
        resolver: Resolver,
        policy: Arc<Policy>,
        drain: Arc<Drain>,
        safesearch_ttl: u32,
    ) -> Self {
        Handler {
            lists,
            resolver,
            policy,
            drain,
            safesearch_ttl,
        }
    }
}

/// The OPT record of our reply: present when the client sent one (RFC 6891), advertising
/// at most 1232 bytes, which also caps what hickory writes over UDP (it truncates with TC=1
/// beyond it).
fn reply_edns(request: &Request) -> Option<Edns> {
    let theirs = request.edns.as_ref()?;
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

fn fallback_info(request: &Request, code: ResponseCode) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = code;
    Header {
        metadata,
        counts: Default::default(),
    }
    .into()
}

fn reply_metadata(request: &Request, code: ResponseCode) -> Metadata {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = code;
    metadata.recursion_available = true;
    metadata
}

impl Handler {
    async fn send<R: ResponseHandler>(
        request: &Request,
        mut response: R,
        metadata: Metadata,
        edns: Option<Edns>,
        answers: &[Record],
        authorities: &[Record],
        additionals: &[Record],
    ) -> ResponseInfo {
        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        if let Some(e) = edns.as_ref() {
            builder.edns(e);
        }
        let code = metadata.response_code;
        let message = builder.build(
            metadata,
            answers.iter(),
            authorities.iter(),
            [].iter(),
            additionals.iter(),
        );
        match response.send_response(message).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, "could not send the response");
                fallback_info(request, code)
            }
        }
    }

    async fn send_error<R: ResponseHandler>(
        request: &Request,
        response: R,
        code: ResponseCode,
        ede: Option<(EdeCode, &str)>,
    ) -> ResponseInfo {
        let mut edns = reply_edns(request);
        if let Some((c, text)) = ede {
            edns = with_ede(edns, c, text);
        }
        let md = reply_metadata(request, code);
        Self::send(request, response, md, edns, &[], &[], &[]).await
    }

    /// The sinkhole reply for a blocked name, in the group's mode, with the EDE `code`.
    async fn send_block<R: ResponseHandler>(
        request: &Request,
        response: R,
        query: &Query,
        list: &Blocklist,
        group: &Group,
        verdict: &Verdict,
        code: EdeCode,
    ) -> ResponseInfo {
        let listed = verdict.rule.as_ref().map_or("", |r| r.name.as_str());
        let serial = list.manifest().serial as u32;
        let hole = group
            .sinkhole
            .build(query.name(), query.query_type(), listed, serial);
        let mut metadata = reply_metadata(request, hole.rcode);
        metadata.authoritative = true;
        let text = match code {
            EdeCode::Filtered => format!("blocked: deny list ({})", group.label()),
            _ => {
                let categories = list.manifest().category_names(verdict.categories);
                block_text(&categories).replace("(kidsafe-dns)", &format!("({})", group.label()))
            }
        };
        let edns = with_ede(reply_edns(request), code, &text);
        let soa: Vec<Record> = hole.soa.into_iter().collect();
        Self::send(request, response, metadata, edns, &hole.answers, &soa, &[]).await
    }

    /// Upstream failed: SERVFAIL with EDE 22, never silence.
    async fn send_unreachable<R: ResponseHandler>(request: &Request, response: R) -> ResponseInfo {
        let text = "no upstream answered (kidsafe-dns)";
        Self::send_error(
            request,
            response,
            ResponseCode::ServFail,
            Some((EdeCode::NoReachableAuthority, text)),
        )
        .await
    }

    /// Relays an upstream reply: RCODE, sections, AD bit and TTLs as the upstream sent them.
    async fn send_forwarded<R: ResponseHandler>(
        request: &Request,
        response: R,
        resolved: &Resolved,
        prefix: &[Record],
    ) -> ResponseInfo {
        let reply = &resolved.message;
        let mut metadata = reply_metadata(request, reply.metadata.response_code);
        metadata.authentic_data = reply.metadata.authentic_data;
        let mut edns = reply_edns(request);
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
        if prefix.is_empty() {
            return Self::send(
                request,
                response,
                metadata,
                edns,
                &reply.answers,
                &reply.authorities,
                &reply.additionals,
            )
            .await;
        }
        let answers: Vec<Record> = prefix.iter().chain(&reply.answers).cloned().collect();
        Self::send(
            request,
            response,
            metadata,
            edns,
            &answers,
            &reply.authorities,
            &reply.additionals,
        )
        .await
    }

    /// SafeSearch: answer `query` with a CNAME to `target` and the target's records.
    async fn send_safesearch<R: ResponseHandler>(
        &self,
        request: &Request,
        response: R,
        query: &Query,
        target: &str,
        flags: QueryFlags,
    ) -> ResponseInfo {
        let Ok(mut target) = Name::from_ascii(target) else {
            return Self::send_error(request, response, ResponseCode::ServFail, None).await;
        };
        target.set_fqdn(true);
        let cname = Record::from_rdata(
            query.name().clone(),
            self.safesearch_ttl,
            RData::CNAME(CNAME(target.clone())),
        );
        if query.query_type() == RecordType::CNAME {
            let md = reply_metadata(request, ResponseCode::NoError);
            return Self::send(
                request,
                response,
                md,
                reply_edns(request),
                &[cname],
                &[],
                &[],
            )
            .await;
        }
        let mut q = query.clone();
        q.set_name(target);
        match self.resolver.resolve(&q, flags).await {
            Ok(reply) => Self::send_forwarded(request, response, &reply, &[cname]).await,
            Err(error) => {
                tracing::warn!(%error, "upstream unreachable for a SafeSearch target");
                Self::send_unreachable(request, response).await
            }
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response: R,
    ) -> ResponseInfo {
        let Some(_inflight) = self.drain.enter() else {
            // Shutting down: drop it; the client retries another server.
            return fallback_info(request, ResponseCode::Refused);
        };
        let client = request.src().ip();
        match self.policy.admit(client) {
            Admission::Admit => {}
            Admission::NotAllowed(RefuseAction::Refuse) => {
                let ede = Some((
                    EdeCode::Prohibited,
                    "not allowed to use this resolver (kidsafe-dns)",
                ));
                return Self::send_error(request, response, ResponseCode::Refused, ede).await;
            }
            Admission::RateLimited(RefuseAction::Refuse) => {
                let ede = Some((EdeCode::Prohibited, "rate limited (kidsafe-dns)"));
                return Self::send_error(request, response, ResponseCode::Refused, ede).await;
            }
            Admission::NotAllowed(RefuseAction::Drop)
            | Admission::RateLimited(RefuseAction::Drop) => {
                return fallback_info(request, ResponseCode::Refused);
            }
        }
        if request.metadata.op_code != OpCode::Query {
            return Self::send_error(request, response, ResponseCode::NotImp, None).await;
        }
        let Ok(info) = request.request_info() else {
            // Not exactly one question.
            return Self::send_error(request, response, ResponseCode::FormErr, None).await;
        };
        let query = info.query.original();
        // Hold this list for the whole query: a swap mid-query cannot change its verdict.
        let list = self.lists.current();
        let group = self.policy.group_for(client);
        let name = info.query.name();
        let outcome = self
            .policy
            .decide(group, &list, || name.iter(), || name.to_string());
        let flags = QueryFlags {
            dnssec_ok: request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
            checking_disabled: request.metadata.checking_disabled,
        };
        match outcome {
            Outcome::Blocked(v) => {
                return Self::send_block(
                    request,
                    response,
                    query,
                    &list,
                    group,
                    &v,
                    EdeCode::Blocked,
                )
                .await;
            }
            Outcome::Filtered(v) => {
                return Self::send_block(
                    request,
                    response,
                    query,
                    &list,
                    group,
                    &v,
                    EdeCode::Filtered,
                )
                .await;
            }
            Outcome::SafeSearch(target) => {
                return self
                    .send_safesearch(request, response, query, target, flags)
                    .await;
            }
            Outcome::Forward => {}
        }

        let reply = match self.resolver.resolve(query, flags).await {
            Ok(reply) => reply,
            Err(error) => {
                tracing::warn!(%error, "upstream unreachable");
                return Self::send_unreachable(request, response).await;
            }
        };
        let mask = self.policy.mask(group, list.manifest());
        if let Some(verdict) = blocked_in_chain(&list, mask, &reply.message) {
            return Self::send_block(
                request,
                response,
                query,
                &list,
                group,
                &verdict,
                EdeCode::Blocked,
            )
            .await;
        }
        Self::send_forwarded(request, response, &reply, &[]).await
    }
}
