//! Dates and durations as `kvd pki` reads and prints them: RFC 3339 in UTC
//! (`2025-01-31T12:00:00Z`) and `--validity` values such as `365d`, `10y` or `90`.
//!
//! Written by hand on `time`'s core API so no optional `time` feature is needed.

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use super::PkiError;

/// How far in the past a new certificate's not-before date is set, so that members whose
/// clocks run a little behind accept a certificate issued a moment ago.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// Formats `t` as RFC 3339 in UTC with second precision, e.g. `2025-01-31T12:00:00Z` (the
/// form Go's x509 errors print, which the TLS layer uses too).
pub fn rfc3339(t: OffsetDateTime) -> String {
    crate::x509::cert::rfc3339(t)
}

/// Parses an RFC 3339 date-time (`2025-01-31T12:00:00Z`, `2025-01-31 12:00:00+02:00`,
/// fractions of a second allowed) or a plain date (`2025-01-31`, midnight UTC).
///
/// # Errors
/// A message naming the expected form.
pub fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    let bad =
        || format!("{s:?} is not an RFC 3339 date such as 2025-01-31T12:00:00Z or 2025-01-31");
    let s = s.trim();
    let (date_part, rest) = if s.len() > 10 {
        s.split_at(10)
    } else {
        (s, "")
    };
    let date = parse_date(date_part).ok_or_else(bad)?;
    if rest.is_empty() {
        return Ok(PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc());
    }
    let rest = rest
        .strip_prefix('T')
        .or_else(|| rest.strip_prefix('t'))
        .or_else(|| rest.strip_prefix(' '))
        .ok_or_else(bad)?;
    if rest.len() < 8 {
        return Err(bad());
    }
    let (clock, mut zone) = rest.split_at(8);
    let time = parse_clock(clock).ok_or_else(bad)?;
    if let Some(frac) = zone.strip_prefix('.') {
        let digits = frac.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        zone = &frac[digits..];
    }
    let offset = match zone {
        "Z" | "z" => UtcOffset::UTC,
        _ => parse_offset(zone).ok_or_else(bad)?,
    };
    Ok(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_date(s: &str) -> Option<Date> {
    let mut it = s.split('-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let year = i32::try_from(number(y)?).ok()?;
    let month = Month::try_from(u8::try_from(number(m)?).ok()?).ok()?;
    let day = u8::try_from(number(d)?).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

fn parse_clock(s: &str) -> Option<Time> {
    let mut it = s.split(':');
    let (h, m, sec) = (it.next()?, it.next()?, it.next()?);
    if [h, m, sec].iter().any(|p| p.len() != 2) {
        return None;
    }
    let part = |p: &str| number(p).and_then(|n| u8::try_from(n).ok());
    Time::from_hms(part(h)?, part(m)?, part(sec)?).ok()
}

fn parse_offset(s: &str) -> Option<UtcOffset> {
    let sign: i8 = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = s[1..].split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h = i8::try_from(number(h)?).ok()?;
    let m = i8::try_from(number(m)?).ok()?;
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

/// A `--validity` value: how long a certificate stays valid from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity(pub Duration);

impl Validity {
    /// Parses `N` (days), `Nd`, `Nw`, `Ny` (365 days) or `Nh`.
    ///
    /// # Errors
    /// A message naming the accepted forms.
    pub fn parse(s: &str) -> Result<Validity, String> {
        let bad = || {
            format!("{s:?} is not a validity: use days (90 or 90d), weeks (12w), years (10y) or hours (720h), greater than zero")
        };
        let s = s.trim();
        let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => s.split_at(i),
            None => (s, "d"),
        };
        let n = i64::from(number(digits).ok_or_else(bad)?);
        let d = match unit {
            "d" | "D" => Duration::days(n),
            "w" | "W" => Duration::weeks(n),
            "y" | "Y" => Duration::days(n.checked_mul(365).ok_or_else(bad)?),
            "h" | "H" => Duration::hours(n),
            _ => return Err(bad()),
        };
        // 1000 years keeps every date inside what X.509 can encode.
        if n == 0 || d > Duration::days(365 * 1000) {
            return Err(bad());
        }
        Ok(Validity(d))
    }
}

/// A certificate's validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// True when the end was given explicitly (`--not-after`), so it must not be shortened.
    pub explicit_end: bool,
}

impl Window {
    /// The window from the command line: `--not-before` (default: now minus a little clock
    /// skew), and `--not-after` (default: now plus `validity`).
    ///
    /// # Errors
    /// [`PkiError::BadFlag`] when the end is not after the start.
    pub fn resolve(
        now: OffsetDateTime,
        validity: Validity,
        not_before: Option<OffsetDateTime>,
        not_after: Option<OffsetDateTime>,
    ) -> Result<Window, PkiError> {
        let nb = not_before.unwrap_or(now - CLOCK_SKEW);
        let na = not_after.unwrap_or(now + validity.0);
        if na <= nb {
            return Err(PkiError::bad_flag(
                "--not-after",
                format!(
                    "the certificate would end ({}) before it starts ({})",
                    rfc3339(na),
                    rfc3339(nb)
                ),
            ));
        }
        Ok(Window {
            not_before: nb,
            not_after: na,
            explicit_end: not_after.is_some(),
        })
    }
}

/// Describes how far `then` is from `now` in words: `in 364 days`, `3 days ago`, `in 5 hours`.
pub fn relative(now: OffsetDateTime, then: OffsetDateTime) -> String {
    let d = then - now;
    let (abs, future) = if d.is_negative() {
        (-d, false)
    } else {
        (d, true)
    };
    let amount = if abs.whole_days() >= 2 {
        format!("{} days", abs.whole_days())
    } else if abs.whole_hours() >= 2 {
        format!("{} hours", abs.whole_hours())
    } else {
        format!("{} minutes", abs.whole_minutes())
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let t = parse_rfc3339("2025-01-31T12:34:56Z").expect("valid");
        assert_eq!(rfc3339(t), "2025-01-31T12:34:56Z");
        let t = parse_rfc3339("2025-01-31T12:34:56.789+02:00").expect("valid");
        assert_eq!(rfc3339(t), "2025-01-31T10:34:56Z");
        let t = parse_rfc3339("2020-02-29").expect("valid");
        assert_eq!(rfc3339(t), "2020-02-29T00:00:00Z");
        let t = parse_rfc3339("2019-12-31 23:00:00-01:30").expect("valid");
        assert_eq!(rfc3339(t), "2020-01-01T00:30:00Z");
    }

    #[test]
    fn rfc3339_rejects_garbage() {
        for s in [
            "",
            "2025-13-01",
            "2025-02-30",
            "2025-01-31T25:00:00Z",
            "2025-01-31T12:00:00",
            "2025-01-31X12:00:00Z",
            "yesterday",
            "2025-1-31",
        ] {
            assert!(parse_rfc3339(s).is_err(), "{s} should be rejected");
        }
    }

    #[test]
    fn validity_forms() {
        assert_eq!(Validity::parse("90"), Ok(Validity(Duration::days(90))));
        assert_eq!(Validity::parse("90d"), Ok(Validity(Duration::days(90))));
        assert_eq!(Validity::parse("2w"), Ok(Validity(Duration::days(14))));
        assert_eq!(Validity::parse("10y"), Ok(Validity(Duration::days(3650))));
        assert_eq!(Validity::parse("720h"), Ok(Validity(Duration::hours(720))));
        for s in ["0", "-1d", "1x", "d", "", "1.5y", "99999y"] {
            assert!(Validity::parse(s).is_err(), "{s} should be rejected");
        }
    }

    #[test]
    fn relative_words() {
        let now = parse_rfc3339("2025-01-01T00:00:00Z").expect("valid");
        let later = parse_rfc3339("2025-01-11T00:00:00Z").expect("valid");
        assert_eq!(relative(now, later), "in 10 days");
        assert_eq!(relative(later, now), "10 days ago");
    }
}
