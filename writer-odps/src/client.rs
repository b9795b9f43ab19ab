//! The MaxCompute calls the writer makes: table metadata, partitions, SQL instances
//! (service endpoint, spec `odps.md` §3) and upload sessions (Tunnel endpoint, §4).

use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde_json::Value as Json;

use crate::error::OdpsError;
use crate::http::{Answer, Endpoint, Http, HttpOptions, Request};
use crate::schema::TableSchema;
use crate::xml;

/// Table metadata the writer needs.
#[derive(Clone, Debug)]
pub struct TableInfo {
    pub schema: TableSchema,
    pub is_view: bool,
}

/// An upload session as the Tunnel describes it.
#[derive(Clone, Debug)]
pub struct UploadSession {
    pub id: String,
    /// Lower-case: `normal`, `closed`, `expired`, …
    pub status: String,
    pub schema: TableSchema,
    pub blocks: Vec<u32>,
}

/// A client for one project.
#[derive(Clone, Debug)]
pub struct OdpsClient {
    pub http: Http,
    pub service: Endpoint,
    /// Set from `tunnelServer` or by [`OdpsClient::discover_tunnel`].
    pub tunnel: Option<Endpoint>,
}

impl OdpsClient {
    pub fn new(
        options: HttpOptions,
        service: Endpoint,
        tunnel: Option<Endpoint>,
    ) -> Result<Self, String> {
        Ok(Self {
            http: Http::new(options)?,
            service,
            tunnel,
        })
    }

    pub fn project(&self) -> &str {
        &self.http.options.project
    }

    fn table_path(&self, table: &str) -> String {
        format!("/projects/{}/tables/{table}", self.project())
    }

    async fn service_call(&self, req: Request) -> Result<Answer, OdpsError> {
        self.http.send(&self.service, &req, Bytes::new()).await
    }

    /// S2: the table's schema.
    pub async fn get_table(&self, table: &str) -> Result<TableInfo, OdpsError> {
        let op = format!("GetTable {}.{table}", self.project());
        let answer = self
            .service_call(Request::new(&op, Method::GET, self.table_path(table)))
            .await?;
        table_info(&op, &answer.text())
    }

    /// S3: every partition of the table as `k1=v1,k2=v2` (keys in partition order).
    pub async fn list_partitions(&self, table: &str) -> Result<Vec<String>, OdpsError> {
        self.list_partitions_matching(table, "").await
    }

    /// S3 with `partition={filter}` (`k1='v1'` naming leading keys, as pyodps sends
    /// it): the partitions under that prefix.
    pub async fn list_partitions_matching(
        &self,
        table: &str,
        filter: &str,
    ) -> Result<Vec<String>, OdpsError> {
        let op = format!("ListPartitions {}.{table}", self.project());
        let mut specs = Vec::new();
        let mut marker = String::new();
        loop {
            let mut req = Request::new(&op, Method::GET, self.table_path(table))
                .param("partitions", "")
                .param("expectmarker", "true");
            if !filter.is_empty() {
                req = req.param("partition", filter);
            }
            if !marker.is_empty() {
                req = req.param("marker", marker.clone());
            }
            let answer = self.service_call(req).await?;
            let (page, next) = partition_page(&op, &answer.text())?;
            specs.extend(page);
            match next {
                Some(m) if !m.is_empty() && m != marker => marker = m,
                _ => return Ok(specs),
            }
        }
    }

    /// S1: discovers the Tunnel endpoint through the service endpoint.
    pub async fn discover_tunnel(&mut self) -> Result<Endpoint, OdpsError> {
        if let Some(t) = &self.tunnel {
            return Ok(t.clone());
        }
        let op = format!("GetTunnelEndpoint {}", self.project());
        let answer = self
            .service_call(
                Request::new(
                    &op,
                    Method::GET,
                    format!("/projects/{}/tunnel", self.project()),
                )
                .param("service", ""),
            )
            .await?;
        let host = answer.text().trim().to_owned();
        if host.is_empty() {
            return Err(OdpsError::protocol(&op, "empty tunnel endpoint"));
        }
        let endpoint = Endpoint::parse(&format!("{}://{host}", self.service.scheme()))
            .map_err(|e| OdpsError::protocol(&op, e))?;
        tracing::info!("tunnel endpoint {endpoint} (discovered)");
        self.tunnel = Some(endpoint.clone());
        Ok(endpoint)
    }

