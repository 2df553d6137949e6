//! The verdict on a canary step: each node against its own baseline, and
//! against the absolute limits.

use std::collections::HashMap;

use uuid::Uuid;

use super::Readings;
use crate::domain::MetricQuery;

/// Relative rise in percent, with `floor` keeping a zero baseline from dividing by zero.
fn rise(base: f64, now: f64, floor: f64) -> f64 {
    (now - base) / base.max(floor) * 100.0
}

/// What is wrong with one metric of one node, if anything.
fn verdict(metric: &MetricQuery, base: Option<f64>, now: Option<f64>) -> Option<String> {
    let (name, unit) = (&metric.name, &metric.unit);
    let Some(now) = now else {
        return Some(format!("no {name} reading"));
    };
    if let Some(max) = metric.max.filter(|max| now > *max) {
        return Some(format!("{name} is {now:.2}{unit}, above the limit of {max:.2}{unit}"));
    }
    let (limit, base) = (metric.max_rise_percent?, base?);
    let r = rise(base, now, metric.floor);
    (r > limit).then(|| format!("{name} rose from {base:.2}{unit} to {now:.2}{unit} (+{r:.1}%, limit +{limit:.0}%)"))
}

/// The verdict on one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// One problem per node that regressed, naming the node, the metric and
    /// both values; empty when every node stays within every limit.
    pub problems: Vec<String>,
    /// What each node was judged on, one line per node: every metric's
    /// value and, where there is one, its baseline ("node-1: error rate
    /// 0.10% (from 0.10%), latency 12.00 ms (from 11.00 ms)"), for the
    /// record of a step that passed.
    pub judged_on: Vec<String>,
}

/// Judges each node of `now` against its own `baseline`. A node without a
/// baseline (it joined after the baseline was taken) is judged by the
/// absolute limits alone.
pub fn judge(
    metrics: &[MetricQuery],
    baseline: &[(Uuid, Readings)],
    now: &[(Uuid, Readings)],
    hostname: impl Fn(Uuid) -> String,
) -> Verdict {
    let problems = per_node(baseline, now, &hostname, |base, current| {
        metrics
            .iter()
            .find_map(|m| verdict(m, base.and_then(|b| b.get(&m.name)).copied(), current.get(&m.name).copied()))
    });
    let judged_on = per_node(baseline, now, &hostname, |base, current| {
        let readings: Vec<String> = metrics
            .iter()
            .filter_map(|m| {
                let (name, unit) = (&m.name, &m.unit);
                let value = current.get(name)?;
                Some(match base.and_then(|b| b.get(name)) {
                    Some(base) => format!("{name} {value:.2}{unit} (from {base:.2}{unit})"),
                    None => format!("{name} {value:.2}{unit}"),
                })
            })
            .collect();
        Some(readings.join(", "))
    });
    Verdict { problems, judged_on }
}

