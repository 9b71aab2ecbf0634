use std::{
    fmt, mem,
    sync::Arc,
    task::{Context, Poll},
};

use http::{HeaderValue, Request, Response, Version, header::CONNECTION};
use tower::Service;

use super::{
    DedupeKey, DedupeLayer,
    future::ResponseFuture,
    store::{Store, Token},
    tenant_key,
};
use crate::{Rejection, RejectionResponse, Verified, meter::Label, rejection::respond};

/// Middleware that runs the inner service once per event; made by [`DedupeLayer`].
///
/// See the [module docs](super) for the semantics.
pub struct Dedupe<S, E, St, R> {
    pub(crate) inner: S,
    pub(crate) layer: DedupeLayer<E, St, R>,
}

impl<S, E, St, R> Dedupe<S, E, St, R> {
    inner_service_accessors!();
}

impl<S, E, St, R, B, ResBody> Service<Request<B>> for Dedupe<S, E, St, R>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    E: Send + Sync + 'static,
    St: Store,
    R: RejectionResponse<ResBody> + Clone,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B, St, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let layer = &self.layer;
        let Some(verified) = request.extensions().get::<Verified<E>>() else {
            let rejection = Rejection::NotVerified {
                event: std::any::type_name::<E>(),
            };
            let mut response = respond(&layer.rejection, rejection);
            // Without the verifying layer in front, the request body may be unread.
            if request.version() <= Version::HTTP_11 {
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            return ResponseFuture::answered(response);
        };
        let label = Label::new(verified.provider_name());
        let key = (layer.key)(verified).map(|key| {
            let namespace = layer.namespace.as_deref().unwrap_or(verified.provider());
            Arc::<str>::from(tenant_key(namespace, verified.tenant(), &key))
        });
        let mut request = request;
        let claim = key.map(|key| (key, Token::random()));
        if let Some((key, token)) = &claim {
            request.extensions_mut().insert(DedupeKey::new(
                Arc::clone(key),
                layer.retention,
                token.clone(),
            ));
        }
        // The instance that was driven to readiness goes with the request.
        let clone = self.inner.clone();
        let inner = mem::replace(&mut self.inner, clone);
        match claim {
            // Nothing to deduplicate by: the event is processed, as it would be without the layer.
            None => ResponseFuture::unguarded(inner, request, &label),
            Some((key, token)) => {
                ResponseFuture::claiming(inner, request, key, token, layer, label)
            }
        }
    }
}

impl<S: Clone, E, St, R: Clone> Clone for Dedupe<S, E, St, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, E, St: fmt::Debug, R> fmt::Debug for Dedupe<S, E, St, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dedupe")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}
