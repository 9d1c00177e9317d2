//! TSIG (RFC 8945) on the primary's side: checking a request's signature, and signing every
//! message of the answer, chained as §5.3.1 asks for a multi-message transfer.
//!
//! hickory-proto 0.26 verifies a signed message ([`TSigner::verify_message_byte`]) and
//! builds the to-be-signed bytes of a first answer ([`TSigner::encode_response_tbs`]), but
//! has no signer for the later messages of a stream (which cover the previous MAC, the
//! message and only the timers). That part is written here, and the tests check it with
//! hickory's own verifier, which a secondary uses message by message.

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::{TSIG, TsigError, make_tsig_record};
use hickory_proto::rr::{Name, Record, TSigner};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

/// How a request stands with TSIG.
pub enum RequestAuth {
    /// No TSIG record.
    Unsigned,
    /// Signed with our key, verified, on time: answers are signed.
    Signed(ResponseSigner),
    /// Signed, but not acceptably: answer NOTAUTH with this TSIG record (unsigned for
    /// BADKEY and BADSIG, signed for BADTIME, as RFC 8945 §5.3.2 asks).
    Bad {
        /// BADKEY, BADSIG or BADTIME.
        error: TsigError,
        /// The signer of a BADTIME answer (the MAC was good, so we can sign).
        signer: Option<ResponseSigner>,
        /// The key name the request used.
        key_name: Name,
    },
}

/// Checks `request` (its wire form `bytes`) against our key at time `now`.
pub fn check_request(
    bytes: &[u8],
    request: &Message,
    key: Option<&TSigner>,
    now: u64,
) -> RequestAuth {
    let Some(tsig) = request.signature() else {
        return RequestAuth::Unsigned;
    };
    let bad = |error| RequestAuth::Bad {
        error,
        signer: None,
        key_name: tsig.name.clone(),
    };
    let Some(key) = key else {
        return bad(TsigError::BadKey);
    };
    if !tsig.name.eq_ignore_root(key.signer_name()) || &tsig.data.algorithm != key.algorithm() {
        return bad(TsigError::BadKey);
    }
    let Ok((mac, _time, window)) = key.verify_message_byte(bytes, None, true) else {
        return bad(TsigError::BadSig);
    };
    let signer = ResponseSigner {
        key: key.clone(),
        id: request.id,
        previous_mac: mac,
        first: true,
    };
    if !window.contains(&now) {
        return RequestAuth::Bad {
            error: TsigError::BadTime,
            signer: Some(signer),
            key_name: tsig.name.clone(),
        };
    }
    RequestAuth::Signed(signer)
}

/// Signs the messages of one answer in order, each MAC covering the one before.
#[derive(Clone)]
pub struct ResponseSigner {
    key: TSigner,
    /// The request's id: the TSIG "original ID" of every answer message.
    id: u16,
    /// The request's MAC for the first message, then each message's own.
    previous_mac: Vec<u8>,
    first: bool,
}

/// Why a message could not be signed (an encoding failure inside hickory; not expected).
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the answer: {0}")]
pub struct SignError(String);

impl ResponseSigner {
    /// An upper bound on the size of the TSIG record this signer adds to a message.
    pub fn room(&self) -> usize {
        // Owner, type, class, TTL, RDLENGTH; algorithm name; time, fudge, MAC size, MAC,
        // original id, error, other length and other data (6 for BADTIME).
        self.key.signer_name().len()
            + 1
            + 10
            + self.key.algorithm().to_name().len()
            + 1
            + 6
            + 2
            + 2
            + 64
            + 2
            + 2
            + 2
            + 6
    }

    /// Appends a TSIG record to `message` (an encoded answer without one), signed at
    /// `now`, with `error` in it (`None` normally; BADTIME for a late request).
    pub fn sign(
        &mut self,
        message: &mut Vec<u8>,
        now: u64,
        error: Option<TsigError>,
    ) -> Result<(), SignError> {
        let err = |e: &dyn std::fmt::Display| SignError(e.to_string());
        // RFC 8945 §5.2.3: a BADTIME answer carries our time as Other Data.
        let other = match error {
            Some(TsigError::BadTime) => now.to_be_bytes()[2..].to_vec(),
            _ => Vec::new(),
        };
        let stub = TSIG::new(
            self.key.algorithm().clone(),
            now,
            self.key.fudge(),
            Vec::new(),
            self.id,
            error,
            other,
        );
        let tbs = if self.first {
            self.key
                .encode_response_tbs(&self.previous_mac, message, &stub)
                .map_err(|e| err(&e))?
        } else {
            // §5.3.1: later messages cover the previous MAC, the message, and only the
            // timers (Time Signed, Fudge).
            let mut tbs = Vec::with_capacity(message.len() + self.previous_mac.len() + 10);
            let mac_len = u16::try_from(self.previous_mac.len()).map_err(|e| err(&e))?;
            tbs.extend_from_slice(&mac_len.to_be_bytes());
            tbs.extend_from_slice(&self.previous_mac);
            tbs.extend_from_slice(message);
            tbs.extend_from_slice(&now.to_be_bytes()[2..]);
            tbs.extend_from_slice(&self.key.fudge().to_be_bytes());
            tbs
        };
        let mac = self.key.sign(&tbs).map_err(|e| err(&e))?;
        self.previous_mac = mac.clone();
        self.first = false;
        let record = make_tsig_record(self.key.signer_name().clone(), stub.set_mac(mac));
        append_tsig(message, &record).map_err(|e| err(&e))
    }
}

/// The unsigned TSIG record of a BADKEY or BADSIG answer (RFC 8945 §5.3.2).
pub fn unsigned_error(
    key_name: &Name,
    request: &Message,
    error: TsigError,
    now: u64,
) -> Record<TSIG> {
    let algorithm = request
        .signature()
        .map(|s| s.data.algorithm.clone())
        .unwrap_or(hickory_proto::rr::rdata::tsig::TsigAlgorithm::HmacSha256);
    let fudge = request.signature().map_or(300, |s| s.data.fudge);
    make_tsig_record(
        key_name.clone(),
        TSIG::new(
            algorithm,
            now,
            fudge,
            Vec::new(),
            request.id,
            Some(error),
            Vec::new(),
        ),
    )
}

/// Appends `record` to the encoded `message` as the last additional record.
pub fn append_tsig(message: &mut Vec<u8>, record: &Record<TSIG>) -> Result<(), String> {
    if message.len() < 12 {
        return Err("message shorter than a header".to_owned());
    }
    let mut encoded = Vec::with_capacity(128);
    let mut encoder = BinEncoder::new(&mut encoded);
    record.emit(&mut encoder).map_err(|e| e.to_string())?;
    let arcount = u16::from_be_bytes([message[10], message[11]])
        .checked_add(1)
        .ok_or("too many additional records")?;
    message[10..12].copy_from_slice(&arcount.to_be_bytes());
    message.extend_from_slice(&encoded);
    Ok(())
}
