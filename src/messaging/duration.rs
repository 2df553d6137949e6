//! Durations in request bodies: humantime ("30s", "10m", "7days") or the
//! original's TimeSpan text ("00:00:30", "1.00:00:00" for a day).

use std::time::Duration;

/// Parses either form; the message names what was wrong.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.contains(':') {
        parse_timespan(text)
    } else {
        humantime::parse_duration(text).map_err(|e| format!("'{text}' is not a duration such as \"30s\": {e}"))
    }
}

/// `[d.]hh:mm:ss[.fraction]`, as .NET writes a TimeSpan.
fn parse_timespan(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration such as \"00:00:30\" or \"30s\"");
    let parts: Vec<&str> = text.split(':').collect();
    let [head, minutes, seconds] = parts.as_slice() else { return Err(bad()) };
    let (days, hours) = match head.split_once('.') {
        Some((d, h)) => (d.parse::<u64>().map_err(|_| bad())?, h),
        None => (0, *head),
    };
    let hours: u64 = hours.parse().map_err(|_| bad())?;
    let minutes: u64 = minutes.parse().map_err(|_| bad())?;
    let seconds: f64 = seconds.parse().map_err(|_| bad())?;
    if hours > 23 || minutes > 59 || !(0.0..60.0).contains(&seconds) {
        return Err(bad());
    }
    // Checked: a day count too large for seconds is refused, never wrapped.
    let whole = days.checked_mul(24).and_then(|h| h.checked_add(hours)).and_then(|h| h.checked_mul(3600));
    let whole = whole.and_then(|s| s.checked_add(minutes * 60)).ok_or_else(bad)?;
    Ok(Duration::from_secs(whole) + Duration::from_secs_f64(seconds))
}

/// How durations are answered: humantime's form ("30s", "7days"), whole
/// days as days (see `crate::web::durations`).
pub fn format_duration(duration: Duration) -> String {
    crate::web::durations::human(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse_to_the_same_duration() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("00:00:30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.02:00:00"), Ok(Duration::from_secs(26 * 3600)));
        assert_eq!(parse_duration("00:00:00.5"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("999999999999999999.00:00:00").is_err(), "too many days is refused, not wrapped");
        assert!(parse_duration("00:61:00").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
    }
}
