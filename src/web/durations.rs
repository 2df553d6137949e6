//! Durations as the API answers them: humantime's words ("30s", "7days"),
//! with whole days counted as days. humantime alone writes anything from
//! 30.44 days up in its own months and years, so the secrets' 90-day maximum
//! age read "2months 29days 2h 52m 48s"; here it reads "90days".

use std::time::Duration;

const DAY: u64 = 86_400;

/// `duration` in humantime's words, the days never folded into months or years.
pub fn human(duration: Duration) -> String {
    let days = duration.as_secs() / DAY;
    let rest = duration - Duration::from_secs(days * DAY);
    let days_text = match days {
        0 => None,
        1 => Some("1day".to_string()),
        n => Some(format!("{n}days")),
    };
    match (days_text, rest.is_zero()) {
        (Some(days), true) => days,
        (Some(days), false) => format!("{days} {}", humantime::format_duration(rest)),
        (None, _) => humantime::format_duration(rest).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_stay_days_and_every_answer_parses_back() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_millis(1500), "1s 500ms"),
            (Duration::from_secs(DAY), "1day"),
            (Duration::from_secs(26 * 3600), "1day 2h"),
            (Duration::from_secs(90 * DAY), "90days"),
            (Duration::from_secs(400 * DAY + 61), "400days 1m 1s"),
        ];
        for (duration, text) in cases {
            assert_eq!(human(duration), text);
            assert_eq!(humantime::parse_duration(text).unwrap(), duration, "{text} parses back");
        }
    }
}
