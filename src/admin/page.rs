//! The page itself: HTML written out by hand, every text from the queue escaped.

use std::{fmt::Write as _, time::SystemTime};

use crate::queue::{DeadLetter, DeadLetterPage, MessageId, QueueStats};

/// What was just done, said at the top of the page.
#[derive(Debug, Clone, Copy)]
pub(super) enum Notice {
    Replayed(u64),
    Purged(u64),
}

/// What a page shows.
pub(super) struct View<'a> {
    /// Where the service is mounted, ending with `/`.
    pub(super) base: &'a str,
    pub(super) csrf: &'a str,
    pub(super) stats: QueueStats,
    pub(super) listed: &'a DeadLetterPage,
    /// The dead letter this page starts after, if not the first page.
    pub(super) after: Option<&'a MessageId>,
    pub(super) notice: Option<Notice>,
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped: safe in element content and in quoted
/// attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` as a query value (`%XX` for anything but unreserved characters).
fn query_value(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A time as RFC 3339 in UTC, or `-`.
fn when(at: Option<SystemTime>) -> String {
    at.and_then(|at| {
        time::OffsetDateTime::from(at)
            .format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_else(|| "-".to_owned())
}

/// The payload as indented JSON when it is JSON, as text otherwise; the signed body inside a
/// stored delivery shown as indented JSON too.
fn payload(letter: &DeadLetter) -> String {
    match serde_json::from_slice::<serde_json::Value>(&letter.payload) {
        Ok(mut value) => {
            // A stored delivery keeps its signed body as base64: show the body itself.
            if let Ok(delivery) = letter.delivery::<serde_json::Value>()
                && let Some(verified) = value.get_mut("verified")
                && let Some(body) = verified.get_mut("body")
            {
                *body = serde_json::from_slice(delivery.body()).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(delivery.body()).into())
                });
            }
            serde_json::to_string_pretty(&value).unwrap_or_default()
        }
        Err(_) => String::from_utf8_lossy(&letter.payload).into_owned(),
    }
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .8em;text-align:left}\
section{border:1px solid #ddd;border-radius:4px;padding:.5em 1em;margin:1em 0}\
pre{background:#f6f6f6;padding:.5em;overflow:auto;max-height:20em}\
.notice{background:#e8f4e8;padding:.5em 1em}form{display:inline}button{margin-right:.5em}\
dt{font-weight:bold;float:left;clear:left;width:9em}dd{margin-left:10em}";

/// A form posting `fields` to `<base><action>` with the CSRF token, as one button.
fn form(out: &mut String, view: &View<'_>, action: &str, fields: &[(&str, &str)], label: &str) {
    let _ = write!(
        out,
        "<form method=\"post\" action=\"{}{action}\"><input type=\"hidden\" name=\"csrf\" \
         value=\"{}\">",
        escape(view.base),
        escape(view.csrf),
    );
    for (name, value) in fields {
        let _ = write!(
            out,
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
            escape(value)
        );
    }
    let _ = write!(out, "<button type=\"submit\">{label}</button></form>");
}

/// The whole page.
pub(super) fn render(view: &View<'_>) -> String {
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Webhook queue</title><style>{STYLE}</style></head><body><h1>Webhook queue</h1>"
    );
    match view.notice {
        Some(Notice::Replayed(n)) => {
            let _ = write!(
                out,
                "<p class=\"notice\" id=\"notice\">Replayed {n} dead letter(s).</p>"
            );
        }
        Some(Notice::Purged(n)) => {
            let _ = write!(
                out,
                "<p class=\"notice\" id=\"notice\">Purged {n} dead letter(s).</p>"
            );
        }
        None => {}
    }
    let stats = view.stats;
    let _ = write!(
        out,
        "<table id=\"stats\"><tr><th>ready</th><th>pending</th><th>delayed</th><th>dead</th></tr>\
         <tr><td id=\"ready\">{}</td><td id=\"pending\">{}</td><td id=\"delayed\">{}</td>\
         <td id=\"dead\">{}</td></tr></table><h2>Dead letters</h2>",
        stats.ready, stats.pending, stats.delayed, stats.dead
    );
    if view.listed.letters.is_empty() {
        out.push_str("<p id=\"empty\">No dead letters.</p>");
    } else {
        out.push_str("<p>");
        form(&mut out, view, "replay", &[("all", "1")], "Replay all");
        form(&mut out, view, "purge", &[("all", "1")], "Purge all");
        out.push_str("</p>");
    }
    for letter in &view.listed.letters {
        let delivery = letter.delivery::<serde_json::Value>().ok();
        let described = |read: fn(&crate::queue::Delivery<serde_json::Value>) -> Option<&str>| {
            delivery
                .as_ref()
                .and_then(read)
                .map_or_else(|| "-".to_owned(), escape)
        };
        let _ = write!(
            out,
            "<section class=\"dead-letter\"><h3>{id}</h3><dl>\
             <dt>provider</dt><dd>{provider}</dd>\
             <dt>event</dt><dd>{event}</dd>\
             <dt>delivery id</dt><dd>{delivery_id}</dd>\
             <dt>error</dt><dd class=\"error\">{error}</dd>\
             <dt>attempts</dt><dd>{attempts}</dd>\
             <dt>replays</dt><dd>{replays}</dd>\
             <dt>first failed</dt><dd>{first}</dd>\
             <dt>failed</dt><dd>{last}</dd>\
             <dt>message id</dt><dd>{message}</dd></dl>\
             <pre class=\"payload\">{payload}</pre><p>",
            id = escape(&letter.id.0),
            provider = described(|d| Some(d.provider())),
            event = described(|d| d.delivery_event_type()),
            delivery_id = described(|d| d.delivery_id()),
            error = escape(&letter.error),
            attempts = letter.attempts,
            replays = letter.replays,
            first = when(letter.first_failed_at),
            last = when(letter.failed_at),
            message = escape(&letter.message_id.0),
            payload = escape(&payload(letter)),
        );
        form(&mut out, view, "replay", &[("id", &letter.id.0)], "Replay");
        form(&mut out, view, "purge", &[("id", &letter.id.0)], "Purge");
        out.push_str("</p></section>");
    }
    out.push_str("<p>");
    if view.after.is_some() {
        let _ = write!(out, "<a href=\"{}\">First page</a> ", escape(view.base));
    }
    if let Some(next) = &view.listed.next {
        let _ = write!(
            out,
            "<a id=\"next\" href=\"{}?after={}\">Next page</a>",
            escape(view.base),
            escape(&query_value(&next.0))
        );
    }
    out.push_str("</p></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }
}
