//! Naming a record by its id or by a unique start of it (at least four
//! characters), so that nobody has to copy a whole UUID from a listing.

use serde_json::Value;

use super::Failure;

/// The id (the string in `field`) of the one element of `items`, a JSON
/// array, that `which` names, compared without case. `what` names the
/// records in messages ("enrolment token"); `listing` is the verb that lists them.
pub(super) fn one_by_id(items: &Value, field: &str, which: &str, what: &str, listing: &str) -> Result<String, Failure> {
    let ids: Vec<&str> = items.as_array().into_iter().flatten().filter_map(|t| t[field].as_str()).collect();
    let wanted = which.to_ascii_lowercase();
    if let Some(exact) = ids.iter().find(|id| id.eq_ignore_ascii_case(&wanted)) {
        return Ok(exact.to_string());
    }
    let matches: Vec<&&str> =
        ids.iter().filter(|id| wanted.len() >= 4 && id.to_ascii_lowercase().starts_with(&wanted)).collect();
    match matches.as_slice() {
        [one] => Ok(one.to_string()),
        [] if wanted.len() < 4 => Err(Failure::usage(format!(
            "no {what} has the id '{which}', and '{which}' is too short for an id's start: give at least 4 characters (see `{listing}`)"
        ))),
        [] => Err(Failure::usage(format!(
            "no {what} has the id '{which}' or an id starting so (at least 4 characters): see `{listing}`"
        ))),
        several => Err(Failure::usage(format!("'{which}' starts {} {what} ids: give more of it", several.len()))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_record_is_named_by_its_id_or_a_unique_start() {
        let items = json!([{ "id": "8c1d2e3f-0000" }, { "id": "8c1d9999-0000" }, { "id": "ab12cd34-0000" }]);
        let pick = |which| one_by_id(&items, "id", which, "enrolment token", "hotswap agents tokens");
        assert_eq!(pick("AB12").unwrap(), "ab12cd34-0000");
        assert_eq!(pick("8c1d2e3f-0000").unwrap(), "8c1d2e3f-0000");
        assert!(pick("8c1d").unwrap_err().message.contains("starts 2 enrolment token ids"));
        let short = pick("8c1").unwrap_err().message;
        assert!(short.contains("'8c1' is too short") && short.contains("at least 4 characters"), "{short}");
        let unknown = pick("ffff").unwrap_err().message;
        assert!(unknown.contains("no enrolment token") && unknown.contains("`hotswap agents tokens`"), "{unknown}");
    }
}
