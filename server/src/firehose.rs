//! Ingest over HTTP: a Firehose-compatible API (`PutRecord`, `PutRecordBatch`
//! in Firehose's JSON protocol, so AWS SDKs and the AWS CLI work with an
//! endpoint override) and a plain NDJSON endpoint per stream.
//!
//! A request is acknowledged only after its records are committed to Postgres;
//! requests arriving together share a transaction (see [`crate::group_commit`]).

use crate::custom::{self, CustomBatch};
use crate::ingest_rate::OverLimit;
use crate::metrics::{self, Source};
use crate::reading::Reading;
use crate::reading::epoch_micros;
use crate::request_time::Handed;
use crate::state::AppState;
use crate::store::{self, Batch, DeadLetter};
use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// The `X-Amz-Target` prefix of Firehose's operations.
const TARGET_PREFIX: &str = "Firehose_20150804.";
/// Firehose's limits: records per batch, bytes per record (before base64), bytes per request.
pub const MAX_BATCH_RECORDS: usize = 500;
pub const MAX_RECORD_BYTES: usize = 1_000 * 1024;
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// The HTTP body limit: a full batch base64-encoded, with room for the JSON around it.
pub const MAX_BODY_BYTES: usize = MAX_REQUEST_BYTES / 3 * 4 + 64 * 1024;

const AMZ_JSON: &str = "application/x-amz-json-1.1";

/// An error in Firehose's shape: `{"__type": ..., "message": ...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    /// Set when the request was refused for its rate: retry after this long.
    retry_after: Option<Duration>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgumentException", message)
    }

    fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "the database is unavailable; nothing was stored, retry the request",
        )
    }

    /// Firehose answers a stream over its throughput limit this way; SDKs back off and retry.
    fn over_limit(over: OverLimit) -> Self {
        ApiError {
            retry_after: Some(over.retry_after),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                over.to_string(),
            )
        }
    }

    fn response(&self, request_id: &str) -> Response {
        let body = serde_json::json!({ "__type": self.kind, "message": self.message });
        let mut response = amz_json(self.status, body.to_string(), request_id);
        self.add_retry_after(&mut response);
        response
    }

    fn add_retry_after(&self, response: &mut Response) {
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up, as the header takes.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
    }
}

/// A Firehose `ServiceUnavailableException` with `message`.
pub fn service_unavailable(message: String) -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailableException",
        message,
    )
    .response(&new_request_id())
}

fn new_request_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn amz_json(status: StatusCode, body: String, request_id: &str) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(AMZ_JSON));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-RequestId", value);
    }
    response
}

/// One HTTP request's records on their way to Postgres: what decoded, and dead
/// letters for what did not, written together.
struct Intake {
    source: Source,
    request_id: String,
    /// Readings (for the sensors stream) and every dead letter.
    batch: Batch,
    /// Records of a custom stream, when the request is for one.
    custom: Option<CustomBatch>,
    /// The stream the request is for, once its name is known to be one.
    stream: Option<String>,
    /// The ingest key the request came with.
    key: String,
    /// Marked when the records go to the writer, for the request-time limit.
    handed: Handed,
}

impl Intake {
    fn new(source: Source, key: String, handed: Handed) -> Self {
        Intake {
            source,
            request_id: new_request_id(),
            batch: Batch::default(),
            custom: None,
            stream: None,
            key,
            handed,
        }
    }

    /// Decodes one record of the request's stream into the intake.
    fn accept(&mut self, bytes: &[u8]) -> Result<(), String> {
        match &mut self.custom {
            Some(batch) => {
                let stream = &batch.stream;
                let row = custom::decode(&stream.fields, stream.event_time, bytes, epoch_micros())?;
                batch.rows.push(row);
            }
            None => {
                let reading = Reading::decode_json(bytes).map_err(|e| e.to_string())?;
                self.batch.readings.push(reading.received_now());
            }
        }
        Ok(())
    }

    /// Records accepted so far.
    fn accepted(&self) -> usize {
        self.batch.readings.len() + self.custom.as_ref().map_or(0, |c| c.rows.len())
    }

    /// Keeps refused bytes with where they came from (`what`, within this request) and why.
    fn refuse(&mut self, what: Option<String>, payload: Vec<u8>, reason: String) {
        let position = match what {
            Some(what) => format!("request {} {what}", self.request_id),
            None => format!("request {}", self.request_id),
        };
        self.batch.dead_letters.push(DeadLetter {
            stream: self.stream.clone(),
            source: self.source.label().into(),
            position: Some(position),
            payload,
            reason,
        });
    }

    /// Stores the readings, rows and dead letters, within the key's rate, and
    /// returns once they are committed (with other requests' records, in one
    /// transaction).
    async fn commit(&mut self, state: &AppState) -> Result<(), ApiError> {
        let records = self.accepted() + self.batch.dead_letters.len();
        if let Err(over) = state.ingest_rates.admit(&self.key, records) {
            metrics::global().refused(metrics::Limit::IngestRate);
            return Err(ApiError::over_limit(over));
        }
        self.store(state).await
    }

