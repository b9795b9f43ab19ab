//! Classifies a request into one operation of the service or the tunnel. The
//! variant names are the operation names fault rules filter on.

use super::error::{OdpsError, OdpsResult};

/// Which endpoint a request came in on: the service API is mounted under `/api`,
/// the tunnel at the root of the same port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    Service,
    Tunnel,
}

/// One operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    GetProject {
        project: String,
    },
    GetTunnelEndpoint {
        project: String,
    },
    ListTables {
        project: String,
    },
    GetTable {
        project: String,
        table: String,
    },
    ListPartitions {
        project: String,
        table: String,
    },
    GetPartition {
        project: String,
        table: String,
        spec: String,
    },
    CreateInstance {
        project: String,
    },
    GetInstance {
        project: String,
        instance: String,
    },
    GetTaskStatus {
        project: String,
        instance: String,
    },
    GetTaskResult {
        project: String,
        instance: String,
    },
    GetInstanceSource {
        project: String,
        instance: String,
    },
    CreateUploadSession {
        project: String,
        table: String,
    },
    GetUploadSession {
        project: String,
        table: String,
        upload_id: String,
    },
    UploadBlock {
        project: String,
        table: String,
        upload_id: String,
        block_id: String,
    },
    CommitUpload {
        project: String,
        table: String,
        upload_id: String,
    },
    CreateDownloadSession {
        project: String,
        target: Target,
    },
    GetDownloadSession {
        project: String,
        target: Target,
        download_id: String,
    },
    DownloadData {
        project: String,
        target: Target,
        download_id: String,
    },
    CreateUpsertSession {
        project: String,
        table: String,
    },
    GetUpsertSession {
        project: String,
        table: String,
        upsert_id: String,
    },
    UpsertData {
        project: String,
        table: String,
        upsert_id: String,
    },
    CommitUpsert {
        project: String,
        table: String,
        upsert_id: String,
    },
    AbortUpsert {
        project: String,
        table: String,
        upsert_id: String,
    },
}

/// What a tunnel download reads: a table or an instance's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Table(String),
    Instance(String),
}

impl Route {
    /// The operation name used by fault rules (`CreateUploadSession`, `CommitUpload`, …).
    pub fn operation(&self) -> &'static str {
        match self {
            Route::GetProject { .. } => "GetProject",
            Route::GetTunnelEndpoint { .. } => "GetTunnelEndpoint",
            Route::ListTables { .. } => "ListTables",
            Route::GetTable { .. } => "GetTable",
            Route::ListPartitions { .. } => "ListPartitions",
            Route::GetPartition { .. } => "GetPartition",
            Route::CreateInstance { .. } => "CreateInstance",
            Route::GetInstance { .. } => "GetInstance",
            Route::GetTaskStatus { .. } => "GetTaskStatus",
            Route::GetTaskResult { .. } => "GetTaskResult",
            Route::GetInstanceSource { .. } => "GetInstanceSource",
            Route::CreateUploadSession { .. } => "CreateUploadSession",
            Route::GetUploadSession { .. } => "GetUploadSession",
            Route::UploadBlock { .. } => "UploadBlock",
            Route::CommitUpload { .. } => "CommitUpload",
            Route::CreateDownloadSession { .. } => "CreateDownloadSession",
            Route::GetDownloadSession { .. } => "GetDownloadSession",
            Route::DownloadData { .. } => "DownloadData",
            Route::CreateUpsertSession { .. } => "CreateUpsertSession",
            Route::GetUpsertSession { .. } => "GetUpsertSession",
            Route::UpsertData { .. } => "UpsertData",
            Route::CommitUpsert { .. } => "CommitUpsert",
            Route::AbortUpsert { .. } => "AbortUpsert",
        }
    }

    /// An operation of a Delta table's upsert sessions.
    pub fn is_upsert(&self) -> bool {
        matches!(
            self,
            Route::CreateUpsertSession { .. }
                | Route::GetUpsertSession { .. }
                | Route::UpsertData { .. }
                | Route::CommitUpsert { .. }
                | Route::AbortUpsert { .. }
        )
    }
}

/// Decoded query parameters in request order (`key` alone has an empty value).
pub struct Query(pub Vec<(String, String)>);

