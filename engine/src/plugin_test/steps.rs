//! `--version`, `spec` and the job steps (`check`, `prepare`, `split`, `post`, `abort`
//! with `--engine`): one JSON request on stdin, one JSON answer on stdout.

use protocol::message::{ErrorKind, ErrorMessage, JobContext};
use protocol::runtime::{StepContext, StepRequest};
use serde_json::{json, Value as Json};

use super::observe::kind_name;
use super::process::{run_once, tail, Ran};
use super::Suite;

/// `--version` and `spec`.
pub fn version_and_spec(suite: &mut Suite) {
    let result = run_once(&suite.plugin, &["--version"], b"", suite.timeout)
        .map_err(|e| format!("cannot run {}: {e}", suite.plugin.display()))
        .and_then(|ran| judge_version(&ran, suite));
    suite.report.check("--version", result);
    let result = run_once(&suite.plugin, &["spec"], b"", suite.timeout)
        .map_err(|e| format!("cannot run {}: {e}", suite.plugin.display()))
        .and_then(|ran| judge_spec(&ran, suite));
    suite.report.check("spec", result);
}

fn judge_version(ran: &Ran, suite: &Suite) -> Result<String, String> {
    let text = String::from_utf8_lossy(&ran.stdout);
    if ran.code() != Some(0) {
        return Err(format!(
            "`{} --version` {}; expected exit 0 and \"<name> <version>\" on stdout{}",
            suite.plugin.display(),
            ran.ended(suite.timeout),
            stderr_note(ran)
        ));
    }
    let line = text.lines().next().unwrap_or("").trim();
    let has_version = line
        .as_bytes()
        .windows(3)
        .any(|w| w[0].is_ascii_digit() && w[1] == b'.' && w[2].is_ascii_digit());
    if !has_version {
        return Err(format!(
            "--version printed {line:?}; expected \"<name> <version>\" such as \"reader-x 1.2.0\""
        ));
    }
    Ok(line.to_owned())
}

fn judge_spec(ran: &Ran, suite: &Suite) -> Result<String, String> {
    if ran.code() != Some(0) {
        return Err(format!(
            "`spec` {}; expected exit 0{}",
            ran.ended(suite.timeout),
            stderr_note(ran)
        ));
    }
    let spec: Json = one_json(&ran.stdout).map_err(|e| format!("spec: {e}"))?;
    let params = spec
        .get("parameters")
        .and_then(Json::as_array)
        .ok_or("spec: the answer has no \"parameters\" array")?;
    for p in params {
        if p.get("name").and_then(Json::as_str).is_none() {
            return Err(format!("spec: a parameter without a name: {p}"));
        }
    }
    Ok(format!("{} parameters", params.len()))
}

fn stderr_note(ran: &Ran) -> String {
    let t = tail(&ran.stderr, 3);
    if t.is_empty() {
        t
    } else {
        format!(" (stderr: {t})")
    }
}

/// Exactly one JSON document on stdout, nothing else but whitespace.
fn one_json(stdout: &[u8]) -> Result<Json, String> {
    let mut values = serde_json::Deserializer::from_slice(stdout).into_iter::<Json>();
    let first = match values.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            return Err(format!(
                "stdout is not JSON ({e}); it starts with {:?} (stdout carries only the answer: logs go to stderr)",
                String::from_utf8_lossy(&stdout[..stdout.len().min(80)])
            ))
        }
        None => return Err("stdout is empty: expected one JSON answer".to_owned()),
    };
    let rest = &stdout[values.byte_offset()..];
    if rest.iter().any(|b| !b.is_ascii_whitespace()) {
        return Err(format!(
            "stdout holds more than the JSON answer: {:?} follows it (logs go to stderr)",
            String::from_utf8_lossy(&rest[..rest.len().min(80)])
        ));
    }
    Ok(first)
}

/// A step request for this suite's parameter.
pub fn request(
    parameter: &Json,
    state: &Json,
    job: JobContext,
    count: Option<usize>,
    reports: Vec<Json>,
) -> Vec<u8> {
    let request = StepRequest {
        context: StepContext {
            parameter: parameter.clone(),
            state: state.clone(),
            job,
        },
        count,
        reports,
    };
    serde_json::to_vec(&request).unwrap_or_default()
}

