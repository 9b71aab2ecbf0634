//! The admin page (feature `admin`) over an in-memory queue, request by request: what it
//! shows (escaped), its forms (CSRF token, same-origin only, bounded), paging, replay and purge.
//! `tests/admin_browser.rs` drives it in a real browser.
#![cfg(feature = "admin")]

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;
use tower_webhook::{
    admin::QueueAdmin,
    queue::{MemoryQueue, Pull, Queue},
};

/// `n` dead letters whose errors hold markup.
async fn dead_letters(queue: &MemoryQueue, n: usize) {
    for i in 0..n {
        let payload = format!(r#"{{"n":{i},"note":"<b>bold</b>"}}"#);
        queue.push(payload.into()).await.unwrap();
    }
    let taken = queue.pull("test", Pull::up_to(n)).await.unwrap();
    for message in taken {
        let error = format!("<script>alert({})</script>", message.id);
        queue.dead_letter(&message, &error).await.unwrap();
    }
}

async fn send(
    admin: &QueueAdmin<MemoryQueue>,
    request: Request<Full<Bytes>>,
) -> (StatusCode, String, Response<()>) {
    let response = admin.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let text = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (parts.status, text, Response::from_parts(parts, ()))
}

async fn page(admin: &QueueAdmin<MemoryQueue>, uri: &str) -> String {
    let request = Request::get(uri).body(Full::default()).unwrap();
    let (status, text, response) = send(admin, request).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let headers = response.headers();
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(
        headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    text
}

/// The CSRF token in a page's forms.
fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    page[at..at + 64].to_owned()
}

fn post(uri: &str, form: &str) -> Request<Full<Bytes>> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form.to_owned())))
        .unwrap()
}

#[tokio::test]
async fn the_page_shows_stats_and_dead_letters_escaped() {
    let queue = MemoryQueue::new(100);
    dead_letters(&queue, 2).await;
    queue.push("{}".into()).await.unwrap();
    let admin = QueueAdmin::new(queue).mounted_at("/admin");
    let html = page(&admin, "/admin/").await;
    assert!(
        html.contains("<td id=\"ready\">1</td>") && html.contains("<td id=\"dead\">2</td>"),
        "{html}"
    );
    assert_eq!(html.matches("class=\"dead-letter\"").count(), 2);
    assert!(
        !html.contains("<script>") && !html.contains("<b>bold"),
        "nothing from the queue is markup"
    );
    assert!(html.contains("&lt;script&gt;alert("));
    assert!(
        html.contains("&quot;note&quot;: &quot;&lt;b&gt;bold&lt;/b&gt;&quot;"),
        "the payload, indented JSON: {html}"
    );
    assert!(html.contains("action=\"/admin/replay\"") && html.contains("action=\"/admin/purge\""));
}

#[tokio::test]
async fn forms_need_the_token_and_the_same_origin_and_replay_or_purge() {
    let queue = MemoryQueue::new(100);
    dead_letters(&queue, 3).await;
    let admin = QueueAdmin::new(queue.clone()).mounted_at("/admin/");
    let html = page(&admin, "/admin/").await;
    let token = csrf(&html);
    let first = queue.dead_letters()[0].id.0.clone();

    let refused = [
        post("/admin/replay", &format!("id={first}")),
        post(
            "/admin/replay",
            &format!("csrf={}&id={first}", "0".repeat(64)),
        ),
        post(
            "/admin/replay",
            &format!("csrf={}&id={first}", &token[..63]),
        ),
    ];
    for request in refused {
        assert_eq!(send(&admin, request).await.0, StatusCode::FORBIDDEN);
    }
    let mut cross_site = post("/admin/purge", &format!("csrf={token}&all=1"));
    cross_site
        .headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    assert_eq!(send(&admin, cross_site).await.0, StatusCode::FORBIDDEN);
    let both = post("/admin/purge", &format!("csrf={token}&all=1&id={first}"));
    assert_eq!(send(&admin, both).await.0, StatusCode::BAD_REQUEST);
    let huge = post(
        "/admin/purge",
        &format!("csrf={token}&id={}", "x".repeat(70_000)),
    );
    assert_eq!(send(&admin, huge).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    let get_form = Request::get("/admin/replay").body(Full::default()).unwrap();
    assert_eq!(
        send(&admin, get_form).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(queue.stats().await.unwrap().dead, 3, "nothing was done");

    let mut same_origin = post("/admin/replay", &format!("csrf={token}&id={first}"));
    same_origin
        .headers_mut()
        .insert("sec-fetch-site", "same-origin".parse().unwrap());
    let (status, _, response) = send(&admin, same_origin).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/admin/?replayed=1");
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.ready, stats.dead), (1, 2));
    assert!(
        page(&admin, "/admin/?replayed=1")
            .await
            .contains("Replayed 1 dead letter(s).")
    );

    let (status, _, response) =
        send(&admin, post("/admin/purge", &format!("csrf={token}&all=1"))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/admin/?purged=2");
    assert_eq!(queue.stats().await.unwrap().dead, 0);
    assert!(page(&admin, "/admin/").await.contains("No dead letters."));
    // Another instance has a token of its own.
    let other = QueueAdmin::new(queue.clone());
    dead_letters(&queue, 1).await;
    let (status, ..) = send(&other, post("/purge", &format!("csrf={token}&all=1"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(queue.stats().await.unwrap().dead, 1);
}

#[tokio::test]
async fn dead_letters_are_shown_a_page_at_a_time() {
    let queue = MemoryQueue::new(100);
    dead_letters(&queue, 5).await;
    let admin = QueueAdmin::new(queue).mounted_at("/").page_size(2);
    let mut seen = 0;
    let mut uri = "/".to_owned();
    let mut pages = 0;
    loop {
        let html = page(&admin, &uri).await;
        pages += 1;
        seen += html.matches("class=\"dead-letter\"").count();
        let Some(at) = html.find("id=\"next\" href=\"") else {
            break;
        };
        let rest = &html[at + "id=\"next\" href=\"".len()..];
        uri = rest[..rest.find('"').unwrap()].replace("&amp;", "&");
    }
    assert_eq!((seen, pages), (5, 3));
}
