//! Pure decisions of the strategies: how nodes split into waves and when
//! canary metrics count as a regression.

use std::ops::Range;

use crate::domain::{NodeMetrics, Strategy};
use crate::settings::CanaryThresholds;

/// The index ranges of the hostname-sorted nodes that each wave adds.
pub fn waves(strategy: Strategy, nodes: usize, batch_size: usize, canary_steps: &[u32]) -> Vec<Range<usize>> {
    if nodes == 0 {
        return Vec::new();
    }
    match strategy {
        // One wave holding every node.
        Strategy::Direct | Strategy::BlueGreen => std::iter::once(0..nodes).collect(),
        Strategy::Rolling => {
            (0..nodes).step_by(batch_size.max(1)).map(|start| start..(start + batch_size.max(1)).min(nodes)).collect()
        }
        Strategy::Canary => {
            let mut out = Vec::new();
            let mut done = 0;
            for step in canary_steps {
                let target = ((nodes as u64 * *step as u64).div_ceil(100) as usize).clamp(1, nodes);
                // A step that adds no node on a small cluster is folded into the next.
                if target > done {
                    out.push(done..target);
                    done = target;
                }
            }
            if done < nodes {
                out.push(done..nodes);
            }
            out
        }
    }
}

/// Relative rise in percent, with `floor` keeping a zero baseline from dividing by zero.
fn rise(base: f64, now: f64, floor: f64) -> f64 {
    (now - base) / base.max(floor) * 100.0
}

/// Compares canary nodes with their own metrics from before the first step.
/// Returns a message naming the metric and both values on a regression.
pub fn canary_regression(baseline: &NodeMetrics, now: &NodeMetrics, limits: &CanaryThresholds) -> Option<String> {
    let l = limits;
    let checks = [
        ("error rate", "%", baseline.error_rate, now.error_rate, l.error_rate_floor, l.error_rate_rise_percent),
        ("latency", " ms", baseline.latency_ms, now.latency_ms, l.latency_floor_ms, l.latency_rise_percent),
        ("CPU", "%", baseline.cpu_usage, now.cpu_usage, l.usage_floor, l.cpu_rise_percent),
        ("memory", "%", baseline.memory_usage, now.memory_usage, l.usage_floor, l.memory_rise_percent),
    ];
    checks.into_iter().find_map(|(name, unit, base, current, floor, limit)| {
        let r = rise(base, current, floor);
        (r > limit)
            .then(|| format!("{name} rose from {base:.2}{unit} to {current:.2}{unit} (+{r:.1}%, limit +{limit:.0}%)"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(w: &[Range<usize>]) -> Vec<usize> {
        w.iter().map(|r| r.end).collect()
    }

    #[test]
    fn canary_steps_round_up_and_reach_every_node() {
        assert_eq!(counts(&waves(Strategy::Canary, 20, 2, &[10, 30, 50, 100])), vec![2, 6, 10, 20]);
        assert_eq!(counts(&waves(Strategy::Canary, 3, 2, &[10, 30, 50, 100])), vec![1, 2, 3]);
        assert_eq!(counts(&waves(Strategy::Canary, 1, 2, &[10, 100])), vec![1]);
    }

    #[test]
    fn rolling_batches_in_order_with_a_short_last_batch() {
        assert_eq!(waves(Strategy::Rolling, 5, 2, &[]), vec![0..2, 2..4, 4..5]);
        assert_eq!(waves(Strategy::Direct, 3, 2, &[]), vec![0..3]);
        assert!(waves(Strategy::Direct, 0, 2, &[]).is_empty());
    }

    #[test]
    fn regression_thresholds_and_zero_baselines() {
        let limits = CanaryThresholds::default();
        let base = NodeMetrics {
            cpu_usage: 40.0,
            memory_usage: 50.0,
            latency_ms: 100.0,
            error_rate: 0.5,
            requests_per_second: 10.0,
        };
        assert_eq!(canary_regression(&base, &base, &limits), None);
        let worse = NodeMetrics { error_rate: 0.8, ..base };
        assert!(canary_regression(&base, &worse, &limits).unwrap().starts_with("error rate rose from 0.50% to 0.80%"));
        let slower = NodeMetrics { latency_ms: 201.0, ..base };
        assert!(canary_regression(&base, &slower, &limits).unwrap().starts_with("latency"));
        let zero = NodeMetrics::default();
        let msg = canary_regression(&zero, &NodeMetrics { error_rate: 0.04, ..zero }, &limits);
        assert_eq!(msg, None, "0 -> 0.04 stays under the 0.1 floor's +50%");
        assert!(canary_regression(&zero, &NodeMetrics { cpu_usage: 5.0, ..zero }, &limits).is_some());
    }

    #[test]
    fn exactly_at_the_threshold_passes_and_the_thresholds_come_from_the_settings() {
        let base = NodeMetrics {
            cpu_usage: 40.0,
            memory_usage: 50.0,
            latency_ms: 100.0,
            error_rate: 1.0,
            ..Default::default()
        };
        let limits = CanaryThresholds::default();
        // +50% error rate is the limit itself: not a regression; a hair above is.
        assert_eq!(canary_regression(&base, &NodeMetrics { error_rate: 1.5, ..base }, &limits), None);
        assert!(canary_regression(&base, &NodeMetrics { error_rate: 1.5001, ..base }, &limits).is_some());
        // A stricter setting turns the same sample into a regression.
        let strict = CanaryThresholds { error_rate_rise_percent: 10.0, ..limits };
        assert!(canary_regression(&base, &NodeMetrics { error_rate: 1.2, ..base }, &strict).is_some());
    }
}
