//! What each profile did today and this week, as counts: queries, blocked answers by list
//! category, by service and by kind of bypass attempt. This is what a parent's dashboard
//! shows (issue 17). It is never a record of which names a child asked for: a name is
//! not kept, only the counter it adds to, and no counter names a device.
//!
//! Counting is on the query path, so it is a few relaxed atomic adds on counters the
//! profile's [`Group`](crate::policy::decide::Group) finds through a cell it fills once.
//! "Today" and "this week" are the profile's local day and its week from Monday, in its
//! time zone. Turning the clock into a local date costs a time-zone lookup, so it is done
//! only when the day rolls over: each profile keeps the Unix second of its next local
//! midnight, and a query compares against that ([`ProfileActivity::roll`]). A query counted
//! while another thread resets the day may land on either side of midnight; that is a few
//! queries in a day's thousands, not worth a lock on every query.
//!
//! Counts live in memory: they start again from zero when the resolver restarts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::bypass::Kind;

/// The time zone of a profile that names none (no schedule, no window).
pub const DEFAULT_TIME_ZONE: &str = "Asia/Ho_Chi_Minh";

/// Category bits a list can carry (its manifest numbers them `0..32`).
const CATEGORY_BITS: usize = 32;

/// Every profile's activity, by profile id. Shared by the resolver (which counts) and the
/// console and admin API (which read). A profile's counts outlive a policy rebuild (a
/// profile edit, a reload): the rebuilt group finds the same [`ProfileActivity`] here.
#[derive(Default)]
pub struct Activity {
    profiles: Mutex<HashMap<String, Arc<ProfileActivity>>>,
}

impl std::fmt::Debug for Activity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Activity").finish_non_exhaustive()
    }
}

impl Activity {
    /// The counters of profile `id`, made on its first query, in time zone `zone` (a
    /// profile whose zone changed keeps its counts and rolls its days in the new zone).
    pub fn for_profile(&self, id: &str, zone: &TimeZone) -> Arc<ProfileActivity> {
        // A poisoned lock only means a panic elsewhere mid-insert: the map is still whole.
        let mut map = self.profiles.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map
            .entry(id.to_owned())
            .or_insert_with(|| Arc::new(ProfileActivity::new(zone.clone())));
        entry.set_zone(zone);
        entry.clone()
    }

    /// What profile `id` did today and this week, as of `now` (Unix seconds); zeros for a
    /// profile that has had no query since the resolver started.
    pub fn snapshot(&self, id: &str, now: i64) -> Snapshot {
        let found = self
            .profiles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned();
        found.map(|p| p.snapshot(now)).unwrap_or_default()
    }
}

/// One period's counters (a day, or a week).
struct Period {
    queries: AtomicU64,
    blocked: AtomicU64,
    categories: [AtomicU64; CATEGORY_BITS],
    own_list: AtomicU64,
    unsafe_search: AtomicU64,
    bypass: [AtomicU64; Kind::ALL.len()],
    /// Blocks by service id: a bounded set (the catalog), touched only by service blocks.
    services: Mutex<Vec<(Box<str>, u64)>>,
}

impl Period {
    fn new() -> Self {
        Period {
            queries: AtomicU64::new(0),
            blocked: AtomicU64::new(0),
            categories: std::array::from_fn(|_| AtomicU64::new(0)),
            own_list: AtomicU64::new(0),
            unsafe_search: AtomicU64::new(0),
            bypass: std::array::from_fn(|_| AtomicU64::new(0)),
            services: Mutex::new(Vec::new()),
        }
    }

    fn reset(&self) {
        let zero = |c: &AtomicU64| c.store(0, Ordering::Relaxed);
        zero(&self.queries);
        zero(&self.blocked);
        self.categories.iter().for_each(zero);
        zero(&self.own_list);
        zero(&self.unsafe_search);
        self.bypass.iter().for_each(zero);
        self.services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn add_service(&self, service: &str) {
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        match services.iter_mut().find(|(id, _)| &**id == service) {
            Some((_, n)) => *n += 1,
            None => services.push((service.into(), 1)),
        }
    }

    fn counts(&self) -> Counts {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut services: Vec<(String, u64)> = self
            .services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, n)| (id.to_string(), *n))
            .collect();
        services.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Counts {
            queries: load(&self.queries),
            blocked: load(&self.blocked),
            categories: (0..CATEGORY_BITS)
                .filter_map(|bit| {
                    let n = load(&self.categories[bit]);
                    (n > 0).then_some((bit as u32, n))
                })
                .collect(),
            own_list: load(&self.own_list),
            unsafe_search: load(&self.unsafe_search),
            bypass: Kind::ALL
                .iter()
                .zip(&self.bypass)
                .filter_map(|(k, c)| {
                    let n = load(c);
                    (n > 0).then_some((k.as_str(), n))
                })
                .collect(),
            services,
        }
    }
}

