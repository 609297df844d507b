//! AWS Signature Version 4, as the Firehose API checks it: an AWS SDK
//! signs each request with an access key's secret, and the server, which
//! knows the secret, signs the same canonical request and compares.
//! [`sign`] makes signatures for this project's own load generator and tests.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's `X-Amz-Date` may be from the server's clock, as AWS allows.
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq)]
pub struct Authorization {
    pub access_key_id: String,
    /// `YYYYMMDD` of the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lowercase, in the order given (sorted, as the signer sorts them).
    pub signed_headers: Vec<String>,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the request is not signed: it needs an Authorization header (AWS Signature Version 4)"
    )]
    Missing,
    #[error("the Authorization header cannot be read: {0}")]
    Malformed(String),
    #[error("the signature does not match the request")]
    Mismatch,
    #[error("{0}")]
    Expired(String),
}

impl Authorization {
    pub fn parse(value: &str) -> Result<Authorization, Refusal> {
        let malformed = |what: &str| Refusal::Malformed(what.to_string());
        let rest = value
            .strip_prefix(ALGORITHM)
            .ok_or_else(|| malformed("it must start with AWS4-HMAC-SHA256"))?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            match part.trim().split_once('=') {
                Some(("Credential", v)) => credential = Some(v),
                Some(("SignedHeaders", v)) => signed = Some(v),
                Some(("Signature", v)) => signature = Some(v),
                _ => {}
            }
        }
        let credential = credential.ok_or_else(|| malformed("no Credential"))?;
        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key_id, date, region, service, "aws4_request"] = scope[..] else {
            return Err(malformed(
                "Credential must be KEY/DATE/REGION/SERVICE/aws4_request",
            ));
        };
        let signed_headers: Vec<String> = signed
            .ok_or_else(|| malformed("no SignedHeaders"))?
            .split(';')
            .map(str::to_ascii_lowercase)
            .collect();
        let signature = signature.ok_or_else(|| malformed("no Signature"))?;
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed("the Credential's date must be YYYYMMDD"));
        }
        Ok(Authorization {
            access_key_id: access_key_id.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
            signed_headers,
            signature: signature.to_string(),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The header's value as signed: trimmed, inner runs of spaces made one.
fn canonical_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Percent-encoding as SigV4 wants it: everything but unreserved characters.
fn uri_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(k), uri_encode(v))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The signature of a request whose signed headers are `headers` (lowercase
/// names with their values, in signed order).
#[allow(clippy::too_many_arguments)]
fn signature(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    payload_sha256: &str,
    amz_date: &str,
    scope_parts: (&str, &str, &str),
    secret: &str,
) -> String {
    let (date, region, service) = scope_parts;
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{}\n", canonical_value(value)))
        .collect();
    let signed: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    let canonical_request = format!(
        "{method}\n{path}\n{}\n{canonical_headers}\n{}\n{payload_sha256}",
        canonical_query(query),
        signed.join(";")
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    hex(&hmac(&key, string_to_sign.as_bytes()))
}

/// Seconds since the epoch of `YYYYMMDDTHHMMSSZ`.
pub fn parse_amz_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' || !digits(0..8) || !digits(9..15) {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}",
        &text[0..4],
        &text[4..6],
        &text[6..8],
        &text[9..11],
        &text[11..13],
        &text[13..15]
    );
    app::chart::view::parse_utc(&iso).map(|ms| ms.div_euclid(1000))
}

/// `YYYYMMDDTHHMMSSZ` of `epoch_seconds`.
pub fn format_amz_date(epoch_seconds: i64) -> String {
    // From `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    let iso = app::chart::view::iso_time(epoch_seconds * 1000);
    format!(
        "{}{}{}T{}{}{}Z",
        &iso[0..4],
        &iso[5..7],
        &iso[8..10],
        &iso[11..13],
        &iso[14..16],
        &iso[17..19]
    )
}

/// A request as received, to check its signature.
pub struct Received<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Checks a signed request against the key's `secret`, at `now` (epoch
/// seconds).
pub fn verify(
    request: &Received<'_>,
    authorization: &Authorization,
    secret: &str,
    now: i64,
) -> Result<(), Refusal> {
    let Received {
        method,
        path,
        query,
        headers,
        body,
    } = *request;
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let amz_date =
        text("x-amz-date").ok_or_else(|| Refusal::Malformed("no X-Amz-Date header".into()))?;
    let when = parse_amz_date(amz_date).ok_or_else(|| {
        Refusal::Malformed(format!("X-Amz-Date {amz_date:?} is not YYYYMMDDTHHMMSSZ"))
    })?;
    if (now - when).abs() > MAX_SKEW_SECONDS {
        return Err(Refusal::Expired(format!(
            "Signature expired: {amz_date} is more than 15 minutes from the server's time {}",
            format_amz_date(now)
        )));
    }
    if !amz_date.starts_with(&authorization.date) {
        return Err(Refusal::Malformed(
            "the Credential's date is not X-Amz-Date's".into(),
        ));
    }
    if !authorization.signed_headers.iter().any(|h| h == "host") {
        return Err(Refusal::Malformed("SignedHeaders must include host".into()));
    }
    let mut signed = Vec::with_capacity(authorization.signed_headers.len());
    for name in &authorization.signed_headers {
        let values: Vec<&str> = headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return Err(Refusal::Malformed(format!(
                "signed header {name} is missing"
            )));
        }
        signed.push((name.clone(), values.join(",")));
    }
    let payload = hex(&Sha256::digest(body));
    if let Some(claimed) = text("x-amz-content-sha256")
        && claimed != payload
    {
        return Err(Refusal::Mismatch);
    }
    let expected = signature(
        method,
        path,
        query,
        &signed,
        &payload,
        amz_date,
        (
            &authorization.date,
            &authorization.region,
            &authorization.service,
        ),
        secret,
    );
    if same(expected.as_bytes(), authorization.signature.as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::Mismatch)
    }
}

