//! Nothing here: the benchmark is `benches/svix.rs`.
