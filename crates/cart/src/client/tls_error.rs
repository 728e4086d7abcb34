//! Why a TLS handshake with the gateway failed, in the user's terms: whose certificate (the
//! gateway's server certificate, checked against `[gateway] ca`, or our client certificate
//! of `[tls]`, checked by the gateway), what is wrong with it and what to check.
//!
//! [`TlsFailure::find`] walks an error's source chain (reqwest → hyper → `std::io::Error` →
//! `rustls::Error`) for the rustls error that ended the handshake.

use rustls::{AlertDescription, CertificateError};

/// A failed TLS handshake with the gateway.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsFailure {
    /// The gateway's certificate does not chain to a CA of `[gateway] ca`.
    #[error(
        "the gateway's server certificate is not issued by a CA of [gateway] ca: check that \
         `ca` is the bundle of the CA that issued the gateway's certificate, and that \
         [gateway] base_url names the intended host"
    )]
    ServerUnknownIssuer,
    /// The gateway's certificate has expired (or this machine's clock is ahead).
    #[error(
        "the gateway's server certificate expired{}: check this machine's clock (date -u); if \
         it is right, the gateway's operator must renew its certificate",
        at(.not_after)
    )]
    ServerExpired {
        /// Its `notAfter`, RFC 3339, when known.
        not_after: Option<String>,
    },
    /// The gateway's certificate is not valid yet (this machine's clock is behind).
    #[error(
        "the gateway's server certificate is not valid yet{}: check this machine's clock \
         (date -u)",
        at(.not_before)
    )]
    ServerNotYetValid {
        /// Its `notBefore`, RFC 3339, when known.
        not_before: Option<String>,
    },
    /// The gateway's certificate does not name the host of `[gateway] base_url`.
    #[error(
        "the gateway's server certificate is not valid for {}{}: check the host of \
         [gateway] base_url",
        .expected.as_deref().unwrap_or("the host connected to"),
        names(.presented)
    )]
    ServerWrongHost {
        /// The host of the URL, when known.
        expected: Option<String>,
        /// The names the certificate holds.
        presented: Vec<String>,
    },
    /// The gateway's certificate is unusable for another reason.
    #[error(
        "the gateway's server certificate is not acceptable ({0}): check [gateway] ca and base_url"
    )]
    ServerInvalid(String),
    /// The gateway refused our client certificate.
    #[error(
        "the gateway refused our client certificate of [tls] ({}): check that [tls] holds the \
         CART client certificate issued for this environment, with its own key, and that it \
         has not expired (fse config check)",
        alert_meaning(.0)
    )]
    ClientRefused(String),
}

fn at(time: &Option<String>) -> String {
    time.as_deref()
        .map(|t| format!(" ({t})"))
        .unwrap_or_default()
}

fn names(presented: &[String]) -> String {
    if presented.is_empty() {
        String::new()
    } else {
        format!(" (it names {})", presented.join(", "))
    }
}

fn alert_meaning(alert: &str) -> String {
    let meaning = match alert {
        "UnknownCA" => "not issued by a CA it trusts",
        "CertificateExpired" => "expired or not yet valid",
        "CertificateRevoked" => "revoked",
        "BadCertificate" | "UnsupportedCertificate" | "CertificateUnknown" => {
            "not acceptable to it"
        }
        "CertificateRequired" | "NoCertificate" => "none was sent",
        "AccessDenied" => "access denied to this certificate",
        "HandshakeFailure" => "handshake refused",
        _ => "",
    };
    if meaning.is_empty() {
        format!("TLS alert {alert}")
    } else {
        format!("{meaning}: TLS alert {alert}")
    }
}

fn rfc3339(time: rustls_pki_types::UnixTime) -> Option<String> {
    let secs = i64::try_from(time.as_secs()).ok()?;
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

impl TlsFailure {
    /// The TLS failure behind `err`, if the chain of its sources holds one.
    pub fn find(err: &(dyn std::error::Error + 'static)) -> Option<TlsFailure> {
        let mut next = Some(err);
        while let Some(e) = next {
            if let Some(r) = e.downcast_ref::<rustls::Error>() {
                return TlsFailure::of(r);
            }
            // `io::Error::source` skips the error it wraps (itself often an `io::Error`
            // around the rustls error): step into it instead.
            next = match e.downcast_ref::<std::io::Error>() {
                Some(io) => io
                    .get_ref()
                    .map(|inner| inner as &(dyn std::error::Error + 'static)),
                None => e.source(),
            };
        }
        None
    }

    /// The failure a rustls error stands for (`None` for errors that are not about
    /// certificates).
    pub fn of(err: &rustls::Error) -> Option<TlsFailure> {
        match err {
            rustls::Error::InvalidCertificate(c) => Some(match c {
                CertificateError::UnknownIssuer => TlsFailure::ServerUnknownIssuer,
                CertificateError::Expired => TlsFailure::ServerExpired { not_after: None },
                CertificateError::ExpiredContext { not_after, .. } => TlsFailure::ServerExpired {
                    not_after: rfc3339(*not_after),
                },
                CertificateError::NotValidYet => TlsFailure::ServerNotYetValid { not_before: None },
                CertificateError::NotValidYetContext { not_before, .. } => {
                    TlsFailure::ServerNotYetValid {
                        not_before: rfc3339(*not_before),
                    }
                }
                CertificateError::NotValidForName => TlsFailure::ServerWrongHost {
                    expected: None,
                    presented: Vec::new(),
                },
                CertificateError::NotValidForNameContext {
                    expected,
                    presented,
                } => TlsFailure::ServerWrongHost {
                    expected: Some(server_name(expected)),
                    presented: presented.clone(),
                },
                other => TlsFailure::ServerInvalid(format!("{other:?}")),
            }),
            rustls::Error::AlertReceived(alert) => match alert {
                AlertDescription::UnknownCA
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateRevoked
                | AlertDescription::BadCertificate
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateUnknown
                | AlertDescription::CertificateRequired
                | AlertDescription::NoCertificate
                | AlertDescription::AccessDenied => {
                    Some(TlsFailure::ClientRefused(format!("{alert:?}")))
                }
                _ => None,
            },
            _ => None,
        }
    }
}

fn server_name(name: &rustls_pki_types::ServerName<'_>) -> String {
    match name {
        rustls_pki_types::ServerName::DnsName(d) => d.as_ref().to_owned(),
        rustls_pki_types::ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => format!("{name:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_names_the_side_and_what_to_check() {
        // As tokio-rustls and hyper give it: an io::Error in an io::Error.
        let wrapped = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        ));
        assert_eq!(
            TlsFailure::find(&wrapped),
            Some(TlsFailure::ServerUnknownIssuer)
        );
        let refused = TlsFailure::of(&rustls::Error::AlertReceived(AlertDescription::UnknownCA))
            .unwrap()
            .to_string();
        assert!(
            refused.contains("our client certificate of [tls]")
                && refused.contains("not issued by a CA it trusts"),
            "{refused}"
        );
        let host = TlsFailure::of(&rustls::Error::InvalidCertificate(
            CertificateError::NotValidForNameContext {
                expected: rustls_pki_types::ServerName::try_from("gw.example").unwrap(),
                presented: vec!["DnsName(\"localhost\")".into()],
            },
        ))
        .unwrap()
        .to_string();
        assert!(
            host.contains("not valid for gw.example") && host.contains("base_url"),
            "{host}"
        );
        assert_eq!(
            TlsFailure::of(&rustls::Error::AlertReceived(AlertDescription::CloseNotify)),
            None
        );
    }
}