/// Which local day and week the counters hold, and in which zone.
struct Calendar {
    zone: TimeZone,
    /// The local date "today" counts.
    day: Option<Date>,
    /// The Monday "this week" counts from.
    week: Option<Date>,
}

/// What a blocked answer was blocked for.
#[derive(Clone, Copy, Debug)]
pub enum Blocked<'a> {
    /// The shared list, in these category bits.
    Categories(u32),
    /// The profile's own deny list.
    OwnList,
    /// A service the profile blocks (catalog id).
    Service(&'a str),
    /// A way around the filter.
    Bypass(Kind),
    /// A search engine whose SafeSearch cannot be forced.
    UnsafeSearch,
}

/// One profile's counters: today's and this week's.
pub struct ProfileActivity {
    /// Unix second of the next local midnight: at or after it, the day (maybe the week)
    /// rolls before counting.
    rollover: AtomicI64,
    calendar: Mutex<Calendar>,
    today: Period,
    week: Period,
}

impl ProfileActivity {
    fn new(zone: TimeZone) -> Self {
        ProfileActivity {
            rollover: AtomicI64::new(i64::MIN),
            calendar: Mutex::new(Calendar {
                zone,
                day: None,
                week: None,
            }),
            today: Period::new(),
            week: Period::new(),
        }
    }

    fn set_zone(&self, zone: &TimeZone) {
        let mut cal = self.calendar.lock().unwrap_or_else(|e| e.into_inner());
        if cal.zone != *zone {
            cal.zone = zone.clone();
            // Work out the local day again in the new zone on the next count.
            self.rollover.store(i64::MIN, Ordering::Relaxed);
        }
    }

    /// Starts a new day (and a new week on Monday) when `now` (Unix seconds) has passed
    /// the local midnight the counters run to.
    fn roll(&self, now: i64) {
        if now < self.rollover.load(Ordering::Relaxed) {
            return;
        }
        let mut cal = self.calendar.lock().unwrap_or_else(|e| e.into_inner());
        if now < self.rollover.load(Ordering::Relaxed) {
            return; // Another thread rolled it meanwhile.
        }
        let Ok(at) = jiff::Timestamp::from_second(now) else {
            return;
        };
        let date = cal.zone.to_datetime(at).date();
        let monday = date
            .checked_sub(jiff::Span::new().days(date.weekday().to_monday_zero_offset()))
            .unwrap_or(date);
        if cal.day != Some(date) {
            if cal.day.is_some() {
                self.today.reset();
            }
            cal.day = Some(date);
        }
        if cal.week != Some(monday) {
            if cal.week.is_some() {
                self.week.reset();
            }
            cal.week = Some(monday);
        }
        // The next local midnight (a day may be 23 or 25 hours long); an hour on if the
        // zone cannot say, so a broken zone costs one lookup an hour, not one per query.
        let next = date
            .tomorrow()
            .and_then(|d| {
                cal.zone
                    .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
            })
            .map_or(now + 3600, |t| t.as_second());
        self.rollover.store(next, Ordering::Relaxed);
    }

    /// One query at `now` (Unix seconds).
    pub fn query(&self, now: i64) {
        self.roll(now);
        self.today.queries.fetch_add(1, Ordering::Relaxed);
        self.week.queries.fetch_add(1, Ordering::Relaxed);
    }

