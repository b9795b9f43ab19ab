//! Fault injection shared by the three emulators.
//!
//! A test adds [`FaultRule`]s over the admin interface (`POST /-/faults`). Each request
//! a service handles asks [`FaultPlan::decide`] with the request's operation name (the
//! Tablestore action such as `GetStreamRecord`, the OSS operation such as
//! `CompleteMultipartUpload`, the MaxCompute operation such as `CommitUpload`); the
//! service then renders an injected error in its own wire format (its `faults` module),
//! sleeps for injected latency, or drops the connection without a response.
//!
//! A rule with `after_apply` lets the operation take effect and faults only the
//! response: the "commit that failed but in fact succeeded" case. A latency rule with
//! `after_apply` delays the answer of an operation that already took effect: a client
//! that gives up (or is killed) while waiting leaves it done.

use std::sync::{Arc, Mutex};

use rand::Rng;
use serde::{Deserialize, Serialize};

/// What a matching request suffers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with this HTTP status and service error code (e.g. 503 `OTSServerBusy`,
    /// 500 `InternalError`). `message` defaults to a generic text.
    Error {
        status: u16,
        code: String,
        #[serde(default)]
        message: Option<String>,
    },
    /// Delay the response by this many milliseconds, then answer normally (with
    /// `after_apply`: the operation takes effect first, then the answer is delayed).
    Latency { ms: u64 },
    /// Close the connection without sending any response.
    Drop,
}

/// One fault-injection rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]

pub struct FaultRule {
    /// Only requests for this operation match; `None` matches every operation.
    #[serde(default)]
    pub operation: Option<String>,
    /// The rule fires for the next `times` matching requests, then retires.
    /// `None`: it never retires (use with `rate`).
    #[serde(default)]
    pub times: Option<u32>,
    /// The first `skip` matching requests pass untouched; the rule fires from the
    /// next one on (e.g. `skip` 2, `times` 1: only the third request is faulted).
    #[serde(default)]
    pub skip: u32,
    /// Probability in [0, 1] that a matching request is faulted; `None` means 1.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Perform the operation first, then fault the response.
    #[serde(default)]
    pub after_apply: bool,
    #[serde(flatten)]
    pub action: FaultAction,
}

/// The decision for one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fault {
    /// Sleep this long before the operation (sum of matching latency rules).
    pub latency_ms: u64,
    /// Sleep this long after the operation took effect, before answering (sum of
    /// matching latency rules with `after_apply`).
    pub latency_after_ms: u64,
    /// Fault the request before it takes effect.
    pub before: Option<FaultAction>,
    /// Let the request take effect, then fault its response.
    pub after: Option<FaultAction>,
}

impl Fault {
    pub fn is_none(&self) -> bool {
        self.latency_ms == 0
            && self.latency_after_ms == 0
            && self.before.is_none()
            && self.after.is_none()
    }

    /// Waits out the `after_apply` latency (call once the operation took effect).
    pub async fn delay_answer(&self) {
        if self.latency_after_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(self.latency_after_ms)).await;
        }
    }
}

/// A record of one injected fault, for tests to assert on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InjectedFault {
    pub operation: String,
    pub action: FaultAction,
    pub after_apply: bool,
}

#[derive(Debug, Default)]
struct PlanState {
    /// Each rule with the matching requests it let pass and those it faulted.
    rules: Vec<(FaultRule, u32, u32)>,
    injected: Vec<InjectedFault>,
}

/// The live set of rules of one service. Cheap to clone; clones share state.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    state: Arc<Mutex<PlanState>>,
}

#[derive(Debug, thiserror::Error)]
pub enum FaultRuleError {
    #[error("fault rule: rate must be within [0, 1], got {0}")]
    Rate(f64),
    #[error("fault rule: status must be an HTTP error status (400..=599), got {0}")]
    Status(u16),
    #[error("fault rule: times must be at least 1")]
    Times,
}

