//! Whether one more run fits a tenant's quotas.

use chrono::{DateTime, Utc};

use crate::domain::{Quota, QuotaExceeded, QuotaKind};
use crate::store::RunCounts;

/// The start of the UTC day `now` is in: runs per day count from there.
pub fn start_of_day(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive().and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or(now)
}

/// Refuses the run when it would go over a quota, given the tenant's runs as
/// stored (`counts`, taken for the run's module). Concurrent runs first: it
/// is the one that frees up soonest.
pub fn check_admission(quota: &Quota, counts: &RunCounts) -> Result<(), QuotaExceeded> {
    let over = |quota: QuotaKind, limit: u32, current: u64| {
        // u32::MAX is "unlimited", whatever the count.
        if limit != u32::MAX && current >= u64::from(limit) {
            Err(QuotaExceeded { quota, limit, current })
        } else {
            Ok(())
        }
    };
    over(QuotaKind::ConcurrentRuns, quota.max_concurrent_runs, counts.active)?;
    over(QuotaKind::RunsPerDay, quota.max_runs_per_day, counts.created_since)?;
    if !counts.module_known {
        over(QuotaKind::Modules, quota.max_modules, counts.modules)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Tier;

    fn counts(active: u64, today: u64, modules: u64, known: bool) -> RunCounts {
        RunCounts { active, created_since: today, modules, module_known: known }
    }

    #[test]
    fn exactly_the_limit() {
        let q = Tier::Starter.default_quota();
        assert!(check_admission(&q, &counts(2, 0, 1, true)).is_ok());
        let refused = check_admission(&q, &counts(3, 0, 1, true)).unwrap_err();
        assert_eq!(refused, QuotaExceeded { quota: QuotaKind::ConcurrentRuns, limit: 3, current: 3 });
        let refused = check_admission(&q, &counts(0, 50, 1, true)).unwrap_err();
        assert_eq!(refused.quota, QuotaKind::RunsPerDay);
    }

    #[test]
    fn a_known_module_never_counts_against_the_module_quota() {
        let q = Tier::Free.default_quota();
        assert!(check_admission(&q, &counts(0, 0, 3, true)).is_ok());
        assert_eq!(check_admission(&q, &counts(0, 0, 3, false)).unwrap_err().quota, QuotaKind::Modules);
        assert!(check_admission(&Quota::UNLIMITED, &counts(1 << 40, 1 << 40, 1 << 40, false)).is_ok());
    }

    #[test]
    fn day_starts_at_utc_midnight() {
        let t = DateTime::parse_from_rfc3339("2026-12-01T13:45:10.5Z").unwrap().to_utc();
        assert_eq!(start_of_day(t).to_rfc3339(), "2026-12-01T00:00:00+00:00");
    }
}
