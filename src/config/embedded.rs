//! The checkout's config/ profiles, compiled into the binary: a `hotswap`
//! copied alone onto a host (or installed with `cargo install`) starts with
//! the same defaults as one run from the checkout.

pub const DEFAULT: &str = include_str!("../../config/default.toml");

const PROFILES: [(&str, &str); 3] = [
    ("development", include_str!("../../config/development.toml")),
    ("test", include_str!("../../config/test.toml")),
    ("production", include_str!("../../config/production.toml")),
];

/// The built-in overlay of `profile`; another name has none (and, without a
/// `config/{profile}.toml` either, is refused).
pub fn profile(name: &str) -> Option<&'static str> {
    PROFILES.iter().find(|(profile, _)| *profile == name).map(|(_, text)| *text)
}

/// The names of the built-in profiles.
pub fn names() -> impl Iterator<Item = &'static str> {
    PROFILES.iter().map(|(name, _)| *name)
}
