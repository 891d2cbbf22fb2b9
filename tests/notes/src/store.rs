//! The Notes queries. Written once, with `$1` placeholders, for SQLite
//! and PostgreSQL alike; the table comes from `migrations/`. Each takes its
//! connection with `Database::acquire`, which counts waits for the metrics.
//! Every query is scoped to the caller: a row of another owner is not seen,
//! so it cannot be read, replaced or deleted either. A write that returns its
//! row reads it with `fetch_all`, which waits for the database to confirm the
//! statement and its commit; sqlx's `Any` driver ends `fetch_one` and
//! `fetch_optional` at the first row, before PostgreSQL has committed.

use petsage_db::Database;
use petsage_identity::Principal;

use crate::model::{NotesItem, NotesPage};

/// The notes table, as the handlers use it.
#[derive(Clone)]
pub(crate) struct Store {
    db: Database,
    default_limit: u32,
}

impl Store {
    pub(crate) fn new(db: Database, default_limit: u32) -> Self {
        Self { db, default_limit }
    }

    /// The page size when a request names none.
    pub(crate) fn default_limit(&self) -> u32 {
        self.default_limit
    }

    /// Up to `limit` of `owner`'s items with ids above `after`, in id order,
    /// and the cursor of the next page. The owner index serves filter and order.
    pub(crate) async fn list(
        &self,
        owner: &Principal,
        after: i64,
        limit: u32,
    ) -> Result<NotesPage, sqlx::Error> {
        // One more than asked tells whether a next page exists.
        let mut items: Vec<NotesItem> = sqlx::query_as(
            r#"SELECT id, name FROM "notes" WHERE owner_issuer = $1 AND owner_subject = $2 AND id > $3 ORDER BY id LIMIT $4"#,
        )
        .bind(&*owner.issuer)
        .bind(&*owner.subject)
        .bind(after)
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *self.db.acquire().await?)
        .await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|last| encode_cursor(last.id))
        } else {
            None
        };
        Ok(NotesPage { items, next_cursor })
    }

    /// `owner`'s item `id`, if there is one.
    pub(crate) async fn get(
        &self,
        owner: &Principal,
        id: i64,
    ) -> Result<Option<NotesItem>, sqlx::Error> {
        sqlx::query_as(
            r#"SELECT id, name FROM "notes" WHERE id = $1 AND owner_issuer = $2 AND owner_subject = $3"#,
        )
        .bind(id)
        .bind(&*owner.issuer)
        .bind(&*owner.subject)
        .fetch_optional(&mut *self.db.acquire().await?)
        .await
    }

    /// A new item owned by `owner`.
    pub(crate) async fn create(
        &self,
        owner: &Principal,
        name: &str,
    ) -> Result<NotesItem, sqlx::Error> {
        sqlx::query_as(
            r#"INSERT INTO "notes" (owner_issuer, owner_subject, name) VALUES ($1, $2, $3) RETURNING id, name"#,
        )
        .bind(&*owner.issuer)
        .bind(&*owner.subject)
        .bind(name)
        .fetch_all(&mut *self.db.acquire().await?)
        .await?
        .pop()
        .ok_or(sqlx::Error::RowNotFound)
    }

    /// `owner`'s item `id` with every field replaced, if there is one.
    pub(crate) async fn replace(
        &self,
        owner: &Principal,
        id: i64,
        name: &str,
    ) -> Result<Option<NotesItem>, sqlx::Error> {
        sqlx::query_as(
            r#"UPDATE "notes" SET name = $1 WHERE id = $2 AND owner_issuer = $3 AND owner_subject = $4 RETURNING id, name"#,
        )
        .bind(name)
        .bind(id)
        .bind(&*owner.issuer)
        .bind(&*owner.subject)
        .fetch_all(&mut *self.db.acquire().await?)
        .await
        .map(|mut rows| rows.pop())
    }

    /// Whether `owner` had an item `id` (and it is now gone).
    pub(crate) async fn delete(&self, owner: &Principal, id: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            r#"DELETE FROM "notes" WHERE id = $1 AND owner_issuer = $2 AND owner_subject = $3"#,
        )
        .bind(id)
        .bind(&*owner.issuer)
        .bind(&*owner.subject)
        .execute(&mut *self.db.acquire().await?)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// A cursor is the last id of a page, in hex: clients pass it back unread.
pub(crate) fn encode_cursor(id: i64) -> String {
    format!("{id:x}")
}

/// The id a cursor stands for; `None` if it is not one of ours.
pub(crate) fn decode_cursor(cursor: &str) -> Option<i64> {
    if cursor.is_empty() || cursor.len() > 16 {
        return None;
    }
    let id = u64::from_str_radix(cursor, 16).ok()?;
    Some(i64::try_from(id).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_what_is_not_ours() {
        for id in [0, 1, 255, i64::MAX] {
            assert_eq!(decode_cursor(&encode_cursor(id)), Some(id));
        }
        assert_eq!(decode_cursor("ffffffffffffffff"), Some(i64::MAX));
        for bad in ["", "xyz", "-1", "10000000000000000"] {
            assert_eq!(decode_cursor(bad), None, "{bad:?}");
        }
    }
}
