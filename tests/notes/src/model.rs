//! The Notes model: what a client sends and what it sees.

use petsage_core::{FieldError, Validate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest name, in characters.
pub(crate) const NAME_MAX_CHARS: usize = 200;

/// One stored note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({"id": 1, "name": "Biscuit"}))]
pub struct NotesItem {
    /// Unique identifier, given by the service.
    #[schema(example = 1, minimum = 1)]
    pub id: i64,
    /// Display name.
    #[schema(example = "Biscuit")]
    pub name: String,
}

/// What a client sends to create a note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Biscuit"}))]
pub struct NotesCreate {
    /// Display name: 1 to 200 characters, no control characters (Unicode Cc).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
}

/// What a client sends to replace a note (`PUT`): every field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Biscuit the Brave"}))]
pub struct NotesUpdate {
    /// Display name: 1 to 200 characters, no control characters (Unicode Cc).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
}

/// One page of notes, in id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotesPage {
    /// The notes of this page.
    pub items: Vec<NotesItem>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl Validate for NotesCreate {
    fn validate(&self) -> Vec<FieldError> {
        check_name(&self.name)
    }
}

impl Validate for NotesUpdate {
    fn validate(&self) -> Vec<FieldError> {
        check_name(&self.name)
    }
}

/// A name's rules: 1 to 200 characters, none of them a control character.
fn check_name(name: &str) -> Vec<FieldError> {
    let chars = name.chars().count();
    let problem = if chars == 0 {
        Some("must not be empty".to_owned())
    } else if chars > NAME_MAX_CHARS {
        Some(format!(
            "must be at most {NAME_MAX_CHARS} characters, not {chars}"
        ))
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters".to_owned())
    } else {
        None
    };
    problem
        .map(|message| vec![FieldError::new("name", message)])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_1_to_200_characters_are_valid() {
        for good in ["a", "Biscuit", &"é".repeat(NAME_MAX_CHARS)] {
            let create = NotesCreate {
                name: good.to_owned(),
            };
            assert!(create.validate().is_empty(), "{good:?}");
        }
        for bad in [
            "",
            &"x".repeat(NAME_MAX_CHARS + 1),
            "line\nbreak",
            "nul\0",
            "c1\u{87}",
        ] {
            let update = NotesUpdate {
                name: bad.to_owned(),
            };
            assert_eq!(update.validate()[0].field, "name", "{bad:?}");
        }
    }

    #[test]
    fn item_serializes_to_its_documented_shape() {
        let item = NotesItem {
            id: 1,
            name: "Biscuit".to_owned(),
        };
        let json = serde_json::to_value(&item).expect("serializes");
        assert_eq!(json, serde_json::json!({"id": 1, "name": "Biscuit"}));
    }
}
