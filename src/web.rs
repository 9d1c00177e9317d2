//! The plain HTTP servers beside DNS, the admin API and the block page: serving an axum
//! app on a listener until shutdown.

/// Serves `app` on `listener` (with the peer address available to handlers) until `stop`
/// is cancelled; `what` names the server in the log if it fails.
pub fn serve_http(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    stop: tokio_util::sync::CancellationToken,
    what: &'static str,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
        if let Err(error) = served {
            tracing::error!(%error, what, "HTTP server stopped");
        }
    })
}
