//! tower-webhook in front of a plain hyper 1 server, without any framework.
//!
//! ```text
//! cargo run --example hyper
//! ```
//!
//! The layer turns hyper's `Request<Incoming>` into the `Request<Full<Bytes>>` the handler takes;
//! `TowerToHyperService` adapts the tower service to hyper.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tower::ServiceBuilder;
use tower_webhook::{Verified, provider::videonest};

async fn handle(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let webhook = request
        .extensions()
        .get::<Verified<videonest::Event>>()
        .expect("VerifyWebhookLayer runs first");
    println!("{} {:?}", webhook.event_type(), webhook.id());
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let service = ServiceBuilder::new()
        .layer(videonest::layer(["demo_videonest_signing_secret"])?)
        .service_fn(handle);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            if let Err(err) = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection error: {err}");
            }
        });
    }
}