/// What `line` says of each node of `now`, given its baseline (if it has
/// one) and its readings, after the node's hostname; a node it says nothing
/// of is left out.
fn per_node(
    baseline: &[(Uuid, Readings)],
    now: &[(Uuid, Readings)],
    hostname: &impl Fn(Uuid) -> String,
    line: impl Fn(Option<&Readings>, &Readings) -> Option<String>,
) -> Vec<String> {
    let before: HashMap<Uuid, &Readings> = baseline.iter().map(|(id, r)| (*id, r)).collect();
    now.iter()
        .filter_map(|(id, current)| {
            line(before.get(id).copied(), current).map(|text| format!("{}: {text}", hostname(*id)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::NodeReported;
    use crate::domain::NodeMetrics;
    use crate::settings::CanaryThresholds;

    fn node_metrics() -> Vec<MetricQuery> {
        let provider = NodeReported::new(&CanaryThresholds::default());
        futures::executor::block_on(crate::analysis::MetricsProvider::measure(
            &provider,
            crate::analysis::AnalysisScope {
                tenant: crate::domain::DEFAULT_TENANT,
                module: "m".into(),
                version: "1".into(),
                environment: crate::domain::Environment::Production,
                nodes: Vec::new(),
            },
        ))
        .unwrap()
        .metrics
    }

    fn one(metrics: &[MetricQuery], base: &NodeMetrics, now: &NodeMetrics) -> Option<String> {
        let id = Uuid::nil();
        let b = [(id, NodeReported::readings(base))];
        let n = [(id, NodeReported::readings(now))];
        judge(metrics, &b, &n, |_| "node-1".into()).problems.pop()
    }

    #[test]
    fn regression_thresholds_and_zero_baselines() {
        let metrics = node_metrics();
        let base = NodeMetrics {
            cpu_usage: 40.0,
            memory_usage: 50.0,
            latency_ms: 100.0,
            error_rate: 0.5,
            requests_per_second: 10.0,
        };
        assert_eq!(one(&metrics, &base, &base), None);
        let worse = NodeMetrics { error_rate: 0.8, ..base };
        let msg = one(&metrics, &base, &worse).unwrap();
        assert!(msg.starts_with("node-1: error rate rose from 0.50% to 0.80%"), "{msg}");
        let slower = NodeMetrics { latency_ms: 201.0, ..base };
        assert!(one(&metrics, &base, &slower).unwrap().starts_with("node-1: latency"));
        let zero = NodeMetrics::default();
        assert_eq!(one(&metrics, &zero, &NodeMetrics { error_rate: 0.04, ..zero }), None, "under the 0.1 floor's +50%");
        assert!(one(&metrics, &zero, &NodeMetrics { cpu_usage: 5.0, ..zero }).is_some());
    }

    #[test]
    fn exactly_at_the_threshold_passes() {
        let metrics = node_metrics();
        let base = NodeMetrics {
            cpu_usage: 40.0,
            memory_usage: 50.0,
            latency_ms: 100.0,
            error_rate: 1.0,
            ..Default::default()
        };
        assert_eq!(one(&metrics, &base, &NodeMetrics { error_rate: 1.5, ..base }), None);
        assert!(one(&metrics, &base, &NodeMetrics { error_rate: 1.5001, ..base }).is_some());
    }

    fn query(rise: Option<f64>, max: Option<f64>) -> MetricQuery {
        MetricQuery {
            name: "errors".into(),
            query: "q".into(),
            max_rise_percent: rise,
            floor: 0.1,
            max,
            unit: String::new(),
        }
    }

    fn readings(v: f64) -> Readings {
        Readings::from([("errors".to_string(), v)])
    }

    #[test]
    fn each_node_is_judged_against_its_own_baseline() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let metrics = [query(Some(50.0), None)];
        let baseline = [(a, readings(1.0)), (b, readings(10.0))];
        // 1 -> 4 is +300% for a; 10 -> 4 is a fall for b. An average would hide a's rise.
        let now = [(a, readings(4.0)), (b, readings(4.0))];
        let problems = judge(&metrics, &baseline, &now, |id| if id == a { "a".into() } else { "b".into() }).problems;
        assert_eq!(problems, vec!["a: errors rose from 1.00 to 4.00 (+300.0%, limit +50%)".to_string()]);
    }

    #[test]
    fn a_passing_step_records_each_nodes_readings_beside_its_baseline() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let metrics = [MetricQuery { unit: "%".into(), ..query(Some(50.0), None) }];
        let baseline = [(a, readings(1.0))];
        let now = [(a, readings(1.2)), (b, readings(0.5))];
        let lines = judge(&metrics, &baseline, &now, |id| if id == a { "a".into() } else { "b".into() }).judged_on;
        assert_eq!(lines, vec!["a: errors 1.20% (from 1.00%)".to_string(), "b: errors 0.50%".to_string()]);
    }

    #[test]
    fn absolute_limits_apply_without_a_baseline_and_missing_readings_fail() {
        let id = Uuid::from_u128(1);
        let metrics = [query(None, Some(2.0))];
        assert!(judge(&metrics, &[], &[(id, readings(1.9))], |_| "n".into()).problems.is_empty());
        assert_eq!(
            judge(&metrics, &[], &[(id, readings(2.5))], |_| "n".into()).problems,
            vec!["n: errors is 2.50, above the limit of 2.00".to_string()]
        );
        assert_eq!(
            judge(&metrics, &[], &[(id, Readings::new())], |_| "n".into()).problems,
            vec!["n: no errors reading"]
        );
        // A rise limit without a baseline judges nothing: the absolute limit still does.
        assert!(judge(&[query(Some(10.0), None)], &[], &[(id, readings(100.0))], |_| "n".into()).problems.is_empty());
    }
}