/// Byte strings compared in constant time, so timing reveals no prefix.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Signs a request as an AWS SDK would: returns the `X-Amz-Date` and
/// `Authorization` headers to add. `headers` are the other headers to sign
/// (at least `host`).
pub fn sign(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    (access_key_id, secret): (&str, &str),
    region: &str,
    now: i64,
) -> [(&'static str, String); 2] {
    let amz_date = format_amz_date(now);
    let mut signed: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .chain([("x-amz-date".to_string(), amz_date.clone())])
        .collect();
    signed.sort();
    let date = &amz_date[..8];
    let signature = signature(
        method,
        path,
        "",
        &signed,
        &hex(&Sha256::digest(body)),
        &amz_date,
        (date, region, "firehose"),
        secret,
    );
    let names: Vec<&str> = signed.iter().map(|(n, _)| n.as_str()).collect();
    let scope = format!("{date}/{region}/firehose/aws4_request");
    [
        ("x-amz-date", amz_date.clone()),
        (
            "authorization",
            format!(
                "{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={}, Signature={signature}",
                names.join(";")
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn amz_dates_round_trip() {
        for epoch in [0, 951_782_400, 1_795_600_000, 4_102_444_799] {
            assert_eq!(parse_amz_date(&format_amz_date(epoch)), Some(epoch));
        }
        assert_eq!(format_amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(parse_amz_date("20150830T123600"), None);
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_breaks_it() {
        let key = ("PBKTESTTESTTESTTEST", "a secret");
        let body = br#"{"DeliveryStreamName":"sensors"}"#;
        let now = 1_795_600_000;
        let base = [
            ("host", "ingest.example:3000"),
            ("x-amz-target", "Firehose_20150804.PutRecord"),
        ];
        let mut headers = HeaderMap::new();
        for (n, v) in base {
            headers.insert(n, HeaderValue::from_static(v));
        }
        for (n, v) in sign("POST", "/", &base, body, key, "eu-west-1", now) {
            headers.insert(n, HeaderValue::from_str(&v).unwrap());
        }
        let auth = Authorization::parse(headers["authorization"].to_str().unwrap()).unwrap();
        let verify = |headers: &HeaderMap, body: &[u8], secret: &str, now: i64| {
            let request = Received {
                method: "POST",
                path: "/",
                query: "",
                headers,
                body,
            };
            verify(&request, &auth, secret, now)
        };
        assert_eq!(auth.access_key_id, key.0);
        assert_eq!(verify(&headers, body, key.1, now + 60), Ok(()));

        assert_eq!(verify(&headers, b"{}", key.1, now), Err(Refusal::Mismatch));
        assert_eq!(
            verify(&headers, body, "another", now),
            Err(Refusal::Mismatch)
        );
        let mut moved = headers.clone();
        moved.insert(
            "x-amz-target",
            HeaderValue::from_static("Firehose_20150804.PutRecordBatch"),
        );
        assert_eq!(verify(&moved, body, key.1, now), Err(Refusal::Mismatch));
        assert!(matches!(
            verify(&headers, body, key.1, now + 3600),
            Err(Refusal::Expired(_))
        ));
    }
}
