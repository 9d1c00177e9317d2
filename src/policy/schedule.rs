//! Time windows for policies such as school hours, in the site's own time zone.
//!
//! A window is wall-clock time (`07:00`–`17:00`) on chosen weekdays in an IANA time zone,
//! so it follows daylight-saving changes the way a timetable does. Time zone data comes
//! from the tzdb bundled into the binary (jiff's `tzdb-bundle-always`), so answers do not
//! depend on the host's `/usr/share/zoneinfo`.
//!
//! Windows are half-open: active from `start` up to, not including, `end`. `end = "24:00"`
//! runs to midnight. An `end` earlier than `start` is an overnight window (`22:00`–`06:00`):
//! it opens on each listed day and closes the next morning, so `days = ["fri"]` covers
//! Friday 22:00 to Saturday 06:00. On DST days a start inside a skipped hour opens the
//! window at the first wall-clock time after it, and a repeated hour is covered both times.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;

const DAY_SECONDS: u32 = 24 * 3600;

/// Why a [`Schedule`] could not be built from its config strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// A `days` entry is not a weekday name.
    #[error("unknown day {0:?}: expected mon, tue, wed, thu, fri, sat or sun")]
    UnknownDay(String),
    /// `days` is empty, so the schedule could never be active.
    #[error("no days given: the schedule would never be active")]
    NoDays,
    /// `start` or `end` is not a valid `HH:MM` time.
    #[error("bad {field} time {value:?}: expected HH:MM from 00:00 to 23:59 (end may be 24:00)")]
    BadTime {
        /// `"start"` or `"end"`.
        field: &'static str,
        /// The string as configured.
        value: String,
    },
    /// `timezone` is not an IANA time zone name known to the bundled tzdb.
    #[error(
        "unknown time zone {name:?} (expected an IANA name such as \"Asia/Ho_Chi_Minh\"): {reason}"
    )]
    UnknownTimeZone {
        /// The name as configured.
        name: String,
        /// What the tzdb lookup said.
        reason: String,
    },
    /// `start` equals `end`: an empty window (use `00:00` to `24:00` for a whole day).
    #[error("start and end are both {0}: the window is empty (use 00:00 to 24:00 for all day)")]
    EmptyWindow(String),
}

/// A weekly time window in a time zone, e.g. school hours.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Bit `d` set = window opens on weekday `d` (Monday = 0).
    days: u8,
    /// Seconds after local midnight, `0..86400`.
    start: u32,
    /// Seconds after local midnight, `0..=86400`; below `start` means overnight.
    end: u32,
    tz: TimeZone,
}

impl Schedule {
    /// The time zone its days and times are in.
    pub fn zone(&self) -> &TimeZone {
        &self.tz
    }

    /// Parses the config form: `days` like `["mon", "tue"]` (or full names, any case),
    /// `start`/`end` as `HH:MM` (`end` may be `24:00`), `timezone` as an IANA name.
    pub fn new(
        days: &[String],
        start: &str,
        end: &str,
        timezone: &str,
    ) -> Result<Schedule, ScheduleError> {
        let mut day_set = 0u8;
        for day in days {
            day_set |=
                day_bit(parse_day(day).ok_or_else(|| ScheduleError::UnknownDay(day.clone()))?);
        }
        if day_set == 0 {
            return Err(ScheduleError::NoDays);
        }
        let start_secs = parse_time(start)
            .filter(|&s| s < DAY_SECONDS)
            .ok_or_else(|| ScheduleError::BadTime {
                field: "start",
                value: start.to_owned(),
            })?;
        let end_secs = parse_time(end).ok_or_else(|| ScheduleError::BadTime {
            field: "end",
            value: end.to_owned(),
        })?;
        if start_secs == end_secs {
            return Err(ScheduleError::EmptyWindow(start.to_owned()));
        }
        let tz = TimeZone::get(timezone).map_err(|e| ScheduleError::UnknownTimeZone {
            name: timezone.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Schedule {
            days: day_set,
            start: start_secs,
            end: end_secs,
            tz,
        })
    }

    /// True when `at`, seen as wall-clock time in the schedule's zone, falls in the window.
    pub fn is_active(&self, at: Timestamp) -> bool {
        self.opened_on(at).is_some()
    }

    /// The local date the window that `at` falls in opened on (the evening's date for the
    /// morning part of an overnight window), or `None` when `at` is outside every window.
    /// Exception dates (`except`) are judged by it, so skipping a Friday skips the whole
    /// Friday night.
    pub fn opened_on(&self, at: Timestamp) -> Option<Date> {
        let local = self.tz.to_datetime(at);
        let t = seconds_of_day(local);
        let opens_today = self.days & day_bit(local.weekday()) != 0;
        if self.start < self.end {
            return (opens_today && self.start <= t && t < self.end).then(|| local.date());
        }
        // Overnight: the evening part belongs to today's window, the morning part to
        // the one that opened yesterday.
        let opened_yesterday = self.days & day_bit(local.weekday().previous()) != 0;
        if opens_today && t >= self.start {
            Some(local.date())
        } else if opened_yesterday && t < self.end {
            local.date().yesterday().ok()
        } else {
            None
        }
    }
}

fn day_bit(day: Weekday) -> u8 {
    1 << day.to_monday_zero_offset()
}

fn parse_day(s: &str) -> Option<Weekday> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        "sun" | "sunday" => Weekday::Sunday,
        _ => return None,
    })
}

