//! Pure decisions of the strategies: how nodes split into waves. When
//! canary metrics count as a regression is `crate::analysis::judge`.

use std::ops::Range;

use crate::domain::Strategy;

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
            for &step in canary_steps {
                let target = canary_target(nodes, step);
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

/// How many of `nodes` a canary step of `percent` puts on the new version:
/// rounded up, at least one, at most all.
fn canary_target(nodes: usize, percent: u32) -> usize {
    ((nodes as u64 * u64::from(percent)).div_ceil(100) as usize).clamp(1, nodes.max(1))
}

/// The canary step a wave ending at `end` of `nodes` completes. Steps folded
/// into one wave on a small cluster show the last of them (10 % and 30 % of 3
/// nodes are both one node: that wave is the 30 % step); a last wave that no
/// step reaches (steps that stop short of 100) is 100 %.
pub fn canary_step_percent(nodes: usize, end: usize, canary_steps: &[u32]) -> u32 {
    canary_steps.iter().copied().filter(|&step| canary_target(nodes, step) == end).max().unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(w: &[Range<usize>]) -> Vec<usize> {
        w.iter().map(|r| r.end).collect()
    }

    #[test]
    fn each_canary_wave_is_labelled_with_the_step_it_completes() {
        let percents = |nodes: usize, steps: &[u32]| -> Vec<u32> {
            waves(Strategy::Canary, nodes, 2, steps).iter().map(|w| canary_step_percent(nodes, w.end, steps)).collect()
        };
        assert_eq!(percents(6, &[10, 30, 50, 100]), vec![10, 30, 50, 100]);
        assert_eq!(percents(3, &[10, 30, 50, 100]), vec![30, 50, 100]);
        assert_eq!(percents(20, &[10, 30, 50, 100]), vec![10, 30, 50, 100]);
        assert_eq!(percents(10, &[25, 50]), vec![25, 50, 100]);
        assert_eq!(percents(1, &[10, 100]), vec![100]);
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
}
