//! The one HTTP client setup the whole program uses, with a single TLS crypto provider.

use std::sync::Once;
use std::time::Duration;

static CRYPTO: Once = Once::new();

/// Installs the process-wide TLS crypto provider (ring); later calls do nothing.
pub fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        // Fails only if another provider was installed first, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// An HTTP client with the program's defaults.
pub fn client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("orchestrator/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client configuration is valid")
}
