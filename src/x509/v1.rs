//! kvd's own chain verification, for what webpki refuses to parse or accept: X.509 v1
//! certificates (`openssl x509 -req` without `-extfile` makes them; etcd (Go) accepts them as
//! client certificates and as roots) and CA certificates presented as the end entity (Go
//! accepts those too). [`super::TrustStore::verify`] sends those chains here and every other
//! chain to webpki.
//!
//! The rules follow Go's `x509.Verify`, with the checks webpki applies to v3 chains:
//! - every certificate must be within its validity period (the leaf is checked first);
//! - each signature is verified with the issuer's public key (SHA-1 and MD5 are refused);
//! - intermediates must be CAs (basicConstraints `CA:TRUE`); roots from the bundle need
//!   not be (v1 roots have no extensions); path-length constraints apply;
//! - unknown critical extensions are refused; name constraints are refused too, as this
//!   path does not enforce them;
//! - extended key usage and CRLs as [`super::TrustStore::check_path`] checks them.
//!
//! It also words webpki's refusals: when both refuse a chain, the reason this search finds
//! (which candidate issuer failed and why) is the one reported, in Go's words.

use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;

use super::cert::{self, Usage};
use super::failure::{check_time, Failure};

/// Longest chain (leaf, intermediates, root) kvd tries to build.
const MAX_CHAIN: usize = 8;

/// A trusted CA certificate.
#[derive(Debug)]
pub(super) struct Anchor {
    pub(super) der: CertificateDer<'static>,
    pub(super) subject_raw: Vec<u8>,
}

/// The checks on a whole chain (leaf first, root last) that both paths share: extended key
/// usage along it and CRLs ([`super::TrustStore::check_path`]).
pub(super) type CheckPath<'a> = dyn Fn(&[&X509Certificate<'_>], Usage) -> Result<(), Failure> + 'a;

/// Verifies that `end_entity` (with the `intermediates` the peer sent) chains to one of
/// `anchors` at Unix time `now` and may be used for `usage`, finishing each candidate chain
/// with `check_path`.
pub(super) fn verify(
    anchors: &[Anchor],
    end_entity: &[u8],
    intermediates: &[CertificateDer<'_>],
    now: i64,
    usage: Usage,
    check_path: &CheckPath<'_>,
) -> Result<(), Failure> {
    let leaf = cert::parse(end_entity).map_err(Failure::Malformed)?;
    check_time(&leaf, now)?;
    check_extensions(&leaf, false)?;
    let inters: Vec<X509Certificate<'_>> = intermediates
        .iter()
        .filter_map(|d| cert::parse(d).ok())
        .collect();
    let mut search = Search {
        anchors,
        check_path,
        inters: &inters,
        now,
        usage,
        best: None,
    };
    // A certificate that is itself in the bundle is trusted as it is (as in Go).
    if let Some(i) = anchors.iter().position(|a| a.der.as_ref() == end_entity) {
        if search.complete(&leaf, &[Node::Anchor(i)]) {
            return Ok(());
        }
    }
    let mut chain = Vec::new();
    if search.extend(&leaf, &mut chain) {
        return Ok(());
    }
    Err(search
        .best
        .unwrap_or(Failure::UnknownAuthority { hint: None }))
}

/// A certificate above the leaf in a chain being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    /// `intermediates[i]`.
    Inter(usize),
    /// `anchors[i]`.
    Anchor(usize),
}

/// One chain search (depth-first over candidate issuers).
struct Search<'s, 'c> {
    anchors: &'s [Anchor],
    check_path: &'s CheckPath<'s>,
    inters: &'s [X509Certificate<'c>],
    now: i64,
    usage: Usage,
    best: Option<Failure>,
}

impl Search<'_, '_> {
    fn record(&mut self, failure: Failure) {
        if self
            .best
            .as_ref()
            .is_none_or(|b| failure.rank() >= b.rank())
        {
            self.best = Some(failure);
        }
    }

    /// Tries to finish the chain `leaf, chain...` at a trusted CA.
    fn extend(&mut self, leaf: &X509Certificate<'_>, chain: &mut Vec<Node>) -> bool {
        if chain.len() + 1 >= MAX_CHAIN {
            return false;
        }
        let anchors = self.anchors;
        let inters = self.inters;
        let child = match chain.last() {
            None => leaf,
            Some(Node::Inter(j)) => &inters[*j],
            Some(Node::Anchor(_)) => return false,
        };
        let issuer_raw = child.issuer().as_raw();
        // Trusted CAs first: the shortest chains.
        for (i, anchor) in anchors.iter().enumerate() {
            if anchor.subject_raw != issuer_raw {
                continue;
            }
            let Ok(ca) = cert::parse(&anchor.der) else {
                continue;
            };
            if let Err(f) = self.check_parent(child, &ca, chain.len() + 1, true) {
                self.record(f);
                continue;
            }
            chain.push(Node::Anchor(i));
            if self.complete(leaf, chain) {
                return true;
            }
            chain.pop();
        }
        for (j, ca) in inters.iter().enumerate() {
            if ca.subject().as_raw() != issuer_raw || chain.contains(&Node::Inter(j)) {
                continue;
            }
            if let Err(f) = self.check_parent(child, ca, chain.len() + 1, false) {
                self.record(f);
                continue;
            }
            chain.push(Node::Inter(j));
            if self.extend(leaf, chain) {
                return true;
            }
            chain.pop();
        }
        false
    }

