//! The end-of-job summary, as text on stderr and as JSON (`--summary-json`).

use std::path::Path;

use serde::Serialize;

use crate::progress::{thousands, MIB};

/// What of the job's output the writer committed (made visible), as established by
/// the writer's `post` and `abort` answers; `unknown` when nothing established it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Committed {
    /// Nothing of this job was committed.
    #[default]
    None,
    /// Some of it is visible (the detail says which).
    Partial,
    /// All of it.
    All,
    /// The writer's `post` started and nothing established how far it got.
    Unknown,
}

impl Committed {
    /// `"all"`, `"none"`, `"partial"` or `"unknown"` (the wire and summary spelling).
    pub fn name(self) -> &'static str {
        match self {
            Committed::None => "none",
            Committed::Partial => "partial",
            Committed::All => "all",
            Committed::Unknown => "unknown",
        }
    }

    /// The spelling in an `abort` or `post` answer.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "none" => Some(Committed::None),
            "partial" => Some(Committed::Partial),
            "all" => Some(Committed::All),
            "unknown" => Some(Committed::Unknown),
            _ => None,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Committed::None => "nothing of this job was committed",
            Committed::Partial => "part of this job's output was committed",
            Committed::All => "everything this job wrote was committed",
            Committed::Unknown => "unknown whether the writer committed",
        }
    }
}

/// Everything the summary reports.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub job_id: String,
    pub job_file: String,
    pub reader: String,
    pub writer: String,
    pub time_zone: String,
    /// `succeeded`, `failed`, `error limit exceeded`, `interrupted`, `configuration error`.
    pub outcome: String,
    pub exit_code: i32,
    /// Why the job did not succeed (secrets redacted).
    pub error: Option<String>,
    /// What of the output the writer committed, for every outcome.
    pub committed: Committed,
    /// The writer's or the engine's words on what is visible and what a re-run does.
    pub commit_detail: Option<String>,
    /// RFC 3339, in the job's time zone.
    pub start: String,
    pub end: String,
    pub elapsed_secs: f64,
    /// From the start of the first task to the end of the last; the average speeds are
    /// over this time (the whole elapsed time when no task ran).
    pub transfer_secs: f64,
    pub records: u64,
    pub bytes: u64,
    pub records_per_sec: f64,
    pub mib_per_sec: f64,
    pub dirty_records: u64,
    pub reader_dirty_records: u64,
    pub writer_dirty_records: u64,
    /// Where the dirty records are, when there were any.
    pub dirty_file: Option<String>,
    pub tasks: u64,
    pub tasks_succeeded: u64,
    pub channels: usize,
    /// Records the writers said they wrote (their `progress`, then their `done`).
    pub written_records: u64,
    /// Summed over tasks, as DataX's WaitReaderTime: the writers waited for records.
    pub wait_reader_secs: f64,
    /// Summed over tasks, as DataX's WaitWriterTime: the readers waited for a writer
    /// to take records.
    pub wait_writer_secs: f64,
    /// Summed over tasks: batches held back by the job's speed limit.
    pub wait_limit_secs: f64,
    /// The schedule time DataWorks expressions were evaluated against (RFC 3339, in
    /// the job's time zone).
    pub schedule_time: String,
    /// The reader's window, when its parameter has one.
    pub window: Option<SummaryWindow>,
    /// The digest of the resolved job (both plugins' parameters).
    pub fingerprint: String,
    /// The plugins' names and program versions from their `hello`s.
    pub plugins: Vec<crate::shared::PluginVersion>,
    /// Follow mode (`run --follow`): batches, records, lag, why it stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow: Option<crate::follow::metrics::FollowSummary>,
}

/// A reader's window `[start, end)`, RFC 3339 in the job's time zone.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SummaryWindow {
    pub start: String,
    pub end: String,
}

impl Summary {
    /// Fills the average speeds from the totals and the elapsed time.
    pub fn compute_speeds(&mut self) {
        let secs = if self.transfer_secs > 0.0 {
            self.transfer_secs
        } else {
            self.elapsed_secs
        }
        .max(0.001);
        self.records_per_sec = (self.records as f64 / secs * 10.0).round() / 10.0;
        self.mib_per_sec = (self.bytes as f64 / MIB / secs * 1000.0).round() / 1000.0;
    }

