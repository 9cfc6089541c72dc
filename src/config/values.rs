//! Go's value syntax, as etcd's flags accept it: unsigned and signed integers
//! (`strconv.ParseUint(s, 0, 64)`: `100`, `0x64`, `0o144`, `0144`, `1_000`) and durations
//! (`time.ParseDuration`: `5s`, `1h30m`, `1.5h`, `100ms`, `0`).
//!
//! Owns only the parsing of text into numbers and [`Duration`]s; it knows nothing about
//! which setting a value belongs to.

use std::time::Duration;

/// Why a value did not parse. Displays as Go's words ("parse error", "value out of range").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ValueError {
    /// Not a number or duration at all.
    #[error("parse error")]
    Syntax,
    /// A number too large for the setting.
    #[error("value out of range")]
    Range,
    /// A negative duration, which no kvd setting accepts.
    #[error("must not be negative")]
    Negative,
}

/// Splits Go's base prefix off an unsigned number: `0x`, `0o`, `0b`, or a leading `0`
/// (octal). Returns the radix and the digits.
fn radix(s: &str) -> (u32, &str) {
    let lower = s.get(..2).map(str::to_ascii_lowercase);
    match lower.as_deref() {
        Some("0x") => (16, &s[2..]),
        Some("0o") => (8, &s[2..]),
        Some("0b") => (2, &s[2..]),
        _ if s.len() > 1 && s.starts_with('0') => (8, &s[1..]),
        _ => (10, s),
    }
}

/// Removes Go's digit-separating underscores (`1_000`); they must sit between digits.
fn strip_underscores(digits: &str) -> Result<String, ValueError> {
    if digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return Err(ValueError::Syntax);
    }
    Ok(digits.replace('_', ""))
}

/// Parses an unsigned integer the way Go's flag package does.
pub(crate) fn parse_uint(s: &str) -> Result<u64, ValueError> {
    if s.is_empty() || s.starts_with(['+', '-']) {
        return Err(ValueError::Syntax);
    }
    let (radix, digits) = radix(s);
    let digits = strip_underscores(digits)?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(ValueError::Syntax);
    }
    u64::from_str_radix(&digits, radix).map_err(|_| ValueError::Range)
}

/// Parses a signed integer the way Go's flag package does.
pub(crate) fn parse_int(s: &str) -> Result<i64, ValueError> {
    let (negative, rest) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let magnitude = parse_uint(rest)?;
    if negative {
        if magnitude == i64::MIN.unsigned_abs() {
            return Ok(i64::MIN);
        }
        i64::try_from(magnitude)
            .map(|m| -m)
            .map_err(|_| ValueError::Range)
    } else {
        i64::try_from(magnitude).map_err(|_| ValueError::Range)
    }
}

/// Nanoseconds per unit of Go's duration syntax.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Parses a Go duration (`300ms`, `1h30m`, `1.5h`; `0` needs no unit). Negative durations
/// are refused; the largest accepted is Go's (about 292 years).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(ValueError::Syntax);
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(frac) => {
                let len = frac
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(frac.len());
                frac.split_at(len)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(ValueError::Syntax);
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let per_unit = unit_nanos(unit).ok_or(ValueError::Syntax)?;
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| ValueError::Range)?
        };
        let mut nanos = whole.checked_mul(per_unit).ok_or(ValueError::Range)?;
        if !frac_part.is_empty() {
            // Keep at most 18 fractional digits: beyond that no unit gives a nanosecond.
            let digits = &frac_part[..frac_part.len().min(18)];
            let frac: u128 = digits.parse().map_err(|_| ValueError::Syntax)?;
            let scale = 10u128.pow(u32::try_from(digits.len()).map_err(|_| ValueError::Range)?);
            nanos += frac * per_unit / scale;
        }
        total = total.checked_add(nanos).ok_or(ValueError::Range)?;
        if total > u128::from(i64::MAX.unsigned_abs()) {
            return Err(ValueError::Range);
        }
        rest = after;
    }
    if negative && total > 0 {
        return Err(ValueError::Negative);
    }
    let nanos = u64::try_from(total).map_err(|_| ValueError::Range)?;
    Ok(Duration::from_nanos(nanos))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_integers_like_go() {
        assert_eq!(parse_uint("100"), Ok(100));
        assert_eq!(parse_uint("0"), Ok(0));
        assert_eq!(parse_uint("0x10"), Ok(16));
        assert_eq!(parse_uint("0X10"), Ok(16));
        assert_eq!(parse_uint("0o17"), Ok(15));
        assert_eq!(parse_uint("017"), Ok(15));
        assert_eq!(parse_uint("0b101"), Ok(5));
        assert_eq!(parse_uint("1_000"), Ok(1000));
        assert_eq!(parse_uint("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_uint("18446744073709551616"), Err(ValueError::Range));
        for bad in [
            "", "abc", "-1", "+1", "1e3", "1.5", "08", "1__0", "_1", "0x", " 1",
        ] {
            assert_eq!(parse_uint(bad), Err(ValueError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn signed_integers_like_go() {
        assert_eq!(parse_int("-1"), Ok(-1));
        assert_eq!(parse_int("+5"), Ok(5));
        assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_int("9223372036854775808"), Err(ValueError::Range));
        assert_eq!(parse_int("x"), Err(ValueError::Syntax));
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("10\u{b5}s"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("-0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("-1s"), Err(ValueError::Negative));
        assert_eq!(parse_duration("3000000h"), Err(ValueError::Range));
        for bad in ["", "5", "1x", "s", ".s", "1.s5", "1h 2m", "abc"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_duration("5"), Err(ValueError::Syntax));
    }
}
