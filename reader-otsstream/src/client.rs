//! The Tablestore client: protobuf over HTTP POST `/<Action>`, signed requests,
//! verified responses, retries with exponential backoff for temporary failures only.

use std::io::Read as _;
use std::time::Duration;

use prost::Message;
use protocol::runtime::retry::Backoff;

use crate::error::OtsError;
use crate::pb;
use crate::plainbuffer::{self, Cell, Row};
use crate::sign::{content_md5, SignatureVersion, Signer};

/// How to reach the service.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// `http(s)://host[:port]`.
    pub endpoint: String,
    /// Where the keys come from; asked before every request.
    pub credentials: credentials::Provider,
    pub instance_name: String,
    pub signature: SignatureVersion,
    /// Retries per call for temporary failures (0: none).
    pub max_retries: u32,
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
}

/// A Tablestore client for one instance.
#[derive(Clone, Debug)]
pub struct OtsClient {
    http: reqwest::Client,
    endpoint: String,
    credentials: credentials::Provider,
    instance_name: String,
    signature: SignatureVersion,
    max_retries: u32,
}

/// Records asked for per `GetStreamRecord` call: the official Tablestore Stream Client's
/// default (`StreamConfig`). DataX sends no limit, which leaves the service's default
/// page; the records read are the same, in fewer round trips.
pub const PAGE_RECORDS: i32 = 1000;

/// First wait of the backoff and its ceiling (DataX: 100 ms doubling, capped at 10 s).
const BACKOFF_BASE_MS: u64 = 100;
const BACKOFF_MAX_MS: u64 = 10_000;

