//! Which requests the authentication middleware lets through without a token,
//! and where a token may come in the query string. Built at start-up from
//! the route table (operations declared `Access::Public`) and the live
//! endpoints, so that no path is written here.

use actix_web::http::Method;

use crate::web::path_template::PathTemplate;

#[derive(Debug, Clone, Default)]
pub struct RouteAccess {
    public: Vec<(Method, PathTemplate)>,
    /// Paths served without a token below a prefix (Swagger UI's assets).
    public_prefixes: Vec<(Method, String)>,
    /// Live upgrades: browsers cannot set headers on a WebSocket, so these
    /// paths also take the token from `access_token`.
    token_in_query: Vec<PathTemplate>,
}

impl RouteAccess {
    pub fn new(public: Vec<(Method, PathTemplate)>, token_in_query: Vec<PathTemplate>) -> RouteAccess {
        RouteAccess { public, public_prefixes: Vec::new(), token_in_query }
    }

    /// Also serve everything below `prefix` for `method` without a token.
    pub fn with_public_prefix(mut self, method: Method, prefix: &str) -> RouteAccess {
        self.public_prefixes.push((method, prefix.to_string()));
        self
    }

    pub fn is_public(&self, method: &Method, path: &str) -> bool {
        // HEAD is answered as GET is.
        let as_get = if method == Method::HEAD { &Method::GET } else { method };
        self.public.iter().any(|(m, t)| (m == method || m == as_get) && t.matches(path))
            || self
                .public_prefixes
                .iter()
                .any(|(m, p)| m == as_get && (path == p || path.starts_with(&format!("{p}/"))))
    }

    pub fn takes_token_in_query(&self, path: &str) -> bool {
        self.token_in_query.iter().any(|t| t.matches(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listed_requests_are_public() {
        let access = RouteAccess::new(
            vec![(Method::GET, PathTemplate::new("/health")), (Method::POST, PathTemplate::new("/login"))],
            vec![PathTemplate::new("/ws")],
        )
        .with_public_prefix(Method::GET, "/swagger-ui");
        assert!(access.is_public(&Method::GET, "/health"));
        assert!(access.is_public(&Method::HEAD, "/health"));
        assert!(!access.is_public(&Method::POST, "/health"));
        assert!(!access.is_public(&Method::GET, "/login"));
        assert!(access.is_public(&Method::GET, "/swagger-ui/index.html"));
        assert!(access.is_public(&Method::GET, "/swagger-ui"));
        assert!(!access.is_public(&Method::GET, "/swagger-uix"));
        assert!(access.takes_token_in_query("/ws"));
        assert!(!access.takes_token_in_query("/health"));
        assert!(!RouteAccess::default().is_public(&Method::GET, "/health"), "no table, nothing public");
    }
}
