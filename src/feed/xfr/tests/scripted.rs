//! Fallbacks and failure modes against a scripted in-process primary.

use super::*;

type Script = Arc<dyn Fn(&Message) -> Vec<Message> + Send + Sync>;

/// A TCP primary on 127.0.0.1 that answers each request with the messages
/// `script` returns (ids fixed up), then closes the connection.
async fn scripted_primary(script: Script) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let script = script.clone();
            tokio::spawn(async move {
                if let Ok(Some(q)) = frame::read(&mut conn).await {
                    let query = Message::from_vec(&q).unwrap();
                    for mut m in script(&query) {
                        m.metadata.id = query.id;
                        if frame::write(&mut conn, &m.to_vec().unwrap()).await.is_err() {
                            return;
                        }
                    }
                }
                // Dropping `conn` closes the connection.
            });
        }
    });
    (addr, task)
}

fn reply(query: &Message, answers: Vec<Record>) -> Message {
    let mut m = Message::response(query.id, OpCode::Query);
    m.metadata.authoritative = true;
    m.add_queries(query.queries.clone());
    m.add_answers(answers);
    m
}

fn source(primary: SocketAddr) -> XfrSource {
    XfrSource {
        primary,
        zone: name("rpz.test"),
        tsig: None,
    }
}

#[tokio::test]
async fn ixfr_refused_falls_back_to_axfr() {
    let (addr, task) = scripted_primary(Arc::new(|q: &Message| {
        match q.queries[0].query_type() {
            RecordType::IXFR => {
                let mut m = reply(q, vec![]);
                m.metadata.response_code = ResponseCode::NotImp;
                vec![m]
            }
            // Two messages, to exercise multi-message reads.
            _ => vec![
                reply(q, vec![soa(8), rule("a")]),
                reply(q, vec![rule("b"), soa(8)]),
            ],
        }
    }))
    .await;
    let out = source(addr).transfer(Some(5), T).await.unwrap();
    let XfrOutcome::Full(snap) = out else {
        panic!("{out:?}")
    };
    assert_eq!(snap.serial, 8);
    assert_eq!(snap.records, vec![soa(8), rule("a"), rule("b")]);
    task.abort();
}

#[tokio::test]
async fn error_rcode_is_reported_with_a_hint() {
    let (addr, task) = scripted_primary(Arc::new(|q: &Message| {
        let mut m = reply(q, vec![]);
        m.metadata.response_code = ResponseCode::Refused;
        vec![m]
    }))
    .await;
    let err = source(addr).transfer(None, T).await.unwrap_err();
    assert!(
        matches!(
            err,
            XfrError::Rcode {
                rcode: ResponseCode::Refused,
                query: RecordType::AXFR,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("ACL") && msg.contains("rpz.test"), "{msg}");
    task.abort();
}

#[tokio::test]
async fn wrong_question_and_early_close_are_rejected() {
    let (addr, task) = scripted_primary(Arc::new(|q: &Message| {
        let mut m = reply(q, vec![soa(1), rule("a"), soa(1)]);
        m.queries[0].set_name(name("other.test."));
        vec![m]
    }))
    .await;
    let err = source(addr).transfer(None, T).await.unwrap_err();
    assert!(
        matches!(&err, XfrError::Malformed { reason, .. } if reason.contains("other.test")),
        "{err:?}"
    );
    task.abort();

    let (addr, task) = scripted_primary(Arc::new(|q: &Message| {
        vec![reply(q, vec![soa(1), rule("a")])]
    }))
    .await;
    let err = source(addr).transfer(None, T).await.unwrap_err();
    assert!(
        matches!(&err, XfrError::Malformed { reason, .. } if reason.contains("closed before")),
        "{err:?}"
    );
    task.abort();
}

#[tokio::test]
async fn stalled_primary_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (_conn, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let start = std::time::Instant::now();
    let err = source(addr)
        .transfer(None, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, XfrError::Timeout { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(3));
    task.abort();
}

#[tokio::test]
async fn unsigned_answer_to_signed_request_is_rejected() {
    let (addr, task) = scripted_primary(Arc::new(|q: &Message| {
        vec![reply(q, vec![soa(1), rule("a"), soa(1)])]
    }))
    .await;
    let mut src = source(addr);
    src.tsig = Some(key("xfr-key.", b"0123456789abcdef"));
    let err = src.transfer(None, T).await.unwrap_err();
    assert!(matches!(err, XfrError::Tsig { .. }), "{err:?}");
    task.abort();
}

#[tokio::test]
async fn soa_query_falls_back_to_tcp_when_truncated() {
    // UDP and TCP on the same port: UDP always answers TC.
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let udp = UdpSocket::bind(addr).await.unwrap();
    let udp_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let q = Message::from_vec(&buf[..n]).unwrap();
            let mut m = reply(&q, vec![]);
            m.metadata.truncation = true;
            udp.send_to(&m.to_vec().unwrap(), from).await.unwrap();
        }
    });
    let tcp_task = tokio::spawn(async move {
        let (mut conn, _) = tcp.accept().await.unwrap();
        let q = Message::from_vec(&frame::read(&mut conn).await.unwrap().unwrap()).unwrap();
        frame::write(&mut conn, &reply(&q, vec![soa(31)]).to_vec().unwrap())
            .await
            .unwrap();
    });
    assert_eq!(source(addr).soa_serial(T).await.unwrap(), 31);
    udp_task.abort();
    tcp_task.abort();
}

#[tokio::test]
async fn soa_query_requires_authority() {
    let (addr, task) = scripted_primary(Arc::new(|q: &Message| {
        let mut m = reply(q, vec![soa(4)]);
        m.metadata.authoritative = false;
        vec![m]
    }))
    .await;
    // Nothing listens on UDP there: UDP times out (half the budget), TCP
    // answers without AA.
    let err = source(addr)
        .soa_serial(Duration::from_millis(600))
        .await
        .unwrap_err();
    assert!(matches!(err, XfrError::NotAuthoritative { .. }), "{err:?}");
    task.abort();
}
