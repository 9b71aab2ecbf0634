//! Macros the middleware share.

/// `get_ref`, `get_mut` and `into_inner` for a middleware whose inner service is its `inner`
/// field, as tower-http's middleware have them.
macro_rules! inner_service_accessors {
    () => {
        /// A reference to the inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// A mutable reference to the inner service.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// The inner service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

/// Builder methods that each set one field from their argument and return the builder:
///
/// ```ignore
/// setters! {
///     /// Holds at most `max_len` messages (at least 1).
///     #[must_use]
///     pub fn max_len(max_len: u64) { max_len = max_len.max(1) }
/// }
/// ```
///
/// is `pub fn max_len(mut self, max_len: u64) -> Self { self.max_len = max_len.max(1); self }`
/// with its doc and attributes; `{ a = x, b = y }` sets two fields. The values are computed from
/// the argument alone; a setter that reads the builder is written out.
macro_rules! setters {
    ($(
        $(#[$attr:meta])*
        $vis:vis fn $method:ident($arg:ident: $ty:ty) { $($($field:ident).+ = $value:expr),+ }
    )*) => {
        $(
            $(#[$attr])*
            $vis fn $method(mut self, $arg: $ty) -> Self {
                $(self.$($field).+ = $value;)+
                self
            }
        )*
    };
}
