//! End-to-end tests of `load`.
