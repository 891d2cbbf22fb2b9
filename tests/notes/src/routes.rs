//! The Notes endpoints, with paths relative to the API prefix. Each
//! handler's `#[utoipa::path]` is both its documentation and where it is
//! served: `lib.rs` mounts it with `route!` and the scope it requires (whose
//! 400, 401 and 403 answers the requirement documents). Each handler acts
//! for its caller, the `Principal`: another owner's note is a 404.

use actix_web::http::{StatusCode, header};
use actix_web::web::{Data, Json, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use petsage_core::{FieldError, JsonBody, Problem};
use petsage_db::{Error, Unavailable};
use petsage_identity::Principal;

use crate::model::{NotesCreate, NotesItem, NotesPage, NotesUpdate};
use crate::store::{Store, decode_cursor};

/// Largest page a client may ask for.
const MAX_LIMIT: u32 = 200;

/// `limit` and `cursor` from a list request's query; each bad one is named.
fn paging(store: &Store, query: &[(String, String)]) -> Result<(u32, i64), Problem> {
    let mut errors = Vec::new();
    let mut one = |name: &str| {
        let mut values = query
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            errors.push(FieldError::new(name, "given more than once"));
            return None;
        }
        first.map(str::to_owned)
    };
    let limit = one("limit");
    let cursor = one("cursor");
    let limit = match limit {
        None => store.default_limit(),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .unwrap_or_else(|| {
                errors.push(FieldError::new(
                    "limit",
                    format!("expected a whole number from 1 to {MAX_LIMIT}"),
                ));
                0
            }),
    };
    let after = match cursor {
        None => 0,
        Some(cursor) => decode_cursor(&cursor).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "cursor",
                "expected the next_cursor of a previous page",
            ));
            0
        }),
    };
    if errors.is_empty() {
        Ok((limit, after))
    } else {
        Err(Problem::unprocessable(errors))
    }
}

fn not_found(id: i64) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, format!("no note with id {id}"))
}

/// Lists notes in a stable order, a page at a time.
#[utoipa::path(
    get,
    path = "/notes",
    operation_id = "notes_list",
    tag = "Notes",
    summary = "List notes",
    params(
        ("limit" = Option<u32>, Query, description = "Items per page: 1 to 200 (default 50).", minimum = 1, maximum = 200),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page; absent for the first page.", pattern = "^[0-9a-f]{1,16}$"),
    ),
    responses(
        (status = 200, description = "A page of notes, in id order, and the cursor of the next page.", body = NotesPage),
        (status = 422, description = "`limit` or `cursor` is not valid.", body = Problem, content_type = "application/problem+json"),
        Unavailable,
    )
)]
pub(crate) async fn list(
    caller: Principal,
    store: Data<Store>,
    query: Query<Vec<(String, String)>>,
) -> Result<Json<NotesPage>, Error> {
    let (limit, after) = paging(&store, &query)?;
    Ok(Json(store.list(&caller, after, limit).await?))
}

/// Fetches one note by id.
#[utoipa::path(
    get,
    path = "/notes/{id}",
    operation_id = "notes_get",
    tag = "Notes",
    summary = "Fetch one note",
    params(("id" = i64, Path, description = "The note's id.", minimum = 1)),
    responses(
        (status = 200, description = "The note.", body = NotesItem),
        (status = 404, description = "The caller has no note with this id (or the id is not a number).", body = Problem, content_type = "application/problem+json"),
        Unavailable,
    )
)]
pub(crate) async fn get(
    caller: Principal,
    store: Data<Store>,
    id: Path<i64>,
) -> Result<Json<NotesItem>, Error> {
    let id = id.into_inner();
    Ok(Json(
        store.get(&caller, id).await?.ok_or_else(|| not_found(id))?,
    ))
}

/// Creates a note.
#[utoipa::path(
    post,
    path = "/notes",
    operation_id = "notes_create",
    tag = "Notes",
    summary = "Create a note",
    request_body = NotesCreate,
    responses(
        (status = 201, description = "Created: the note, with `Location` naming its URL.", body = NotesItem,
         headers(("Location" = String, description = "The new note's path."))),
        (status = 413, description = "The body is larger than the service accepts.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body is not a valid note: `errors` names each bad field.", body = Problem, content_type = "application/problem+json"),
        Unavailable,
    )
)]
pub(crate) async fn create(
    req: HttpRequest,
    caller: Principal,
    store: Data<Store>,
    body: JsonBody<NotesCreate>,
) -> Result<HttpResponse, Error> {
    let item = store.create(&caller, &body.0.name).await?;
    let location = format!("{}/{}", req.path().trim_end_matches('/'), item.id);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(item))
}

/// Replaces a note: every field is sent.
#[utoipa::path(
    put,
    path = "/notes/{id}",
    operation_id = "notes_replace",
    tag = "Notes",
    summary = "Replace a note",
    params(("id" = i64, Path, description = "The note's id.", minimum = 1)),
    request_body = NotesUpdate,
    responses(
        (status = 200, description = "Replaced: the note as it is now.", body = NotesItem),
        (status = 404, description = "The caller has no note with this id (or the id is not a number).", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the service accepts.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body is not a valid note: `errors` names each bad field.", body = Problem, content_type = "application/problem+json"),
        Unavailable,
    )
)]
pub(crate) async fn replace(
    caller: Principal,
    store: Data<Store>,
    id: Path<i64>,
    body: JsonBody<NotesUpdate>,
) -> Result<Json<NotesItem>, Error> {
    let id = id.into_inner();
    let item = store.replace(&caller, id, &body.0.name).await?;
    Ok(Json(item.ok_or_else(|| not_found(id))?))
}

/// Deletes a note.
#[utoipa::path(
    delete,
    path = "/notes/{id}",
    operation_id = "notes_delete",
    tag = "Notes",
    summary = "Delete a note",
    params(("id" = i64, Path, description = "The note's id.", minimum = 1)),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "The caller has no note with this id (or the id is not a number).", body = Problem, content_type = "application/problem+json"),
        Unavailable,
    )
)]
pub(crate) async fn delete(
    caller: Principal,
    store: Data<Store>,
    id: Path<i64>,
) -> Result<HttpResponse, Error> {
    let id = id.into_inner();
    if store.delete(&caller, id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found(id).into())
    }
}
