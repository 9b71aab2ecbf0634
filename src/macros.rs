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
