//! A route's path with `{parameters}`, matched against request paths: for the
//! Allow header of 405 answers and for the paths served without a token.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    /// `None` stands for a `{parameter}` segment.
    segments: Vec<Option<String>>,
}

impl PathTemplate {
    pub fn new(template: &str) -> PathTemplate {
        let segments =
            template.split('/').map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_string())).collect();
        PathTemplate { segments }
    }

    /// Whether `path` fits; a parameter matches any non-empty segment.
    pub fn matches(&self, path: &str) -> bool {
        let mut wanted = path.split('/');
        let fits = self.segments.iter().all(|segment| match (segment, wanted.next()) {
            (Some(fixed), Some(w)) => fixed == w,
            (None, Some(w)) => !w.is_empty(),
            (_, None) => false,
        });
        fits && wanted.next().is_none()
    }

    /// How many segments are fixed: where two templates match, the more
    /// specific one names the route (`/{id}/events` over `/{id}/{verb}`).
    pub fn specificity(&self) -> usize {
        self.segments.iter().filter(|s| s.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::PathTemplate;

    #[test]
    fn parameters_match_one_non_empty_segment() {
        let t = PathTemplate::new("/api/v1/deployments/{id}/events");
        assert!(t.matches("/api/v1/deployments/abc/events"));
        assert!(!t.matches("/api/v1/deployments//events"));
        assert!(!t.matches("/api/v1/deployments/abc/events/more"));
        assert!(!t.matches("/api/v1/deployments/abc"));
        assert_eq!(t.specificity(), 5);
        assert_eq!(PathTemplate::new("/api/v1/deployments/{id}/{verb}").specificity(), 4);
    }
}
