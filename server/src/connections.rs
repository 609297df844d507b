//! Accepting HTTP connections within limits: at most `max_connections` open
//! at once (the next is answered 503 and closed), and a time limit on reading
//! each request's head, which also ends connections kept alive but idle. A
//! client that opens connections and sends nothing cannot hold the server.

use crate::config::HttpLimits;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How long open requests may finish after shutdown begins (a live page's
/// event stream never does).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `router` until `shutdown`, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    // HTTP/1.1 only: browsers speak it to a plain-HTTP server, and so do
    // the AWS SDKs.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        let connection = match accepted {
            Ok((connection, _)) => connection,
            Err(error) => {
                // Out of file descriptors, usually: wait for some to close.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Without TCP_NODELAY the last part of a response can wait for the
        // client's delayed ACK (40 ms on Linux).
        if let Err(error) = connection.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tokio::spawn(refuse(connection, limits.max_connections));
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let served = builder.serve_connection(TokioIo::new(connection), service);
        let served = graceful.watch(served);
        tokio::spawn(async move {
            if let Err(error) = served.await {
                tracing::trace!(%error, "connection ended");
            }
            drop(permit);
        });
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("closing connections still open after {SHUTDOWN_GRACE:?}");
    }
}

/// Answers a connection over the limit with 503 and closes it. The body is
/// Firehose's error shape, which SDKs read and people can too.
async fn refuse(mut connection: TcpStream, limit: usize) {
    crate::metrics::global().refused(crate::metrics::Limit::Connections);
    let body = serde_json::json!({
        "__type": "ServiceUnavailableException",
        "message": format!("the server has {limit} connections open, its limit; nothing was read, retry the request"),
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/x-amz-json-1.1\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let answered = async {
        connection.write_all(response.as_bytes()).await?;
        connection.shutdown().await?;
        // Read what the client sent before closing: closing with unread data
        // resets the connection, and the client may lose the answer.
        let mut sink = [0_u8; 8192];
        while connection.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), answered).await;
}
