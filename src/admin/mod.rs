//! An admin page for a queue (feature `admin`): its stats, its dead letters with their error
//! and payload, and buttons that replay or purge them. A tower service that any stack mounts,
//! behind its own authentication, as Sidekiq's web UI is: the page grants whoever reaches it
//! the power to replay and delete deliveries.
//!
//! Server-rendered HTML without JavaScript: every text from the queue is escaped, the payload
//! shown as indented JSON (or as text when it is not JSON). The buttons are forms posted with a
//! CSRF token the page carries (random per [`QueueAdmin`], compared in constant time), and a
//! browser's `Sec-Fetch-Site` other than `same-origin` is refused: another site cannot make an
//! operator's browser replay or purge. Responses forbid framing, scripts and caching.
//!
//! ```
//! use axum::{Router, body::Body};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
//! use tower_webhook::{admin::QueueAdmin, queue::MemoryQueue};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let queue = MemoryQueue::new(1_000);
//! // Put your authentication in front of it (a login, a Bearer token, a VPN-only listener).
//! let app = Router::new().nest_service("/admin", QueueAdmin::new(queue).mounted_at("/admin/"));
//!
//! let page = app.oneshot(Request::get("/admin/").body(Body::empty())?).await?;
//! assert_eq!(page.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```
//!
//! Routes, below where it is mounted: `GET` the page (`?after=ID` for the next page of dead
//! letters), `POST …/replay` and `POST …/purge` with a form of `csrf` and either `all=1` or one
//! or more `id` (answered `303 See Other` back to the page, which says what was done).

mod page;
mod service;

pub use self::service::{DEFAULT_PAGE_SIZE, QueueAdmin, ResponseFuture};
