//! STARTTLS for outbound SMTP: opportunistic encryption towards the organisation's own MTA.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;

/// Runs the TLS handshake on `tcp`; the error text says why it failed.
pub(super) async fn start_tls(
    host: &str,
    peer_ip: Option<std::net::IpAddr>,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert { provider }))
        .with_no_client_auth();
    // The name only feeds SNI here (nothing is verified); a relay name that
    // is not a valid DNS name falls back to the peer address.
    let name = match ServerName::try_from(host.to_string()) {
        Ok(n) => n,
        Err(_) => match peer_ip {
            Some(ip) => ServerName::from(ip),
            None => return Err(format!("invalid server name {host:?}")),
        },
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())
}

/// Certificate "verifier" that accepts any server certificate.
///
/// Why this is acceptable: the next hop is the organisation's own MTA, usually
/// on the same host or network, and typically has a self-signed or internal
/// certificate. TLS here is opportunistic (Postfix's `smtp_tls_security_level
/// = may`): it protects against passive eavesdropping, and without it we would
/// send plaintext anyway, so refusing an unverifiable certificate would only
/// make things worse. Handshake signatures are still checked so the session
/// keys are bound to the certificate the server presented.
#[derive(Debug)]
struct AcceptAnyCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
