//! An `rpz` source's task: a secondary of the primary's zone. AXFR at first, IXFR from the
//! stored snapshot's serial after that (the client falls back to AXFR by itself), on the
//! SOA refresh timer and at once when a NOTIFY arrives. Each new serial is written as zone
//! text and offered to the pipeline; the in-memory snapshot only moves forward once that
//! version is serving, so a refused update is transferred and judged again next time.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::Name;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::now_unix;
use crate::feed::candidate::{FeedCtx, offer};
use crate::feed::guard::{Guard, Refusal};
use crate::feed::spec::{MAX_RPZ_REFRESH, RpzFeed, SourceSpec};
use crate::feed::state::candidate_path;
use crate::feed::xfr::{XfrError, XfrOutcome, XfrSource, ZoneSnapshot, apply};
use crate::feed::zonefile;

/// Poll interval before the zone's own SOA is known.
const FIRST_REFRESH: Duration = Duration::from_secs(60);
/// Retry interval before the zone's own SOA is known.
const FIRST_RETRY: Duration = Duration::from_secs(10);

/// Keeps source `index` in step with its primary until `stop`. `trigger` is notified by
/// the NOTIFY listener.
pub async fn run(
    ctx: Arc<FeedCtx>,
    index: usize,
    feed: RpzFeed,
    trigger: Arc<Notify>,
    stop: CancellationToken,
) {
    let Some(spec) = ctx.spec(index).cloned() else {
        return;
    };
    let zone = match Name::from_ascii(&feed.zone) {
        Ok(z) => z,
        Err(e) => {
            let message = format!("zone {}: {e}", feed.zone);
            ctx.store
                .refused(&spec.name, &Refusal::new(Guard::Download, message));
            return;
        }
    };
    let xfr = XfrSource {
        primary: feed.primary,
        zone: zone.clone(),
        tsig: feed.tsig.clone(),
    };
    let stored = spec.list_path(&ctx.lists.feeds.state_dir);
    let mut snapshot = load(&stored, &zone).await;
    if let Some(s) = &snapshot {
        tracing::info!(source = %spec.name, serial = s.serial, "zone snapshot loaded; asking the primary for changes");
    }
    loop {
        let wait = tokio::select! {
            _ = stop.cancelled() => break,
            wait = check(&ctx, index, &spec, &feed, &xfr, &mut snapshot) => wait,
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
            _ = trigger.notified() => {
                tracing::debug!(source = %spec.name, "NOTIFY: checking the primary now");
            }
        }
    }
}

/// One full transfer of source `index`, offered like any update (used at start, before
/// anything serves).
pub async fn first_transfer(ctx: &FeedCtx, index: usize, feed: &RpzFeed) {
    let Some(spec) = ctx.spec(index).cloned() else {
        return;
    };
    let Ok(zone) = Name::from_ascii(&feed.zone) else {
        return; // validated with the config; `run` reports it
    };
    let xfr = XfrSource {
        primary: feed.primary,
        zone,
        tsig: feed.tsig.clone(),
    };
    check(ctx, index, &spec, feed, &xfr, &mut None).await;
}

/// The stored snapshot, if there is a readable one.
async fn load(stored: &Path, zone: &Name) -> Option<ZoneSnapshot> {
    if !stored.exists() {
        return None;
    }
    let (path, z) = (stored.to_owned(), zone.clone());
    match tokio::task::spawn_blocking(move || zonefile::read(&path, &z)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(error)) => {
            tracing::warn!(%error, "stored zone snapshot unreadable; transferring the whole zone");
            None
        }
        Err(_) => None,
    }
}

fn timers(feed: &RpzFeed, snapshot: Option<&ZoneSnapshot>) -> (Duration, Duration) {
    let one = Duration::from_secs(1);
    let refresh = feed.refresh.unwrap_or_else(|| {
        snapshot.map_or(FIRST_REFRESH, |s| s.refresh.clamp(one, MAX_RPZ_REFRESH))
    });
    let retry = snapshot
        .map_or(FIRST_RETRY, |s| s.retry)
        .clamp(one, refresh.max(one));
    (refresh, retry)
}

