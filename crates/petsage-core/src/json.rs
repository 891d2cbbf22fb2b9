//! [`JsonBody`]: a JSON request body that is well-formed, of the declared
//! shape and valid, or else a problem that names each bad field.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use serde::de::DeserializeOwned;

use crate::{FieldError, Problem};

/// A request payload's own rules, beyond its shape (lengths, ranges).
pub trait Validate {
    /// Every rule the value breaks; empty when it is valid.
    fn validate(&self) -> Vec<FieldError>;
}

/// A JSON body, deserialized and validated.
///
/// A wrong `Content-Type` is a `415` problem; malformed JSON, a missing or
/// unknown field, a value of the wrong type, or a broken rule is a `422`
/// problem whose `errors` name each bad field; a body over the app's size
/// limit is a `413`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T> JsonBody<T> {
    /// The payload.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + Validate + 'static> FromRequest for JsonBody<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type = check_content_type(req);
        let bytes = Bytes::from_request(req, payload);
        Box::pin(async move {
            content_type?;
            let bytes = bytes.await?;
            parse::<T>(&bytes).map(JsonBody).map_err(Into::into)
        })
    }
}

fn check_content_type(req: &HttpRequest) -> Result<(), Problem> {
    let value = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as application/json",
        ))
    }
}

/// Deserializes `bytes`, a JSON object, as `T` and validates it. The error
/// names every unknown field and every broken rule, or else the first field
/// that could not be read (missing, or of the wrong type).
pub fn parse<T: DeserializeOwned + Validate>(bytes: &[u8]) -> Result<T, Problem> {
    let body_error =
        |message: String| Problem::unprocessable(vec![FieldError::new("body", message)]);
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|err| body_error(message_of(&err)))?;
    // serde would also read a struct from an array (`["Rex"]`): accept objects only.
    if !value.is_object() {
        return Err(body_error("expected a JSON object".to_owned()));
    }
    let mut errors = Vec::new();
    loop {
        match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(parsed) => {
                errors.extend(parsed.validate());
                return if errors.is_empty() {
                    Ok(parsed)
                } else {
                    Err(Problem::unprocessable(errors))
                };
            }
            Err(err) => {
                let path = err.path().to_string();
                let inner = err.into_inner();
                let message = message_of(&inner);
                let at_root = matches!(path.as_str(), "." | "");
                let named = missing_or_unknown(&inner.to_string());
                // An unknown field is reported, set aside, and the rest is read on.
                if let (Some(name), Some(object)) = (&named, value.as_object_mut())
                    && (at_root || path == *name)
                    && message.starts_with("unknown field")
                    && object.remove(name).is_some()
                {
                    errors.push(FieldError::new(name.clone(), message));
                    continue;
                }
                let field = match (at_root, named) {
                    (true, Some(name)) => name,
                    (true, None) => "body".to_owned(),
                    (false, _) => path,
                };
                errors.push(FieldError::new(field, message));
                return Err(Problem::unprocessable(errors));
            }
        }
    }
}

/// serde names the field of `missing field `x`` and `unknown field `x``.
fn missing_or_unknown(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next().map(str::to_owned)
}

/// serde_json's message without its "at line 1 column 9" tail.
fn message_of(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Pet {
        name: String,
    }

    impl Validate for Pet {
        fn validate(&self) -> Vec<FieldError> {
            if self.name.is_empty() {
                vec![FieldError::new("name", "must not be empty")]
            } else {
                Vec::new()
            }
        }
    }

    fn field_of(body: &str) -> String {
        let problem = parse::<Pet>(body.as_bytes()).expect_err("invalid");
        assert_eq!(problem.status, 422, "{body}");
        problem.errors[0].field.clone()
    }

    #[test]
    fn each_kind_of_bad_body_names_its_field() {
        assert_eq!(
            parse::<Pet>(br#"{"name":"Rex"}"#).expect("valid").name,
            "Rex"
        );
        assert_eq!(field_of(r#"{"name":""}"#), "name");
        assert_eq!(field_of(r#"{"name":5}"#), "name");
        assert_eq!(field_of(r#"{}"#), "name");
        assert_eq!(field_of(r#"{"name":"a","age":3}"#), "age");
        assert_eq!(field_of(r#"{"name":"#), "body");
        assert_eq!(field_of(r#"[1]"#), "body");
        assert_eq!(field_of(r#"{"name":"a"} trailing"#), "body");
    }

    #[test]
    fn unknown_fields_and_broken_rules_are_named_together() {
        let problem = parse::<Pet>(br#"{"name":"","colour":"red","age":3}"#).expect_err("invalid");
        let fields: Vec<&str> = problem.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["age", "colour", "name"]);
    }
}
