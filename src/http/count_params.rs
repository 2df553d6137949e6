//! Count parameters of list answers (`limit`, `nodeLimit`, `page` and
//! `pageSize`): the value asked for, or the operation's default, refused
//! with 400 outside its range, in the same words wherever they are checked.

use actix_web::{HttpResponse, HttpResponseBuilder};

use super::deployment_dto::MAX_PAGE;
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

/// A page asked for by `page` (1-based) and `pageSize`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageAsked {
    pub page: u32,
    pub size: u32,
}

impl PageAsked {
    /// Items before the page.
    fn skip(&self) -> usize {
        (self.page as usize - 1).saturating_mul(self.size as usize)
    }

    /// This page of `items`, a list in its answer's order.
    pub fn cut<I: IntoIterator>(&self, items: I) -> std::iter::Take<std::iter::Skip<I::IntoIter>> {
        items.into_iter().skip(self.skip()).take(self.size as usize)
    }

    /// A 200 answer holding this page of `total` items: its `X-Total-Count`,
    /// `X-Page` and `X-Page-Size` headers, the body still to give.
    pub fn answer(&self, total: usize) -> HttpResponseBuilder {
        let mut answer = HttpResponse::Ok();
        answer
            .insert_header(("X-Total-Count", total.to_string()))
            .insert_header(("X-Page", self.page.to_string()))
            .insert_header(("X-Page-Size", self.size.to_string()));
        answer
    }
}

/// `page` (default 1, at most the document's 2^31 - 1) and `pageSize`
/// (default `default`, 1 to `most`), each refused with 400 outside its range.
pub fn page_within(page: Option<u32>, page_size: Option<u32>, default: u32, most: u32) -> Result<PageAsked, ApiError> {
    let mut problems = Vec::new();
    let asked = check_page(page, page_size, default, most, &mut problems);
    if problems.is_empty() {
        Ok(asked)
    } else {
        Err(ApiError::validation(problems))
    }
}

/// The same check for a list with other parameters: what is wrong with the
/// page goes into `problems`, to be refused with theirs in one answer.
pub fn check_page(
    page: Option<u32>,
    page_size: Option<u32>,
    default: u32,
    most: u32,
    problems: &mut Vec<String>,
) -> PageAsked {
    let (page, size) = (page.unwrap_or(1), page_size.unwrap_or(default));
    if page == 0 || page > MAX_PAGE {
        problems.push(format!("page must be between 1 and {MAX_PAGE}"));
    }
    if size == 0 || size > most {
        problems.push(format!("pageSize must be between 1 and {most}"));
    }
    PageAsked { page, size }
}

#[cfg(test)]
mod tests {
    use super::{count_within, page_within, PageAsked};

    #[test]
    fn a_page_is_within_its_ranges() {
        assert_eq!(page_within(None, None, 100, 1000).unwrap(), PageAsked { page: 1, size: 100 });
        assert_eq!(page_within(Some(3), Some(10), 100, 1000).unwrap().skip(), 20);
        let second = PageAsked { page: 2, size: 3 };
        assert_eq!(second.cut(0..8).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(PageAsked { page: 3, size: 3 }.cut(0..8).collect::<Vec<_>>(), [6, 7]);
        assert_eq!(PageAsked { page: 4, size: 3 }.cut(0..8).count(), 0);
        for (page, size) in [(0, 10), (1, 0), (1, 1001), (u32::MAX, 10)] {
            assert!(page_within(Some(page), Some(size), 100, 1000).is_err(), "{page} {size}");
        }
    }

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
