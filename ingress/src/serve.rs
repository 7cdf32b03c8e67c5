//! The accept loop. `axum::serve` takes no settings, and a client that sends its headers slowly must be cut
//! off, so the ingress drives hyper itself: HTTP/1.1 (all axum served with its default features), hyper's
//! header read timeout, each request told its client's address (`ConnectInfo<SocketAddr>`, through
//! `into_make_service_with_connect_info`), and a graceful shutdown on one `CancellationToken`.

use std::{io, net::SocketAddr, pin::pin, time::Duration};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt as _;

/// Serves `app` on `listener` until `shutdown` is cancelled, then stops accepting, lets each connection
/// finish the request it is on, and returns once all have closed or `drain` has passed (connections still
/// open then are left to end with the runtime).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    drain: Duration,
    shutdown: CancellationToken,
) {
    let make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let connections = TaskTracker::new();
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    pause_after_accept_error(&e).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let Ok(service) = make_service.clone().oneshot(client).await;
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let mut connection = pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = shutdown.cancelled() => {
                    // No further request on this connection; the one in progress is answered.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            // Header timeouts and clients going away land here: routine, and chosen by the client.
            if let Err(e) = result {
                tracing::debug!(%client, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(drain, connections.wait()).await.is_err() {
        tracing::warn!(open = connections.len(), "connections still open after the shutdown grace period");
    }
}

/// A failed accept that concerns one connection (the client went away) needs nothing; any other (too many
/// open files) gets a second to clear rather than a busy loop, as `axum::serve` does.
async fn pause_after_accept_error(e: &io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if !matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        tracing::error!(error = %e, "cannot accept connections; retrying in 1 s");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
