//! The policy built from a real config (windows, mandatory categories, exceptions), judged
//! with a clock the tests move: no sleeping. Here because only `app` may import both the
//! config and the policy.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::build_policy;
use crate::exceptions::{ExceptionStore, Target};
use crate::lists::Blocklist;
use crate::policy::decide::{Clock, Outcome, Policy};

/// 2027-02-13, a Saturday, 00:00 UTC.
const SAT: i64 = 1_802_476_800;
const HOUR: i64 = 3600;

struct Fixture {
    _dir: tempfile::TempDir,
    at: Arc<AtomicI64>,
    list: Blocklist,
    policy: Policy,
    store: ExceptionStore,
}

const GROUP: &str = r#"
[[groups]]
name = "kids"
clients = ["10.0.0.0/8"]
categories = ["adult"]
allow = ["bad.csam.test", "fun.games.test"]
services = ["tiktok"]

# Roblox on Saturday afternoon only.
[[groups.schedules]]
days = ["sat"]
start = "14:00"
end = "17:00"
timezone = "UTC"
action = "allow"
services = ["roblox"]
except = ["2027-02-20"]

# Bedtime: games category and YouTube, overnight.
[[groups.schedules]]
days = ["fri", "sat"]
start = "21:00"
end = "07:00"
timezone = "UTC"
categories = ["games"]
services = ["youtube"]

# A block window over part of the allow window: it wins.
[[groups.schedules]]
days = ["sat"]
start = "16:00"
end = "16:30"
timezone = "UTC"
services = ["roblox"]
"#;

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("adult.txt"), "adult.test\n").unwrap();
    std::fs::write(p.join("csam.txt"), "csam.test\n").unwrap();
    std::fs::write(p.join("games.txt"), "games.test\n").unwrap();
    let text = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["127.0.0.1:5353"]
[lists]
compiled = "list.fst"
mandatory = ["csam"]
[[lists.source]]
category = "adult"
path = "adult.txt"
[[lists.source]]
category = "csam"
path = "csam.txt"
[[lists.source]]
category = "games"
path = "games.txt"
{GROUP}"#
    );
    let config = crate::config::parse(&text, &p.join("kidsafe.toml")).unwrap();
    let (list, _) = crate::feed::install::open_or_build(&config.lists, None).unwrap();
    let at = Arc::new(AtomicI64::new(SAT));
    let t = Arc::clone(&at);
    let clock: Clock = Arc::new(move || {
        jiff::Timestamp::from_second(t.load(Ordering::Relaxed)).unwrap_or_default()
    });
    let store = ExceptionStore::open(&p.join("exceptions.json"), clock.clone()).unwrap();
    let policy = build_policy(&config, clock, Some(p))
        .unwrap()
        .with_exceptions(store.live());
    Fixture {
        _dir: dir,
        at,
        list,
        policy,
        store,
    }
}

impl Fixture {
    fn set(&self, seconds: i64) {
        self.at.store(seconds, Ordering::Relaxed);
    }

    /// "blocked", "service <id>", "filtered" or "forward" for `name` asked by the kids.
    fn verdict(&self, name: &str) -> String {
        let group = &self.policy.groups()[0];
        let labels = || name.split('.').map(str::as_bytes);
        match self.policy.decide(group, &self.list, labels) {
            Outcome::Blocked(_) => "blocked".into(),
            Outcome::Filtered(_) => "filtered".into(),
            Outcome::Service(s) => format!("service {}", s.id),
            Outcome::SafeSearch(_) => "safesearch".into(),
            Outcome::Bypass(_) => "bypass".into(),
            Outcome::UnsafeSearch(_) => "unsafe search".into(),
            Outcome::Forward => "forward".into(),
        }
    }
}

