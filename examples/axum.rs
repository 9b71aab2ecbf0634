//! tower-webhook in an axum app: one route per provider, each wrapped with its preset.
//!
//! ```text
//! cargo run --example axum
//! ```
//!
//! Then send it a signed request, for example (the signature is the HMAC-SHA256 of the body with
//! the secret `demo_videonest_signing_secret`):
//!
//! ```text
//! body='{"event":"video.processed","data":{"id":"vid_1"}}'
//! sig=$(printf %s "$body" | openssl dgst -sha256 -hmac demo_videonest_signing_secret | cut -d' ' -f2)
//! curl -i localhost:3000/webhooks/videonest -H "X-VideoNest-Signature: $sig" -d "$body"
//! ```

use axum::{Extension, Router, routing::post};
use tower_webhook::{
    Verified,
    provider::{videoaiditor, videonest},
};

async fn videonest_webhook(
    Extension(webhook): Extension<Verified<videonest::Event>>,
) -> &'static str {
    match webhook.event() {
        videonest::Event::VideoProcessed(payload) => {
            println!("video {:?} is ready", payload.data.id);
        }
        videonest::Event::DistributionFailed(payload) => {
            println!(
                "distribution to {:?} failed: {:?}",
                payload.data.partner_name, payload.data.error_message
            );
        }
        other => println!("videonest event {}", other.event_type()),
    }
    "ok"
}

async fn videoaiditor_webhook(
    Extension(webhook): Extension<Verified<videoaiditor::Event>>,
) -> &'static str {
    if let videoaiditor::Event::RenderCompleted(render) = webhook.event() {
        println!("render {:?} finished: {:?}", render.id, render.output_url);
    } else {
        println!("videoaiditor event {}", webhook.event_type());
    }
    "ok"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `post(handler).route_layer(..)`: only POSTs to the webhook paths are verified, so other
    // methods still get 405 and unknown paths 404.
    let app = Router::new()
        .route(
            "/webhooks/videonest",
            post(videonest_webhook)
                .route_layer(videonest::layer(["demo_videonest_signing_secret"])?),
        )
        .route(
            "/webhooks/videoaiditor",
            post(videoaiditor_webhook)
                .route_layer(videoaiditor::layer(["demo_videoaiditor_secret"])?),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
