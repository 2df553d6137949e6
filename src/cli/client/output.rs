//! How the client prints: aligned tables for people, the API's own JSON for
//! scripts, colours only on a terminal and never under NO_COLOR or --no-color.

use std::io::IsTerminal;

use clap::ValueEnum;
use console::Style;
use serde_json::Value;

/// The exit code of a command whose reader went away (`hotswap runs | head -1`):
/// what a tool killed by SIGPIPE reports, 128 + 13.
pub const BROKEN_PIPE_EXIT: i32 = 141;

/// Writes one line on standard output. A reader that went away ends the
/// command quietly instead of panicking as `println!` would.
pub fn emit(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(line).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
    }
}

/// Writes one line on standard error. A reader that went away
/// (`hotswap … 2>&1 | head -1`) loses the line, and the command keeps its own
/// exit code, where `eprintln!` would panic (exit 101).
pub fn emit_err(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(line).and_then(|()| err.write_all(b"\n"));
}

/// `eprintln!` for the client verbs, through [`emit_err`].
macro_rules! complain {
    ($($arg:tt)*) => { $crate::cli::client::output::emit_err(format_args!($($arg)*)) };
}
pub(crate) use complain;

/// `println!` for the client verbs, through [`emit`].
macro_rules! say {
    () => { $crate::cli::client::output::emit(format_args!("")) };
    ($($arg:tt)*) => { $crate::cli::client::output::emit(format_args!($($arg)*)) };
}
pub(crate) use say;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Clone, Copy)]
pub struct Out {
    pub format: OutputFormat,
    pub color: bool,
    /// Standard output is a terminal: progress bars and rewritten lines.
    pub interactive: bool,
}

impl Out {
    pub fn new(format: OutputFormat, no_color: bool) -> Out {
        let terminal = std::io::stdout().is_terminal();
        // https://no-color.org: any non-empty value turns colour off.
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = terminal && !no_color && !no_color_env;
        console::set_colors_enabled(color);
        console::set_colors_enabled_stderr(color && std::io::stderr().is_terminal());
        Out { format, color, interactive: terminal }
    }

    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    pub fn print_json(&self, value: &Value) {
        say!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            style.force_styling(true).apply_to(text).to_string()
        } else {
            text.to_string()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint(Style::new().dim(), text)
    }

    /// A run, stage, check or node status in the colour of what it means.
    pub fn status(&self, text: &str) -> String {
        let style = match text {
            "Succeeded" | "Passed" | "Running" | "Healthy" | "Approved" | "true" => Style::new().green(),
            "Failed" | "Rejected" | "Expired" | "Unhealthy" | "false" => Style::new().red(),
            "RolledBack" | "Cancelled" | "Warning" | "Unknown" | "Paused" => Style::new().yellow(),
            "PendingApproval" | "WaitingForApproval" | "Pending" => Style::new().cyan(),
            _ => Style::new(),
        };
        self.paint(style, text)
    }

    /// Prints rows under headers, each column as wide as its widest cell
    /// (cells past [`MAX_CELL_CHARS`] are cut, with an ellipsis: `-o json`
    /// has them whole). `status_col` names a column to colour by [`Out::status`].
    pub fn table(&self, headers: &[&str], rows: &[Vec<String>], status_col: Option<usize>) {
        let mut rows: Vec<Vec<String>> =
            rows.iter().map(|row| row.iter().map(|c| cut_to(&escaped(c), MAX_CELL_CHARS)).collect()).collect();
        let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let free_text_last = headers.last().is_some_and(|h| FREE_TEXT_HEADERS.contains(h));
        if let Some(columns) = self.terminal_columns().filter(|_| free_text_last) {
            fit_last_column(&mut rows, &mut widths, columns);
        }
        let line = |cells: Vec<String>| cells.join("  ").trim_end().to_string();
        // The last header is not padded: its padding would sit inside the bold
        // style's escape codes, where trimming the line cannot reach it.
        let last = headers.len().saturating_sub(1);
        let head: Vec<String> = headers
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (h, w))| self.bold(&if i == last { h.to_string() } else { padded(h, *w) }))
            .collect();
        say!("{}", line(head));
        for row in &rows {
            let cells = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (cell, w))| {
                    let padded = padded(cell, *w);
                    if Some(i) == status_col {
                        // Colour the word only, so the padding stays plain.
                        padded.replacen(cell.as_str(), &self.status(cell), 1)
                    } else {
                        padded
                    }
                })
                .collect();
            say!("{}", line(cells));
        }
        if rows.is_empty() {
            say!("{}", self.dim("(none)"));
        }
    }
}

impl Out {
    /// The terminal's width, when standard output is one (a table piped to
    /// another program keeps its whole lines).
    fn terminal_columns(&self) -> Option<usize> {
        if !self.interactive || self.json() {
            return None;
        }
        console::Term::stdout().size_checked().map(|(_rows, columns)| usize::from(columns))
    }
}

/// The last columns that hold free text, which can be cut to the terminal's
/// width without losing what identifies the row (ids, names, states, times are never cut).
const FREE_TEXT_HEADERS: [&str; 7] =
    ["MESSAGE", "MODULES", "REASON", "DESCRIPTION", "DETAIL", "LAST FAILURE", "PAYLOAD"];

/// The narrowest the last column is cut to, however narrow the terminal: a
/// few words of a message rather than none.
const MIN_LAST_COLUMN: usize = 12;