impl Query {
    /// Parses a raw query string: `+` is a space, values are percent-decoded.
    pub fn parse(raw: Option<&str>) -> Self {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        Query(
            raw.unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
}

fn not_found(path: &str) -> OdpsError {
    OdpsError::new(404, "NoSuchObject", format!("no such resource {path}"))
}

fn method_not_allowed(method: &str, path: &str) -> OdpsError {
    OdpsError::new(
        405,
        "MethodNotAllowed",
        format!("{method} is not supported on {path}"),
    )
}

/// Maps method + decoded path segments (relative to the surface) + query to a route.
pub fn classify(
    surface: Surface,
    method: &str,
    segments: &[String],
    q: &Query,
    path: &str,
) -> OdpsResult<Route> {
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let project = |s: &str| s.to_owned();
    let bad_method = || Err(method_not_allowed(method, path));
    match (surface, seg.as_slice()) {
        (Surface::Service, ["projects", p]) => match method {
            "GET" => Ok(Route::GetProject {
                project: project(p),
            }),
            _ => bad_method(),
        },
        (Surface::Service, ["projects", p, "tunnel"]) if method == "GET" => {
            Ok(Route::GetTunnelEndpoint {
                project: project(p),
            })
        }
        (Surface::Service, ["projects", p, "tables"]) => match method {
            "GET" => Ok(Route::ListTables {
                project: project(p),
            }),
            _ => bad_method(),
        },
        (Surface::Service, ["projects", p, "tables", t]) => {
            let (project, table) = (project(p), (*t).to_owned());
            match method {
                "GET" if q.has("partitions") => Ok(Route::ListPartitions { project, table }),
                "GET" if q.has("partition") => Ok(Route::GetPartition {
                    project,
                    table,
                    spec: q.get("partition").unwrap_or("").to_owned(),
                }),
                "GET" => Ok(Route::GetTable { project, table }),
                _ => bad_method(),
            }
        }
        (Surface::Service, ["projects", p, "instances"]) => match method {
            "POST" => Ok(Route::CreateInstance {
                project: project(p),
            }),
            _ => bad_method(),
        },
        (Surface::Service, ["projects", p, "instances", i]) => {
            let (project, instance) = (project(p), (*i).to_owned());
            match method {
                "GET" if q.has("taskstatus") => Ok(Route::GetTaskStatus { project, instance }),
                "GET" if q.has("result") => Ok(Route::GetTaskResult { project, instance }),
                "GET" if q.has("source") => Ok(Route::GetInstanceSource { project, instance }),
                "GET" => Ok(Route::GetInstance { project, instance }),
                _ => bad_method(),
            }
        }
        (Surface::Tunnel, ["projects", p, "tables", t]) => {
            let (project, table) = (project(p), (*t).to_owned());
            let upload_id = q.get("uploadid").map(str::to_owned);
            let download_id = q.get("downloadid").map(str::to_owned);
            match (method, upload_id, download_id) {
                ("POST", None, None) if q.has("uploads") => {
                    Ok(Route::CreateUploadSession { project, table })
                }
                ("POST", None, None) if q.has("downloads") => Ok(Route::CreateDownloadSession {
                    project,
                    target: Target::Table(table),
                }),
                ("GET", Some(upload_id), None) => Ok(Route::GetUploadSession {
                    project,
                    table,
                    upload_id,
                }),
                ("PUT", Some(upload_id), None) => Ok(Route::UploadBlock {
                    project,
                    table,
                    upload_id,
                    block_id: q.get("blockid").unwrap_or("").to_owned(),
                }),
                ("POST", Some(upload_id), None) => Ok(Route::CommitUpload {
                    project,
                    table,
                    upload_id,
                }),
                ("GET", None, Some(download_id)) => Ok(download_route(
                    project,
                    Target::Table(table),
                    download_id,
                    q,
                )),
                _ => Err(OdpsError::invalid_argument(format!(
                    "{method} {path}: expected uploads, uploadid, downloads or downloadid"
                ))),
            }
        }
        (Surface::Tunnel, ["projects", p, "tables", t, "upserts"]) => {
            let (project, table) = (project(p), (*t).to_owned());
            let Some(upsert_id) = q.get("upsertid").map(str::to_owned) else {
                return match method {
                    "POST" => Ok(Route::CreateUpsertSession { project, table }),
                    _ => Err(OdpsError::invalid_argument(format!(
                        "{method} {path}: expected upsertid"
                    ))),
                };
            };
            match method {
                "GET" => Ok(Route::GetUpsertSession {
                    project,
                    table,
                    upsert_id,
                }),
                "PUT" => Ok(Route::UpsertData {
                    project,
                    table,
                    upsert_id,
                }),
                "POST" => Ok(Route::CommitUpsert {
                    project,
                    table,
                    upsert_id,
                }),
                "DELETE" => Ok(Route::AbortUpsert {
                    project,
                    table,
                    upsert_id,
                }),
                _ => bad_method(),
            }
        }
        (Surface::Tunnel, ["projects", p, "instances", i]) => {
            let (project, target) = (project(p), Target::Instance((*i).to_owned()));
            match (method, q.get("downloadid").map(str::to_owned)) {
                ("POST", None) if q.has("downloads") => {
                    Ok(Route::CreateDownloadSession { project, target })
                }
                ("GET", Some(download_id)) => Ok(download_route(project, target, download_id, q)),
                _ => Err(OdpsError::invalid_argument(format!(
                    "{method} {path}: expected downloads or downloadid"
                ))),
            }
        }
        _ => Err(not_found(path)),
    }
}

fn download_route(project: String, target: Target, download_id: String, q: &Query) -> Route {
    if q.has("data") {
        Route::DownloadData {
            project,
            target,
            download_id,
        }
    } else {
        Route::GetDownloadSession {
            project,
            target,
            download_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(surface: Surface, method: &str, path: &str, query: &str) -> OdpsResult<Route> {
        let segments: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .map(str::to_owned)
            .collect();
        classify(surface, method, &segments, &Query::parse(Some(query)), path)
    }

    #[test]
    fn query_flags_in_every_sdk_spelling() {
        for q in ["uploads", "uploads=", "uploads=1&reload=False"] {
            let r = route(Surface::Tunnel, "POST", "/projects/p/tables/t", q).unwrap();
            assert_eq!(r.operation(), "CreateUploadSession");
        }
        let q = Query::parse(Some(
            "partition=pt%3D%2720240101%27%2Cregion%3D%27hz%27&a+b=c+d",
        ));
        assert_eq!(q.get("partition"), Some("pt='20240101',region='hz'"));
        assert_eq!(q.get("a b"), Some("c d"));
    }

    #[test]
    fn operations_by_surface() {
        let op = |s, m, p, q| route(s, m, p, q).map(|r| r.operation());
        assert_eq!(
            op(
                Surface::Service,
                "GET",
                "/projects/p/tables/t",
                "partitions&expectmarker=true"
            ),
            Ok("ListPartitions")
        );
        assert_eq!(
            op(
                Surface::Service,
                "GET",
                "/projects/p/tables/t",
                "partition=pt%3D1"
            ),
            Ok("GetPartition")
        );
        assert_eq!(
            op(
                Surface::Service,
                "GET",
                "/projects/p/instances/i",
                "taskstatus"
            ),
            Ok("GetTaskStatus")
        );
        assert_eq!(
            op(
                Surface::Tunnel,
                "PUT",
                "/projects/p/tables/t",
                "uploadid=u&blockid=0"
            ),
            Ok("UploadBlock")
        );
        assert_eq!(
            op(
                Surface::Tunnel,
                "POST",
                "/projects/p/tables/t",
                "uploadid=u"
            ),
            Ok("CommitUpload")
        );
        assert_eq!(
            op(
                Surface::Tunnel,
                "GET",
                "/projects/p/instances/i",
                "downloadid=d&data&rowrange=(0,1)"
            ),
            Ok("DownloadData")
        );
        assert_eq!(
            route(Surface::Tunnel, "GET", "/projects/p/tunnel", "")
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(
            route(Surface::Service, "DELETE", "/projects/p/tables/t", "")
                .unwrap_err()
                .status,
            405
        );
    }
}
