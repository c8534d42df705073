//! Dates as the admin UI shows and reads them (UTC).

use time::macros::format_description;
use time::{Date, OffsetDateTime, Time};

fn at(t: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t).ok()
}

/// "2026-01-31 14:05 UTC" for a Unix time.
pub fn fmt_time(t: i64) -> String {
    at(t)
        .and_then(|d| {
            d.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| "—".to_string())
}

pub fn fmt_opt_time(t: Option<i64>) -> String {
    t.map(fmt_time).unwrap_or_else(|| "—".to_string())
}

/// "2026-01-31" for a Unix time.
pub fn fmt_date(t: i64) -> String {
    at(t)
        .and_then(|d| d.format(format_description!("[year]-[month]-[day]")).ok())
        .unwrap_or_default()
}

/// Parses "YYYY-MM-DD" into the Unix time of the end of that day (UTC). Dates that do not
/// exist (2026-02-31) are refused.
pub fn parse_date_end(s: &str) -> Option<i64> {
    let date = Date::parse(s.trim(), format_description!("[year]-[month]-[day]")).ok()?;
    if !(1970..=9999).contains(&date.year()) {
        return None;
    }
    let end = Time::from_hms(23, 59, 59).ok()?;
    Some(date.with_time(end).assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(fmt_time(1_700_000_000), "2023-11-14 22:13 UTC");
        let end = parse_date_end("2024-02-29").unwrap();
        assert_eq!(fmt_date(end), "2024-02-29");
        assert_eq!(fmt_time(end), "2024-02-29 23:59 UTC");
        assert!(parse_date_end("2023-02-29").is_none());
        assert!(parse_date_end("2023-13-01").is_none());
        assert!(parse_date_end("yesterday").is_none());
    }
}
