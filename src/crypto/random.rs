//! Random values from the operating system's CSPRNG, never from a seeded
//! generator: generated secrets must not be predictable.

/// The symbols of generated secrets: URL- and shell-safe.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub fn bytes(n: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| format!("the operating system's random source failed: {e}"))?;
    Ok(buf)
}

/// A secret of `len` symbols, each drawn uniformly from a 64-symbol alphabet
/// (6 bits per symbol, so no modulo bias).
pub fn secret_string(len: usize) -> Result<String, String> {
    Ok(bytes(len)?.into_iter().map(|b| ALPHABET[(b & 63) as usize] as char).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_have_the_length_and_alphabet_and_differ() {
        let a = super::secret_string(64).unwrap();
        let b = super::secret_string(64).unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| super::ALPHABET.contains(&c)));
        assert_ne!(a, b);
    }
}
