//! The one writer of the serving subscriber map ([`crate::subscribers`]): read the source (a polled file, or a
//! conditional GET with the list feeds' client and signature check), judge it by the
//! guards, compile it beside the lists, and swap it in.
//!
//! Guards, each refusal logged and counted (`kidsafe_subscribers_refused_total{reason}`),
//! the serving map kept: a source without one usable row (`parse`), a bad or missing
//! signature (`signature`), fewer than half the rows of the serving map (`shrink`: a
//! truncated export must not send most subscribers to `default`), a failed read
//! (`fetch`) or write (`compile`).

use std::path::Path;
use std::time::{Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::feed::http::{FeedError, Fetched, HttpFeed, Validators};
use crate::feed::state::write_atomic;
use crate::subscribers::compile::compile;
use crate::subscribers::parse::parse;
use crate::subscribers::{
    Refused, SubscriberMap, SubscriberOrigin, SubscriberSource, SubscribersConfig,
};

/// What was served after a successful install.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Installed {
    /// Rows of the new map.
    pub rows: u64,
    /// Malformed lines skipped.
    pub malformed: usize,
}

/// Parses `text`, applies the guards against what `live` serves, compiles to `compiled`
/// and swaps the new map in. Blocking (parse and compile): call it off the runtime.
///
/// # Errors
/// Why the source was refused (the serving map is kept, the refusal counted).
pub fn install(
    text: &[u8],
    compiled: &Path,
    live: &SubscriberSource,
    origin: &str,
) -> Result<Installed, Refused> {
    let refuse = |why: Refused, message: String| {
        tracing::error!(
            source = origin,
            reason = why.as_str(),
            "subscriber source refused, the serving map is kept: {message}"
        );
        live.refused(why);
        why
    };
    let parsed = parse(text);
    for e in &parsed.errors {
        tracing::warn!(
            source = origin,
            line = e.line,
            "subscriber line skipped: {}",
            e.reason
        );
    }
    if parsed.rows.is_empty() {
        let message = format!("no usable row ({} malformed lines)", parsed.malformed);
        return Err(refuse(Refused::Parse, message));
    }
    let built = compile(&parsed.rows).map_err(|e| refuse(Refused::Compile, e.to_string()))?;
    let serving = live.rows();
    if (built.rows as u64).saturating_mul(2) < serving {
        let message = format!("{} rows, under half of the {serving} serving", built.rows);
        return Err(refuse(Refused::Shrink, message));
    }
    // A temporary file renamed over the old map: a reader never sees half a file, and
    // the serving map's mapping keeps the old inode.
    write_atomic(compiled, &built.bytes, true).map_err(|e| {
        let message = format!("cannot write {}: {e}", compiled.display());
        refuse(Refused::Compile, message)
    })?;
    let map = SubscriberMap::open(compiled).map_err(|e| refuse(Refused::Compile, e.to_string()))?;
    let rows = map.rows();
    live.store(map);
    tracing::info!(
        source = origin,
        rows,
        malformed = parsed.malformed,
        duplicates = built.duplicates,
        "subscriber map serving"
    );
    Ok(Installed {
        rows,
        malformed: parsed.malformed,
    })
}

/// Serves the compiled map from the last run, if there is a usable one (so subscribers
/// keep their profiles while the source is fetched again).
pub fn load_compiled(settings: &SubscribersConfig, live: &SubscriberSource) {
    if !settings.compiled.exists() {
        return;
    }
    match SubscriberMap::open(&settings.compiled) {
        Ok(map) => {
            tracing::info!(rows = map.rows(), path = %settings.compiled.display(), "subscriber map loaded");
            live.store(map);
        }
        Err(error) => tracing::warn!(%error, "compiled subscriber map not used"),
    }
}

/// The source's reader, with what it saw last (to skip unchanged sources).
pub struct Refresher {
    settings: SubscribersConfig,
    live: SubscriberSource,
    http: Option<HttpFeed>,
    validators: Validators,
    /// Size and modification time of the file last read.
    seen: Option<(u64, SystemTime)>,
}

impl Refresher {
    /// A reader for `settings`' source, swapping into `live`.
    ///
    /// # Errors
    /// A URL or key the HTTP client refuses.
    pub fn new(
        settings: SubscribersConfig,
        live: SubscriberSource,
    ) -> Result<Refresher, FeedError> {
        let http = match &settings.source {
            SubscriberOrigin::Path(_) => None,
            SubscriberOrigin::Url {
                url,
                pubkey,
                max_bytes,
                timeout,
            } => Some(HttpFeed::new(url, pubkey.as_deref(), *max_bytes, *timeout)?),
        };
        Ok(Refresher {
            settings,
            live,
            http,
            validators: Validators::default(),
            seen: None,
        })
    }