impl FaultPlan {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule after validating it.
    pub fn add(&self, rule: FaultRule) -> Result<(), FaultRuleError> {
        if let Some(rate) = rule.rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(FaultRuleError::Rate(rate));
            }
        }
        if let FaultAction::Error { status, .. } = &rule.action {
            if !(400..=599).contains(status) {
                return Err(FaultRuleError::Status(*status));
            }
        }
        if rule.times == Some(0) {
            return Err(FaultRuleError::Times);
        }
        self.lock().rules.push((rule, 0, 0));
        Ok(())
    }

    /// Removes every rule (the record of injected faults is kept).
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// The active rules.
    pub fn rules(&self) -> Vec<FaultRule> {
        self.lock()
            .rules
            .iter()
            .map(|(r, _, _)| r.clone())
            .collect()
    }

    /// Every fault injected so far, oldest first.
    pub fn injected(&self) -> Vec<InjectedFault> {
        self.lock().injected.clone()
    }

    /// Decides what happens to one request for `operation`.
    pub fn decide(&self, operation: &str) -> Fault {
        let mut state = self.lock();
        let mut fault = Fault::default();
        let mut rng = rand::thread_rng();
        let mut fired = Vec::new();
        for (rule, skipped, used) in state.rules.iter_mut() {
            if rule.operation.as_deref().is_some_and(|op| op != operation) {
                continue;
            }
            if *skipped < rule.skip {
                *skipped += 1;
                continue;
            }
            if rule.times.is_some_and(|t| *used >= t) {
                continue;
            }
            if let Some(rate) = rule.rate {
                if rng.gen::<f64>() >= rate {
                    continue;
                }
            }
            match &rule.action {
                FaultAction::Latency { ms } if rule.after_apply => fault.latency_after_ms += ms,
                FaultAction::Latency { ms } => fault.latency_ms += ms,
                action => {
                    // One error or drop per request: the first matching rule wins.
                    if fault.before.is_some() || fault.after.is_some() {
                        continue;
                    }
                    if rule.after_apply {
                        fault.after = Some(action.clone());
                    } else {
                        fault.before = Some(action.clone());
                    }
                }
            }
            *used += 1;
            fired.push(InjectedFault {
                operation: operation.to_owned(),
                action: rule.action.clone(),
                after_apply: rule.after_apply,
            });
        }
        state
            .rules
            .retain(|(rule, _, used)| rule.times.is_none_or(|t| *used < t));
        state.injected.extend(fired);
        fault
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PlanState> {
        // A panic while holding the lock cannot leave the plan inconsistent
        // (every mutation is a single push/retain), so recover from poisoning.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_rule(op: Option<&str>, times: Option<u32>) -> FaultRule {
        FaultRule {
            operation: op.map(str::to_owned),
            times,
            skip: 0,
            rate: None,
            after_apply: false,
            action: FaultAction::Error {
                status: 503,
                code: "ServerBusy".into(),
                message: None,
            },
        }
    }

    #[test]
    fn next_n_requests_fail_then_rule_retires() {
        let plan = FaultPlan::new();
        plan.add(error_rule(None, Some(2))).unwrap();
        assert!(plan.decide("A").before.is_some());
        assert!(plan.decide("B").before.is_some());
        assert!(plan.decide("A").is_none());
        assert!(plan.rules().is_empty());
        assert_eq!(plan.injected().len(), 2);
    }

    #[test]
    fn skip_lets_the_first_matching_requests_pass() {
        let plan = FaultPlan::new();
        let mut rule = error_rule(Some("UploadBlock"), Some(1));
        rule.skip = 2;
        plan.add(rule).unwrap();
        assert!(plan.decide("UploadBlock").is_none());
        assert!(plan.decide("Other").is_none());
        assert!(plan.decide("UploadBlock").is_none());
        assert!(plan.decide("UploadBlock").before.is_some());
        assert!(plan.decide("UploadBlock").is_none());
        assert!(plan.rules().is_empty());
        let rule: FaultRule =
            serde_json::from_str(r#"{"operation":"UploadBlock","times":1,"skip":3,"kind":"drop"}"#)
                .unwrap();
        assert_eq!(rule.skip, 3);
    }

    #[test]
    fn operation_filter_only_matches_that_operation() {
        let plan = FaultPlan::new();
        plan.add(error_rule(Some("Commit"), Some(1))).unwrap();
        assert!(plan.decide("Upload").is_none());
        assert!(plan.decide("Commit").before.is_some());
        assert!(plan.decide("Commit").is_none());
    }

    #[test]
    fn rate_zero_never_fires_and_rate_one_always_fires() {
        let plan = FaultPlan::new();
        let mut never = error_rule(None, None);
        never.rate = Some(0.0);
        plan.add(never).unwrap();
        assert!((0..100).all(|_| plan.decide("X").is_none()));
        plan.clear();
        let mut always = error_rule(None, None);
        always.rate = Some(1.0);
        plan.add(always).unwrap();
        assert!((0..100).all(|_| plan.decide("X").before.is_some()));
    }

    #[test]
    fn latency_adds_up_and_after_apply_is_separate() {
        let plan = FaultPlan::new();
        plan.add(FaultRule {
            operation: None,
            times: None,
            skip: 0,
            rate: None,
            after_apply: false,
            action: FaultAction::Latency { ms: 5 },
        })
        .unwrap();
        let mut after = error_rule(None, Some(1));
        after.after_apply = true;
        plan.add(after).unwrap();
        let f = plan.decide("X");
        assert_eq!(f.latency_ms, 5);
        assert_eq!(f.latency_after_ms, 0);
        assert!(f.before.is_none());
        assert!(f.after.is_some());
    }

    #[test]
    fn latency_after_apply_delays_only_the_answer() {
        let plan = FaultPlan::new();
        let rule: FaultRule = serde_json::from_str(
            r#"{"operation":"CommitUpload","times":1,"kind":"latency","ms":700,"after_apply":true}"#,
        )
        .unwrap();
        plan.add(rule).unwrap();
        let f = plan.decide("CommitUpload");
        assert_eq!((f.latency_ms, f.latency_after_ms), (0, 700));
        assert!(f.before.is_none() && f.after.is_none() && !f.is_none());
        assert!(plan.decide("CommitUpload").is_none());
    }

    #[test]
    fn invalid_rules_are_rejected() {
        let plan = FaultPlan::new();
        let mut r = error_rule(None, None);
        r.rate = Some(1.5);
        assert!(plan.add(r).is_err());
        assert!(plan.add(error_rule(None, Some(0))).is_err());
        let json = r#"{"kind":"error","status":200,"code":"X"}"#;
        let rule: FaultRule = serde_json::from_str(json).unwrap();
        assert!(plan.add(rule).is_err());
    }

    #[test]
    fn rules_parse_from_json() {
        let rule: FaultRule = serde_json::from_str(
            r#"{"operation":"CompleteMultipartUpload","times":1,"kind":"drop","after_apply":true}"#,
        )
        .unwrap();
        assert_eq!(rule.action, FaultAction::Drop);
        assert!(rule.after_apply);
    }
}