#[test]
fn a_service_allowed_only_in_its_window_flips_at_the_edges() {
    let f = fixture();
    f.set(SAT + 14 * HOUR - 1);
    assert_eq!(f.verdict("www.roblox.com"), "service roblox", "13:59:59");
    f.set(SAT + 14 * HOUR);
    assert_eq!(f.verdict("www.roblox.com"), "forward", "14:00 opens");
    f.set(SAT + 17 * HOUR - 1);
    assert_eq!(f.verdict("www.roblox.com"), "forward", "16:59:59");
    f.set(SAT + 17 * HOUR);
    assert_eq!(
        f.verdict("www.roblox.com"),
        "service roblox",
        "17:00 closes"
    );
    // Other days: blocked all day.
    f.set(SAT - 9 * HOUR);
    assert_eq!(f.verdict("roblox.com"), "service roblox", "Friday 15:00");
}

#[test]
fn an_excepted_date_keeps_the_allow_window_shut() {
    let f = fixture();
    f.set(SAT + 7 * 24 * HOUR + 15 * HOUR);
    assert_eq!(
        f.verdict("roblox.com"),
        "service roblox",
        "2027-02-20 is excepted"
    );
    f.set(SAT + 14 * 24 * HOUR + 15 * HOUR);
    assert_eq!(f.verdict("roblox.com"), "forward", "the Saturday after");
}

#[test]
fn a_block_window_wins_over_an_allow_window_at_the_same_time() {
    let f = fixture();
    f.set(SAT + 16 * HOUR + 10 * 60);
    assert_eq!(
        f.verdict("roblox.com"),
        "service roblox",
        "16:10, both open"
    );
    f.set(SAT + 16 * HOUR + 30 * 60);
    assert_eq!(
        f.verdict("roblox.com"),
        "forward",
        "16:30, the block window shut"
    );
}

#[test]
fn an_overnight_window_blocks_until_morning() {
    let f = fixture();
    f.set(SAT - 3 * HOUR - 1);
    assert_eq!(f.verdict("games.test"), "forward", "Friday 20:59:59");
    assert_eq!(f.verdict("youtube.com"), "forward");
    f.set(SAT - 3 * HOUR);
    assert_eq!(f.verdict("games.test"), "blocked", "Friday 21:00");
    assert_eq!(f.verdict("m.youtube.com"), "service youtube");
    f.set(SAT + 7 * HOUR - 1);
    assert_eq!(f.verdict("games.test"), "blocked", "Saturday 06:59:59");
    f.set(SAT + 7 * HOUR);
    assert_eq!(f.verdict("games.test"), "forward", "Saturday 07:00");
    // Sunday night is not listed: Sunday 21:00 to Monday 07:00 is open.
    f.set(SAT + 24 * HOUR + 22 * HOUR);
    assert_eq!(f.verdict("games.test"), "forward", "Sunday 22:00");
    // The allow list still lets its own names through.
    f.set(SAT - 2 * HOUR);
    assert_eq!(f.verdict("fun.games.test"), "forward");
}

#[test]
fn exceptions_unblock_and_lapse_when_the_clock_passes_them() {
    let f = fixture();
    f.set(SAT + 10 * HOUR);
    assert_eq!(f.verdict("tiktok.com"), "service tiktok");
    assert_eq!(f.verdict("adult.test"), "blocked");
    f.store
        .add("config:kids", Target::Service("tiktok".into()), 60)
        .unwrap();
    f.store
        .add("config:kids", Target::Name("adult.test".into()), 30)
        .unwrap();
    assert_eq!(f.verdict("www.tiktok.com"), "forward");
    assert_eq!(f.verdict("www.adult.test"), "forward");
    f.set(SAT + 10 * HOUR + 30 * 60);
    assert_eq!(
        f.verdict("adult.test"),
        "blocked",
        "the name exception lapsed"
    );
    assert_eq!(f.verdict("tiktok.com"), "forward");
    f.set(SAT + 11 * HOUR);
    assert_eq!(
        f.verdict("tiktok.com"),
        "service tiktok",
        "lapsed at expiry"
    );
}

