//! NOTIFY detection, serial hint and acknowledgement, offline.

use super::*;

fn notify_bytes(zone: &str, with_soa: Option<u32>) -> Vec<u8> {
    let mut m = Message::new(4242, MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_query(Query::query(name(zone), RecordType::SOA));
    if let Some(serial) = with_soa {
        m.add_answer(soa(serial));
    }
    m.to_vec().unwrap()
}

#[test]
fn notify_detection_and_ack() {
    let bytes = notify_bytes("rpz.test.", Some(77));
    let msg = Message::from_vec(&bytes).unwrap();
    assert!(is_notify_for(&msg, &zone()));
    assert!(
        is_notify_for(&msg, &name("RPZ.test")),
        "relative/case-insensitive"
    );
    assert!(!is_notify_for(&msg, &name("other.test.")));
    assert_eq!(notify_serial(&msg), Some(77));
    assert_eq!(
        notify_serial(&Message::from_vec(&notify_bytes("rpz.test.", None)).unwrap()),
        None
    );

    let ack = Message::from_vec(&notify_response(&bytes).unwrap()).unwrap();
    assert_eq!(ack.id, 4242);
    assert_eq!(ack.message_type, MessageType::Response);
    assert_eq!(ack.op_code, OpCode::Notify);
    assert_eq!(ack.response_code, ResponseCode::NoError);
    assert!(ack.authoritative);
    assert_eq!(ack.queries, msg.queries);

    // A plain query is not a NOTIFY.
    let mut q = Message::query();
    q.add_query(Query::query(zone(), RecordType::SOA));
    let qb = q.to_vec().unwrap();
    assert!(!is_notify_for(&q, &zone()));
    assert_eq!(notify_response(&qb), None);
    assert_eq!(notify_response(b"\x00\x01garbage"), None);
    // A NOTIFY response is not a NOTIFY.
    assert!(!is_notify_for(&ack, &zone()));
}
