//! The layer with tonic 0.14: `DefaultRejectionResponse::map_body` answers refusals with tonic's
//! body type.

mod common;

use std::{convert::Infallible, sync::atomic::Ordering};

use bytes::Bytes;
use common::{SECRET, VN_BODY, body_bytes, calls, count, expect_rejection, guard};
use http::{Request, Response, StatusCode, header::CONNECTION};
use http_body_util::Full;
use tower::{ServiceBuilder, ServiceExt};
use tower_webhook::{DefaultRejectionResponse, Rejection, SignatureError, provider::videonest};

fn signed(body: &'static [u8]) -> Request<Full<Bytes>> {
    videonest::signed_request(SECRET, body).expect("valid secret")
}

#[tokio::test]
async fn map_body_answers_with_tonic_body() {
    let handler_calls = calls();
    let inner_calls = handler_calls.clone();
    let service = ServiceBuilder::new()
        .layer(
            videonest::layer([SECRET])
                .unwrap()
                .rejection_response(DefaultRejectionResponse.map_body(tonic::body::Body::new)),
        )
        .service_fn(move |request: Request<Full<Bytes>>| {
            inner_calls.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok::<_, Infallible>(Response::new(tonic::body::Body::new(request.into_body())))
            }
        });

    // Refused: 401 with the text reason, the Rejection in the extensions, and the layer's
    // `Connection: close` (an HTTP/1.1 request whose body was left unread).
    let mut unsigned = signed(VN_BODY);
    unsigned.headers_mut().remove(videonest::SIGNATURE_HEADER);
    let response: Response<tonic::body::Body> =
        guard("unsigned", service.clone().oneshot(unsigned))
            .await
            .unwrap();
    assert_eq!(response.headers()[CONNECTION], "close");
    let (rejection, text) = expect_rejection(response, StatusCode::UNAUTHORIZED, SECRET).await;
    assert!(matches!(
        rejection,
        Rejection::Signature(SignatureError::Missing { .. })
    ));
    assert_eq!(
        text,
        "missing webhook signature header `x-videonest-signature`"
    );

    // Read in full, then refused: no `Connection` header.
    let mut tampered = signed(VN_BODY);
    *tampered.body_mut() = Full::new(Bytes::from_static(b"{}"));
    let response = guard("tampered", service.clone().oneshot(tampered))
        .await
        .unwrap();
    assert!(response.headers().get(CONNECTION).is_none());
    let (rejection, _) = expect_rejection(response, StatusCode::UNAUTHORIZED, SECRET).await;
    assert!(matches!(
        rejection,
        Rejection::Signature(SignatureError::Mismatch)
    ));
    assert_eq!(count(&handler_calls), 0);

    // Signed: the inner service's own response.
    let response = guard("signed", service.oneshot(signed(VN_BODY)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_bytes(response.into_body()).await, VN_BODY);
    assert_eq!(count(&handler_calls), 1);
}
