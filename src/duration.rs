//! Durations as people write them (`10m`, `36h`, `90d`, `1y`, `1h30m`) and as we print them.
//! Pure, and below every other module: flags, checks and reports all use it.

use std::time::Duration;

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
    Ok(Duration::from_secs(total))
}

/// `3600s` → `1h`, `7776000s` → `90d`: the largest exact unit, for messages.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    for (unit, size) in [("y", 365 * 86_400), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if s >= size && s.is_multiple_of(size) {
            return format!("{}{unit}", s / size);
        }
    }
    if s >= 86_400 {
        return format!("{}d{}h", s / 86_400, s % 86_400 / 3600);
    }
    if s >= 3600 {
        return format!("{}h{}m", s / 3600, s % 3600 / 60);
    }
    format!("{s}s")
}