#[test]
fn a_pause_lets_everything_but_mandatory_through() {
    let f = fixture();
    f.set(SAT + 10 * HOUR);
    f.store.add("config:kids", Target::Pause, 30).unwrap();
    for name in ["adult.test", "roblox.com", "tiktok.com"] {
        assert_eq!(f.verdict(name), "forward", "{name} during the pause");
    }
    assert_eq!(f.verdict("csam.test"), "blocked");
    let group = &f.policy.groups()[0];
    let manifest = f.list.manifest();
    let csam = 1
        << manifest
            .categories
            .iter()
            .position(|c| c == "csam")
            .unwrap();
    assert_eq!(
        f.policy.mask(group, manifest),
        csam,
        "paused: mandatory only"
    );
    f.set(SAT + 10 * HOUR + 30 * 60);
    assert_eq!(f.verdict("adult.test"), "blocked", "the pause lapsed");
}

#[test]
fn mandatory_is_never_unblocked() {
    let f = fixture();
    f.set(SAT + 15 * HOUR);
    // The group's categories leave csam out, its allow list names it.
    assert_eq!(f.verdict("bad.csam.test"), "blocked", "allow list");
    f.store
        .add("config:kids", Target::Name("csam.test".into()), 60)
        .unwrap();
    assert_eq!(f.verdict("csam.test"), "blocked", "exception");
    f.store.add("config:kids", Target::Pause, 60).unwrap();
    assert_eq!(f.verdict("csam.test"), "blocked", "pause");
    // The implicit default group (all categories) too.
    let default = f.policy.groups().last().unwrap();
    let labels = || "csam.test".split('.').map(str::as_bytes);
    assert!(matches!(
        f.policy.decide(default, &f.list, labels),
        Outcome::Blocked(_)
    ));
}

#[test]
fn config_errors_name_the_window_key() {
    let bad = |window: &str| {
        let text = format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"127.0.0.1:5353\"]\n\
             [lists]\ncompiled = \"x.fst\"\n[[groups]]\nname = \"kids\"\nclients = [\"10.0.0.0/8\"]\n\
             [[groups.schedules]]\n{window}\n"
        );
        crate::config::parse(&text, std::path::Path::new("k.toml"))
            .unwrap_err()
            .to_string()
    };
    let base = "days = [\"sat\"]\nstart = \"14:00\"\n";
    let e = bad(&format!(
        "{base}end = \"14:00\"\ntimezone = \"UTC\"\nservices = [\"roblox\"]"
    ));
    assert!(e.contains("groups.kids.schedules[0].end"), "{e}");
    let e = bad(&format!(
        "{base}end = \"17:00\"\ntimezone = \"Mars/Olympus\"\nservices = [\"roblox\"]"
    ));
    assert!(
        e.contains("groups.kids.schedules[0].timezone") && e.contains("Mars/Olympus"),
        "{e}"
    );
    let e = bad(&format!(
        "{base}end = \"17:00\"\ntimezone = \"UTC\"\nservices = [\"robloxx\"]"
    ));
    assert!(
        e.contains("schedules[0].services") && e.contains("roblox"),
        "{e}"
    );
    let e = bad(&format!(
        "{base}end = \"17:00\"\ntimezone = \"UTC\"\nservices = [\"roblox\"]\nexcept = [\"2027-02-31\"]"
    ));
    assert!(e.contains("schedules[0].except"), "{e}");
    let e = bad(&format!(
        "{base}end = \"17:00\"\ntimezone = \"UTC\"\naction = \"allow\""
    ));
    assert!(e.contains("schedules[0].services"), "{e}");
}

#[test]
fn the_readme_schedule_examples_parse() {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("### Schedules, exceptions, pause, mandatory categories")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap();
    let examples: Vec<&str> = section
        .split("```toml\n")
        .skip(1)
        .filter_map(|s| s.split("```").next())
        .collect();
    assert_eq!(examples.len(), 2);
    for example in examples {
        let text = format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"127.0.0.1:5353\"]\n\
             [lists]\ncompiled = \"x.fst\"\n\
             [[lists.source]]\ncategory = \"adult\"\npath = \"a.txt\"\n\
             [[lists.source]]\ncategory = \"gambling\"\npath = \"g.txt\"\n\
             [[lists.source]]\ncategory = \"games\"\npath = \"x.txt\"\n{example}"
        );
        let config = crate::config::parse(&text, std::path::Path::new("k.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{example}"));
        assert!(!config.policy.windows.is_empty());
    }
}
