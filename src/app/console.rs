//! Starting the web console beside the admin API, on the admin API's stores.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{SocketAddrs, StartError, bind_http};
use crate::config::{Config, ConsoleConfig};

/// Binds `[console] listen`, opens the accounts database and serves the console (over
/// TLS with the DoT/DoH certificate when `console.tls`); the bound addresses.
///
/// # Errors
/// [`StartError`]: an address that cannot be bound, the accounts database or the
/// certificate.
pub(super) async fn start(
    config: &Config,
    settings: &ConsoleConfig,
    admin: Arc<crate::admin::Admin>,
    doh_addrs: &[SocketAddrs],
    stop: CancellationToken,
) -> Result<Vec<SocketAddrs>, StartError> {
    let tls = match &settings.tls {
        Some((cert, key)) => Some(
            crate::server::tls::server_config(cert, key, b"http/1.1")
                .map_err(|e| StartError::Console(e.to_string()))?,
        ),
        None => None,
    };
    let (listeners, addrs) = bind_http(&settings.listen, "console").await?;
    // ClientIDs ride in front of the DoT name, so Android's Private DNS setting needs it.
    let dot_name = config
        .server
        .tls
        .as_ref()
        .filter(|t| !t.dot_listen.is_empty())
        .and_then(|_| config.server.ddr_name.clone());
    // The .mobileconfig and Windows template name DoH by its certificate's name and the
    // port it was bound on (the first `doh_listen`).
    let doh = config
        .server
        .tls
        .as_ref()
        .filter(|t| !t.doh_listen.is_empty())
        .and(config.server.ddr_name.clone())
        .and_then(|name| {
            let first = doh_addrs.first()?;
            Some(crate::console::DohEndpoint {
                name,
                port: first.port(),
                addrs: doh_addrs.iter().map(|a| a.ip()).collect(),
            })
        });
    let state_dir = config.lists.feeds.state_dir.clone();
    let (secure, dns) = (tls.is_some(), config.server.listen.clone());
    let console = tokio::task::spawn_blocking(move || {
        crate::console::Console::new(admin, &state_dir, secure, dns, dot_name)
            .map(|c| c.with_doh(doh))
    })
    .await
    .map_err(|e| StartError::Console(e.to_string()))?
    .map_err(|e| StartError::Console(e.to_string()))?;
    tracing::info!(?addrs, tls = secure, "console listening");
    crate::console::spawn(listeners, Arc::new(console), tls, stop);
    Ok(addrs)
}
