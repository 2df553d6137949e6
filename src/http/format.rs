//! Duration renderings the original API used, kept so its clients keep parsing them.

use std::time::Duration;

/// .NET TimeSpan form: `hh:mm:ss.fffffff`, with a `d.` prefix past a day.
pub fn timespan(d: chrono::Duration) -> String {
    let d = d.to_std().unwrap_or_default();
    let total = d.as_secs();
    let (days, hours, minutes, seconds) = (total / 86_400, total / 3600 % 24, total / 60 % 60, total % 60);
    let ticks = d.subsec_nanos() / 100;
    let clock = format!("{hours:02}:{minutes:02}:{seconds:02}.{ticks:07}");
    if days > 0 {
        format!("{days}.{clock}")
    } else {
        clock
    }
}

/// ISO 8601 duration such as `PT1H15M`.
pub fn iso8601(d: Duration) -> String {
    let total = d.as_secs();
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    let mut out = String::from("PT");
    if hours > 0 {
        out.push_str(&format!("{hours}H"));
    }
    if minutes > 0 {
        out.push_str(&format!("{minutes}M"));
    }
    if seconds > 0 || out == "PT" {
        out.push_str(&format!("{seconds}S"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_the_original() {
        assert_eq!(timespan(chrono::Duration::milliseconds(12_345)), "00:00:12.3450000");
        assert_eq!(timespan(chrono::Duration::hours(26)), "1.02:00:00.0000000");
        assert_eq!(iso8601(Duration::from_secs(1800)), "PT30M");
        assert_eq!(iso8601(Duration::from_secs(3725)), "PT1H2M5S");
        assert_eq!(iso8601(Duration::ZERO), "PT0S");
    }
}
