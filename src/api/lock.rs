//! Registration of the Lock and Election services on the client port.

use std::sync::Arc;

use super::Core;

/// Adds the Lock and Election services to `routes`.
pub fn add_services(routes: tonic::service::Routes, _core: Arc<Core>, _max: usize) -> tonic::service::Routes {
    routes
}