    /// Reads the source once, if it changed, and installs it.
    pub async fn refresh(&mut self) {
        let origin = self.settings.source.describe();
        let started = Instant::now();
        let text = match &self.settings.source {
            SubscriberOrigin::Path(path) => {
                let Ok(meta) = std::fs::metadata(path) else {
                    tracing::error!(source = %origin, "cannot read the subscriber source");
                    self.live.refused(Refused::Fetch);
                    return;
                };
                let stamp = (
                    meta.len(),
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                );
                if self.seen == Some(stamp) {
                    return;
                }
                self.seen = Some(stamp);
                match tokio::fs::read(path).await {
                    Ok(text) => text,
                    Err(error) => {
                        tracing::error!(source = %origin, %error, "cannot read the subscriber source");
                        self.live.refused(Refused::Fetch);
                        return;
                    }
                }
            }
            SubscriberOrigin::Url { .. } => {
                let Some(http) = &self.http else { return };
                match http.fetch(&self.validators).await {
                    Ok(Fetched::NotModified) => return,
                    Ok(Fetched::New { body, validators }) => {
                        self.validators = validators;
                        body.to_vec()
                    }
                    Err(error) => {
                        let why = match error {
                            FeedError::Signature { .. } | FeedError::SignatureMissing { .. } => {
                                Refused::Signature
                            }
                            _ => Refused::Fetch,
                        };
                        tracing::error!(source = %origin, %error, reason = why.as_str(), "subscriber source refused, the serving map is kept");
                        self.live.refused(why);
                        return;
                    }
                }
            }
        };
        let (compiled, live) = (self.settings.compiled.clone(), self.live.clone());
        let done =
            tokio::task::spawn_blocking(move || install(&text, &compiled, &live, &origin)).await;
        match done {
            Ok(Ok(installed)) => tracing::debug!(
                rows = installed.rows,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "subscriber source compiled"
            ),
            // Refused (and counted in `install`): forget the validators, so the next poll
            // looks at the source again instead of hearing "not modified".
            _ => self.validators = Validators::default(),
        }
    }

    /// True when a map is serving and its compiled file is newer than the source file:
    /// the source is then marked seen, so only a later change to it recompiles.
    fn compiled_is_current(&mut self, live: &SubscriberSource) -> bool {
        let SubscriberOrigin::Path(path) = &self.settings.source else {
            return false;
        };
        let (Ok(source), Ok(compiled)) = (
            std::fs::metadata(path),
            std::fs::metadata(&self.settings.compiled),
        ) else {
            return false;
        };
        let (Ok(changed), Ok(built)) = (source.modified(), compiled.modified()) else {
            return false;
        };
        if live.load().is_none() || built < changed {
            return false;
        }
        self.seen = Some((source.len(), changed));
        true
    }

    /// Polls every `refresh` (± 10 %) until `stop`.
    pub async fn run(mut self, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(crate::feed::spec::jittered(self.settings.refresh)) => {}
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.refresh() => {}
            }
        }
    }
}

/// Loads the compiled map, reads the source once (a file before returning, so the map is
/// there when the resolver starts answering; a URL in the background), then polls it
/// until `stop`.
pub async fn start(settings: &SubscribersConfig, live: &SubscriberSource, stop: CancellationToken) {
    load_compiled(settings, live);
    let mut refresher = match Refresher::new(settings.clone(), live.clone()) {
        Ok(r) => r,
        Err(error) => {
            tracing::error!(%error, "subscriber source not usable");
            live.refused(Refused::Fetch);
            return;
        }
    };
    let is_file = matches!(settings.source, SubscriberOrigin::Path(_));
    // A map compiled after the source file last changed already holds it: serve it at
    // once (a restart with 5M rows would otherwise parse for seconds before answering).
    if is_file && !refresher.compiled_is_current(live) {
        refresher.refresh().await;
    }
    tokio::spawn(async move {
        if !is_file {
            refresher.refresh().await;
        }
        refresher.run(stop).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_reads_a_written_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.map");
        let live = SubscriberSource::new();
        let got = install(
            b"203.0.113.7 p12\n198.51.100.0/24 config:kids\nbad\n",
            &path,
            &live,
            "t",
        );
        assert_eq!(got.unwrap().malformed, 1);
        let map = SubscriberMap::open(&path).unwrap();
        assert_eq!(
            map.lookup("198.51.100.9".parse().unwrap()),
            Some("config:kids")
        );
        std::fs::write(&path, b"KSSUBMAP").unwrap();
        assert!(SubscriberMap::open(&path).is_err());
    }

    #[test]
    fn guards_keep_the_serving_map() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.map");
        let live = SubscriberSource::new();
        let four = b"10.0.0.1 a\n10.0.0.2 a\n10.0.0.3 b\n10.0.0.4 b\n";
        install(four, &path, &live, "t").unwrap();
        assert_eq!(live.rows(), 4);
        assert_eq!(
            install(b"garbage\n", &path, &live, "t"),
            Err(Refused::Parse)
        );
        assert_eq!(install(b"", &path, &live, "t"), Err(Refused::Parse));
        assert_eq!(
            install(b"10.0.0.1 c\n", &path, &live, "t"),
            Err(Refused::Shrink)
        );
        assert_eq!(live.refused_total(Refused::Parse), 2);
        assert_eq!(live.refused_total(Refused::Shrink), 1);
        let ip = "10.0.0.1".parse().unwrap();
        assert_eq!(live.load().as_ref().unwrap().lookup(ip), Some("a"));
        // Exactly half is accepted.
        install(b"10.0.0.1 c\n10.0.0.2 c\n", &path, &live, "t").unwrap();
        assert_eq!(live.load().as_ref().unwrap().lookup(ip), Some("c"));
        assert_eq!(SubscriberMap::open(&path).unwrap().rows(), 2);
    }
}
