//! PetSage's Notes feature: notes stored in the database and
//! served under `/api/v1/notes`.
//!
//! Four files: `model.rs` holds what a client sends and sees, `store.rs` the
//! queries, `routes.rs` the handlers (each documented by its
//! `#[utoipa::path]`), and this file the settings and the wiring: which
//! scope each route requires. The tables are created by `migrations/`, one
//! folder per database.

mod model;
mod routes;
mod store;

pub use model::{NotesCreate, NotesItem, NotesPage, NotesUpdate};

use actix_web::web::Data;
use petsage_core::{Context, Feature, Routes, route};
use petsage_db::Database;
use petsage_identity::Identity;
use utoipa::OpenApi;

use crate::store::Store;

/// The Notes feature's settings: `--notes-…` flags, `PETSAGE_NOTES_…` variables.
#[derive(Debug, Clone, clap::Args)]
pub struct NotesSettings {
    /// Items in a list page when the request names no limit (1 to 200).
    #[arg(
        id = "notes-default-limit",
        long = "notes-default-limit",
        env = "PETSAGE_NOTES_DEFAULT_LIMIT",
        value_name = "N",
        default_value = "50",
        value_parser = clap::value_parser!(u32).range(1..=200)
    )]
    pub default_limit: u32,
}

/// The scope that lets a caller list and fetch their notes.
pub const READ_SCOPE: &str = "notes:read";
/// The scope that lets a caller create, replace and delete their notes.
pub const WRITE_SCOPE: &str = "notes:write";

/// The Notes feature's tags; its paths and schemas come from its routes.
#[derive(OpenApi)]
#[openapi(tags((name = "Notes", description = "Notes: create, list, fetch, replace and delete.")))]
struct NotesApi;

/// The Notes feature, as registered in the app's feature list.
pub struct Notes {
    store: Store,
    identity: Identity,
}

impl Feature for Notes {
    const NAME: &'static str = "notes";
    type Settings = NotesSettings;

    fn build(settings: NotesSettings, ctx: &mut Context) -> Result<Self, String> {
        let identity = Identity::from_context(ctx)?;
        let db = Database::from_context(ctx)?;
        db.migrate(ctx, petsage_db::migrations!())?;
        Ok(Self {
            store: Store::new(db, settings.default_limit),
            identity,
        })
    }

    fn routes(&self) -> Routes {
        let read = || self.identity.require(&[READ_SCOPE]);
        let write = || self.identity.require(&[WRITE_SCOPE]);
        Routes::new()
            .data(Data::new(self.store.clone()))
            .route(route!(routes::list).require(read()))
            .route(route!(routes::create).require(write()))
            .route(route!(routes::get).require(read()))
            .route(route!(routes::replace).require(write()))
            .route(route!(routes::delete).require(write()))
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        NotesApi::openapi()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petsage_core::BuiltFeature;

    #[actix_web::test]
    async fn every_operation_is_tagged_and_named_after_the_feature() {
        // A pool that is never used opens nothing.
        let mut ctx = Context::new();
        let identity = petsage_identity::testing::trust_test_issuer(&mut ctx);
        let db = Database::from_context(&mut ctx).expect("database");
        let store = Store::new(db, 50);
        let doc = BuiltFeature::openapi(&Notes { store, identity });
        let doc = serde_json::to_value(doc).expect("serializes");
        let paths = doc["paths"].as_object().expect("paths");
        assert_eq!(paths.len(), 2, "the list path and the item path");
        for item in paths.values() {
            for operation in item.as_object().expect("operations").values() {
                let id = operation["operationId"].as_str().expect("operation id");
                assert!(id.starts_with("notes_"), "{id}");
                assert_eq!(operation["tags"][0], "Notes");
                let scope = &operation["security"][0]["bearerAuth"][0];
                assert!(scope == READ_SCOPE || scope == WRITE_SCOPE, "{id}: {scope}");
            }
        }
    }
}