/// `HH:MM` → seconds after midnight; `24:00` is allowed (as 86400) for ends.
fn parse_time(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    let two_digits = |p: &str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(h) || !two_digits(m) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(DAY_SECONDS),
        (0..=23, 0..=59) => Some(h * 3600 + m * 60),
        _ => None,
    }
}

fn seconds_of_day(dt: DateTime) -> u32 {
    // jiff guarantees hour 0..=23, minute and second 0..=59.
    let part = |v: i8| u32::try_from(v).unwrap_or(0);
    part(dt.hour()) * 3600 + part(dt.minute()) * 60 + part(dt.second())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn weekdays() -> Vec<String> {
        days(&["mon", "tue", "wed", "thu", "fri"])
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn school(tz: &str) -> Schedule {
        Schedule::new(&weekdays(), "07:00", "17:00", tz).unwrap()
    }

    #[test]
    fn ho_chi_minh_inside_and_outside_hours() {
        // UTC+7 all year. 2025-01-06 is a Monday.
        let s = school("Asia/Ho_Chi_Minh");
        assert!(!s.is_active(ts("2025-01-05T23:59:59Z")), "06:59:59 local");
        assert!(s.is_active(ts("2025-01-06T00:00:00Z")), "07:00 local opens");
        assert!(s.is_active(ts("2025-01-06T05:00:00Z")), "noon");
        assert!(s.is_active(ts("2025-01-06T09:59:59Z")), "16:59:59 local");
        assert!(
            !s.is_active(ts("2025-01-06T10:00:00Z")),
            "17:00 local closes"
        );
        assert!(!s.is_active(ts("2025-01-06T15:00:00Z")), "22:00 local");
    }

    #[test]
    fn ho_chi_minh_has_no_dst() {
        let s = school("Asia/Ho_Chi_Minh");
        // 08:00 local is 01:00 UTC in winter and in summer alike.
        assert!(s.is_active(ts("2025-01-08T01:00:00Z")));
        assert!(s.is_active(ts("2025-07-09T01:00:00Z")));
        assert!(
            !s.is_active(ts("2025-07-08T23:30:00Z")),
            "06:30 local in July"
        );
    }

    #[test]
    fn weekend_is_off() {
        let s = school("Asia/Ho_Chi_Minh");
        assert!(
            !s.is_active(ts("2025-01-04T03:00:00Z")),
            "Saturday 10:00 local"
        );
        assert!(
            !s.is_active(ts("2025-01-05T03:00:00Z")),
            "Sunday 10:00 local"
        );
        assert!(
            s.is_active(ts("2025-01-03T03:00:00Z")),
            "Friday 10:00 local"
        );
    }

    #[test]
    fn weekday_is_the_local_one() {
        // Sunday 17:30 UTC is already Monday 00:30 in Ho Chi Minh City.
        let s = Schedule::new(&days(&["mon"]), "00:00", "24:00", "Asia/Ho_Chi_Minh").unwrap();
        assert!(s.is_active(ts("2025-01-05T17:30:00Z")));
        assert!(
            !s.is_active(ts("2025-01-05T16:59:59Z")),
            "Sunday 23:59:59 local"
        );
        assert!(
            s.is_active(ts("2025-01-06T16:59:59Z")),
            "Monday 23:59:59 local"
        );
        assert!(
            !s.is_active(ts("2025-01-06T17:00:00Z")),
            "Tuesday 00:00 local"
        );
    }

    #[test]
    fn paris_follows_spring_forward() {
        // DST starts Sunday 2025-03-30 02:00 CET -> 03:00 CEST.
        let s = school("Europe/Paris");
        // Friday before: CET (UTC+1), so 06:00Z is 07:00 local.
        assert!(!s.is_active(ts("2025-03-28T05:30:00Z")), "06:30 CET");
        assert!(s.is_active(ts("2025-03-28T06:00:00Z")), "07:00 CET");
        assert!(s.is_active(ts("2025-03-28T15:59:59Z")), "16:59:59 CET");
        assert!(!s.is_active(ts("2025-03-28T16:00:00Z")), "17:00 CET");
        // Monday after: CEST (UTC+2), so the same window is an hour earlier in UTC.
        assert!(s.is_active(ts("2025-03-31T05:30:00Z")), "07:30 CEST");
        assert!(!s.is_active(ts("2025-03-31T04:59:59Z")), "06:59:59 CEST");
        assert!(!s.is_active(ts("2025-03-31T15:00:00Z")), "17:00 CEST");
    }

    #[test]
    fn paris_across_the_transition_itself() {
        // A window that covers the night of the change, every day.
        let all = days(&["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);
        let s = Schedule::new(&all, "02:30", "03:30", "Europe/Paris").unwrap();
        // 01:30Z on 2025-03-30 is 03:30 CEST: the skipped 02:00-03:00 hour never happened,
        // 03:00-03:30 CEST (01:00-01:30Z) is the only part of the window that day.
        assert!(s.is_active(ts("2025-03-30T01:00:00Z")), "03:00 CEST");
        assert!(s.is_active(ts("2025-03-30T01:29:59Z")), "03:29:59 CEST");
        assert!(!s.is_active(ts("2025-03-30T01:30:00Z")), "03:30 CEST");
        assert!(!s.is_active(ts("2025-03-30T00:59:59Z")), "01:59:59 CET");
        // DST ends 2025-10-26 03:00 CEST -> 02:00 CET: 02:30 happens twice, both active.
        assert!(s.is_active(ts("2025-10-26T00:30:00Z")), "02:30 CEST");
        assert!(s.is_active(ts("2025-10-26T01:30:00Z")), "02:30 CET");
        assert!(!s.is_active(ts("2025-10-26T02:30:00Z")), "03:30 CET");
    }

    #[test]
    fn overnight_window_belongs_to_the_day_it_opens() {
        // Friday 22:00 to Saturday 06:00 only (UTC zone keeps the arithmetic plain).
        let s = Schedule::new(&days(&["fri"]), "22:00", "06:00", "UTC").unwrap();
        assert!(!s.is_active(ts("2025-01-03T21:59:59Z")), "Fri 21:59:59");
        assert!(s.is_active(ts("2025-01-03T22:00:00Z")), "Fri 22:00");
        assert!(s.is_active(ts("2025-01-04T05:59:59Z")), "Sat 05:59:59");
        assert!(!s.is_active(ts("2025-01-04T06:00:00Z")), "Sat 06:00");
        assert!(
            !s.is_active(ts("2025-01-04T23:00:00Z")),
            "Sat 23:00: not a listed day"
        );
        assert!(
            !s.is_active(ts("2025-01-03T05:00:00Z")),
            "Fri 05:00: Thursday's window"
        );
    }

    #[test]
    fn day_names_are_flexible() {
        let s = Schedule::new(&days(&[" Monday", "TUE", "sun"]), "00:00", "24:00", "UTC").unwrap();
        assert!(s.is_active(ts("2025-01-06T12:00:00Z")), "Mon");
        assert!(s.is_active(ts("2025-01-07T12:00:00Z")), "Tue");
        assert!(s.is_active(ts("2025-01-05T12:00:00Z")), "Sun");
        assert!(!s.is_active(ts("2025-01-08T12:00:00Z")), "Wed");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = Schedule::new(&days(&["mon", "funday"]), "07:00", "17:00", "UTC").unwrap_err();
        assert_eq!(e, ScheduleError::UnknownDay("funday".into()));
        assert!(e.to_string().contains("funday"));

        assert_eq!(
            Schedule::new(&[], "07:00", "17:00", "UTC").unwrap_err(),
            ScheduleError::NoDays
        );

        for bad in [
            "7:00", "07:60", "25:00", "07-00", "0700", "", "07:00:00", "aa:bb", "+7:00",
        ] {
            let e = Schedule::new(&weekdays(), bad, "17:00", "UTC").unwrap_err();
            assert!(
                matches!(e, ScheduleError::BadTime { field: "start", .. }),
                "{bad}: {e}"
            );
        }
        let e = Schedule::new(&weekdays(), "24:00", "17:00", "UTC").unwrap_err();
        assert!(matches!(e, ScheduleError::BadTime { field: "start", .. }));
        let e = Schedule::new(&weekdays(), "07:00", "24:01", "UTC").unwrap_err();
        assert!(matches!(e, ScheduleError::BadTime { field: "end", .. }));
        assert!(e.to_string().contains("24:01"));

        let e = Schedule::new(&weekdays(), "07:00", "07:00", "UTC").unwrap_err();
        assert_eq!(e, ScheduleError::EmptyWindow("07:00".into()));

        let e = Schedule::new(&weekdays(), "07:00", "17:00", "Asia/Saigon_City").unwrap_err();
        assert!(
            matches!(e, ScheduleError::UnknownTimeZone { ref name, .. } if name == "Asia/Saigon_City")
        );
        assert!(e.to_string().contains("Asia/Saigon_City"));
    }

    #[test]
    fn bundled_tzdb_knows_common_zones() {
        for tz in [
            "Asia/Ho_Chi_Minh",
            "Asia/Saigon",
            "Europe/Paris",
            "America/New_York",
            "UTC",
        ] {
            assert!(
                Schedule::new(&weekdays(), "07:00", "17:00", tz).is_ok(),
                "{tz}"
            );
        }
    }
}
