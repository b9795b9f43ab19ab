//! Response documents in the forms the SDKs parse: the service's XML (tables,
//! partitions, instances, errors) with embedded schema JSON, and the tunnel's JSON
//! session documents. Also reads the submitted instance XML.

use std::time::{Duration, UNIX_EPOCH};

use quick_xml::events::Event;
use serde_json::{json, Value as Json};

use super::error::OdpsError;
use super::sessions::{DownloadSession, UploadSession};
use super::state::{Column, Partition, Table};

/// The owner every object reports.
pub const OWNER: &str = "ALIYUN$localcloud@example.com";

/// RFC 1123 date (`Mon, 01 Jan 2024 00:00:00 GMT`) of epoch milliseconds.
pub fn http_date(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    httpdate::fmt_http_date(t)
}

fn esc(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

const XML_HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

/// The service's XML error document.
pub fn error_xml(e: &OdpsError, request_id: &str) -> String {
    format!(
        "{XML_HEAD}<Error><Code>{}</Code><Message>{}</Message><RequestId>{}</RequestId><HostId>localcloud</HostId></Error>",
        esc(&e.code),
        esc(&e.message),
        esc(request_id)
    )
}

/// The tunnel's JSON error document.
pub fn error_json(e: &OdpsError, request_id: &str) -> String {
    json!({"Code": e.code, "Message": e.message, "RequestId": request_id}).to_string()
}

fn column_json(c: &Column, table_style: bool) -> Json {
    if table_style {
        json!({"name": c.name, "type": c.ty.to_string(), "comment": c.comment, "label": "", "isNullable": true})
    } else {
        json!({"column_id": "", "comment": c.comment, "default_value": "", "name": c.name,
               "nullable": true, "isNullable": true, "type": c.ty.to_string()})
    }
}

/// `GET /projects/{p}/tables/{t}` (also `?extended`).
pub fn table_xml(project: &str, t: &Table) -> String {
    format!("{XML_HEAD}{}", table_element(project, t))
}

/// `GET /projects/{p}/tables`: every table (filtered by name prefix) in one page.
pub fn tables_xml(project: &str, tables: &[&Table]) -> String {
    let mut out = format!("{XML_HEAD}<Tables>");
    for t in tables {
        out.push_str(&table_element(project, t));
    }
    out.push_str("<Marker></Marker><MaxItems>1000</MaxItems></Tables>");
    out
}

fn table_element(project: &str, t: &Table) -> String {
    let mut schema = json!({
        "tableName": t.name, "owner": OWNER, "comment": t.comment,
        "createTime": t.created_s, "lastDDLTime": t.ddl_s, "lastModifiedTime": t.modified_s,
        "isVirtualView": false, "isExternal": false, "lifecycle": t.lifecycle,
        "size": 0, "recordNum": t.partitions.values().map(Partition::len).sum::<usize>(),
        "columns": t.columns.iter().map(|c| column_json(c, true)).collect::<Vec<_>>(),
        "partitionKeys": t.partition_keys.iter().map(|c| column_json(c, true)).collect::<Vec<_>>(),
    });
    // Delta tables: `Reserved` is a JSON document in a string (pyodps
    // `Table._parse_reserved`, Java `Table.loadReservedJson`), as is `tableProperties`.
    if t.is_transactional() {
        let mut reserved = json!({"Transactional": "true"});
        if !t.primary_key.is_empty() {
            reserved["PrimaryKey"] = json!(t.primary_key);
        }
        schema["Reserved"] = json!(reserved.to_string());
    }
    if !t.properties.is_empty() {
        schema["tableProperties"] = json!(json!(t.properties).to_string());
    }
    format!(
        "<Table><Name>{name}</Name><TableId>{id:032x}</TableId><Project>{project}</Project><Owner>{owner}</Owner>\
         <Comment>{comment}</Comment><CreationTime>{created}</CreationTime><LastModifiedTime>{modified}</LastModifiedTime>\
         <Type>MANAGED_TABLE</Type><Schema>{schema}</Schema></Table>",
        name = esc(&t.name),
        id = fxhash(&format!("{project}.{}", t.name)),
        project = esc(project),
        owner = esc(OWNER),
        comment = esc(&t.comment),
        created = http_date(t.created_s * 1000),
        modified = http_date(t.modified_s * 1000),
        schema = cdata(&schema.to_string()),
    )
}

/// A stable, non-cryptographic hash for table ids.
fn fxhash(text: &str) -> u128 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u128, |h, b| {
        (h ^ u128::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// `GET …?partitions`: every partition in one page.
pub fn partitions_xml(t: &Table, keys: &[&Vec<String>]) -> String {
    let mut out = format!("{XML_HEAD}<Partitions>");
    for key in keys {
        let Some(p) = t.partitions.get(*key) else {
            continue;
        };
        out.push_str("<Partition>");
        for (k, v) in t.partition_keys.iter().zip(key.iter()) {
            out.push_str(&format!(
                "<Column Name=\"{}\" Value=\"{}\"/>",
                esc(&k.name),
                esc(v)
            ));
        }
        out.push_str(&format!(
            "<CreationTime>{}</CreationTime><LastDDLTime>{}</LastDDLTime><LastModifiedTime>{}</LastModifiedTime></Partition>",
            p.created_s, p.created_s, p.modified_s
        ));
    }
    out.push_str("<Marker></Marker><MaxItems>1000</MaxItems></Partitions>");
    out
}

/// `GET …?partition=spec`.
pub fn partition_xml(t: &Table, key: &[String]) -> String {
    let (created, modified, records) = t
        .partitions
        .get(key)
        .map_or((0, 0, 0), |p| (p.created_s, p.modified_s, p.len()));
    let meta = json!({"createTime": created, "lastDDLTime": created, "lastModifiedTime": modified,
                      "partitionSize": 0, "partitionRecordNum": records});
    let mut columns = String::new();
    for (k, v) in t.partition_keys.iter().zip(key) {
        columns.push_str(&format!(
            "<Column Name=\"{}\" Value=\"{}\"/>",
            esc(&k.name),
            esc(v)
        ));
    }
    format!(
        "{XML_HEAD}<Partition>{columns}<Schema>{}</Schema></Partition>",
        cdata(&meta.to_string())
    )
}

/// `GET /projects/{p}`.
pub fn project_xml(project: &str, created_ms: i64) -> String {
    format!(
        "{XML_HEAD}<Project><Name>{}</Name><Type>managed</Type><Comment></Comment><State>AVAILABLE</State>\
         <Owner>{}</Owner><CreationTime>{}</CreationTime><LastModifiedTime>{}</LastModifiedTime></Project>",
        esc(project),
        esc(OWNER),
        http_date(created_ms),
        http_date(created_ms)
    )
}

/// `GET …/instances/{id}`.
pub fn instance_status_xml() -> String {
    format!("{XML_HEAD}<Instance><Status>Terminated</Status></Instance>")
}

/// `GET …/instances/{id}?taskstatus`.
pub fn task_status_xml(task_name: &str, success: bool, start_ms: i64) -> String {
    let date = http_date(start_ms);
    format!(
        "{XML_HEAD}<Instance><Status>Terminated</Status><Tasks><Task Type=\"SQL\"><Name>{}</Name>\
         <StartTime>{date}</StartTime><EndTime>{date}</EndTime><Status>{}</Status></Task></Tasks></Instance>",
        esc(task_name),
        if success { "Success" } else { "Failed" }
    )
}

/// `GET …/instances/{id}?result`.
pub fn task_result_xml(task_name: &str, text: &str) -> String {
    format!(
        "{XML_HEAD}<Instance><Tasks><Task Type=\"SQL\"><Name>{}</Name><Result Format=\"text\">{}</Result></Task></Tasks></Instance>",
        esc(task_name),
        cdata(text)
    )
}

/// The tunnel's upload session document (create, status, commit).
pub fn upload_session_json(s: &UploadSession) -> String {
    let blocks: Vec<Json> = s
        .blocks
        .iter()
        .map(|(id, b)| {
            json!({"BlockID": id, "CreateTime": b.received_ms / 1000, "Date": http_date(b.received_ms),
                   "FileName": format!("{id}.cfile"), "RecordCount": b.records, "Version": 0})
        })
        .collect();
    json!({
        "UploadID": s.id,
        "Status": s.status.as_str(),
        "Initiated": http_date(s.created_ms),
        "IsOverwrite": s.overwrite,
        "MaxFieldSize": 8_388_608,
        "Owner": OWNER,
        "QuotaName": "",
        "Schema": {
            "IsVirtualView": false,
            "columns": s.columns.iter().map(|c| column_json(c, false)).collect::<Vec<_>>(),
            "partitionKeys": s.partition_keys.iter().map(|c| column_json(c, false)).collect::<Vec<_>>(),
        },
        "UploadedBlockList": blocks,
    })
    .to_string()
}

/// The tunnel's download session document.
pub fn download_session_json(s: &DownloadSession) -> String {
    json!({
        "DownloadID": s.id,
        "Status": "normal",
        "RecordCount": s.rows.len(),
        "QuotaName": "",
        "Owner": OWNER,
        "Initiated": http_date(s.created_ms),
        "Schema": {
            "IsVirtualView": false,
            "columns": s.columns.iter().map(|c| column_json(c, false)).collect::<Vec<_>>(),
            "partitionKeys": s.partition_keys.iter().map(|c| column_json(c, false)).collect::<Vec<_>>(),
        },
    })
    .to_string()
}

/// The one task of a submitted instance.
#[derive(Debug, PartialEq, Eq)]
pub struct SubmittedTask {
    /// The task element's name (`SQL`).
    pub kind: String,
    pub name: String,
    pub query: String,
}

/// Reads `<Instance><Job><Tasks><SQL><Name/>…<Query/></SQL></Tasks></Job></Instance>`.
pub fn parse_instance_xml(body: &[u8]) -> Result<Vec<SubmittedTask>, String> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut path: Vec<String> = Vec::new();
    let mut tasks: Vec<SubmittedTask> = Vec::new();
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("malformed XML: {e}"))?;
        match event {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if path.len() == 3 && path[..] == ["Instance", "Job", "Tasks"] {
                    tasks.push(SubmittedTask {
                        kind: name.clone(),
                        name: String::new(),
                        query: String::new(),
                    });
                }
                path.push(name);
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let text = t
                    .unescape()
                    .map_err(|e| format!("malformed XML text: {e}"))?;
                append_task_text(&path, &mut tasks, &text);
            }
            Event::CData(t) => {
                let text = String::from_utf8_lossy(&t.into_inner()).into_owned();
                append_task_text(&path, &mut tasks, &text);
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if path.is_empty() && !tasks.is_empty() {
        Ok(tasks)
    } else {
        Err("the body is not an <Instance><Job><Tasks> document with a task".to_owned())
    }
}

fn append_task_text(path: &[String], tasks: &mut [SubmittedTask], text: &str) {
    if path.len() != 5 || path[..3] != ["Instance", "Job", "Tasks"] {
        return;
    }
    if let Some(task) = tasks.last_mut() {
        match path[4].as_str() {
            "Name" => task.name.push_str(text),
            "Query" => task.query.push_str(text),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_xml_with_cdata_or_text_query() {
        let cdata = br#"<?xml version="1.0" encoding="utf-8"?>
<Instance><Job><Priority>9</Priority><Tasks><SQL><Name>AnonymousSQLTask</Name>
<Config><Property><Name>uuid</Name><Value>x</Value></Property></Config>
<Query><![CDATA[select * from t where a='<'];]]></Query></SQL></Tasks></Job></Instance>"#;
        let tasks = parse_instance_xml(cdata).unwrap();
        assert_eq!(
            tasks,
            vec![SubmittedTask {
                kind: "SQL".into(),
                name: "AnonymousSQLTask".into(),
                query: "select * from t where a='<'];".into()
            }]
        );
        let text = b"<Instance><Job><Tasks><SQL><Name>n</Name><Query>a &lt; b</Query></SQL></Tasks></Job></Instance>";
        assert_eq!(parse_instance_xml(text).unwrap()[0].query, "a < b");
        assert!(parse_instance_xml(b"<Instance><Job/></Instance>").is_err());
        assert!(parse_instance_xml(b"<Instance><Job><Tasks><SQL>").is_err());
    }

    #[test]
    fn dates_and_cdata_escaping() {
        assert_eq!(
            http_date(1_704_067_200_000),
            "Mon, 01 Jan 2024 00:00:00 GMT"
        );
        assert_eq!(cdata("a]]>b"), "<![CDATA[a]]]]><![CDATA[>b]]>");
    }
}
