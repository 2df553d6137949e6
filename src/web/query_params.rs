//! The query-string extractor of the API. It reads a query as actix's
//! `web::Query` does (serde_urlencoded), but a value that does not parse is
//! refused naming its parameter: serde_urlencoded's own words ("invalid digit
//! found in string") say what went wrong, not where, so `max=-1` read like a
//! malformed URL while `max=101` said "max must be between 1 and 100".

use std::future::{ready, Ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use super::ApiError;

/// The parsed query string.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Query<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse(req.query_string()).map(Query).map_err(Into::into))
    }
}

/// `query` as a `T`; a value that does not parse is a validation error
/// naming its parameter, anything else (unknown or missing parameters,
/// which serde names itself) a bad request.
pub fn parse<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let error = match serde_urlencoded::from_str::<T>(query) {
        Ok(parsed) => return Ok(parsed),
        Err(e) => e.to_string(),
    };
    match culprit::<T>(query, &error) {
        Some(name) => Err(ApiError::validation(vec![format!("{name}: {error}")])),
        None => Err(ApiError::BadRequest(format!("invalid query string: {error}"))),
    }
}

/// The parameter whose value the error is about: the one without which the
/// rest parses (or only misses that parameter). None when the error already
/// names its field, or no single parameter explains it.
fn culprit<T: DeserializeOwned>(query: &str, error: &str) -> Option<String> {
    if error.starts_with("missing field") || error.starts_with("unknown field") {
        return None;
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    let mut names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
    names.dedup();
    names
        .into_iter()
        .find(|name| {
            let rest: Vec<&(String, String)> = pairs.iter().filter(|(n, _)| n != name).collect();
            let Ok(rest) = serde_urlencoded::to_string(rest) else { return false };
            match serde_urlencoded::from_str::<T>(&rest) {
                Ok(_) => true,
                Err(e) => e.to_string() == format!("missing field `{name}`"),
            }
        })
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[allow(dead_code)] // Only parsed.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Consume {
        subscription_id: uuid::Uuid,
        max: Option<usize>,
        wait_ms: Option<u64>,
    }

    const SUB: &str = "subscriptionId=6f1c2d4e-0000-4000-8000-000000000001";

    fn refusal(query: &str) -> (String, Vec<String>) {
        match parse::<Consume>(query).unwrap_err() {
            ApiError::Validation { details, .. } => ("validation".into(), details),
            ApiError::BadRequest(m) => (m, vec![]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_value_that_does_not_parse_names_its_parameter() {
        assert!(parse::<Consume>(&format!("{SUB}&max=5")).is_ok());
        for (query, name) in [("max=-1", "max"), ("waitMs=abc", "waitMs"), ("max=1&waitMs=-5", "waitMs")] {
            let (_, details) = refusal(&format!("{SUB}&{query}"));
            assert_eq!(details.len(), 1, "{query}");
            assert!(details[0].starts_with(&format!("{name}: ")), "{query}: {details:?}");
        }
        let (_, details) = refusal("subscriptionId=nope&max=2");
        assert!(details[0].starts_with("subscriptionId: "), "{details:?}");
    }

    #[test]
    fn missing_and_unknown_parameters_stay_bad_requests_that_name_them() {
        assert!(refusal("max=2").0.contains("missing field `subscriptionId`"));
        assert!(refusal(&format!("{SUB}&page=2")).0.contains("unknown field `page`"));
    }
}