    async fn store(&mut self, state: &AppState) -> Result<(), ApiError> {
        let (accepted, dead_letters) = (self.accepted(), self.batch.dead_letters.len());
        if accepted + dead_letters == 0 {
            return Ok(());
        }
        self.handed.mark();
        let started = Instant::now();
        metrics::global().received(self.source, accepted + dead_letters);
        let batch = std::mem::take(&mut self.batch);
        match state.writer.store(batch, self.custom.take()).await {
            Ok(()) => {
                metrics::global().flushed(self.source, accepted, dead_letters, started.elapsed());
                Ok(())
            }
            Err(error) => {
                tracing::warn!(%error, records = accepted + dead_letters, "HTTP ingest could not store its records");
                Err(ApiError::unavailable())
            }
        }
    }

    /// A refused request: its whole body becomes a dead letter (unless the
    /// database itself is what failed), and the client gets the error.
    async fn refuse_request(mut self, state: &AppState, body: &[u8], error: ApiError) -> ApiError {
        if error.status != StatusCode::SERVICE_UNAVAILABLE {
            self.batch.readings.clear();
            self.batch.dead_letters.clear();
            self.custom = None;
            self.refuse(None, body.to_vec(), error.message.clone());
            if let Err(store_error) = self.store(state).await {
                tracing::warn!(
                    ?store_error,
                    "a refused request could not be kept as a dead letter"
                );
            }
        }
        error
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordInput {
    /// Base64 of the record's bytes.
    data: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordInput {
    delivery_stream_name: String,
    record: RecordInput,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordBatchInput {
    delivery_stream_name: String,
    records: Vec<RecordInput>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordOutput {
    record_id: String,
    encrypted: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordBatchOutput {
    failed_put_count: usize,
    encrypted: bool,
    request_responses: Vec<RecordResponse>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RecordResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    record_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

/// `POST /` with `X-Amz-Target: Firehose_20150804.<Operation>`.
pub async fn handle(
    State(state): State<AppState>,
    Extension(handed): Extension<Handed>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = match crate::ingest_auth::firehose(&state.pool, &uri, &headers, &body).await {
        Ok(key) => key,
        Err(denied) => {
            let error = ApiError::new(denied.status, denied.kind, denied.message);
            return error.response(&new_request_id());
        }
    };
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut intake = Intake::new(Source::Firehose, key, handed);
    let result = match target.strip_prefix(TARGET_PREFIX) {
        Some("PutRecord") => put_record(&state, &mut intake, &body).await,
        Some("PutRecordBatch") => put_record_batch(&state, &mut intake, &body).await,
        Some(other) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("operation {other} is not supported; use PutRecord or PutRecordBatch"),
        )),
        None => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("X-Amz-Target must name a {TARGET_PREFIX}* operation, got {target:?}"),
        )),
    };
    let request_id = intake.request_id.clone();
    match result {
        Ok(output) => amz_json(StatusCode::OK, output, &request_id),
        Err(error) => intake
            .refuse_request(&state, &body, error)
            .await
            .response(&request_id),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::invalid(format!(
            "request is larger than {MAX_REQUEST_BYTES} bytes of records"
        )));
    }
    serde_json::from_slice(body).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            format!("request body is not valid for this operation: {error}"),
        )
    })
}

/// Points the intake at the named stream, or refuses an unknown name.
fn check_stream(state: &AppState, intake: &mut Intake, name: &str) -> Result<(), ApiError> {
    if state.ingest_streams.iter().any(|s| s == name) {
        intake.stream = Some(store::SENSOR_STREAM.into());
        return Ok(());
    }
    if let Some(stream) = state.custom_streams.get(name) {
        intake.stream = Some(stream.name.clone());
        intake.custom = Some(CustomBatch::new(stream.clone()));
        return Ok(());
    }
    let mut known: Vec<&str> = state.ingest_streams.iter().map(String::as_str).collect();
    known.extend(state.custom_streams.keys().map(String::as_str));
    known.sort_unstable();
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "ResourceNotFoundException",
        format!(
            "delivery stream {name:?} not found; known streams: {}",
            known.join(", ")
        ),
    ))
}

