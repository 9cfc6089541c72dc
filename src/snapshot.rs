//! Consistent point-in-time images of the member's state for the Maintenance Snapshot stream.

use crate::api::{ApiError, Core};

/// A consistent image of the state (every state record, length-prefixed) at one applied index.
///
/// # Errors
/// Storage failure.
pub fn consistent_image(core: &Core) -> Result<Vec<u8>, ApiError> {
    let _guard = core.state.mvcc.read();
    let records = core.engine.state_scan_prefix(b"").map_err(|e| {
        tracing::error!(error = %e, "snapshot: storage failure");
        ApiError::Corrupt
    })?;
    let mut out = Vec::new();
    for (k, v) in records {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(&k);
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(&v);
    }
    Ok(out)
}
