//! Durations as people write them (`10m`, `36h`, `90d`, `1y`, `1h30m`) and as we print them.
//! Pure, and below every other module: flags, checks and reports all use it.

use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

/// Parses `90d`, `36h`, `1h30m`, `10m`, `1y`, `45s`: a sequence of whole numbers with units
/// s, m, h, d (24h), w (7d), y (365d).
pub fn parse_duration(flag: &str, text: &str) -> Result<Duration> {
    let invalid = || {
        Error::usage(format!(
            "{flag} '{text}' is not a duration: use a number and a unit (s, m, h, d, w, y), e.g. 10m, 36h, 90d, 1y"
        ))
    };
    if text.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(invalid());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        let unit = rest[digits..].chars().next().ok_or_else(invalid)?;
        let seconds = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            'y' => 365 * 86_400,
            _ => return Err(invalid()),
        };
        total = number
            .checked_mul(seconds)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(invalid)?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    if total > MAX_SECONDS {
        return Err(Error::usage(format!(
            "{flag} '{text}' is longer than 100y, the longest duration kubectl onboard takes"
        )));
    }
    Ok(Duration::from_secs(total))
}

/// 100 years: longer than any certificate or wait, and far from where adding it to a date
/// could overflow.
const MAX_SECONDS: u64 = 100 * 365 * 86_400;

/// `3600s` → `1h`, `7776000s` → `90d`: the largest exact unit, for messages.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    for (unit, size) in [("y", 365 * 86_400), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if s >= size && s.is_multiple_of(size) {
            return format!("{}{unit}", s / size);
        }
    }
    if s < 3600 {
        return format!("{s}s");
    }
    // Exact, so that a limit and a value just over it never read the same (3601s: 1h1s).
    let (mut out, mut rest) = (String::new(), s);
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if rest >= size {
            out += &format!("{}{unit}", rest / size);
            rest %= size;
        }
    }
    out
}

/// `--warn`, read.
pub fn warn_window(warn: Option<&str>) -> Result<Option<Duration>> {
    warn.map(|w| parse_duration("--warn", w)).transpose()
}

pub fn days_left(not_after: SystemTime, now: SystemTime) -> i64 {
    match not_after.duration_since(now) {
        Ok(d) => (d.as_secs() / 86_400) as i64,
        Err(e) => -(e.duration().as_secs().div_ceil(86_400) as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_exactly_and_within_range() {
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_secs(3601)), "1h1s");
        assert_eq!(format_duration(Duration::from_secs(90_061)), "1d1h1m1s");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
        for text in ["1h1s", "1d1h1m1s", "100y"] {
            let d = parse_duration("--x", text).unwrap();
            assert_eq!(parse_duration("--x", &format_duration(d)).unwrap(), d);
        }
        let err = parse_duration("--warn", "101y").unwrap_err().to_string();
        assert!(err.contains("longer than 100y"), "{err}");
        let err = parse_duration("--warn", "99999999999999y")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a duration"), "{err}");
    }
}
