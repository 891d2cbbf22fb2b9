//! OpenAPI helpers shared by the app and the features.

use utoipa::openapi::{OpenApi, RefOr};

/// Documents HEAD beside every GET, as every [`crate::Route`] serving GET also serves HEAD.
///
/// The HEAD operation copies the GET one, with its own operation id
/// (`<get id>_head`) and its responses stripped of bodies.
pub fn document_head(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let Some(get) = &item.get else { continue };
        if item.head.is_some() {
            continue;
        }
        let mut head = get.clone();
        head.operation_id = get.operation_id.as_ref().map(|id| format!("{id}_head"));
        for response in head.responses.responses.values_mut() {
            if let RefOr::T(response) = response {
                response.content.clear();
            }
        }
        item.head = Some(head);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem, PathsBuilder};
    use utoipa::openapi::{ContentBuilder, InfoBuilder, OpenApiBuilder, ResponseBuilder};

    #[test]
    fn head_mirrors_get_without_body_and_with_its_own_id() {
        let get = OperationBuilder::new()
            .operation_id(Some("x_get"))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("ok")
                    .content("application/json", ContentBuilder::new().build()),
            )
            .build();
        let mut doc = OpenApiBuilder::new()
            .info(InfoBuilder::new().title("t").version("1").build())
            .paths(PathsBuilder::new().path("/x", PathItem::new(HttpMethod::Get, get)))
            .build();
        document_head(&mut doc);
        let head = doc.paths.paths["/x"]
            .head
            .as_ref()
            .expect("head documented");
        assert_eq!(head.operation_id.as_deref(), Some("x_get_head"));
        let RefOr::T(ok) = &head.responses.responses["200"] else {
            panic!("inline response expected")
        };
        assert!(ok.content.is_empty());
    }
}
