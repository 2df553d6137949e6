//! What an operator can do to a tenant, as a pure step from one record to
//! the next. The tenant actor applies it and stores the result.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::domain::{TenantRecord, TenantStatus, Tier, DEFAULT_TENANT};
use crate::error::CoreError;

/// The metadata key suspension writes its reason to, as in the original.
pub const SUSPENSION_REASON: &str = "suspension_reason";

#[derive(Debug, Clone, Default)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub contact_email: Option<String>,
    /// `Some("")` clears it.
    pub custom_domain: Option<String>,
    /// Merged into the tenant's metadata key by key.
    pub metadata: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone)]
pub enum TenantCommand {
    Update(TenantChanges),
    Suspend {
        reason: Option<String>,
    },
    Activate,
    ChangeTier(Tier),
    /// Soft delete: Deprovisioning now, Deleted once its clusters are gone.
    Delete,
}

impl TenantCommand {
    /// The audit event type of the command.
    pub fn event_type(&self) -> &'static str {
        match self {
            TenantCommand::Update(_) => "TenantUpdated",
            TenantCommand::Suspend { .. } => "TenantSuspended",
            TenantCommand::Activate => "TenantActivated",
            TenantCommand::ChangeTier(_) => "TenantTierChanged",
            TenantCommand::Delete => "TenantDeleted",
        }
    }
}

fn refuse(record: &TenantRecord, what: &str) -> CoreError {
    CoreError::Refused(format!("Tenant {} is {}; it cannot be {what}", record.tenant_id, record.status))
}

/// The record after `command`, with the next revision; 409 (`Refused`) for
/// a move the lifecycle does not allow. Field values were validated before.
pub fn apply(record: &TenantRecord, command: &TenantCommand, now: DateTime<Utc>) -> Result<TenantRecord, CoreError> {
    let mut next = record.clone();
    let system = record.tenant_id == DEFAULT_TENANT;
    let settled = matches!(record.status, TenantStatus::Active | TenantStatus::Suspended);
    match command {
        TenantCommand::Update(changes) => {
            if !settled {
                return Err(refuse(record, "updated"));
            }
            if let Some(name) = &changes.name {
                next.name = name.clone();
            }
            if let Some(email) = &changes.contact_email {
                next.contact_email = email.clone();
            }
            if let Some(domain) = &changes.custom_domain {
                next.custom_domain = (!domain.is_empty()).then(|| domain.clone());
            }
            if let Some(metadata) = &changes.metadata {
                next.metadata.extend(metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        TenantCommand::Suspend { reason } => {
            if system {
                return Err(CoreError::Refused("the system tenant cannot be suspended".into()));
            }
            if record.status != TenantStatus::Active {
                return Err(refuse(record, "suspended"));
            }
            next.status = TenantStatus::Suspended;
            next.suspended_at = Some(now);
            let reason = reason.clone().unwrap_or_else(|| "Suspended by administrator".into());
            next.metadata.insert(SUSPENSION_REASON.into(), reason);
        }
        TenantCommand::Activate => {
            if record.status != TenantStatus::Suspended {
                return Err(refuse(record, "activated"));
            }
            next.status = TenantStatus::Active;
            next.suspended_at = None;
            next.metadata.remove(SUSPENSION_REASON);
        }
        TenantCommand::ChangeTier(tier) => {
            // The platform's own Admins act from it: a smaller tier would cap
            // their runs and modules by a customer's quota.
            if system {
                return Err(CoreError::Refused("the system tenant keeps the Custom tier".into()));
            }
            if !settled {
                return Err(refuse(record, "given another tier"));
            }
            // As in the original: the quota goes back to the tier's defaults.
            next.tier = *tier;
            next.quota = tier.default_quota();
        }
        TenantCommand::Delete => {
            if system {
                return Err(CoreError::Refused("the system tenant cannot be deleted".into()));
            }
            if !record.status.can_become(TenantStatus::Deprovisioning) {
                return Err(refuse(record, "deleted"));
            }
            next.status = TenantStatus::Deprovisioning;
        }
    }
    next.updated_at = now;
    next.revision += 1;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn tenant(status: TenantStatus) -> TenantRecord {
        let mut t = TenantRecord::system(Utc::now());
        t.tenant_id = Uuid::new_v4();
        t.status = status;
        t
    }

    #[test]
    fn the_system_tenant_is_not_suspended_deleted_or_given_another_tier() {
        let system = TenantRecord::system(Utc::now());
        for command in
            [TenantCommand::Suspend { reason: None }, TenantCommand::Delete, TenantCommand::ChangeTier(Tier::Free)]
        {
            assert!(matches!(apply(&system, &command, Utc::now()), Err(CoreError::Refused(_))), "{command:?}");
        }
        let renamed = TenantCommand::Update(TenantChanges { name: Some("Platform".into()), ..Default::default() });
        assert_eq!(apply(&system, &renamed, Utc::now()).unwrap().name, "Platform");
    }

    #[test]
    fn suspend_and_activate_round_trip() {
        let now = Utc::now();
        let active = tenant(TenantStatus::Active);
        let suspended = apply(&active, &TenantCommand::Suspend { reason: None }, now).unwrap();
        assert_eq!(suspended.status, TenantStatus::Suspended);
        assert_eq!(suspended.metadata[SUSPENSION_REASON], "Suspended by administrator");
        assert_eq!(suspended.revision, active.revision + 1);
        let back = apply(&suspended, &TenantCommand::Activate, now).unwrap();
        assert_eq!((back.status, back.suspended_at), (TenantStatus::Active, None));
        assert!(!back.metadata.contains_key(SUSPENSION_REASON));
    }

    #[test]
    fn senseless_moves_are_refused() {
        let now = Utc::now();
        for (status, command) in [
            (TenantStatus::Deleted, TenantCommand::Activate),
            (TenantStatus::Active, TenantCommand::Activate),
            (TenantStatus::Suspended, TenantCommand::Suspend { reason: None }),
            (TenantStatus::Deleted, TenantCommand::Delete),
            (TenantStatus::Deprovisioning, TenantCommand::ChangeTier(Tier::Free)),
            (TenantStatus::Deleted, TenantCommand::Update(TenantChanges::default())),
            (TenantStatus::Provisioning, TenantCommand::Activate),
        ] {
            let result = apply(&tenant(status), &command, now);
            assert!(matches!(result, Err(CoreError::Refused(_))), "{command:?} on {status}: {result:?}");
        }
        let system = TenantRecord::system(now);
        assert!(apply(&system, &TenantCommand::Delete, now).is_err());
        assert!(apply(&system, &TenantCommand::Suspend { reason: None }, now).is_err());
    }

    #[test]
    fn tier_change_resets_the_quota_and_updates_merge_metadata() {
        let now = Utc::now();
        let mut t = tenant(TenantStatus::Active);
        t.metadata.insert("keep".into(), "1".into());
        let pro = apply(&t, &TenantCommand::ChangeTier(Tier::Professional), now).unwrap();
        assert_eq!(pro.quota, Tier::Professional.default_quota());
        let changes = TenantChanges {
            metadata: Some([("new".to_string(), "2".to_string())].into()),
            custom_domain: Some(String::new()),
            ..Default::default()
        };
        let updated = apply(&pro, &TenantCommand::Update(changes), now).unwrap();
        assert_eq!(updated.metadata.len(), 2);
        assert_eq!(updated.custom_domain, None);
    }
}
