//! The names users know TLS settings by: the flag and the YAML key, per port, so that
//! every message can say which setting to fix.

use std::fmt;

use super::ListenerKind;

/// One TLS setting of a port, or a global one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setting {
    /// `--cert-file` / `--peer-cert-file`.
    CertFile,
    /// `--key-file` / `--peer-key-file`.
    KeyFile,
    /// `--client-cert-file` / `--peer-client-cert-file`.
    ClientCertFile,
    /// `--client-key-file` / `--peer-client-key-file`.
    ClientKeyFile,
    /// `--trusted-ca-file` / `--peer-trusted-ca-file`.
    TrustedCaFile,
    /// `--client-crl-file` / `--peer-crl-file`.
    CrlFile,
    /// `--auto-tls` / `--peer-auto-tls`.
    AutoTls,
    /// `client-transport-security.allowed-cn` / `--peer-cert-allowed-cn`.
    AllowedCn,
    /// `--client-cert-allowed-hostname` / `--peer-cert-allowed-hostname`.
    AllowedHostname,
    /// `--cipher-suites` (both ports).
    CipherSuites,
    /// `--tls-min-version` (both ports).
    TlsMinVersion,
    /// `--tls-max-version` (both ports).
    TlsMaxVersion,
}

/// A setting of a given port, displayed as `--flag / yaml.key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Named {
    /// Which setting.
    pub(crate) setting: Setting,
    /// Which port.
    pub(crate) kind: ListenerKind,
}

impl Setting {
    /// This setting of the port `kind`.
    pub(crate) fn of(self, kind: ListenerKind) -> Named {
        Named {
            setting: self,
            kind,
        }
    }

    /// (flag without dashes, YAML key inside the transport-security block); `None` where
    /// there is no flag or the key is global.
    fn names(self, kind: ListenerKind) -> (Option<&'static str>, &'static str) {
        use ListenerKind::{Client, Peer};
        use Setting::*;
        match (self, kind) {
            (CertFile, Client) => (Some("cert-file"), "cert-file"),
            (CertFile, Peer) => (Some("peer-cert-file"), "cert-file"),
            (KeyFile, Client) => (Some("key-file"), "key-file"),
            (KeyFile, Peer) => (Some("peer-key-file"), "key-file"),
            (ClientCertFile, Client) => (Some("client-cert-file"), "client-cert-file"),
            (ClientCertFile, Peer) => (Some("peer-client-cert-file"), "client-cert-file"),
            (ClientKeyFile, Client) => (Some("client-key-file"), "client-key-file"),
            (ClientKeyFile, Peer) => (Some("peer-client-key-file"), "client-key-file"),
            (TrustedCaFile, Client) => (Some("trusted-ca-file"), "trusted-ca-file"),
            (TrustedCaFile, Peer) => (Some("peer-trusted-ca-file"), "trusted-ca-file"),
            (CrlFile, Client) => (Some("client-crl-file"), "crl-file"),
            (CrlFile, Peer) => (Some("peer-crl-file"), "crl-file"),
            (AutoTls, Client) => (Some("auto-tls"), "auto-tls"),
            (AutoTls, Peer) => (Some("peer-auto-tls"), "auto-tls"),
            (AllowedCn, Client) => (None, "allowed-cn"),
            (AllowedCn, Peer) => (Some("peer-cert-allowed-cn"), "allowed-cn"),
            (AllowedHostname, Client) => (Some("client-cert-allowed-hostname"), "allowed-hostname"),
            (AllowedHostname, Peer) => (Some("peer-cert-allowed-hostname"), "allowed-hostname"),
            (CipherSuites, _) => (Some("cipher-suites"), "cipher-suites"),
            (TlsMinVersion, _) => (Some("tls-min-version"), "tls-min-version"),
            (TlsMaxVersion, _) => (Some("tls-max-version"), "tls-max-version"),
        }
    }

    /// True for the settings that live at the top level of the YAML file.
    fn is_global(self) -> bool {
        matches!(
            self,
            Setting::CipherSuites | Setting::TlsMinVersion | Setting::TlsMaxVersion
        )
    }
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (flag, key) = self.setting.names(self.kind);
        let yaml = if self.setting.is_global() {
            key.to_string()
        } else {
            format!("{}-transport-security.{key}", self.kind.name())
        };
        match flag {
            Some(flag) if self.setting.is_global() => write!(f, "--{flag}"),
            Some(flag) => write!(f, "--{flag} / {yaml}"),
            None => f.write_str(&yaml),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_flag_and_the_yaml_key() {
        assert_eq!(
            Setting::CertFile.of(ListenerKind::Client).to_string(),
            "--cert-file / client-transport-security.cert-file"
        );
        assert_eq!(
            Setting::TrustedCaFile.of(ListenerKind::Peer).to_string(),
            "--peer-trusted-ca-file / peer-transport-security.trusted-ca-file"
        );
        assert_eq!(
            Setting::CrlFile.of(ListenerKind::Client).to_string(),
            "--client-crl-file / client-transport-security.crl-file"
        );
        assert_eq!(
            Setting::AllowedCn.of(ListenerKind::Client).to_string(),
            "client-transport-security.allowed-cn"
        );
        assert_eq!(
            Setting::CipherSuites.of(ListenerKind::Peer).to_string(),
            "--cipher-suites"
        );
    }
}