    /// S5–S8: runs one SQL statement as an instance and waits for its task to succeed.
    /// `tag` names the task (`datax_odpswriter_<tag>_<uuid>`); `odps2` adds the
    /// `odps.sql.type.system.odps2` hint.
    pub async fn run_sql(&self, tag: &str, sql: &str, odps2: bool) -> Result<(), OdpsError> {
        let task = format!("datax_odpswriter_{tag}_{}", uuid_underscored());
        let op = format!("SQL {sql:?} in project {}", self.project());
        let settings = if odps2 {
            r#"{"odps.sql.type.system.odps2":"true"}"#
        } else {
            "{}"
        };
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Instance><Job><Priority>9</Priority><Tasks><SQL>\
             <Name>{task}</Name><Config>\
             <Property><Name>type</Name><Value>sql</Value></Property>\
             <Property><Name>settings</Name><Value>{}</Value></Property>\
             <Property><Name>uuid</Name><Value>{}</Value></Property></Config>\
             <Query>{}</Query></SQL></Tasks></Job></Instance>",
            xml_escape(settings),
            uuid_underscored(),
            xml_escape(sql)
        );
        let base = format!("/projects/{}/instances", self.project());
        let mut req = Request::new(format!("CreateInstance ({op})"), Method::POST, &base);
        req.content_type = Some("application/xml");
        let answer = self
            .http
            .send(&self.service, &req, Bytes::from(body))
            .await?;
        let location = answer.header("location").unwrap_or_default().to_owned();
        let id = location.rsplit('/').next().unwrap_or_default().to_owned();
        if id.is_empty() {
            return Err(OdpsError::protocol(
                &op,
                "no Location header with the instance id",
            ));
        }
        let path = format!("{base}/{id}");
        let mut wait = Duration::from_millis(100);
        loop {
            let answer = self
                .service_call(Request::new(
                    format!("GetInstance {id}"),
                    Method::GET,
                    &path,
                ))
                .await?;
            let doc = xml::parse(&answer.text()).map_err(|e| OdpsError::protocol(&op, e))?;
            if doc
                .child_text("Status")
                .is_some_and(|s| s.eq_ignore_ascii_case("terminated"))
            {
                break;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(1));
        }
        let answer = self
            .service_call(
                Request::new(format!("GetTaskStatus {id}"), Method::GET, &path)
                    .param("taskstatus", ""),
            )
            .await?;
        let doc = xml::parse(&answer.text()).map_err(|e| OdpsError::protocol(&op, e))?;
        let status = doc
            .child("Tasks")
            .into_iter()
            .flat_map(|t| t.children.iter())
            .find(|t| t.child_text("Name") == Some(task.as_str()))
            .and_then(|t| t.child_text("Status"))
            .unwrap_or_default()
            .to_owned();
        if status.eq_ignore_ascii_case("success") {
            return Ok(());
        }
        let answer = self
            .service_call(
                Request::new(format!("GetTaskResult {id}"), Method::GET, &path).param("result", ""),
            )
            .await?;
        let result = xml::parse(&answer.text())
            .ok()
            .and_then(|doc| {
                doc.child("Tasks")?
                    .children
                    .iter()
                    .find_map(|t| t.child_text("Result").map(str::to_owned))
            })
            .unwrap_or_default();
        Err(OdpsError::Service {
            operation: op,
            status: 200,
            code: format!(
                "Task{}",
                if status.is_empty() {
                    "Unknown"
                } else {
                    &status
                }
            ),
            message: format!(
                "instance {id} task {task} ended {status}: {}",
                result.trim()
            ),
            request_id: String::new(),
        })
    }

    fn tunnel(&self) -> Result<&Endpoint, OdpsError> {
        self.tunnel
            .as_ref()
            .ok_or_else(|| OdpsError::protocol("Tunnel", "no tunnel endpoint (internal)"))
    }

    fn tunnel_request(
        &self,
        operation: &str,
        method: Method,
        table: &str,
        partition: &str,
    ) -> Request {
        self.tunnel_request_to(
            operation,
            method,
            table,
            partition,
            self.table_path(table),
            "5",
        )
    }

    /// A Tunnel request to `path` of `table` (and `partition`, if not empty) at tunnel
    /// protocol `version` (uploads 5, upsert sessions 6).
    pub(crate) fn tunnel_request_to(
        &self,
        operation: &str,
        method: Method,
        table: &str,
        partition: &str,
        path: String,
        version: &str,
    ) -> Request {
        let mut req = Request::new(
            format!(
                "{operation} {}.{table}{}",
                self.project(),
                if partition.is_empty() {
                    String::new()
                } else {
                    format!(" partition {partition}")
                }
            ),
            method,
            path,
        )
        .header("x-odps-tunnel-version", version)
        .header("odps-tunnel-date-transform", "v1");
        if !partition.is_empty() {
            req = req.param("partition", partition);
        }
        req
    }

    /// T1: creates an upload session; with `overwrite` its commit replaces the rows
    /// of the partition (or table) instead of appending.
    pub async fn create_upload(
        &self,
        table: &str,
        partition: &str,
        overwrite: bool,
    ) -> Result<UploadSession, OdpsError> {
        let mut req = self
            .tunnel_request("CreateUploadSession", Method::POST, table, partition)
            .param("uploads", "");
        if overwrite {
            req = req.param("overwrite", "true");
        }
        let answer = self.http.send(self.tunnel()?, &req, Bytes::new()).await?;
        parse_session(&req.operation, &answer.body)
    }

    /// T3: the session's status and received blocks.
    pub async fn get_upload(
        &self,
        table: &str,
        partition: &str,
        upload_id: &str,
    ) -> Result<UploadSession, OdpsError> {
        let req = self
            .tunnel_request("GetUploadSession", Method::GET, table, partition)
            .param("uploadid", upload_id);
        let answer = self.http.send(self.tunnel()?, &req, Bytes::new()).await?;
        parse_session(&req.operation, &answer.body)
    }

    /// T4 once (the caller decides about retries: a lost answer may hide a commit).
    pub async fn commit_upload_once(
        &self,
        table: &str,
        partition: &str,
        upload_id: &str,
    ) -> Result<UploadSession, OdpsError> {
        let req = self
            .tunnel_request("CommitUpload", Method::POST, table, partition)
            .param("uploadid", upload_id);
        let answer = self
            .http
            .send_once(
                self.tunnel()?,
                &req,
                reqwest::Body::from(Bytes::new()),
                Some(self.http.options.request_timeout),
            )
            .await?;
        parse_session(&req.operation, &answer.body)
    }

    /// The request of T2 (one block), for [`Http::send_once`] with a streamed body.
    pub fn block_request(
        &self,
        table: &str,
        partition: &str,
        upload_id: &str,
        block_id: u32,
        compressed: bool,
    ) -> Request {
        let mut req = self
            .tunnel_request("UploadBlock", Method::PUT, table, partition)
            .param("uploadid", upload_id)
            .param("blockid", block_id.to_string());
        req.operation = format!("{} block {block_id}", req.operation);
        req.content_type = Some("application/octet-stream");
        if compressed {
            req = req.header("Content-Encoding", "deflate");
        }
        req
    }

    pub fn tunnel_endpoint(&self) -> Result<Endpoint, OdpsError> {
        self.tunnel().cloned()
    }
}

