//! Stripe webhook signatures, exactly as Stripe specifies them: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]`,
//! HMAC-SHA256 keyed by the whole secret string (`whsec_` included) over `"{t}.{raw body}"`. Any `v1` may
//! match any configured secret (Stripe signs with two secrets for a day after a roll); other schemes such
//! as `v0` are ignored. Comparison is constant-time (`Mac::verify_slice`).

use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a request's signature was refused. Messages are safe to return to the caller: they never echo a
/// secret or an expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    MissingHeader,
    #[error("the Stripe-Signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("the Stripe-Signature header has no v1 signature")]
    NoV1Signature,
    #[error("no v1 signature matches the body for any configured webhook secret")]
    Mismatch,
    #[error("the signature timestamp is {age_secs} s old, more than the {tolerance_secs} s allowed")]
    TooOld { age_secs: i64, tolerance_secs: u64 },
    #[error("the signature timestamp is {ahead_secs} s in the future, more than the {tolerance_secs} s allowed")]
    FromTheFuture { ahead_secs: i64, tolerance_secs: u64 },
}

struct ParsedHeader {
    timestamp: i64,
    signatures: Vec<Vec<u8>>,
}

fn parse_header(header: &str) -> Result<ParsedHeader, SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            return Err(SignatureError::Malformed("every item must be key=value"));
        };
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed("more than one timestamp"));
                }
                let t = value.parse::<i64>().map_err(|_| SignatureError::Malformed("the timestamp is not a number"))?;
                timestamp = Some(t);
            }
            // A v1 value that is not hex cannot match; skip it as Stripe's libraries do.
            "v1" => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("no timestamp (t=)"))?;
    if signatures.is_empty() {
        return Err(SignatureError::NoV1Signature);
    }
    Ok(ParsedHeader { timestamp, signatures })
}

fn mac_for(secret: &SecretString, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks `header` against `body` for any of `secrets`, then that the timestamp is within `tolerance`
/// of `now` (unix seconds) in either direction.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[SecretString],
    tolerance: Duration,
    now: i64,
) -> Result<(), SignatureError> {
    let parsed = parse_header(header.ok_or(SignatureError::MissingHeader)?)?;
    let matched = secrets.iter().any(|secret| {
        let mac = mac_for(secret, parsed.timestamp, body);
        parsed.signatures.iter().any(|sig| mac.clone().verify_slice(sig).is_ok())
    });
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    let tolerance_secs = tolerance.as_secs();
    let age = now - parsed.timestamp;
    if age > tolerance_secs as i64 {
        return Err(SignatureError::TooOld { age_secs: age, tolerance_secs });
    }
    if -age > tolerance_secs as i64 {
        return Err(SignatureError::FromTheFuture { ahead_secs: -age, tolerance_secs });
    }
    Ok(())
}

/// Produces a `Stripe-Signature` header the way Stripe does. Used by the demo and the tests to send
/// signed events; Landlord itself only verifies.
pub fn sign(body: &[u8], secret: &SecretString, timestamp: i64) -> String {
    let sig = mac_for(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: Duration = Duration::from_secs(300);
    const NOW: i64 = 1_767_225_600;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn accepts_a_valid_signature_and_refuses_a_tampered_body() {
        let s = secret("whsec_one");
        let header = sign(b"{\"id\":1}", &s, NOW);
        assert_eq!(verify(Some(&header), b"{\"id\":1}", std::slice::from_ref(&s), TOL, NOW), Ok(()));
        assert_eq!(verify(Some(&header), b"{\"id\":2}", &[s], TOL, NOW), Err(SignatureError::Mismatch));
    }

    #[test]
    fn wrong_secret_is_a_mismatch_and_rotation_accepts_either() {
        let (old, new) = (secret("whsec_old"), secret("whsec_new"));
        let header = sign(b"body", &old, NOW);
        assert_eq!(verify(Some(&header), b"body", std::slice::from_ref(&new), TOL, NOW), Err(SignatureError::Mismatch));
        assert_eq!(verify(Some(&header), b"body", &[new.clone(), old.clone()], TOL, NOW), Ok(()));
        // Stripe signs with both secrets during a roll: either v1 may be the one we know.
        let both = format!("{},v1={}", sign(b"body", &new, NOW), sign(b"body", &old, NOW).split("v1=").nth(1).unwrap());
        assert_eq!(verify(Some(&both), b"body", &[old], TOL, NOW), Ok(()));
    }

    #[test]
    fn timestamps_outside_tolerance_are_refused() {
        let s = secret("whsec_t");
        let old = sign(b"b", &s, NOW - 301);
        assert_eq!(
            verify(Some(&old), b"b", std::slice::from_ref(&s), TOL, NOW),
            Err(SignatureError::TooOld { age_secs: 301, tolerance_secs: 300 })
        );
        let future = sign(b"b", &s, NOW + 301);
        assert!(matches!(
            verify(Some(&future), b"b", std::slice::from_ref(&s), TOL, NOW),
            Err(SignatureError::FromTheFuture { .. })
        ));
        let edge = sign(b"b", &s, NOW - 300);
        assert_eq!(verify(Some(&edge), b"b", &[s], TOL, NOW), Ok(()));
    }

    #[test]
    fn missing_and_garbled_headers() {
        let s = [secret("whsec_x")];
        assert_eq!(verify(None, b"b", &s, TOL, NOW), Err(SignatureError::MissingHeader));
        for garbled in ["", "garbage", "t=abc,v1=00", "v1=00ff", "t=1,t=2,v1=00"] {
            assert!(
                matches!(verify(Some(garbled), b"b", &s, TOL, NOW), Err(SignatureError::Malformed(_))),
                "{garbled}"
            );
        }
        assert_eq!(verify(Some(&format!("t={NOW}")), b"b", &s, TOL, NOW), Err(SignatureError::NoV1Signature));
        assert_eq!(verify(Some(&format!("t={NOW},v0=abcd")), b"b", &s, TOL, NOW), Err(SignatureError::NoV1Signature));
        assert_eq!(verify(Some(&format!("t={NOW},v1=zz")), b"b", &s, TOL, NOW), Err(SignatureError::NoV1Signature));
    }

    #[test]
    fn official_stripe_library_vector_verifies() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
        let body = std::fs::read(dir.join("stripe_checkout_completed.json")).unwrap();
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("stripe_checkout_completed.meta.json")).unwrap()).unwrap();
        let s = secret(meta["secret"].as_str().unwrap());
        let header = meta["header"].as_str().unwrap();
        let t = meta["timestamp"].as_i64().unwrap();
        assert_eq!(verify(Some(header), &body, std::slice::from_ref(&s), TOL, t + 10), Ok(()));
        assert_eq!(sign(&body, &s, t), header, "our signer must agree with Stripe's");
        let mut tampered = body.clone();
        tampered[10] ^= 1;
        assert_eq!(verify(Some(header), &tampered, &[s], TOL, t), Err(SignatureError::Mismatch));
    }
}
