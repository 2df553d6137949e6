//! The installation's identity, written once by its migration and shared by
//! every instance on this database.

use diesel::sql_types::Uuid as SqlUuid;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use hotswap_actors::store::StoreResult;
use uuid::Uuid;

use super::PgStore;

#[derive(QueryableByName)]
struct Installation {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

impl PgStore {
    /// The id every instance of this installation shares.
    pub async fn installation_id(&self) -> StoreResult<Uuid> {
        let mut conn = self.conn().await?;
        let found = diesel::sql_query("SELECT id FROM installation").get_result::<Installation>(&mut *conn).await;
        found.map(|row| row.id).map_err(|e| self.db_error(&mut conn, e))
    }
}