/// What a step answered.
pub enum Answer {
    Ok(Json),
    Failed(ErrorMessage),
}

/// Runs `<plugin> <step> --engine` with `request` and checks the form of its answer
/// and its exit code. `Err` says what broke the contract.
pub fn run_step(suite: &Suite, step: &str, request: &[u8]) -> Result<Answer, String> {
    let ran = run_once(&suite.plugin, &[step, "--engine"], request, suite.timeout)
        .map_err(|e| format!("cannot run {}: {e}", suite.plugin.display()))?;
    let Some(status) = ran.status else {
        return Err(format!(
            "`{step} --engine` {}{}",
            ran.ended(suite.timeout),
            stderr_note(&ran)
        ));
    };
    let answer = one_json(&ran.stdout).map_err(|e| {
        format!(
            "`{step} --engine` {}: {e}{}",
            super::process::ended(&status),
            stderr_note(&ran)
        )
    })?;
    let ok = answer
        .get("ok")
        .and_then(Json::as_bool)
        .ok_or_else(|| format!("{step}: the answer has no boolean \"ok\": {answer}"))?;
    let code = status.code();
    if ok {
        if code != Some(0) {
            return Err(format!(
                "{step} answered ok but {} (expected exit 0)",
                super::process::ended(&status)
            ));
        }
        return Ok(Answer::Ok(
            answer.get("value").cloned().unwrap_or(Json::Null),
        ));
    }
    let error: ErrorMessage = answer
        .get("error")
        .cloned()
        .and_then(|e| serde_json::from_value(e).ok())
        .ok_or_else(|| {
            format!(
                "{step} answered ok: false without an error {{kind, retryable, message}}: {answer}"
            )
        })?;
    let want = if error.kind == ErrorKind::Config {
        2
    } else {
        1
    };
    if code != Some(want) {
        return Err(format!(
            "{step} failed with kind {} but {} (expected exit {want}: 2 for config errors, 1 otherwise)",
            kind_name(error.kind),
            super::process::ended(&status)
        ));
    }
    if error.message.trim().is_empty() {
        return Err(format!("{step} failed with an empty error message"));
    }
    Ok(Answer::Failed(error))
}

/// Runs a step that must succeed; records the check; its value, if it passed.
pub fn step_ok(
    suite: &mut Suite,
    name: &str,
    step: &str,
    request: &[u8],
    judge: impl FnOnce(&Json) -> Result<String, String>,
) -> Option<Json> {
    let result = match run_step(suite, step, request) {
        Ok(Answer::Ok(value)) => judge(&value).map(|d| (d, value)),
        Ok(Answer::Failed(e)) => Err(format!(
            "{step} failed: {} ({}{})",
            e.message,
            kind_name(e.kind),
            if e.retryable { ", retryable" } else { "" }
        )),
        Err(e) => Err(e),
    };
    match result {
        Ok((detail, value)) => {
            suite.report.pass(name, detail);
            Some(value)
        }
        Err(e) => {
            suite.report.fail(name, e);
            None
        }
    }
}

/// `check` with a parameter that is not an object must fail as a config error.
pub fn bad_config(suite: &mut Suite) {
    let job = suite.job(0, 0);
    let request = request(
        &json!("streamport test-plugin: not a parameter object"),
        &Json::Null,
        job,
        None,
        vec![],
    );
    let result = match run_step(suite, "check", &request) {
        Ok(Answer::Failed(e)) if e.kind == ErrorKind::Config => {
            Ok(format!("refused as a config error, exit 2: {}", e.message))
        }
        Ok(Answer::Failed(e)) => Err(format!(
            "check refused a parameter that is not an object with kind {} (expected kind config, exit 2): {}",
            kind_name(e.kind),
            e.message
        )),
        Ok(Answer::Ok(_)) => Err(
            "check accepted a parameter that is not an object (expected ok: false, kind config, exit 2)"
                .to_owned(),
        ),
        Err(e) => Err(e),
    };
    suite.report.check("check (bad config)", result);
}