/// Cuts the last column (a table's free text: MESSAGE, MODULES, REASON) to
/// what `columns` leaves of the terminal after the others, so that each row
/// stays one line.
fn fit_last_column(rows: &mut [Vec<String>], widths: &mut [usize], columns: usize) {
    let Some(last) = widths.len().checked_sub(1) else {
        return;
    };
    // Two spaces between columns.
    let before: usize = widths[..last].iter().sum::<usize>() + 2 * last;
    let room = columns.saturating_sub(before).max(MIN_LAST_COLUMN);
    if widths[last] <= room {
        return;
    }
    widths[last] = room;
    for row in rows.iter_mut() {
        if let Some(cell) = row.get_mut(last) {
            *cell = cut_to(cell, room);
        }
    }
}

/// The widest a table cell is shown: a version or a name as long as a page
/// would push every other column off the screen.
pub const MAX_CELL_CHARS: usize = 120;

/// `cell` with its control characters escaped: a name that holds an escape
/// sequence must not drive the terminal.
fn escaped(cell: &str) -> String {
    crate::web::request_span::escaped(cell)
}

/// `cell` cut to `width` characters with an ellipsis when longer.
fn cut_to(cell: &str, width: usize) -> String {
    if cell.chars().count() <= width {
        return cell.to_string();
    }
    let mut cut: String = cell.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `text` followed by spaces up to `width` characters. Not `format!("{:<w$}")`:
/// the formatter refuses widths past 65,535 and would panic.
fn padded(text: &str, width: usize) -> String {
    let fill = width.saturating_sub(text.chars().count());
    format!("{text}{}", " ".repeat(fill))
}

/// "1 node", "3 nodes": a count with its noun (plural by an added s).
pub fn counted(n: u64, one: &str) -> String {
    format!("{n} {one}{}", if n == 1 { "" } else { "s" })
}

/// A JSON value as a table cell: strings bare, null as "-".
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A timestamp shortened to the second, in UTC, marked as such: whoever reads
/// it in another zone must not take it for local time.
pub fn when(v: &Value) -> String {
    match v.as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()) {
        Some(t) => t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        None => cell(v),
    }
}

/// A duration the API answers, as .NET's `[d.]hh:mm:ss.fffffff` or ISO 8601's
/// `PT1H2M3S`, in the one form tables and messages use ([`human`]); anything
/// else as it came.
pub fn span(v: &Value) -> String {
    let text = cell(v);
    let parsed = match text.strip_prefix("PT") {
        Some(iso) => iso_time(iso),
        None if text.contains(':') => crate::messaging::duration::parse_duration(&text).ok(),
        None => None,
    };
    match parsed.and_then(|d| chrono::Duration::from_std(d).ok()) {
        Some(d) => human(d),
        None => text,
    }
}

/// The time part of an ISO 8601 duration (after `PT`): `1H2M3.5S`.
fn iso_time(mut text: &str) -> Option<std::time::Duration> {
    let mut total = 0.0;
    while !text.is_empty() {
        let unit_at = text.find(['H', 'M', 'S'])?;
        let amount: f64 = text[..unit_at].parse().ok()?;
        total += amount
            * match &text[unit_at..=unit_at] {
                "H" => 3600.0,
                "M" => 60.0,
                _ => 1.0,
            };
        text = &text[unit_at + 1..];
    }
    std::time::Duration::try_from_secs_f64(total).ok()
}

/// A duration as people read it: 0.4s, 12s, 3m 05s, 2h 10m.
pub fn human(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds().max(0);
    let s = ms / 1000;
    match s {
        0..=9 => format!("{:.1}s", ms as f64 / 1000.0),
        10..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s / 60 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_longer_than_the_formatter_allows_is_cut_not_a_panic() {
        let version = format!("1.0.0-{}", "a".repeat(100_000));
        let shown = cut_to(&version, MAX_CELL_CHARS);
        assert_eq!(shown.chars().count(), MAX_CELL_CHARS);
        assert!(shown.starts_with("1.0.0-aaa") && shown.ends_with('…'), "{shown}");
        assert_eq!(cut_to("1.4.0", MAX_CELL_CHARS), "1.4.0");
        // Padding itself takes any width.
        assert_eq!(padded("ab", 70_000).len(), 70_000);
        assert_eq!(padded("abc", 2), "abc");
        assert_eq!(escaped("evil\u{1b}]0;owned\u{7}co"), "evil\\u{1b}]0;owned\\u{7}co");
    }

    #[test]
    fn the_last_column_is_cut_to_what_the_terminal_leaves() {
        let mut rows = vec![vec!["abc".to_string(), "x".repeat(100)], vec!["de".to_string(), "short".to_string()]];
        let mut widths = vec![3, 100];
        fit_last_column(&mut rows, &mut widths, 40);
        assert_eq!(widths, vec![3, 35]);
        assert_eq!(rows[0][1].chars().count(), 35);
        assert!(rows[0][1].ends_with('…'));
        assert_eq!(rows[1][1], "short");
        // Never narrower than a few words.
        fit_last_column(&mut rows, &mut widths, 5);
        assert_eq!(widths[1], MIN_LAST_COLUMN);
    }

    #[test]
    fn times_say_their_zone_and_durations_read_alike_in_every_form() {
        assert_eq!(when(&Value::from("2026-12-08T09:42:00+09:00")), "2026-12-08 00:42:00 UTC");
        assert_eq!(span(&Value::from("00:00:06.1234567")), "6.1s");
        assert_eq!(span(&Value::from("1.02:03:00.0000000")), "26h 03m");
        assert_eq!(span(&Value::from("PT7S")), "7.0s");
        assert_eq!(span(&Value::from("PT1H15M")), "1h 15m");
        assert_eq!(span(&Value::Null), "-");
        assert_eq!(span(&Value::from("soon")), "soon");
        assert_eq!(human(chrono::Duration::seconds(185)), "3m 05s");
    }
}
