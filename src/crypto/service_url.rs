//! The address of a service HotSwap talks to (NATS, Prometheus, Vault, an
//! OTLP collector), as configured. Such addresses may carry credentials
//! (`nats://user:password@host:4222`): `Debug`, which `hotswap config` and
//! start-up errors print, shows the address with them left out.

use serde::Deserialize;

#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ServiceUrl(String);

impl ServiceUrl {
    pub fn new(url: impl Into<String>) -> ServiceUrl {
        ServiceUrl(url.into())
    }

    /// The address as configured, credentials included: for connecting only.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address with any user name and password replaced by `<redacted>`.
    pub fn shown(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.clone() };
        let authority_end = url[scheme_end..].find(['/', '?', '#']).map_or(url.len(), |i| scheme_end + i);
        match url[scheme_end..authority_end].rfind('@') {
            Some(at) => format!("{}<redacted>{}", &url[..scheme_end], &url[scheme_end + at..]),
            None => url.clone(),
        }
    }
}

impl From<&str> for ServiceUrl {
    fn from(url: &str) -> ServiceUrl {
        ServiceUrl::new(url)
    }
}

impl std::ops::Deref for ServiceUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ServiceUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.shown(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show_and_the_rest_of_the_address_does() {
        let url = ServiceUrl::new("nats://user:natspw123@127.0.0.1:4222");
        assert_eq!(format!("{url:?}"), "\"nats://<redacted>@127.0.0.1:4222\"");
        assert_eq!(url.as_str(), "nats://user:natspw123@127.0.0.1:4222");
        let url = ServiceUrl::new("http://u:p@ss@prometheus:9090/prom?x=a@b");
        assert_eq!(url.shown(), "http://<redacted>@prometheus:9090/prom?x=a@b");
        assert_eq!(ServiceUrl::new("http://prometheus:9090").shown(), "http://prometheus:9090");
        assert_eq!(ServiceUrl::new("").shown(), "");
        assert_eq!(ServiceUrl::new("not a url").shown(), "not a url");
    }
}