    /// Checks a candidate issuer of `child` at position `depth` (the leaf is 0).
    fn check_parent(
        &self,
        child: &X509Certificate<'_>,
        parent: &X509Certificate<'_>,
        depth: usize,
        is_root: bool,
    ) -> Result<(), Failure> {
        check_signature(child, parent)?;
        check_time(parent, self.now)?;
        check_extensions(parent, true)?;
        let bc = parent
            .basic_constraints()
            .ok()
            .flatten()
            .map(|b| (b.value.ca, b.value.path_len_constraint));
        if !is_root && !bc.is_some_and(|(ca, _)| ca) {
            return Err(Failure::NotAuthorizedToSign);
        }
        if let Some(limit) = bc.and_then(|(_, limit)| limit) {
            let below = depth - 1;
            if below > limit as usize {
                return Err(Failure::TooManyIntermediates);
            }
        }
        Ok(())
    }

    /// A full chain: checks key usage along it and revocation (`check_path`);
    /// records why it fails.
    fn complete(&mut self, leaf: &X509Certificate<'_>, chain: &[Node]) -> bool {
        let parsed: Vec<X509Certificate<'_>> = chain
            .iter()
            .filter_map(|n| match n {
                Node::Inter(j) => Some(self.inters[*j].clone()),
                Node::Anchor(i) => cert::parse(&self.anchors[*i].der).ok(),
            })
            .collect();
        let mut all: Vec<&X509Certificate<'_>> = vec![leaf];
        all.extend(parsed.iter());
        // A leaf that is itself the anchor is listed twice; that is harmless.
        match (self.check_path)(&all, self.usage) {
            Ok(()) => true,
            Err(f) => {
                self.record(f);
                false
            }
        }
    }
}

/// Refuses critical extensions kvd does not handle, and name constraints on CAs.
fn check_extensions(c: &X509Certificate<'_>, as_ca: bool) -> Result<(), Failure> {
    const HANDLED: &[&str] = &[
        "2.5.29.14", // subjectKeyIdentifier
        "2.5.29.15", // keyUsage (not enforced, as in Go)
        "2.5.29.17", // subjectAltName
        "2.5.29.19", // basicConstraints
        "2.5.29.31", // cRLDistributionPoints
        "2.5.29.32", // certificatePolicies
        "2.5.29.35", // authorityKeyIdentifier
        "2.5.29.37", // extKeyUsage
    ];
    for ext in c.extensions() {
        let oid = ext.oid.to_id_string();
        if oid == "2.5.29.30" && as_ca {
            return Err(Failure::UnhandledCriticalExtension(format!(
                "name constraints in CA {:?}: kvd does not enforce them",
                cert::dn_string(c.subject())
            )));
        }
        if ext.critical && !HANDLED.contains(&oid.as_str()) {
            return Err(Failure::UnhandledCriticalExtension(oid));
        }
    }
    Ok(())
}

/// Verifies `child`'s signature with `parent`'s key, refusing SHA-1 as Go does.
fn check_signature(
    child: &X509Certificate<'_>,
    parent: &X509Certificate<'_>,
) -> Result<(), Failure> {
    let name = candidate_name(parent);
    let alg = child.signature_algorithm.algorithm.to_id_string();
    let insecure = match alg.as_str() {
        "1.2.840.113549.1.1.5" => Some("SHA1-RSA"),
        "1.2.840.10045.4.1" => Some("ECDSA-SHA1"),
        "1.2.840.10040.4.3" => Some("DSA-SHA1"),
        "1.2.840.113549.1.1.4" => Some("MD5-RSA"),
        _ => None,
    };
    if let Some(insecure) = insecure {
        return Err(Failure::UnknownAuthority {
            hint: Some((
                format!("x509: cannot verify signature: insecure algorithm {insecure}"),
                name,
            )),
        });
    }
    child
        .verify_signature(Some(parent.public_key()))
        .map_err(|e| Failure::UnknownAuthority {
            hint: Some((format!("x509: {e}"), name)),
        })
}

/// How Go names a candidate issuer in hints: CN, else the first O, else the serial.
fn candidate_name(c: &X509Certificate<'_>) -> String {
    if let Some(cn) = cert::common_name(c).filter(|s| !s.is_empty()) {
        return cn;
    }
    if let Some(o) = c
        .subject()
        .iter_organization()
        .next()
        .and_then(|o| o.as_str().ok())
    {
        return o.to_string();
    }
    format!("serial:{}", c.serial)
}
