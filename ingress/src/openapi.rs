//! The admin API's OpenAPI 3.1 document, generated from the handlers and their types (utoipa), served at
//! `GET /openapi.json` and checked in as `ingress/openapi.json`; a test fails when the two differ
//! (`LANDLORD_UPDATE_SCHEMA=1` rewrites the file).

use axum::response::IntoResponse;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
};

use crate::{error, routes};

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Landlord admin API",
        description = "Tenants of a multi-tenant product: listed, shown, created, suspended, resumed, moved to another plan and offboarded; the database servers they are placed on. Every change is a command a worker carries out; follow it on landlord.progress.<tenant_id> or as Server-Sent Events (GET /v1/tenants/{id}/events). Tokens: LANDLORD_ADMIN_TOKENS (role admin changes, viewer reads)."
    ),
    paths(
        routes::tenants::list,
        routes::tenants::show,
        routes::tenants::audit,
        routes::tenants::operator_queue,
        routes::admin::create,
        routes::admin::retry,
        routes::admin::suspend,
        routes::admin::resume,
        routes::admin::change_plan,
        routes::admin::offboard,
        routes::servers::hand_over,
        routes::servers::list,
        routes::servers::register,
        routes::servers::change,
        routes::events::tenant_events,
        routes::events::all_events,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&BearerToken),
)]
pub struct ApiDoc;

/// The `bearer` security scheme every admin path names.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The document as JSON text, as served and checked in.
pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serializes")
}

/// `GET /openapi.json`: rendered once.
pub async fn serve() -> impl IntoResponse {
    static DOCUMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(document);
    ([(axum::http::header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_checked_in_document_is_the_generated_one() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
        let generated = super::document() + "\n";
        if std::env::var_os("LANDLORD_UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "ingress/openapi.json differs from the code; run LANDLORD_UPDATE_SCHEMA=1 cargo test -p landlord-ingress"
        );
        let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
        for path in ["/v1/tenants", "/v1/tenants/{id}", "/v1/tenants/{id}/plan", "/v1/audit"] {
            assert!(doc["paths"][path].is_object(), "{path} is documented");
        }
    }
}