    /// The summary as aligned lines.
    pub fn text(&self) -> String {
        let mut rows: Vec<(&str, String)> = vec![
            ("Job", format!("{} ({})", self.job_id, self.job_file)),
            ("Plugins", format!("{} → {}", self.reader, self.writer)),
            ("Start", self.start.clone()),
            ("End", self.end.clone()),
            (
                "Elapsed",
                format!(
                    "{:.3} s (transfer {:.3} s)",
                    self.elapsed_secs, self.transfer_secs
                ),
            ),
            (
                "Records",
                format!(
                    "{} read, {} written",
                    thousands(self.records),
                    thousands(self.written_records)
                ),
            ),
            (
                "Bytes",
                format!(
                    "{} ({:.2} MiB)",
                    thousands(self.bytes),
                    self.bytes as f64 / MIB
                ),
            ),
            (
                "Average speed",
                format!(
                    "{} records/s, {:.2} MiB/s",
                    thousands(self.records_per_sec as u64),
                    self.mib_per_sec
                ),
            ),
            (
                "Waited",
                format!(
                    "on the reader {:.3} s, on the writer {:.3} s, on the speed limit {:.3} s (summed over tasks)",
                    self.wait_reader_secs, self.wait_writer_secs, self.wait_limit_secs
                ),
            ),
            (
                "Dirty records",
                format!(
                    "{} (reader {}, writer {})",
                    self.dirty_records, self.reader_dirty_records, self.writer_dirty_records
                ),
            ),
            (
                "Tasks",
                format!(
                    "{} of {} succeeded, {} channels",
                    self.tasks_succeeded, self.tasks, self.channels
                ),
            ),
        ];
        if let Some(f) = &self.dirty_file {
            rows.push(("Dirty file", f.clone()));
        }
        if let Some(w) = &self.window {
            rows.push(("Window", format!("{} – {}", w.start, w.end)));
        }
        if !self.plugins.is_empty() {
            let versions: Vec<String> = self
                .plugins
                .iter()
                .map(|p| format!("{} {}", p.name, p.version))
                .collect();
            rows.push(("Versions", versions.join(", ")));
        }
        if let Some(f) = &self.follow {
            rows.extend(f.text());
        }
        rows.push((
            "Outcome",
            format!("{} (exit code {})", self.outcome, self.exit_code),
        ));
        if let Some(e) = &self.error {
            rows.push(("Error", e.clone()));
        }
        rows.push((
            "Committed",
            format!("{} ({})", self.committed.name(), self.committed.words()),
        ));
        if let Some(d) = &self.commit_detail {
            rows.push(("Commit detail", d.clone()));
        }
        let mut out = String::from("summary\n");
        for (label, value) in rows {
            out.push_str(&format!("  {label:<14}: {value}\n"));
        }
        out
    }

    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, crate::secrets::global().redact(&text) + "\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_and_text() {
        let mut s = Summary {
            job_id: "j1".into(),
            outcome: "succeeded".into(),
            elapsed_secs: 2.0,
            records: 1_000_000,
            bytes: 200 * 1024 * 1024,
            dirty_records: 3,
            reader_dirty_records: 1,
            writer_dirty_records: 2,
            ..Summary::default()
        };
        s.compute_speeds();
        assert_eq!(s.records_per_sec, 500_000.0);
        assert_eq!(s.mib_per_sec, 100.0);
        let text = s.text();
        assert!(
            text.contains("Records       : 1,000,000 read, 0 written"),
            "{text}"
        );
        assert!(text.contains("500,000 records/s, 100.00 MiB/s"), "{text}");
        assert!(text.contains("3 (reader 1, writer 2)"), "{text}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        s.write_json(&path).unwrap();
        let back: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back["records"], 1_000_000);
        assert_eq!(back["outcome"], "succeeded");
        assert_eq!(back["committed"], "none");
        assert_eq!(back["commit_detail"], serde_json::Value::Null);
        assert!(text.contains("Committed     : none (nothing"), "{text}");
    }
}