/// S2's answer: the table's schema and whether it is a view.
#[doc(hidden)]
pub fn table_info(op: &str, text: &str) -> Result<TableInfo, OdpsError> {
    let doc = xml::parse(text).map_err(|e| OdpsError::protocol(op, e))?;
    let schema_text = doc
        .child_text("Schema")
        .ok_or_else(|| OdpsError::protocol(op, "no <Schema> in the table metadata"))?;
    let json: Json = serde_json::from_str(schema_text)
        .map_err(|e| OdpsError::protocol(op, format!("schema JSON: {e}")))?;
    let schema = TableSchema::from_json(&json).map_err(|e| OdpsError::protocol(op, e))?;
    let is_view = json
        .get("isVirtualView")
        .and_then(Json::as_bool)
        .unwrap_or(false)
        || doc.child_text("Type") == Some("VIRTUAL_VIEW");
    Ok(TableInfo { schema, is_view })
}

/// One page of S3's answer: the partitions as `k1=v1,k2=v2`, and the `Marker` of the
/// next page.
#[doc(hidden)]
pub fn partition_page(op: &str, text: &str) -> Result<(Vec<String>, Option<String>), OdpsError> {
    let doc = xml::parse(text).map_err(|e| OdpsError::protocol(op, e))?;
    let specs = doc
        .children_named("Partition")
        .map(|partition| {
            let pairs: Vec<String> = partition
                .children_named("Column")
                .map(|c| {
                    format!(
                        "{}={}",
                        c.attribute("Name").unwrap_or_default(),
                        c.attribute("Value").unwrap_or_default()
                    )
                })
                .collect();
            pairs.join(",")
        })
        .collect();
    Ok((specs, doc.child_text("Marker").map(str::to_owned)))
}

