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
}
