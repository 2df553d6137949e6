//! The operator's dashboard at `/`: one page and its script and style sheet,
//! embedded in the binary so that `cargo run` needs no front-end build. The
//! page talks to the same REST API and live WebSocket as any other client,
//! with the token the user signs in with, kept in the page's memory only.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::{web, HttpResponse};

use crate::auth::route_access::RouteAccess;
use crate::web::ApiError;

/// Where the page is served.
pub const PAGE_PATH: &str = "/";
/// Where its script and style sheet are served.
pub const ASSETS_PREFIX: &str = "/dashboard";

/// Scripts, styles and connections from this origin only; no inline code,
/// no frames, no forms posted anywhere (the sign-in form is sent by script).
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                           connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const PAGE: Asset =
    Asset { name: "index.html", content_type: "text/html; charset=utf-8", body: include_str!("assets/index.html") };

const ASSETS: [Asset; 2] = [
    Asset { name: "app.js", content_type: "text/javascript; charset=utf-8", body: include_str!("assets/app.js") },
    Asset { name: "app.css", content_type: "text/css; charset=utf-8", body: include_str!("assets/app.css") },
];

/// The page and its assets need no token: the data they show does.
pub fn public_routes(access: RouteAccess) -> RouteAccess {
    access.with_public_prefix(Method::GET, PAGE_PATH).with_public_prefix(Method::GET, ASSETS_PREFIX)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(PAGE_PATH, web::get().to(page)).route(&format!("{ASSETS_PREFIX}/{{file}}"), web::get().to(asset));
}

async fn page() -> HttpResponse {
    respond(&PAGE)
}

async fn asset(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    ASSETS
        .iter()
        .find(|a| a.name == file.as_str())
        .map(respond)
        .ok_or_else(|| ApiError::NotFound(format!("the dashboard has no file '{}'", file.as_str())))
}

fn respond(asset: &Asset) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, asset.content_type))
        .insert_header((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY)))
        // The assets change with the binary; a new release must not meet a stale script.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(asset.body)
}

#[cfg(test)]
mod tests {
    use hotswap_actors::domain::{AuditCategory, Environment, RunStatus};

    /// The strings of the script's `const NAME = ["a", "b", ...];` line.
    fn script_list(name: &str) -> Vec<String> {
        let script = super::ASSETS.iter().find(|asset| asset.name == "app.js").expect("the dashboard has app.js").body;
        let start = format!("const {name} = [");
        let line =
            script.lines().find(|line| line.starts_with(&start)).unwrap_or_else(|| panic!("app.js declares no {name}"));
        let inside = line[start.len()..].split(']').next().unwrap_or_default();
        inside
            .split(',')
            .map(|item| item.trim().trim_matches('"').to_string())
            .filter(|item| !item.is_empty())
            .collect()
    }

    /// The page's filter menus offer exactly what the API accepts: a name the
    /// server does not know is a 400 the moment a user picks it.
    #[test]
    fn the_filter_menus_name_what_the_server_accepts() {
        let categories: Vec<&str> = AuditCategory::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(script_list("AUDIT_CATEGORIES"), categories);
        let statuses: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(script_list("STATUSES"), statuses);
        let environments: Vec<&str> = Environment::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(script_list("ENVIRONMENTS"), environments);
    }
}
