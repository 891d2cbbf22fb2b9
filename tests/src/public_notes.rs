//! A test-only feature for the bench: `GET /test/public-notes/{id}`, the
//! notes feature's GET (the same query on the same table, answered the same
//! way) on a route declared public, reading the rows of the dev issuer's
//! subject [`OWNER`]. Set beside the protected `GET /api/v1/notes/{id}`, it
//! shows what authentication adds to a request.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Json, Path};
use petsage_core::{Context, Feature, NoSettings, Problem, Routes, route};
use petsage_db::{Database, Error};
use petsage_notes::NotesItem;

/// The subject whose notes the public route reads.
pub const OWNER: &str = "bench";

/// Fetches one of [`OWNER`]'s notes by id, with no token.
#[utoipa::path(get, path = "/test/public-notes/{id}", operation_id = "test_public_notes_get",
    tag = "Test", params(("id" = i64, Path, description = "The note's id.")),
    responses((status = 200, description = "The note.", body = NotesItem)))]
async fn get(db: Data<Database>, id: Path<i64>) -> Result<Json<NotesItem>, Error> {
    let id = id.into_inner();
    let item: Option<NotesItem> = sqlx::query_as(
        r#"SELECT id, name FROM "notes" WHERE id = $1 AND owner_issuer = $2 AND owner_subject = $3"#,
    )
    .bind(id)
    .bind(petsage_identity::dev::DEV_ISSUER)
    .bind(OWNER)
    .fetch_optional(&mut *db.acquire().await?)
    .await?;
    Ok(Json(item.ok_or_else(|| {
        Problem::new(StatusCode::NOT_FOUND, format!("no note with id {id}"))
    })?))
}

/// The test-only feature: one public route over the notes table.
pub struct PublicNotes {
    db: Database,
}

impl Feature for PublicNotes {
    const NAME: &'static str = "test-public-notes";
    type Settings = NoSettings;

    fn build(_: NoSettings, ctx: &mut Context) -> Result<Self, String> {
        Ok(Self {
            db: Database::from_context(ctx)?,
        })
    }

    fn routes(&self) -> Routes {
        Routes::new()
            .data(Data::new(self.db.clone()))
            .route(route!(get).public())
    }
}
