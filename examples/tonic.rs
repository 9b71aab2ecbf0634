//! tower-webhook beside a gRPC service: one tonic server, one port, serving tonic-health's
//! `Health` service over gRPC and a verified VideoNest webhook route over plain HTTP.
//!
//! ```text
//! cargo run --example tonic [-- ADDR]
//! ```
//!
//! `ADDR` defaults to `127.0.0.1:3000`; ctrl-c stops the server. Then send it a signed webhook
//! (the signature is the HMAC-SHA256 of the body with the secret
//! `demo_videonest_signing_secret`):
//!
//! ```text
//! body='{"event":"video.processed","data":{"id":"vid_1"}}'
//! sig=$(printf %s "$body" | openssl dgst -sha256 -hmac demo_videonest_signing_secret | cut -d' ' -f2)
//! curl -i localhost:3000/webhooks/videonest -H "X-VideoNest-Signature: $sig" -d "$body"
//! ```
//!
//! and a gRPC health check, for example with `grpcurl -plaintext -import-path <dir> -proto
//! health.proto localhost:3000 grpc.health.v1.Health/Check` (the server has no reflection).
//!
//! The layer wraps the webhook route only, never the whole gRPC server: gRPC calls carry no
//! webhook signature, so a server-wide layer would refuse every one of them.

use std::{future::Future, net::SocketAddr};

use axum::{Extension, Router, handler::Handler, routing::post};
use tokio::net::TcpListener;
use tonic::{
    service::Routes,
    transport::{Server, server::TcpIncoming},
};
use tower_webhook::{ConfigError, Verified, provider::videonest};

/// Where the webhook route is; gRPC methods are at `/<package>.<Service>/<Method>`.
///
/// (The items shared with `tests/tonic.rs`, which runs this very stack, are `pub(crate)`.)
pub(crate) const WEBHOOK_PATH: &str = "/webhooks/videonest";

const SECRET: &str = "demo_videonest_signing_secret";

/// The gRPC `Health` service and the webhook route in one router. `handler` is the webhook
/// handler; it runs only for POSTs to [`WEBHOOK_PATH`] whose signature checks out.
pub(crate) fn routes<H, T>(secret: &str, handler: H) -> Result<Routes, ConfigError>
where
    H: Handler<T, ()>,
    T: 'static,
{
    // The reporter sets the status of services; this example keeps the default, `Serving`.
    let (_reporter, health) = tonic_health::server::health_reporter();
    let webhooks = Router::new().route(
        WEBHOOK_PATH,
        post(handler).route_layer(videonest::layer([secret])?),
    );
    // `Routes` is an axum router (with tonic's `Unimplemented` fallback for unknown paths), so
    // the webhook router merges into it.
    Ok(Routes::new(health)
        .into_axum_router()
        .merge(webhooks)
        .into())
}

/// Serves `routes` on `listener` until `shutdown` completes.
pub(crate) async fn serve(
    listener: TcpListener,
    routes: Routes,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        // tonic accepts only HTTP/2 unless told otherwise; webhook senders speak HTTP/1.1.
        .accept_http1(true)
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
}

async fn webhook(Extension(hook): Extension<Verified<videonest::Event>>) -> &'static str {
    println!("{} for {:?}", hook.event_type(), hook.id());
    "ok"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|_| format!("{arg:?} is not an address such as 127.0.0.1:3000"))?,
        None => SocketAddr::from(([127, 0, 0, 1], 3000)),
    };
    let routes = routes(SECRET, webhook)?;
    let listener = TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    serve(listener, routes, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