    /// One blocked answer (its query was counted by [`ProfileActivity::query`]).
    pub fn blocked(&self, why: Blocked<'_>) {
        for period in [&self.today, &self.week] {
            period.blocked.fetch_add(1, Ordering::Relaxed);
            match why {
                Blocked::Categories(bits) => {
                    let mut rest = bits;
                    while rest != 0 {
                        let bit = rest.trailing_zeros() as usize;
                        rest &= rest - 1;
                        period.categories[bit].fetch_add(1, Ordering::Relaxed);
                    }
                }
                Blocked::OwnList => {
                    period.own_list.fetch_add(1, Ordering::Relaxed);
                }
                Blocked::Service(id) => period.add_service(id),
                Blocked::Bypass(kind) => {
                    if let Some(i) = Kind::ALL.iter().position(|&k| k == kind) {
                        period.bypass[i].fetch_add(1, Ordering::Relaxed);
                    }
                }
                Blocked::UnsafeSearch => {
                    period.unsafe_search.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Today's and this week's counts as of `now` (a day that has passed reads as zero).
    pub fn snapshot(&self, now: i64) -> Snapshot {
        self.roll(now);
        Snapshot {
            today: self.today.counts(),
            week: self.week.counts(),
        }
    }
}

/// One period's counts, for display.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Queries answered (blocked or not).
    pub queries: u64,
    /// Of which blocked, for any reason.
    pub blocked: u64,
    /// Blocked by the shared list: `(category bit, count)`, only those above zero. A
    /// block in two categories counts in both.
    pub categories: Vec<(u32, u64)>,
    /// Blocked by the profile's own deny list.
    pub own_list: u64,
    /// Blocked search engines without SafeSearch.
    pub unsafe_search: u64,
    /// Bypass attempts by kind (`canary`, `relay`, `resolver`, `vpn`), above zero.
    pub bypass: Vec<(&'static str, u64)>,
    /// Blocks by service id, most first.
    pub services: Vec<(String, u64)>,
}

/// A profile's activity: today and this week.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// The profile's local day.
    pub today: Counts,
    /// Its week, from Monday.
    pub week: Counts,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> TimeZone {
        TimeZone::get("Asia/Ho_Chi_Minh").unwrap()
    }

    /// Unix seconds of a local time in Ho Chi Minh City (UTC+7).
    fn at(date: &str) -> i64 {
        let dt: jiff::civil::DateTime = date.parse().unwrap();
        zone().to_timestamp(dt).unwrap().as_second()
    }

    #[test]
    fn counts_by_category_service_and_bypass() {
        let a = Activity::default();
        let p = a.for_profile("p1", &zone());
        let now = at("2026-11-30T10:00");
        for _ in 0..6 {
            p.query(now);
        }
        p.blocked(Blocked::Categories(0b101));
        p.blocked(Blocked::Service("tiktok"));
        p.blocked(Blocked::Service("tiktok"));
        p.blocked(Blocked::Service("roblox"));
        p.blocked(Blocked::Bypass(Kind::Vpn));
        p.blocked(Blocked::OwnList);
        let s = a.snapshot("p1", now);
        assert_eq!(s.today.queries, 6);
        assert_eq!(s.today.blocked, 6);
        assert_eq!(s.today.categories, vec![(0, 1), (2, 1)]);
        assert_eq!(
            s.today.services,
            vec![("tiktok".to_owned(), 2), ("roblox".to_owned(), 1)]
        );
        assert_eq!(s.today.bypass, vec![("vpn", 1)]);
        assert_eq!(s.today.own_list, 1);
        assert_eq!(s.today, s.week);
        assert_eq!(a.snapshot("p2", now), Snapshot::default());
    }

    #[test]
    fn a_new_local_day_starts_today_over_and_monday_starts_the_week() {
        let a = Activity::default();
        let p = a.for_profile("p1", &zone());
        // Sunday 23:59 local is Sunday 16:59 UTC: still Sunday's day and week.
        p.query(at("2026-11-29T23:59"));
        p.query(at("2026-11-29T23:59"));
        // Monday 00:00 local: a new day and a new week.
        p.query(at("2026-11-30T00:00"));
        let s = a.snapshot("p1", at("2026-11-30T00:00"));
        assert_eq!((s.today.queries, s.week.queries), (1, 1));
        // Tuesday: today starts over, the week goes on.
        p.query(at("2026-12-01T08:00"));
        let s = a.snapshot("p1", at("2026-12-01T08:00"));
        assert_eq!((s.today.queries, s.week.queries), (1, 2));
        // Read on Wednesday with no query since: today is zero, the week is kept.
        let s = a.snapshot("p1", at("2026-12-02T08:00"));
        assert_eq!((s.today.queries, s.week.queries), (0, 2));
    }

    #[test]
    fn counts_outlive_a_rebuilt_group() {
        let a = Activity::default();
        let now = at("2026-11-30T10:00");
        a.for_profile("p1", &zone()).query(now);
        a.for_profile("p1", &zone()).query(now);
        assert_eq!(a.snapshot("p1", now).today.queries, 2);
    }
}
