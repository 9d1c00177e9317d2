//! The request handler: hickory `Request` in, a verdict, then a sinkhole or the upstream's
//! reply out. This file only translates between hickory's types and the decisions made in
//! [`crate::lists`], [`crate::answer`] and [`crate::upstream`].

use std::sync::Arc;

use hickory_proto::op::{Edns, Header, Message, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{Name, RData, Record};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::answer::{EDE_OPTION, EdeCode, SinkholeBuilder, block_text, ede_payload};
use crate::lists::swap::LiveBlocklist;
use crate::lists::{Blocklist, Verdict};
use crate::shutdown::Drain;
use crate::upstream::Forwarder;
use crate::upstream::forwarder::{EDNS_PAYLOAD, QueryFlags};

/// Answers every query: matcher first, then sinkhole or upstream.
pub struct Handler {
    lists: Arc<LiveBlocklist>,
    forwarder: Forwarder,
    sinkhole: SinkholeBuilder,
    drain: Arc<Drain>,
}

impl Handler {
    /// A handler reading `lists`, forwarding with `forwarder`, sinkholing with `sinkhole`.
    pub fn new(
        lists: Arc<LiveBlocklist>,
        forwarder: Forwarder,
        sinkhole: SinkholeBuilder,
        drain: Arc<Drain>,
    ) -> Self {
        Handler {
            lists,
            forwarder,
            sinkhole,
            drain,
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

/// The first name in the upstream answer's CNAME chain that the list blocks (CNAME cloaking:
/// an innocent-looking name aliased to a listed tracker or adult site).
fn blocked_in_chain(list: &Blocklist, reply: &Message) -> Option<(Name, Verdict)> {
    for record in &reply.answers {
        let target = match &record.data {
            RData::CNAME(c) => Some(&c.0),
            _ => None,
        };
        for name in std::iter::once(&record.name).chain(target) {
            let verdict = list.lookup_labels(name.iter(), u32::MAX);
            if verdict.is_blocked() {
                return Some((name.clone(), verdict));
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
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = code;
        metadata.recursion_available = true;
        Self::send(
            request,
            response,
            metadata,
            reply_edns(request),
            &[],
            &[],
            &[],
        )
        .await
    }

    /// The sinkhole reply for a name the list blocks.
    async fn send_block<R: ResponseHandler>(
        &self,
        request: &Request,
        response: R,
        list: &Blocklist,
        verdict: &Verdict,
    ) -> ResponseInfo {
        let Ok(info) = request.request_info() else {
            return Self::send_error(request, response, ResponseCode::FormErr).await;
        };
        let query = info.query.original();
        let listed = verdict.rule.as_ref().map_or("", |r| r.name.as_str());
        let serial = list.manifest().serial as u32;
        let hole = self
            .sinkhole
            .build(query.name(), query.query_type(), listed, serial);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = hole.rcode;
        metadata.recursion_available = true;
        metadata.authoritative = true;
        let categories = list.manifest().category_names(verdict.categories);
        let edns = with_ede(
            reply_edns(request),
            EdeCode::Blocked,
            &block_text(&categories),
        );
        let soa: Vec<Record> = hole.soa.into_iter().collect();
        Self::send(request, response, metadata, edns, &hole.answers, &soa, &[]).await
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
        if request.metadata.op_code != OpCode::Query {
            return Self::send_error(request, response, ResponseCode::NotImp).await;
        }
        let Ok(info) = request.request_info() else {
            // Not exactly one question.
            return Self::send_error(request, response, ResponseCode::FormErr).await;
        };
        // Hold this list for the whole query: a swap mid-query cannot change its verdict.
        let list = self.lists.current();
        let verdict = list.lookup_labels(info.query.name().iter(), u32::MAX);
        if verdict.is_blocked() {
            return self.send_block(request, response, &list, &verdict).await;
        }

        let flags = QueryFlags {
            dnssec_ok: request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
            checking_disabled: request.metadata.checking_disabled,
        };
        let reply = match self.forwarder.forward(info.query.original(), flags).await {
            Ok(reply) => reply,
            Err(error) => {
                tracing::warn!(%error, "upstream unreachable");
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                metadata.recursion_available = true;
                let edns = with_ede(
                    reply_edns(request),
                    EdeCode::NoReachableAuthority,
                    "no upstream answered (kidsafe-dns)",
                );
                return Self::send(request, response, metadata, edns, &[], &[], &[]).await;
            }
        };
        if let Some((_, verdict)) = blocked_in_chain(&list, &reply) {
            return self.send_block(request, response, &list, &verdict).await;
        }

        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = reply.metadata.response_code;
        metadata.recursion_available = true;
        metadata.authentic_data = reply.metadata.authentic_data;
        let mut edns = reply_edns(request);
        // Pass the upstream's own Extended DNS Errors on (e.g. a DNSSEC failure reason).
        if let (Some(ours), Some(theirs)) = (edns.as_mut(), reply.edns.as_ref())
            && let Some(ede) =
                theirs.option(hickory_proto::rr::rdata::opt::EdnsCode::Unknown(EDE_OPTION))
        {
            ours.options_mut().insert(ede.clone());
        }
        Self::send(
            request,
            response,
            metadata,
            edns,
            &reply.answers,
            &reply.authorities,
            &reply.additionals,
        )
        .await
    }
}
