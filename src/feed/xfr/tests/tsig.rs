//! TSIG key validation, offline.

use super::*;

#[test]
fn tsig_key_validation() {
    let good = key("xfr-key.", b"0123456789abcdef0123456789abcdef");
    let signer = good.signer().unwrap();
    assert_eq!(signer.signer_name(), &name("xfr-key."));
    let mut upper = good.clone();
    upper.algorithm = "HMAC-SHA512.".into();
    upper.signer().unwrap();

    let mut bad = good.clone();
    bad.algorithm = "hmac-md5".into();
    assert!(matches!(bad.signer(), Err(XfrError::InvalidKey { .. })));
    let mut bad = good.clone();
    bad.secret_base64 = "not base64!".into();
    let Err(err) = bad.signer() else {
        panic!("bad base64 accepted")
    };
    assert!(err.to_string().contains("base64"), "{err}");
    let mut bad = good.clone();
    bad.secret_base64 = String::new();
    assert!(bad.signer().is_err());

    let dbg = format!("{good:?}");
    assert!(
        !dbg.contains(&good.secret_base64) && dbg.contains("redacted"),
        "{dbg}"
    );
}
