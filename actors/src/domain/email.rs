//! The one rule for an email address, shared by tenants' contacts, users and
//! deployment requesters (its host-name part also checks tenants' custom
//! domains), and stated word for word by the API document's pattern
//! ([`EMAIL_PATTERN`]), so a client that validates against the document is
//! never refused nor surprised by what the server takes.

/// The API document's pattern for an email address (254 characters at most
/// is stated beside it as `maxLength`).
pub const EMAIL_PATTERN: &str = "^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$";

/// A local part of 1-64 RFC 5322 "atext" characters and dots, '@', then a
/// host name (see [`is_host_name`]); 254 characters at most in all. No
/// quoted local parts, no address literals, no white space anywhere
/// (nothing is trimmed).
pub fn is_email(email: &str) -> bool {
    const LOCAL_EXTRA: &[u8] = b".!#$%&'*+/=?^_`{|}~-";
    let Some((local, domain)) = email.split_once('@') else { return false };
    email.len() <= 254
        && (1..=64).contains(&local.len())
        && local.bytes().all(|b| b.is_ascii_alphanumeric() || LOCAL_EXTRA.contains(&b))
        && is_host_name(domain)
}

/// A DNS host name of two or more labels: letters, digits and inner
/// hyphens, 1-63 each, 253 characters at most in all.
pub fn is_host_name(host: &str) -> bool {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    host.len() <= 253 && host.split('.').count() >= 2 && host.split('.').all(label_ok)
}

#[cfg(test)]
mod tests {
    use super::is_email;

    #[test]
    fn emails_take_the_documented_form_and_nothing_else() {
        for good in ["ops@acme.example", "first.last+tag@sub.acme.example", "o'neil@x.io", "A_B@Host-1.Example"] {
            assert!(is_email(good), "{good}");
        }
        let long_local = format!("{}@acme.example", "a".repeat(65));
        let too_long = format!("a@{}.example", "b".repeat(250));
        let bad = [
            "",
            "ops",
            "@acme.example",
            "ops@",
            "ops@acme",
            "ops@acme.example*",
            "ops@.acme.example",
            "ops@acme-.example",
            "ops@acme..example",
            "o ps@acme.example",
            " ops@acme.example",
            "ops@ac me.example",
            "\u{e9}@acme.example",
            "a@b@acme.example",
            &long_local,
            &too_long,
        ];
        for bad in bad {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
