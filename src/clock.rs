//! Wall-clock time without reading a clock: the caller states once which
//! `SystemTime` an `Instant` corresponds to, and stamps (XEP-0203 delays)
//! are computed from the `now` passed to each call.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Maps `Instant`s to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClock {
    origin: Option<(Instant, SystemTime)>,
}

impl WallClock {
    pub(crate) fn new() -> Self {
        Self { origin: None }
    }

    pub(crate) fn set(&mut self, now: Instant, wall: SystemTime) {
        self.origin = Some((now, wall));
    }

    /// Seconds since the Unix epoch at `now`. Without an origin the first
    /// instant seen counts as the epoch itself.
    pub(crate) fn unix_seconds(&mut self, now: Instant) -> u64 {
        let (origin, wall) = *self.origin.get_or_insert((now, UNIX_EPOCH));
        let at = if now >= origin {
            wall.checked_add(now.duration_since(origin))
        } else {
            wall.checked_sub(origin.duration_since(now))
        };
        at.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or(Duration::ZERO)
            .as_secs()
    }

    /// An XEP-0082 date-time (`2026-11-26T06:07:08Z`) for `now`.
    pub(crate) fn stamp(&mut self, now: Instant) -> String {
        format_unix(self.unix_seconds(now))
    }
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub(crate) fn format_unix(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Proleptic Gregorian date from days since 1970-01-01 (Howard Hinnant's
/// well-known algorithm, restated).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        assert_eq!(format_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_unix(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_unix(1_795_676_828), "2026-11-26T07:07:08Z");
    }

    #[test]
    fn maps_instants() {
        let mut c = WallClock::new();
        let t0 = Instant::now();
        c.set(t0, UNIX_EPOCH + Duration::from_secs(100));
        assert_eq!(c.unix_seconds(t0 + Duration::from_secs(5)), 105);
    }
}