/// A plugin whose `check` answer offers `session` must serve it: `session --engine`
/// answers each request line with one answer line, in order, goes on after a failed
/// step, and exits 0 when stdin ends. (The requests are `check`s of a parameter that is
/// not an object, so nothing here needs the plugin's services.)
pub fn session(suite: &mut Suite) {
    let job = suite.job(0, 0);
    let bad = request(
        &json!("streamport test-plugin: not a parameter object"),
        &Json::Null,
        job,
        None,
        vec![],
    );
    let result = (|| {
        let ran = run_once(&suite.plugin, &["check", "--engine"], &bad, suite.timeout)
            .map_err(|e| format!("cannot run {}: {e}", suite.plugin.display()))?;
        let answer = one_json(&ran.stdout).map_err(|e| {
            format!(
                "`check --engine` {}: {e}{}",
                ran.ended(suite.timeout),
                stderr_note(&ran)
            )
        })?;
        if answer.get("session").and_then(Json::as_bool) != Some(true) {
            return Ok("not offered: the engine starts a process per step".to_owned());
        }
        let line = |step: &str| {
            let mut l = format!("{{\"step\":\"{step}\",\"request\":").into_bytes();
            l.extend_from_slice(&bad);
            l.extend_from_slice(b"}\n");
            l
        };
        let input = [line("check"), line("check")].concat();
        let ran = run_once(
            &suite.plugin,
            &["session", "--engine"],
            &input,
            suite.timeout,
        )
        .map_err(|e| format!("cannot run {}: {e}", suite.plugin.display()))?;
        let text = String::from_utf8_lossy(&ran.stdout);
        let answers: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if answers.len() != 2 {
            return Err(format!(
                "offered session, but `session --engine` answered {} lines to 2 requests (one JSON answer per line, logs on stderr): {:?}{}",
                answers.len(),
                &text[..text.len().min(200)],
                stderr_note(&ran)
            ));
        }
        for (i, a) in answers.iter().enumerate() {
            let answer: Json = serde_json::from_str(a).map_err(|e| {
                format!(
                    "session answer {} is not one line of JSON ({e}): {a:?}",
                    i + 1
                )
            })?;
            let kind = answer.pointer("/error/kind").and_then(Json::as_str);
            if answer.get("ok").and_then(Json::as_bool) != Some(false) || kind != Some("config") {
                return Err(format!(
                    "session answer {} to a check of a parameter that is not an object is not ok: false with kind config: {a}",
                    i + 1
                ));
            }
        }
        if ran.code() != Some(0) {
            return Err(format!(
                "`session --engine` {} when its stdin ended (expected exit 0){}",
                ran.ended(suite.timeout),
                stderr_note(&ran)
            ));
        }
        Ok(
            "two steps in one process, each answered on its own line; exit 0 at the end of stdin"
                .to_owned(),
        )
    })();
    suite.report.check("session", result);
}

/// `post`'s and `abort`'s answer: null or {"committed": …, "detail": "…"}.
pub fn judge_commit_answer(step: &str, value: &Json) -> Result<String, String> {
    if value.is_null() {
        return Ok("answered null".to_owned());
    }
    let committed = value.get("committed").and_then(Json::as_str);
    let allowed: &[&str] = if step == "post" {
        &["all"]
    } else {
        &["none", "partial", "all", "unknown"]
    };
    match committed {
        Some(c) if allowed.contains(&c) => {
            if value
                .get("detail")
                .is_some_and(|d| !d.is_string() && !d.is_null())
            {
                return Err(format!("{step}: \"detail\" must be a string: {value}"));
            }
            Ok(format!(
                "committed {c}: {}",
                value.get("detail").and_then(Json::as_str).unwrap_or("")
            ))
        }
        _ => Err(format!(
            "{step} answered {value}; expected null or {{\"committed\": {}, \"detail\": \"…\"}}",
            allowed.join("|")
        )),
    }
}
