//! Bounded random inputs for the parsers that read untrusted text (test code
//! only). Not a coverage-guided fuzzer: a fixed seed and a mix of the
//! characters parsers trip on, so that every run is the same and any crash
//! reproduces; a crashing input found here is kept as a named case beside
//! the parser's other tests.

/// Characters parsers trip on: separators, escapes, digits, signs, units,
/// quotes, braces, the SignalR record separator, multi-byte letters.
const ALPHABET: &[char] = &[
    '0', '1', '9', '-', '+', '.', ':', 'T', 'Z', 's', 'm', 'h', 'd', '=', '&', '%', '2', 'F', '{', '}', '[', ']', '"',
    ',', '\\', ' ', '\n', '\u{1e}', '\0', 'a', 'é', '٣', '𝟙', 'e', 'E', 'n', 'u', 'l', 't', 'y', 'p',
];

/// Fragments of valid input, so that random text gets past the first check.
const FRAGMENTS: &[&str] = &[
    "{\"type\":1,\"target\":\"SubscribeToDeployment\",\"arguments\":[",
    "{\"type\":\"subscribe\",\"executionId\":\"",
    "{\"protocol\":\"json\",\"version\":",
    "access_token=",
    "18446744073709551616",
    "-262143-01-01T00:00:00Z",
    "-----BEGIN PUBLIC KEY-----\n",
    "\"invocationId\":",
    "null",
    "1e308",
];

/// `count` inputs from `seed`: each a few random fragments and characters.
/// `HOTSWAP_FUZZ_CASES` replaces `count` and `HOTSWAP_FUZZ_SEED` is mixed
/// into `seed` (`scripts/fuzz.sh` sets them for longer runs); unset, every
/// run feeds the same inputs.
pub fn inputs(seed: u64, count: usize) -> Vec<String> {
    let count = env_number("HOTSWAP_FUZZ_CASES").map_or(count, |n| n as usize);
    let seed = seed ^ env_number("HOTSWAP_FUZZ_SEED").unwrap_or(0);
    let mut state = seed.max(1);
    let mut next = move || {
        // xorshift64: enough to spread inputs; reproducible from the seed.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let parts = (next() % 12) as usize;
            let mut s = String::new();
            for _ in 0..parts {
                if next() % 4 == 0 {
                    s.push_str(FRAGMENTS[(next() % FRAGMENTS.len() as u64) as usize]);
                } else {
                    s.push(ALPHABET[(next() % ALPHABET.len() as u64) as usize]);
                }
            }
            s
        })
        .collect()
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}
