use uuid::Uuid;

/// Every record belongs to a tenant; until tenants are provisioned through the
/// API everything belongs to the default one.
pub type TenantId = Uuid;

pub const DEFAULT_TENANT: TenantId = Uuid::from_u128(0x0000_0000_0000_0000_0000_0000_0000_0001);
