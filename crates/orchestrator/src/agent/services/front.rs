//! A web service's front: the fixed port nginx sends to, forwarding each request to the
//! version that serves now. Switching versions is one pointer swap; requests already on their
//! way finish on the version they started on, and the old version is stopped only once it
//! holds none.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The largest request body forwarded.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Headers about one connection, never forwarded.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRANSFER_ENCODING,
];

/// One version behind a front, and the requests it holds.
#[derive(Debug)]
pub struct Backend {
    address: SocketAddr,
    in_flight: AtomicUsize,
}

impl Backend {
    /// Waits until the backend holds no request, or `limit` passes.
    pub async fn drained(&self, limit: Duration) {
        let started = Instant::now();
        while self.in_flight.load(Ordering::SeqCst) > 0 && started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The front of one port.
pub struct Front {
    backend: RwLock<Option<Arc<Backend>>>,
    http: reqwest::Client,
}

impl Front {
    /// Listens on `address` and forwards to whatever backend is set.
    pub async fn serve(address: SocketAddr) -> Result<Arc<Front>, String> {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|err| format!("cannot listen on {address}: {err}"))?;
        Front::serve_on(listener)
    }

    /// The same, on a socket already bound.
    pub fn serve_on(listener: tokio::net::TcpListener) -> Result<Arc<Front>, String> {
        let address = listener.local_addr().map_err(|err| err.to_string())?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(address.ip())
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|err| err.to_string())?;
        let front = Arc::new(Front { backend: RwLock::new(None), http });
        let app = axum::Router::new().fallback(forward).with_state(Arc::clone(&front));
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(%err, "a service front stopped");
            }
        });
        Ok(front)
    }

    /// Sends new requests to `address` from now on; returns the backend it replaces.
    pub fn switch(&self, address: Option<SocketAddr>) -> Option<Arc<Backend>> {
        let next =
            address.map(|address| Arc::new(Backend { address, in_flight: AtomicUsize::new(0) }));
        std::mem::replace(&mut *self.backend.write().expect("not poisoned"), next)
    }
}

/// Counts a request against its backend for as long as it lives.
struct InFlight(Arc<Backend>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn forward(State(front): State<Arc<Front>>, request: Request) -> Response {
    let Some(backend) = front.backend.read().expect("not poisoned").clone() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no version of this service runs yet")
            .into_response();
    };
    backend.in_flight.fetch_add(1, Ordering::SeqCst);
    let _counted = InFlight(Arc::clone(&backend));

    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut outgoing =
        front.http.request(parts.method, format!("http://{}{path}", backend.address)).body(body);
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(err) => {
            tracing::warn!(err = %err.without_url(), "a service did not answer its front");
            return (StatusCode::BAD_GATEWAY, "the service did not answer").into_response();
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let Ok(bytes) = answer.bytes().await else {
        return (StatusCode::BAD_GATEWAY, "the service's answer broke off").into_response();
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if !HOP_BY_HOP.contains(name) && name != header::CONTENT_LENGTH {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}
