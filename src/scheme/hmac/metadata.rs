//! Where an HMAC scheme reads a delivery's event type and id, and whether the signature covers
//! what it read.

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::Part;

/// The longest header value read for an event type or a delivery id; longer ones are ignored.
const MAX_METADATA_LEN: usize = 1024;

/// Where an event type or a delivery id is read from; see [`HmacBuilder::event_type`](super::HmacBuilder::event_type).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// A request header (`X-GitHub-Event`).
    Header(HeaderName),
    /// A string (or number) in the signed JSON body, by JSON pointer (`/type`, `/event/type`).
    Json(String),
    /// A field of a signed `application/x-www-form-urlencoded` body (Slack's `command`).
    Form(String),
}

impl Field {
    /// A [`Field::Header`].
    ///
    /// # Panics
    ///
    /// When `name` is not a valid header name (a programming error in a constant).
    pub fn header(name: &str) -> Self {
        Self::Header(HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"))
    }

    /// A [`Field::Json`] for a JSON pointer such as `/type`.
    pub fn json(pointer: &str) -> Self {
        Self::Json(pointer.to_owned())
    }

    /// A [`Field::Form`].
    pub fn form(name: &str) -> Self {
        Self::Form(name.to_owned())
    }
}

/// Reads event types and delivery ids from the head and the signed body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Metadata {
    pub(crate) event_type: Vec<Field>,
    pub(crate) id: Vec<Field>,
    /// Other names of headers: `(name, alias)`.
    pub(crate) aliases: Vec<(HeaderName, HeaderName)>,
    /// The signature header: a request without it but with its alias is read by the aliases,
    /// every header of it (the signed ones and the metadata alike).
    pub(crate) signature_header: Option<HeaderName>,
    /// The headers the MAC covers (`Part::Header`): an id read from one of them is signed.
    pub(crate) signed_headers: Vec<HeaderName>,
}

impl Metadata {
    pub(super) fn needs_body(&self) -> bool {
        self.event_type
            .iter()
            .chain(&self.id)
            .any(|field| !matches!(field, Field::Header(_)))
    }

    /// The alias of header `name`, if it has one.
    pub(super) fn alias(&self, name: &HeaderName) -> Option<&HeaderName> {
        self.aliases
            .iter()
            .find_map(|(primary, alias)| (primary == name).then_some(alias))
    }

    /// Whether `head` is read by the aliases: it lacks the signature header and has its alias.
    pub(super) fn aliased(&self, head: &HeaderMap) -> bool {
        // A scheme without aliases (every preset but two) looks nothing up.
        self.signature_header.as_ref().is_some_and(|signature| {
            self.alias(signature)
                .is_some_and(|alias| !head.contains_key(signature) && head.contains_key(alias))
        })
    }

    /// The name header `name` goes by in a request read by the aliases (`aliased`) or not.
    pub(super) fn named<'a>(&'a self, name: &'a HeaderName, aliased: bool) -> &'a HeaderName {
        match self.alias(name) {
            Some(alias) if aliased => alias,
            _ => name,
        }
    }

    /// A header's text, under the one name the request's header set gives it: never the other
    /// set's, which the signature did not cover (a white-labelled Svix request signs
    /// `webhook-id`; an added `svix-id` must not replace it).
    pub(super) fn header(&self, head: &HeaderMap, name: &HeaderName) -> Option<String> {
        header_text(head, self.named(name, self.aliased(head)))
    }

    /// Whether a value read from `field` is covered by the signature: a field of the signed body
    /// is, a header is when the MAC covers it (a [`Part::Header`] of the template). GitHub's and
    /// Shopify's event type and id headers are not.
    pub(crate) fn is_signed(&self, field: &Field) -> bool {
        match field {
            Field::Header(name) => self.signed_headers.contains(name),
            Field::Json(_) | Field::Form(_) => true,
        }
    }

    /// The first of `fields` found, as [`read`](Self::read) finds it, and whether what was read
    /// is decided by signed data alone: the field it came from is signed, and so is every field
    /// before it in the list (or every field, when none is found).
    ///
    /// A signed field after an unsigned header is not enough: whoever replays a captured
    /// request can add that header, or take it away, and so choose between the two values.
    pub(crate) fn read_signed(
        &self,
        fields: &[Field],
        head: &HeaderMap,
        json: Option<&Value>,
        body: &[u8],
    ) -> (Option<String>, bool) {
        let mut signed = true;
        for field in fields {
            signed &= self.is_signed(field);
            if let Some(value) = self.read(std::slice::from_ref(field), Some(head), json, body) {
                return (Some(value), signed);
            }
        }
        (None, signed)
    }

    /// The first of `fields` found, in the head or in the body.
    pub(crate) fn read(
        &self,
        fields: &[Field],
        head: Option<&HeaderMap>,
        json: Option<&Value>,
        body: &[u8],
    ) -> Option<String> {
        fields.iter().find_map(|field| match field {
            Field::Header(name) => head.and_then(|head| self.header(head, name)),
            Field::Json(pointer) => match json?.pointer(pointer)? {
                Value::String(text) => Some(text.clone()),
                Value::Number(number) => Some(number.to_string()),
                _ => None,
            },
            Field::Form(name) => form_field(body, name),
        })
    }
}

/// The headers a signed-content template covers.
pub(super) fn signed_headers(parts: &[Part]) -> Vec<HeaderName> {
    parts
        .iter()
        .filter_map(|part| match part {
            Part::Header(name) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn header_text(head: &HeaderMap, name: &HeaderName) -> Option<String> {
    value_text(head.get(name)?)
}

/// A metadata header's text: UTF-8 and at most [`MAX_METADATA_LEN`] bytes, or nothing.
pub(super) fn value_text(value: &HeaderValue) -> Option<String> {
    if value.len() > MAX_METADATA_LEN {
        return None;
    }
    value.to_str().ok().map(str::to_owned)
}

/// The first value of `name` in a form-encoded body, percent-decoded.
pub(super) fn form_field(body: &[u8], name: &str) -> Option<String> {
    body.split(|b| *b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        (percent_decode(key)? == name.as_bytes())
            .then(|| percent_decode(value))
            .flatten()
            .and_then(|value| String::from_utf8(value).ok())
    })
}

pub(super) fn percent_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = (*bytes.next()? as char).to_digit(16)?;
                let lo = (*bytes.next()? as char).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            other => out.push(other),
        }
    }
    Some(out)
}