/// One round: SOA query, transfer if newer, offer. Returns how long to wait for the next.
async fn check(
    ctx: &FeedCtx,
    index: usize,
    spec: &SourceSpec,
    feed: &RpzFeed,
    xfr: &XfrSource,
    snapshot: &mut Option<ZoneSnapshot>,
) -> Duration {
    let (refresh, retry) = timers(feed, snapshot.as_ref());
    let have = snapshot.as_ref().map(|s| s.serial);
    let started = Instant::now();
    let failed = |e: &XfrError| {
        ctx.store
            .refused(&spec.name, &Refusal::new(Guard::Download, e.to_string()));
        retry
    };
    let unchanged = || {
        ctx.store.update(&spec.name, |s| {
            s.last_check_unix = Some(now_unix());
            s.unchanged += 1;
        });
        refresh
    };
    if let Some(have) = have {
        match xfr.soa_serial(feed.timeout).await {
            Ok(serial) if serial == have => return unchanged(),
            Ok(_) => {}
            Err(e) => return failed(&e),
        }
    }
    let outcome = match xfr.transfer(have, feed.timeout).await {
        Err(XfrError::SerialBehind {
            have,
            primary_serial,
            ..
        }) => {
            tracing::warn!(source = %spec.name, have, primary_serial, "the primary's serial went backwards; transferring the whole zone");
            xfr.transfer(None, feed.timeout).await
        }
        other => other,
    };
    let next = match outcome {
        Ok(XfrOutcome::UpToDate) => return unchanged(),
        Ok(XfrOutcome::Full(s)) => s,
        Ok(XfrOutcome::Incremental {
            serial,
            deleted,
            added,
        }) => match snapshot.take() {
            Some(mut s) => {
                apply(&mut s, serial, &deleted, &added);
                s
            }
            None => return failed(&xfr_without_base(xfr)),
        },
        Err(e) => return failed(&e),
    };
    let stored = spec.list_path(&ctx.lists.feeds.state_dir);
    let candidate = candidate_path(&stored);
    let (file, zone) = (candidate.clone(), xfr.zone.clone());
    let written = tokio::task::spawn_blocking(move || {
        let r = zonefile::write(&file, &zone, &next);
        (next, r)
    })
    .await;
    let next = match written {
        Ok((next, Ok(()))) => next,
        Ok((_, Err(e))) => {
            let message = format!("cannot store the zone in {}: {e}", candidate.display());
            ctx.store
                .refused(&spec.name, &Refusal::new(Guard::Compile, message));
            *snapshot = load(&stored, &xfr.zone).await;
            return retry;
        }
        Err(e) => {
            ctx.store
                .refused(&spec.name, &Refusal::new(Guard::Compile, e.to_string()));
            *snapshot = load(&stored, &xfr.zone).await;
            return retry;
        }
    };
    match offer(ctx, index, &candidate).await {
        Ok(installed) => {
            let (entries, rejected) = crate::feed::poll::counts(installed.record.as_ref());
            let sha = installed.record.as_ref().map(|r| r.sha256.clone());
            tracing::info!(
                source = %spec.name,
                serial = next.serial,
                incremental = have.is_some(),
                entries,
                list_serial = installed.serial,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "zone update serving"
            );
            ctx.store.update(&spec.name, |s| {
                let now = now_unix();
                s.last_success_unix = Some(now);
                s.last_check_unix = Some(now);
                s.serial = Some(next.serial);
                s.sha256 = sha;
                s.entries = Some(entries);
                s.rejected = Some(rejected);
                s.updates += 1;
            });
            let (refresh, _) = timers(feed, Some(&next));
            *snapshot = Some(next);
            refresh
        }
        Err(refusal) => {
            ctx.store.refused(&spec.name, &refusal);
            // Back to the version that is serving, so the next round asks from its serial.
            *snapshot = load(&stored, &xfr.zone).await;
            refresh
        }
    }
}

fn xfr_without_base(xfr: &XfrSource) -> XfrError {
    XfrError::Malformed {
        primary: xfr.primary,
        zone: xfr.zone.to_string(),
        reason: "incremental answer to a full transfer request".into(),
    }
}
