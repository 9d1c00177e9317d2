//! Several weekly windows per profile (`[[groups.schedules]]`), each one doing one thing
//! while open: a `block` window adds categories and services (class hours, bedtime), an
//! `allow` window is the only time its services are allowed (Roblox on Saturday
//! afternoon). Dates in `except` (holidays) switch a window off for those days.
//!
//! Precedence when windows overlap, as [`crate::policy::decide::Policy`] applies it:
//! an open `block` window naming a service wins over an open `allow` window naming it;
//! an open `allow` window lets its services through even when the profile's own
//! `services` lists them; outside all its `allow` windows such a service is blocked.
//! Mandatory categories win over every window.

use jiff::Timestamp;
use jiff::civil::Date;

use crate::policy::schedule::{Schedule, ScheduleError};

/// What a window does while it is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowAction {
    /// Block its categories and services while open.
    Block,
    /// Allow its services only while open; outside, they are blocked.
    Allow,
}

impl WindowAction {
    /// `"block"` or `"allow"`.
    ///
    /// # Errors
    /// Any other word.
    pub fn parse(s: &str) -> Result<WindowAction, WindowError> {
        match s {
            "block" => Ok(WindowAction::Block),
            "allow" => Ok(WindowAction::Allow),
            other => Err(WindowError::BadAction(other.to_owned())),
        }
    }
}

/// Why a window could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// Its days, times or time zone.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// `action` is neither `block` nor `allow`.
    #[error("unknown action {0:?}: expected \"block\" or \"allow\"")]
    BadAction(String),
    /// An `except` entry is not `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD`.
    #[error("bad except date {0:?}: expected YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD (first <= last)")]
    BadExcept(String),
    /// An `allow` window without services would allow nothing.
    #[error("an allow window needs services (or service_groups) to allow")]
    AllowWithoutServices,
    /// An `allow` window with categories: categories are only ever added, never allowed.
    #[error("an allow window takes services only; put categories in a block window")]
    AllowWithCategories,
}

/// One window of a profile.
#[derive(Clone, Debug)]
pub struct Window {
    /// When it is open (days, times, time zone).
    pub schedule: Schedule,
    /// Local dates (first, last, inclusive) on which it does not open.
    pub except: Vec<(Date, Date)>,
    /// What it does while open.
    pub action: WindowAction,
    /// Categories a `block` window adds.
    pub categories: Vec<String>,
    /// Services it blocks (`block`) or allows (`allow`), by catalog id.
    pub services: Vec<String>,
    /// Service groups, as `services`.
    pub service_groups: Vec<String>,
}

impl Window {
    /// Checks the parts of a window that need no catalog or list: action and `except`
    /// dates; the schedule is built by the caller (its errors name their own fields).
    ///
    /// # Errors
    /// [`WindowError`].
    pub fn new(
        schedule: Schedule,
        action: WindowAction,
        except: &[String],
        categories: Vec<String>,
        services: Vec<String>,
        service_groups: Vec<String>,
    ) -> Result<Window, WindowError> {
        if action == WindowAction::Allow {
            if services.is_empty() && service_groups.is_empty() {
                return Err(WindowError::AllowWithoutServices);
            }
            if !categories.is_empty() {
                return Err(WindowError::AllowWithCategories);
            }
        }
        let except = except
            .iter()
            .map(|s| parse_except(s))
            .collect::<Result<_, _>>()?;
        Ok(Window {
            schedule,
            except,
            action,
            categories,
            services,
            service_groups,
        })
    }

    /// True when the window is open at `at`: inside its schedule, on a day not excepted
    /// (the day it opened, in its own time zone).
    pub fn is_open(&self, at: Timestamp) -> bool {
        match self.schedule.opened_on(at) {
            Some(day) => !self.except.iter().any(|&(a, b)| a <= day && day <= b),
            None => false,
        }
    }
}

/// `2027-04-30` or `2027-02-14..2027-02-20` → inclusive date range.
///
/// # Errors
/// [`WindowError::BadExcept`].
pub fn parse_except(s: &str) -> Result<(Date, Date), WindowError> {
    let bad = || WindowError::BadExcept(s.to_owned());
    let (a, b) = s.trim().split_once("..").unwrap_or((s.trim(), s.trim()));
    let first: Date = a.trim().parse().map_err(|_| bad())?;
    let last: Date = b.trim().parse().map_err(|_| bad())?;
    if last < first {
        return Err(bad());
    }
    Ok((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn window(days: &[&str], start: &str, end: &str, except: &[&str]) -> Window {
        let days: Vec<String> = days.iter().map(|s| s.to_string()).collect();
        let schedule = Schedule::new(&days, start, end, "UTC").unwrap();
        let except: Vec<String> = except.iter().map(|s| s.to_string()).collect();
        Window::new(
            schedule,
            WindowAction::Allow,
            &except,
            vec![],
            vec!["roblox".into()],
            vec![],
        )
        .unwrap()
    }

    #[test]
    fn except_dates_switch_a_window_off() {
        // 2027-02-13 and 2027-02-20 are Saturdays.
        let w = window(
            &["sat"],
            "14:00",
            "17:00",
            &["2027-02-14..2027-02-20", "2027-04-30"],
        );
        assert!(w.is_open(ts("2027-02-13T15:00:00Z")));
        assert!(!w.is_open(ts("2027-02-20T15:00:00Z")), "excepted Saturday");
        assert!(w.is_open(ts("2027-02-27T15:00:00Z")));
    }

    #[test]
    fn overnight_window_is_excepted_by_the_day_it_opened() {
        // Friday 2027-02-19 22:00 to Saturday 06:00; except Friday only.
        let w = window(&["fri"], "22:00", "06:00", &["2027-02-19"]);
        assert!(!w.is_open(ts("2027-02-19T23:00:00Z")));
        assert!(
            !w.is_open(ts("2027-02-20T05:00:00Z")),
            "Friday's night, morning part"
        );
        assert!(w.is_open(ts("2027-02-26T23:00:00Z")));
        assert!(w.is_open(ts("2027-02-27T05:59:59Z")));
        assert!(!w.is_open(ts("2027-02-27T06:00:00Z")));
    }

    #[test]
    fn bad_windows_say_why() {
        assert_eq!(
            parse_except("2027-02-20..2027-02-14"),
            Err(WindowError::BadExcept("2027-02-20..2027-02-14".into()))
        );
        assert!(parse_except("2027-13-01").is_err());
        assert!(parse_except("tomorrow").is_err());
        assert_eq!(
            parse_except(" 2027-04-30 ").unwrap().0.to_string(),
            "2027-04-30"
        );
        assert!(matches!(
            WindowAction::parse("deny"),
            Err(WindowError::BadAction(_))
        ));
        let s = Schedule::new(&["sat".into()], "14:00", "17:00", "UTC").unwrap();
        assert_eq!(
            Window::new(s.clone(), WindowAction::Allow, &[], vec![], vec![], vec![]).unwrap_err(),
            WindowError::AllowWithoutServices
        );
        assert_eq!(
            Window::new(
                s,
                WindowAction::Allow,
                &[],
                vec!["games".into()],
                vec!["roblox".into()],
                vec![]
            )
            .unwrap_err(),
            WindowError::AllowWithCategories
        );
    }
}
