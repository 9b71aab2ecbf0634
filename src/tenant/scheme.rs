//! [`Tenanted`]: a scheme whose secrets depend on the tenant a request names.

use std::{fmt, sync::Arc};

use bytes::Bytes;
use http::request::Parts;

use super::{
    Tenants,
    cache::{Cache, Keyed, Step, wait},
};
use crate::{
    ConfigError, Rejection, Secret,
    scheme::{Delivery, Hmac, Resolution, Scheme, SignatureError, Signed, Token, UrlSigned},
};

/// A scheme that can be keyed with other secrets: what [`Tenanted`] makes of each tenant's.
pub trait Rekey: Scheme + Sized {
    /// The same scheme, keyed with `secrets` (any one matching is enough).
    ///
    /// # Errors
    ///
    /// When a secret cannot be a key of the scheme (empty, or not in its format).
    fn rekey(&self, secrets: &[Secret]) -> Result<Self, ConfigError>;
}

impl Rekey for Hmac {
    fn rekey(&self, secrets: &[Secret]) -> Result<Self, ConfigError> {
        self.with_secrets(secrets)
    }
}

impl Rekey for UrlSigned {
    fn rekey(&self, secrets: &[Secret]) -> Result<Self, ConfigError> {
        self.with_secrets(secrets)
    }
}

impl Rekey for Token {
    fn rekey(&self, secrets: &[Secret]) -> Result<Self, ConfigError> {
        self.with_secrets(secrets)
    }
}

/// A scheme verifying each request with the secrets of the tenant it names: the tenant is read
/// from the request head ([`Tenants`] says where), its secrets are looked up and cached, and the
/// request is verified with `Sc` keyed with them. Build it with a preset's `tenant_layer`, or
/// [`Tenanted::new`] for a scheme of your own.
///
/// A request for a tenant that does not exist (or names none) is refused exactly as a wrong
/// signature is, 401 `webhook signature does not match`, after its body is read and a MAC
/// computed over it: the answer says nothing about which tenants exist.
pub struct Tenanted<Sc> {
    cache: Arc<Cache<Sc>>,
}

impl<Sc: Rekey> Tenanted<Sc> {
    /// A scheme verifying with `template` keyed with each tenant's secrets, as `tenants` finds
    /// them. `template`'s own keys only ever check requests for unknown tenants, whose result
    /// is thrown away; any valid secret will do.
    pub fn new(template: Sc, tenants: &Tenants) -> Self {
        let cache = Arc::new(Cache::new(template, tenants.settings.clone()));
        tenants.register(&cache);
        Self { cache }
    }

    /// How many tenants this scheme has cached, or is looking up.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Forgets `tenant`; see [`Tenants::invalidate`].
    pub fn invalidate(&self, tenant: &str) {
        self.cache.invalidate(tenant);
    }
}

/// What [`Tenanted`] reads from a request head: the signature, then the tenant it resolved.
pub struct TenantSignature<Sc: Scheme> {
    signature: Sc::Signature,
    /// `None`: no such tenant (or none named).
    tenant: Option<Arc<Keyed<Sc>>>,
}

impl<Sc: Scheme> TenantSignature<Sc> {
    /// The tenant the request was resolved to; `None` before [`Scheme::resolve`] and for an
    /// unknown tenant.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_ref().map(|tenant| &*tenant.id)
    }
}

impl<Sc: Scheme> fmt::Debug for TenantSignature<Sc>
where
    Sc::Signature: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantSignature")
            .field("signature", &self.signature)
            .field("tenant", &self.tenant())
            .finish()
    }
}

impl<Sc: Rekey> Scheme for Tenanted<Sc> {
    type Signature = TenantSignature<Sc>;

    /// The template's signature: a malformed header is refused before any lookup.
    fn signature(&self, head: &Parts) -> Result<Self::Signature, SignatureError> {
        Ok(TenantSignature {
            signature: self.cache.template.signature(head)?,
            tenant: None,
        })
    }

    fn resolve(
        &self,
        head: &mut Parts,
        mut signature: Self::Signature,
    ) -> Resolution<Self::Signature> {
        let settings = &self.cache.settings;
        let Some(id) = settings.source.read(head) else {
            return Resolution::Ready(Ok(signature));
        };
        if settings
            .accept
            .as_ref()
            .is_some_and(|accept| !accept.accepts(&id))
        {
            return Resolution::Ready(Ok(signature));
        }
        match self.cache.step(&id) {
            Step::Known(tenant) => {
                signature.tenant = tenant;
                Resolution::Ready(Ok(signature))
            }
            Step::Failed(err) => Resolution::Ready(Err(Rejection::Tenant(err))),
            Step::Wait(outcome) => Resolution::Pending(Box::pin(async move {
                signature.tenant = wait(outcome).await.map_err(Rejection::Tenant)?;
                Ok(signature)
            })),
        }
    }

    fn verify(&self, signature: &Self::Signature, body: &Bytes) -> Result<Signed, SignatureError> {
        match &signature.tenant {
            Some(tenant) => tenant.scheme.verify(&signature.signature, body),
            None => {
                // The same work as a wrong signature for a tenant with one secret, and the same
                // answer whatever its result.
                let _ =
                    std::hint::black_box(self.cache.template.verify(&signature.signature, body));
                Err(SignatureError::Mismatch)
            }
        }
    }

    fn name(&self) -> &str {
        self.cache.template.name()
    }

    fn delivery(&self, head: &Parts, signature: &Self::Signature, signed: &Bytes) -> Delivery {
        match &signature.tenant {
            Some(tenant) => Delivery {
                tenant: Some(Arc::clone(&tenant.id)),
                ..tenant.scheme.delivery(head, &signature.signature, signed)
            },
            None => self
                .cache
                .template
                .delivery(head, &signature.signature, signed),
        }
    }
}

impl<Sc: fmt::Debug> fmt::Debug for Tenanted<Sc> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenanted")
            .field("scheme", &self.cache.template)
            .field("settings", &self.cache.settings)
            .finish_non_exhaustive()
    }
}
