//! The serve loop: accepts connections within `http.max_connections`, speaks TLS when
//! the web configuration asks for it, checks its basic auth and adds its headers around
//! [`handle`], and on shutdown stops taking requests, lets open ones finish and delivers
//! what is pending; plus the signal handling that drives shutdown and reload.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::auth::basic_auth_challenge;
use super::web::WebConfigFile;
use super::{BasicAuthPassed, Reply, conn, handle};
use crate::app::App;
use crate::config::HttpLimits;

/// Serves HTTP on `listener` until `shutdown` completes (HTTPS, basic auth and headers as
/// the web configuration `web` says), then stops taking requests, lets open requests
/// finish (up to 5 s) and delivers what is pending up to the configured
/// `shutdown_timeout`.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    web: Option<Arc<WebConfigFile>>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(conn::Slots::default());
    let mut warned_full = false;
    app.set_ready(true);
    tokio::pin!(shutdown);
    loop {
        let limits = app.config.snapshot().config.http.clone();
        let full = slots.full(limits.max_connections);
        if full && !warned_full {
            tracing::warn!(
                message = "Connection limit reached; new connections wait until one closes.",
                max_connections = limits.max_connections,
            );
        }
        warned_full = full;
        let slot = tokio::select! {
            slot = slots.take(limits.max_connections) => slot,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and similar: wait a little instead of spinning.
                    tracing::warn!(message = "Accepting a connection failed.", %error);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let client = Client {
            app: app.clone(),
            web: web.clone(),
            limits,
            peer,
        };
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = client
                .web
                .as_ref()
                .and_then(|web| web.current().tls.clone());
            match tls {
                None => client.serve(stream, watcher).await,
                Some(tls) => {
                    let handshake = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
                    match tokio::time::timeout(client.limits.read_timeout, handshake).await {
                        Ok(Ok(stream)) => client.serve(stream, watcher).await,
                        Ok(Err(error)) => {
                            tracing::debug!(message = "TLS handshake failed.", peer = %client.peer, %error);
                        }
                        Err(_) => {
                            tracing::debug!(message = "TLS handshake timed out.", peer = %client.peer);
                        }
                    }
                }
            }
            drop(slot);
        });
    }
    app.set_ready(false);
    drop(listener);
    tracing::info!(message = "Shutting down: no longer accepting webhooks.");
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(message = "Open connections did not finish in time; closing them.");
    }
    let timeout = app.config.snapshot().config.shutdown_timeout;
    let left = app.delivery.drain(timeout).await;
    if left > 0 {
        tracing::error!(
            message = "Shutdown timeout reached; pending messages were not delivered.",
            undelivered = left,
        );
    } else {
        tracing::info!(message = "All pending messages delivered.");
    }
    if let Err(error) = app.delivery.queue.sync().await {
        tracing::error!(message = "Cannot sync the queue file; messages delivered in the last second may be sent again after the restart.", %error);
    }
    let unsettled = app.delivery.queue.total_unsettled();
    if unsettled > 0 {
        tracing::error!(
            message = "The queue file could not be written for some delivered or given-up messages; they will be sent again after the restart.",
            unsettled,
        );
    }
}

/// One accepted connection and what serving it needs.
struct Client {
    app: Arc<App>,
    /// Read again, when it changed, for each connection (its TLS) and each request (its
    /// users and headers), as exporter-toolkit does.
    web: Option<Arc<WebConfigFile>>,
    limits: HttpLimits,
    peer: std::net::SocketAddr,
}

impl Client {
    /// Serves HTTP/1.1 on `stream` (plain or TLS) until the client or a deadline closes it.
    async fn serve<S>(self, stream: S, watcher: hyper_util::server::graceful::Watcher)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let deadlines = conn::Deadlines::new(self.limits.clone());
        let (app, web) = (self.app, self.web);
        let handler_deadlines = deadlines.clone();
        let service = service_fn(move |mut request: Request<Incoming>| {
            let app = app.clone();
            let web = web.as_ref().map(|web| web.current());
            let deadlines = handler_deadlines.clone();
            async move {
                let body_deadline = deadlines.handling();
                request
                    .extensions_mut()
                    .insert(conn::BodyDeadline(body_deadline));
                let mut reply = match &web {
                    Some(web) if web.needs_basic_auth(request.uri().path()) => {
                        if web.users.admit(request.headers().get(AUTHORIZATION)).await {
                            request.extensions_mut().insert(BasicAuthPassed);
                            handle(app, request).await
                        } else {
                            basic_auth_refused(&request)
                        }
                    }
                    _ => handle(app, request).await,
                };
                if reply.status() == StatusCode::REQUEST_TIMEOUT {
                    // The rest of a late body is not waited for.
                    reply
                        .headers_mut()
                        .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
                }
                if let Some(web) = &web {
                    for (name, value) in &web.headers {
                        reply.headers_mut().insert(name.clone(), value.clone());
                    }
                }
                deadlines.answered();
                Ok::<_, Infallible>(reply)
            }
        });
        let connection = http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            // `Deadlined` times the headers, the body and the idle time between requests.
            .header_read_timeout(None)
            .max_header_size(self.limits.max_header_bytes)
            .serve_connection(
                TokioIo::new(conn::Deadlined::new(stream, deadlines)),
                service,
            );
        if let Err(error) = watcher.watch(connection).await {
            tracing::debug!(message = "Connection ended with an error.", peer = %self.peer, %error);
        }
    }
}

/// 401 for a request without the basic auth the web configuration asks for.
fn basic_auth_refused(request: &Request<Incoming>) -> Reply {
    tracing::warn!(
        message = "Request refused.",
        method = %request.method(),
        path = %super::shown_path(request.uri().path()),
        reason = "basic auth of the web config",
    );
    basic_auth_challenge(
        "missing or wrong user and password: this server requires basic auth (web config basic_auth_users)",
    )
}

/// Completes on SIGTERM or SIGINT; reloads the config on every SIGHUP meanwhile.
pub async fn signals(app: Arc<App>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!(message = "Cannot install signal handlers; stop with SIGKILL.");
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = hup.recv() => { let _ = app.reload().await; }
        }
    }
}