impl OtsClient {
    pub fn new(options: ClientOptions) -> Result<Self, String> {
        let endpoint = options.endpoint.trim().trim_end_matches('/').to_owned();
        let rest = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            .ok_or_else(|| format!("endpoint {endpoint:?} must start with http:// or https://"))?;
        if rest.is_empty() || rest.contains('/') {
            return Err(format!(
                "endpoint {endpoint:?} must be http(s)://host[:port] without a path"
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(options.request_timeout_ms))
            .connect_timeout(Duration::from_millis(options.connect_timeout_ms))
            .pool_max_idle_per_host(8)
            .user_agent(concat!(
                "streamport-reader-otsstream/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(Self {
            http,
            endpoint,
            credentials: options.credentials,
            instance_name: options.instance_name,
            signature: options.signature,
            max_retries: options.max_retries,
        })
    }

    /// Calls `action`, retrying temporary failures with backoff.
    pub async fn call<Req: Message, Resp: Message + Default>(
        &self,
        action: &str,
        request: &Req,
    ) -> Result<Resp, OtsError> {
        self.call_decoding(action, request, |b| Resp::decode(b))
            .await
    }

    /// [`call`](Self::call), the answer decoded by `decode` (which must agree with
    /// `Resp::decode`).
    async fn call_decoding<Req: Message, Resp>(
        &self,
        action: &str,
        request: &Req,
        decode: fn(bytes::Bytes) -> Result<Resp, prost::DecodeError>,
    ) -> Result<Resp, OtsError> {
        let body = request.encode_to_vec();
        let mut backoff = Backoff::new(self.max_retries, BACKOFF_BASE_MS, BACKOFF_MAX_MS);
        loop {
            match self.call_once(action, &body).await {
                Ok(bytes) => {
                    // From `Bytes`: the `bytes` fields of the answer (stream records)
                    // are slices of the body, not copies.
                    return decode(bytes).map_err(|e| OtsError::Response {
                        action: action.to_owned(),
                        message: format!("protobuf: {e}"),
                    });
                }
                Err(e) if e.is_retriable() => match backoff.next_delay() {
                    Some(wait) => {
                        tracing::warn!(
                            "{e}; retry {} of {} in {} ms",
                            backoff.attempts(),
                            self.max_retries,
                            wait.as_millis()
                        );
                        tokio::time::sleep(wait).await;
                    }
                    None => {
                        if self.max_retries > 0 {
                            tracing::warn!("{e}; giving up after {} retries", self.max_retries);
                        }
                        return Err(e);
                    }
                },
                Err(e) => return Err(e),
            }
        }
    }

    async fn call_once(&self, action: &str, body: &[u8]) -> Result<bytes::Bytes, OtsError> {
        let keys = self
            .credentials
            .get()
            .await
            .map_err(|e| OtsError::Credentials {
                action: action.to_owned(),
                message: e.to_string(),
                temporary: e.is_temporary(),
            })?;
        let signer = Signer::new(
            &keys.access_key_id,
            &keys.access_key_secret,
            keys.security_token,
            &self.instance_name,
            self.signature.clone(),
        );
        let headers = signer.request_headers(action, body, chrono::Utc::now());
        let mut request = self
            .http
            .post(format!("{}/{action}", self.endpoint))
            .body(body.to_vec());
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let transport = |e: reqwest::Error| {
            if e.is_builder() {
                return OtsError::Local {
                    action: action.to_owned(),
                    message: source_text(&e),
                };
            }
            OtsError::Transport {
                action: action.to_owned(),
                message: if e.is_timeout() {
                    format!("request to {} timed out", self.endpoint)
                } else if e.is_connect() {
                    format!("cannot connect to {}: {}", self.endpoint, source_text(&e))
                } else {
                    format!("request to {} failed: {}", self.endpoint, source_text(&e))
                },
            }
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let response_headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let raw = response.bytes().await.map_err(transport)?;
        let header = |name: &str| {
            response_headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let bad = |message: String| OtsError::Response {
            action: action.to_owned(),
            message,
        };
        if let Some(md5) = header("x-ots-contentmd5") {
            if md5 != content_md5(&raw) {
                return Err(bad("the body does not match x-ots-contentmd5".into()));
            }
        }
        let body = match header("x-ots-response-compress-type") {
            Some(t) if t.eq_ignore_ascii_case("deflate") => {
                let mut out = Vec::new();
                flate2::read::ZlibDecoder::new(&raw[..])
                    .read_to_end(&mut out)
                    .map_err(|e| bad(format!("inflating the body: {e}")))?;
                bytes::Bytes::from(out)
            }
            Some(other) => return Err(bad(format!("unknown response compression {other:?}"))),
            None => raw,
        };
        if (200..300).contains(&status) {
            if header("x-ots-contentmd5").is_none() {
                return Err(bad("the response has no x-ots-contentmd5".into()));
            }
            signer
                .verify_response(action, &headers, &response_headers)
                .map_err(|message| OtsError::Signature {
                    action: action.to_owned(),
                    message,
                })?;
            return Ok(body);
        }
        let request_id = header("x-ots-requestid").map(str::to_owned);
        match pb::Error::decode(body) {
            Ok(e) => Err(OtsError::Service {
                action: action.to_owned(),
                status,
                code: e.code,
                message: e.message.unwrap_or_default(),
                request_id,
            }),
            Err(_) => Err(OtsError::Service {
                action: action.to_owned(),
                status,
                code: if status >= 500 {
                    "OTSServerUnavailable".into()
                } else {
                    format!("HTTP{status}")
                },
                message: format!("HTTP {status} without a Tablestore error body"),
                request_id,
            }),
        }
    }

    // ---- table operations ---------------------------------------------------------

    pub async fn describe_table(&self, table: &str) -> Result<pb::DescribeTableResponse, OtsError> {
        self.call(
            "DescribeTable",
            &pb::DescribeTableRequest {
                table_name: table.to_owned(),
            },
        )
        .await
    }

    pub async fn create_table(&self, request: &pb::CreateTableRequest) -> Result<(), OtsError> {
        self.call::<_, pb::Empty>("CreateTable", request)
            .await
            .map(drop)
    }

    pub async fn update_table(&self, request: &pb::UpdateTableRequest) -> Result<(), OtsError> {
        self.call::<_, pb::Empty>("UpdateTable", request)
            .await
            .map(drop)
    }

    // ---- row operations -----------------------------------------------------------

    pub async fn get_row(
        &self,
        table: &str,
        primary_key: &[Cell],
    ) -> Result<Option<Row>, OtsError> {
        let r: pb::GetRowResponse = self
            .call(
                "GetRow",
                &pb::GetRowRequest {
                    table_name: table.to_owned(),
                    primary_key: plainbuffer::encode_row(primary_key, &[], false),
                    max_versions: Some(1),
                },
            )
            .await?;
        let mut rows = plainbuffer::decode_rows(&r.row).map_err(|e| OtsError::Response {
            action: "GetRow".into(),
            message: e.to_string(),
        })?;
        Ok(if rows.is_empty() {
            None
        } else {
            Some(rows.remove(0))
        })
    }

    pub async fn put_row(
        &self,
        table: &str,
        primary_key: &[Cell],
        cells: &[Cell],
    ) -> Result<(), OtsError> {
        self.call::<_, pb::Empty>(
            "PutRow",
            &pb::PutRowRequest {
                table_name: table.to_owned(),
                row: plainbuffer::encode_row(primary_key, cells, false),
                condition: pb::Condition {
                    row_existence: pb::IGNORE,
                },
            },
        )
        .await
        .map(drop)
    }

    pub async fn update_row(
        &self,
        table: &str,
        primary_key: &[Cell],
        cells: &[Cell],
    ) -> Result<(), OtsError> {
        self.call::<_, pb::Empty>(
            "UpdateRow",
            &pb::UpdateRowRequest {
                table_name: table.to_owned(),
                row_change: plainbuffer::encode_row(primary_key, cells, false),
                condition: pb::Condition {
                    row_existence: pb::IGNORE,
                },
            },
        )
        .await
        .map(drop)
    }

    pub async fn delete_row(&self, table: &str, primary_key: &[Cell]) -> Result<(), OtsError> {
        self.call::<_, pb::Empty>(
            "DeleteRow",
            &pb::DeleteRowRequest {
                table_name: table.to_owned(),
                primary_key: plainbuffer::encode_row(primary_key, &[], true),
                condition: pb::Condition {
                    row_existence: pb::IGNORE,
                },
            },
        )
        .await
        .map(drop)
    }

    /// Puts many rows in one BatchWriteRow (at most 200); fails if any row failed.
    pub async fn batch_put_rows(
        &self,
        table: &str,
        rows: &[(Vec<Cell>, Vec<Cell>)],
    ) -> Result<(), OtsError> {
        let request = pb::BatchWriteRowRequest {
            tables: vec![pb::TableInBatchWriteRowRequest {
                table_name: table.to_owned(),
                rows: rows
                    .iter()
                    .map(|(pk, cells)| pb::RowInBatchWriteRowRequest {
                        r#type: pb::OP_PUT,
                        row_change: plainbuffer::encode_row(pk, cells, false),
                        condition: pb::Condition {
                            row_existence: pb::IGNORE,
                        },
                    })
                    .collect(),
            }],
        };
        let response: pb::BatchWriteRowResponse = self.call("BatchWriteRow", &request).await?;
        for t in response.tables {
            for r in t.rows {
                if !r.is_ok {
                    let e = r.error.unwrap_or_default();
                    return Err(OtsError::Service {
                        action: "BatchWriteRow".into(),
                        status: 200,
                        code: e.code,
                        message: e.message.unwrap_or_default(),
                        request_id: None,
                    });
                }
            }
        }
        Ok(())
    }

    /// Rows of `[start, end)` (FORWARD) or `(end, start]` (BACKWARD), following
    /// `next_start_primary_key` until the range or `limit` is exhausted.
    pub async fn get_range(
        &self,
        table: &str,
        direction: i32,
        start: &[Cell],
        end: &[Cell],
        limit: Option<usize>,
    ) -> Result<Vec<Row>, OtsError> {
        let mut rows = Vec::new();
        let mut next = plainbuffer::encode_row(start, &[], false);
        let end = plainbuffer::encode_row(end, &[], false);
        loop {
            let want = limit.map(|l| l.saturating_sub(rows.len()));
            let r: pb::GetRangeResponse = self
                .call(
                    "GetRange",
                    &pb::GetRangeRequest {
                        table_name: table.to_owned(),
                        direction,
                        max_versions: Some(1),
                        limit: want.map(|w| w.min(5000) as i32),
                        inclusive_start_primary_key: next.clone(),
                        exclusive_end_primary_key: end.clone(),
                    },
                )
                .await?;
            rows.extend(
                plainbuffer::decode_rows(&r.rows).map_err(|e| OtsError::Response {
                    action: "GetRange".into(),
                    message: e.to_string(),
                })?,
            );
            match r.next_start_primary_key {
                Some(k) if limit.is_none_or(|l| rows.len() < l) => next = k,
                _ => return Ok(rows),
            }
        }
    }

    // ---- stream operations --------------------------------------------------------

    pub async fn list_stream(&self, table: &str) -> Result<Vec<pb::Stream>, OtsError> {
        let r: pb::ListStreamResponse = self
            .call(
                "ListStream",
                &pb::ListStreamRequest {
                    table_name: Some(table.to_owned()),
                },
            )
            .await?;
        Ok(r.streams)
    }

    /// Every shard of a stream (following `next_shard_id`), and the retention in hours.
    pub async fn describe_stream(
        &self,
        stream_id: &str,
    ) -> Result<(i32, Vec<pb::StreamShard>), OtsError> {
        let mut shards = Vec::new();
        let mut start = None;
        loop {
            let r: pb::DescribeStreamResponse = self
                .call(
                    "DescribeStream",
                    &pb::DescribeStreamRequest {
                        stream_id: stream_id.to_owned(),
                        inclusive_start_shard_id: start.clone(),
                        shard_limit: None,
                    },
                )
                .await?;
            shards.extend(r.shards);
            match r.next_shard_id {
                Some(next) if Some(&next) != start.as_ref() => start = Some(next),
                _ => return Ok((r.expiration_time, shards)),
            }
        }
    }

    /// An iterator at the oldest retained record, or (with `timestamp_us`) near the
    /// first record at or after that time, following `next_token`. `None`: the
    /// service returned an empty iterator.
    pub async fn get_shard_iterator(
        &self,
        stream_id: &str,
        shard_id: &str,
        timestamp_us: Option<i64>,
    ) -> Result<Option<String>, OtsError> {
        let mut token = None;
        loop {
            let r: pb::GetShardIteratorResponse = self
                .call(
                    "GetShardIterator",
                    &pb::GetShardIteratorRequest {
                        stream_id: stream_id.to_owned(),
                        shard_id: shard_id.to_owned(),
                        timestamp: timestamp_us,
                        token: token.clone(),
                    },
                )
                .await?;
            match r.next_token {
                Some(t) if timestamp_us.is_some() && !t.is_empty() => token = Some(t),
                _ => {
                    return Ok(if r.shard_iterator.is_empty() {
                        None
                    } else {
                        Some(r.shard_iterator)
                    })
                }
            }
        }
    }

    pub async fn get_stream_record(
        &self,
        iterator: &str,
        limit: Option<i32>,
    ) -> Result<pb::GetStreamRecordResponse, OtsError> {
        self.call_decoding(
            "GetStreamRecord",
            &pb::GetStreamRecordRequest {
                shard_iterator: iterator.to_owned(),
                limit,
            },
            pb::GetStreamRecordResponse::decode_page,
        )
        .await
    }
}

/// The innermost cause of an HTTP error, which names what actually went wrong.
fn source_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    text
}
