//! The daemon's HTTP endpoint (`/metrics`, `/healthz`), served by hyper in
//! tasks of its own: a client that connects and sends nothing, or reads
//! slowly, holds one connection slot until its timeout and nothing else.
//! The answers come from the housekeeping loop over a channel ([`Ask`]),
//! which owns the tables; it never waits for a client.

use std::{convert::Infallible, sync::Arc, time::Duration};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use log::warn;
use tokio::{
    net::TcpListener,
    sync::{Semaphore, mpsc, oneshot},
};

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;
/// A client must send its request headers within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection lives at most this long, whatever it does.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for the housekeeping loop's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// A question for the housekeeping loop.
pub enum Ask {
    /// The metrics exposition, or why it cannot be had.
    Metrics(oneshot::Sender<Result<String, String>>),
    /// Whether the instance's programs are attached; why not otherwise.
    Health(oneshot::Sender<Result<(), String>>),
}

fn response(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// Asks the housekeeping loop; `Err` with a reason when it does not
/// answer in time (or is gone).
async fn ask<T>(
    asks: &mpsc::Sender<Ask>,
    make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Ask,
) -> Result<T, String> {
    let (tx, rx) = oneshot::channel();
    asks.send(make(tx))
        .await
        .map_err(|_| "the daemon is stopping".to_owned())?;
    match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => Err("the daemon is stopping".into()),
        Err(_) => Err("the daemon is busy (a reconcile in progress?); try again".into()),
    }
}

async fn handle(
    req: Request<Incoming>,
    asks: mpsc::Sender<Ask>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    const TEXT: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET {
        return Ok(response(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "GET only\n".into(),
        ));
    }
    Ok(match req.uri().path() {
        "/metrics" => match ask(&asks, Ask::Metrics).await {
            Ok(body) => response(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                body,
            ),
            Err(why) => response(StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{why}\n")),
        },
        "/healthz" => match ask(&asks, Ask::Health).await {
            Ok(()) => response(StatusCode::OK, TEXT, "ok\n".into()),
            Err(why) => response(StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{why}\n")),
        },
        _ => response(
            StatusCode::NOT_FOUND,
            TEXT,
            "try /metrics or /healthz\n".into(),
        ),
    })
}

/// Serves `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, asks: mpsc::Sender<Ask>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!("metrics: accept: {e}");
                continue;
            }
        };
        let asks = asks.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, asks.clone()));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            // Whatever the client does, the slot is free again by then.
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
            drop(slot);
        });
    }
}
