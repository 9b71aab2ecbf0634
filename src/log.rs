//! Events for `tracing` (feature `tracing`) on the paths where something failed: store and
//! queue errors, dead letters, worker failures. Without the feature the macros expand to
//! nothing and their arguments are not evaluated.
//!
//! Fields hold metadata only (provider, event type, delivery id, keys, queue ids, attempts,
//! error messages): never a secret, a signature or any of the payload.

/// A `tracing::warn!` event with the `tracing` feature; nothing without it.
macro_rules! log_warn {
    ($($arg:tt)+) => {{
        #[cfg(feature = "tracing")]
        {
            ::tracing::warn!($($arg)+);
        }
    }};
}

/// A `tracing::error!` event with the `tracing` feature; nothing without it.
macro_rules! log_error {
    ($($arg:tt)+) => {{
        #[cfg(feature = "tracing")]
        {
            ::tracing::error!($($arg)+);
        }
    }};
}

/// A `tracing::info!` event with the `tracing` feature; nothing without it.
#[allow(unused_macros)]
macro_rules! log_info {
    ($($arg:tt)+) => {{
        #[cfg(feature = "tracing")]
        {
            ::tracing::info!($($arg)+);
        }
    }};
}

/// A `tracing::debug!` event with the `tracing` feature; nothing without it.
#[allow(unused_macros)]
macro_rules! log_debug {
    ($($arg:tt)+) => {{
        #[cfg(feature = "tracing")]
        {
            ::tracing::debug!($($arg)+);
        }
    }};
}

/// An error and its sources, on one line (`a: b: c`), for an event's `error` field.
#[cfg(feature = "tracing")]
pub(crate) struct ErrorChain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

#[cfg(feature = "tracing")]
impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}
