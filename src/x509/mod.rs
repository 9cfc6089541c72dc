//! X.509 certificates as kvd judges them, in one place for the TLS layer ([`crate::tls`]:
//! the listeners and kvd's own dials) and for `kvd pki` ([`crate::pki`]: `inspect`, `check`
//! and its live handshake), so that the server and the doctor judge a chain alike.
//!
//! Module map:
//! - `cert.rs`: facts about one parsed certificate (names, SANs, usages, times, serials) and
//!   Go's host-name rules;
//! - `chain.rs`: [`TrustStore`] (CA bundle and CRLs) and chain verification: webpki for v3
//!   chains, then Go's and etcd's extra checks (EKU along the chain, root validity, CRLs);
//! - `failure.rs`: [`Failure`], a refusal in Go's words;
//! - `v1.rs`: kvd's own verification for chains webpki refuses to read (X.509 v1
//!   certificates, a CA certificate as the end entity), with the same checks;
//! - `sig.rs`: handshake signatures, also for v1 certificates;
//! - `pem.rs`: scanning PEM files.
//!
//! This module knows nothing about files, settings or the network; it must not import
//! `tls`, `pki` or the server.

pub(crate) mod cert;
pub(crate) mod chain;
mod failure;
pub(crate) mod pem;
pub(crate) mod sig;
mod v1;

pub(crate) use chain::{Failure, TrustStore};
