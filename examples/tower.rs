//! tower-webhook in a plain tower stack: `ServiceBuilder` + `service_fn`, called directly.
//!
//! ```text
//! cargo run --example tower
//! ```
//!
//! Useful to see the layer's decisions without any server: it signs a few requests, sends them
//! through the service, and prints each status and the rejection reason.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full};
use tower::{ServiceBuilder, ServiceExt as _};
use tower_webhook::{Rejection, Verified, provider::videoaiditor};

async fn handle(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let webhook = request
        .extensions()
        .get::<Verified<videoaiditor::Event>>()
        .expect("VerifyWebhookLayer runs first");
    let text = format!(
        "handled {} for render {:?}",
        webhook.event_type(),
        webhook.id()
    );
    Ok(Response::new(Full::new(Bytes::from(text))))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let layer = videoaiditor::layer(["demo_videoaiditor_secret"])?;
    let body = r#"{"event":"render.completed","data":{"_id":"render-1","status":"completed"}}"#;
    let good = videoaiditor::headers("demo_videoaiditor_secret", body.as_bytes())?
        [videoaiditor::SIGNATURE_HEADER]
        .clone();
    let service = ServiceBuilder::new().layer(layer).service_fn(handle);

    let requests = [
        ("valid", Some(good.clone()), body.to_owned()),
        ("tampered", Some(good), body.replace("render-1", "render-2")),
        ("unsigned", None, body.to_owned()),
    ];
    for (name, signature, body) in requests {
        let mut request = Request::post("/webhook");
        if let Some(signature) = signature {
            request = request.header(videoaiditor::SIGNATURE_HEADER, signature);
        }
        let response = service
            .clone()
            .oneshot(request.body(Full::new(Bytes::from(body)))?)
            .await?;
        let status = response.status();
        let rejection = response.extensions().get::<Rejection>().cloned();
        let text = response.into_body().collect().await?.to_bytes();
        match rejection {
            Some(rejection) => println!("{name:>8}: {status} ({rejection:?})"),
            None => println!("{name:>8}: {status} {}", String::from_utf8_lossy(&text)),
        }
    }
    Ok(())
}
