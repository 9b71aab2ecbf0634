//! The verifying middleware: collect the body with a limit, verify its signature, decode the
//! event, then call the inner service with a [`Verified`](crate::Verified) extension.
//!
//! A request goes through the files of this module in order: [`VerifyWebhookLayer`] (`layer.rs`)
//! is the configuration; [`VerifyWebhook`] (`service.rs`) refuses what it can from the head
//! alone; [`ResponseFuture`] (`future.rs`) collects the body (`body.rs`), verifies and decodes it,
//! then drives the inner service. Refusals and their responses are in the crate's
//! [`Rejection`](crate::Rejection) and [`RejectionResponse`](crate::RejectionResponse).
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_webhook::{Verified, provider::videonest, verify::VerifyWebhookLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layer: VerifyWebhookLayer<_, videonest::Event> = videonest::layer(["s3cret"])?;
//! let service = ServiceBuilder::new()
//!     .layer(layer)
//!     .service_fn(|request: Request<Full<Bytes>>| async move {
//!         let event_type = request
//!             .extensions()
//!             .get::<Verified<videonest::Event>>()
//!             .map(|verified| verified.event_type().to_owned());
//!         Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(
//!             event_type.unwrap_or_default(),
//!         ))))
//!     });
//!
//! let request = videonest::signed_request("s3cret", r#"{"event":"video.processed","data":{}}"#)?;
//! let response = service.oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```

mod body;
mod future;
mod layer;
mod service;
mod trace;

pub use self::{
    future::ResponseFuture,
    layer::{DEFAULT_MAX_BODY_SIZE, VerifyWebhookLayer},
    service::VerifyWebhook,
};