/// Base64 decoding of one record, within the record size limit.
fn decode_record(record: &RecordInput) -> Result<Vec<u8>, String> {
    let bytes = BASE64
        .decode(record.data.as_bytes())
        .map_err(|e| format!("Data is not valid base64: {e}"))?;
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(format!(
            "record is {} bytes; the limit is {MAX_RECORD_BYTES}",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// An opaque id per accepted record, as Firehose returns.
fn record_id() -> String {
    format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    )
}

/// Stores the one record, or refuses the request.
async fn put_record(
    state: &AppState,
    intake: &mut Intake,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: PutRecordInput = parse(body)?;
    check_stream(state, intake, &input.delivery_stream_name)?;
    let bytes = decode_record(&input.record).map_err(ApiError::invalid)?;
    intake.accept(&bytes).map_err(ApiError::invalid)?;
    intake.commit(state).await?;
    let output = PutRecordOutput {
        record_id: record_id(),
        encrypted: false,
    };
    Ok(serde_json::to_string(&output).expect("output serializes"))
}

/// Stores the records that decode, keeps the others as dead letters, and answers per record.
async fn put_record_batch(
    state: &AppState,
    intake: &mut Intake,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: PutRecordBatchInput = parse(body)?;
    check_stream(state, intake, &input.delivery_stream_name)?;
    if input.records.is_empty() || input.records.len() > MAX_BATCH_RECORDS {
        return Err(ApiError::invalid(format!(
            "Records must hold 1 to {MAX_BATCH_RECORDS} records, got {}",
            input.records.len()
        )));
    }
    let mut responses = Vec::with_capacity(input.records.len());
    let mut total_bytes = 0;
    for (index, record) in input.records.iter().enumerate() {
        let accepted = decode_record(record).and_then(|bytes| {
            total_bytes += bytes.len();
            intake.accept(&bytes)
        });
        match accepted {
            Ok(()) => {
                responses.push(RecordResponse {
                    record_id: Some(record_id()),
                    error_code: None,
                    error_message: None,
                });
            }
            Err(reason) => {
                let payload = BASE64
                    .decode(record.data.as_bytes())
                    .unwrap_or_else(|_| record.data.clone().into_bytes());
                intake.refuse(Some(format!("record {index}")), payload, reason.clone());
                responses.push(RecordResponse {
                    record_id: None,
                    error_code: Some("InvalidArgumentException"),
                    error_message: Some(reason),
                });
            }
        }
    }
    if total_bytes > MAX_REQUEST_BYTES {
        return Err(ApiError::invalid(format!(
            "records total {total_bytes} bytes; the limit is {MAX_REQUEST_BYTES}"
        )));
    }
    intake.commit(state).await?;
    let failed_put_count = responses.iter().filter(|r| r.error_code.is_some()).count();
    let output = PutRecordBatchOutput {
        failed_put_count,
        encrypted: false,
        request_responses: responses,
    };
    Ok(serde_json::to_string(&output).expect("output serializes"))
}

/// The NDJSON endpoint's answer: how many lines were stored, and why the others were not.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct NdjsonOutcome {
    pub accepted: usize,
    pub rejected: Vec<RejectedLine>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct RejectedLine {
    /// 1-based line number in the request body.
    pub line: usize,
    pub error: String,
}

/// `POST /ingest/{stream}`: one JSON record per line; blank lines are ignored.
/// Lines that are not readings are kept as dead letters and named in the answer.
pub async fn ingest_ndjson(
    State(state): State<AppState>,
    Extension(handed): Extension<Handed>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let denied = match crate::ingest_auth::bearer(&state.pool, &headers).await {
        Ok(key) => {
            let intake = Intake::new(Source::Ndjson, key, handed);
            return store_ndjson(&state, intake, &stream, &body).await;
        }
        Err(denied) => denied,
    };
    let mut response = (
        denied.status,
        Json(serde_json::json!({ "error": denied.message })),
    )
        .into_response();
    if denied.status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

async fn store_ndjson(state: &AppState, mut intake: Intake, stream: &str, body: &[u8]) -> Response {
    match ndjson(state, &mut intake, stream, body).await {
        Ok(outcome) => Json(outcome).into_response(),
        Err(error) => {
            let error = intake.refuse_request(state, body, error).await;
            let status = match error.kind {
                "ResourceNotFoundException" => StatusCode::NOT_FOUND,
                _ if error.retry_after.is_some() => StatusCode::TOO_MANY_REQUESTS,
                _ => error.status,
            };
            let mut response =
                (status, Json(serde_json::json!({ "error": error.message }))).into_response();
            error.add_retry_after(&mut response);
            response
        }
    }
}

async fn ndjson(
    state: &AppState,
    intake: &mut Intake,
    stream: &str,
    body: &[u8],
) -> Result<NdjsonOutcome, ApiError> {
    check_stream(state, intake, stream)?;
    if body.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "InvalidArgumentException",
            format!(
                "body is {} bytes; the limit is {MAX_REQUEST_BYTES}",
                body.len()
            ),
        ));
    }
    let mut rejected = Vec::new();
    for (index, line) in body.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Err(error) = intake.accept(line) {
            intake.refuse(
                Some(format!("line {}", index + 1)),
                line.to_vec(),
                error.clone(),
            );
            rejected.push(RejectedLine {
                line: index + 1,
                error,
            });
        }
    }
    let accepted = intake.accepted();
    intake.commit(state).await?;
    Ok(NdjsonOutcome { accepted, rejected })
}
