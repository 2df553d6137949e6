//! Count parameters of list answers (`limit`, `nodeLimit`): the value asked
//! for, or the operation's default, refused with 400 outside 1 to the
//! operation's most, in the same words wherever they are checked.

use crate::web::ApiError;

/// `asked`, or `default` when it was left out, if it is 1 to `most`.
pub fn count_within(name: &str, asked: Option<u32>, default: u32, most: u32) -> Result<usize, ApiError> {
    let value = asked.unwrap_or(default);
    if (1..=most).contains(&value) {
        Ok(value as usize)
    } else {
        Err(ApiError::validation(vec![format!("{name} must be between 1 and {most}, not {value}")]))
    }
}

#[cfg(test)]
mod tests {
    use super::count_within;

    #[test]
    fn a_count_is_its_default_or_within_one_to_the_most() {
        assert_eq!(count_within("limit", None, 20, 100).unwrap(), 20);
        assert_eq!(count_within("limit", Some(100), 20, 100).unwrap(), 100);
        for refused in [0, 101] {
            let message = count_within("limit", Some(refused), 20, 100).unwrap_err().to_string();
            assert_eq!(message, format!("limit must be between 1 and 100, not {refused}"));
        }
    }
}