/// A Tunnel upload session's JSON.
#[doc(hidden)]
pub fn parse_session(op: &str, body: &[u8]) -> Result<UploadSession, OdpsError> {
    let json: Json = serde_json::from_slice(body)
        .map_err(|e| OdpsError::protocol(op, format!("session JSON: {e}")))?;
    let id = json
        .get("UploadID")
        .and_then(Json::as_str)
        .ok_or_else(|| OdpsError::protocol(op, "no UploadID in the session"))?
        .to_owned();
    let status = json
        .get("Status")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let schema = match json.get("Schema") {
        Some(s) => TableSchema::from_json(s).map_err(|e| OdpsError::protocol(op, e))?,
        None => TableSchema::default(),
    };
    let blocks = json
        .get("UploadedBlockList")
        .and_then(Json::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|b| b.get("BlockID").and_then(Json::as_u64))
                // An id beyond u32 is no block of ours: dropped, not wrapped onto one.
                .filter_map(|b| u32::try_from(b).ok())
                .collect()
        })
        .unwrap_or_default();
    Ok(UploadSession {
        id,
        status,
        schema,
        blocks,
    })
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn uuid_underscored() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}_{}_{}_{}_{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_json() {
        let s = parse_session(
            "T",
            br#"{"UploadID":"u1","Status":"Normal","Schema":{"columns":[{"name":"id","type":"bigint","nullable":true}],"partitionKeys":[]},"UploadedBlockList":[{"BlockID":3},{"BlockID":0}]}"#,
        )
        .unwrap();
        assert_eq!(s.id, "u1");
        assert_eq!(s.status, "normal");
        assert_eq!(s.blocks, vec![3, 0]);
        assert_eq!(s.schema.columns.len(), 1);
        assert!(parse_session("T", b"{}").is_err());
        // A BlockID beyond u32 is dropped, not wrapped onto block 5.
        let s = parse_session(
            "T",
            br#"{"UploadID": "u", "UploadedBlockList": [{"BlockID": 4294967301}, {"BlockID": 2}]}"#,
        )
        .unwrap();
        assert_eq!(s.blocks, vec![2]);
    }

    #[test]
    fn task_names_look_like_datax() {
        let u = uuid_underscored();
        assert_eq!(u.len(), 36);
        assert_eq!(u.matches('_').count(), 4);
    }
}
