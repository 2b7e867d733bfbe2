//! TLS for every client and server in Weir: rustls with the `ring` crypto provider, installed
//! once per process (the workspace `Cargo.toml` states the policy: nothing may build
//! aws-lc-sys or OpenSSL).
//!
//! reqwest is built with `rustls-no-provider`, so a reqwest client built before
//! [`install_crypto_provider`] ran panics ("No rustls crypto provider is configured"): build
//! clients with [`http_client`], or call [`install_crypto_provider`] first (tests too).

use std::sync::Once;

/// Installs rustls' `ring` provider as the process-wide default, once. `weir` calls it at
/// process start; call it before building any TLS client or server of your own. Calling it
/// again is free, and a provider installed earlier by someone else stays.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // An error means a default provider is installed already; that one is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A reqwest client builder, with the crypto provider installed: the way to make an HTTP(S)
/// client in Weir.
pub fn http_client() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_provider_is_installed_and_clients_build() {
        install_crypto_provider();
        install_crypto_provider();
        let provider = rustls::crypto::CryptoProvider::get_default().expect("installed");
        let ring = rustls::crypto::ring::default_provider();
        assert_eq!(
            format!("{:?}", provider.cipher_suites),
            format!("{:?}", ring.cipher_suites)
        );
        http_client()
            .build()
            .expect("an HTTPS-capable client builds");
        rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
    }
}
