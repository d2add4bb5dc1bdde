//! The HTTP side of the fake: binding and re-binding its port, accepting connections
//! (none while refusing), serving keep-alive HTTP/1.1, and turning each request into a
//! recorded [`Call`] answered according to the current [`Mode`].

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

use super::cards::{CARD_SEND_PATH, CARD_UPDATE_PATH};
use super::ding::{DING_READ_PATH, DING_SEND_PATH, ONE_TO_ONE_PATH};
use super::openapi::{self, GROUP_PATH, TOKEN_HEADER};
use super::rules::{Answer, Call};
use super::tls::Conn;
use super::{Mode, POLL_INTERVAL, Request, Shared};

/// Binds a listener with `SO_REUSEADDR` (set by std on Unix) so the port can be re-bound.
pub(super) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

impl Shared {
    /// Binds the original address again after [`Mode::Refuse`].
    pub(super) fn rebind(&self) -> TcpListener {
        let _runtime = self.runtime.enter();
        let mut attempts = 0;
        loop {
            match bind(self.addr) {
                Ok(listener) => return listener,
                Err(err) if attempts < 50 => {
                    attempts += 1;
                    eprintln!("fake DingTalk: re-binding {} failed: {err}", self.addr);
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(err) => panic!("fake DingTalk: cannot re-bind {}: {err}", self.addr),
            }
        }
    }

    /// Polls the current listener; pending while there is none.
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        match &self.lock().listener {
            Some(listener) => listener.poll_accept(cx),
            None => Poll::Pending,
        }
    }
}

/// Accepts connections from whichever listener is current until aborted.
pub(super) async fn accept_loop(shared: Arc<Shared>) {
    let mut mode = shared.mode.subscribe();
    loop {
        mode.borrow_and_update();
        let accepted = tokio::select! {
            accepted = poll_fn(|cx| shared.poll_accept(cx)) => accepted,
            changed = mode.changed() => match changed {
                // The listener may have been replaced: poll the current one.
                Ok(()) => continue,
                Err(_) => return,
            },
        };
        match accepted {
            Ok((stream, _)) => {
                shared.lock().connections += 1;
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    if let Some(conn) = shared.transport.accept(stream).await {
                        serve_connection(shared, conn).await;
                    }
                });
            }
            Err(err) => {
                eprintln!("fake DingTalk: accept failed: {err}");
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    }
}

/// Serves one (keep-alive) connection until it ends or the fake starts refusing.
async fn serve_connection(shared: Arc<Shared>, stream: Conn) {
    let mut mode = shared.mode.subscribe();
    let service = {
        let shared = Arc::clone(&shared);
        service_fn(move |request| handle(Arc::clone(&shared), request))
    };
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        // Errors here are clients going away, which tests do on purpose.
        _ = connection => {}
        _ = mode.wait_for(|mode| *mode == Mode::Refuse) => {}
    }
}

/// Records and answers one request according to the current mode. Under load this is
/// all the fake does per request: parse the query and the JSON body once, run the checks,
/// and count.
async fn handle(
    shared: Arc<Shared>,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, io::Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(io::Error::other)?.to_bytes();
    let arrived = Instant::now();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let call = Call {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        content_type: parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        header_token: parts
            .headers
            .get(TOKEN_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        query,
    };
    let index = shared.record(&call, arrived);

    let mode = match shared.mode.subscribe().wait_for(|m| *m != Mode::Hang).await {
        Ok(mode) => mode.clone(),
        Err(_) => Mode::Refuse,
    };
    let answer = match mode {
        Mode::Normal => shared.evaluate(&call),
        Mode::Http500 => Answer::Plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        Mode::Errcode(errcode, errmsg) => Answer::Json(errcode, errmsg.into()),
        Mode::OpenApiError(status, code)
            if matches!(
                call.path.as_str(),
                GROUP_PATH
                    | CARD_SEND_PATH
                    | CARD_UPDATE_PATH
                    | DING_SEND_PATH
                    | DING_READ_PATH
                    | ONE_TO_ONE_PATH
            ) =>
        {
            let status = StatusCode::from_u16(status).expect("an HTTP status");
            openapi::error(status, &code, "injected by the test")
        }
        Mode::OpenApiError(..) => shared.evaluate(&call),
        Mode::Hang | Mode::Refuse => {
            // Makes hyper drop the connection without answering.
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "fake DingTalk is refusing connections",
            ));
        }
    };
    if let Some(on_delivered) = &shared.on_delivered
        && answer.delivered()
    {
        on_delivered(&Request {
            errcode: answer.errcode(),
            http_status: answer.status().as_u16(),
            ..Request::arrived(&call, arrived)
        });
    }
    shared.answered(index, &answer);
    Ok(answer.into_response())
}
