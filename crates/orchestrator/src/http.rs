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
    client_from(None)
}

/// An HTTP client whose connections leave from `address`: a droplet's traffic comes from the
/// droplet's own address, as on a real network, so a firewall rule between two droplets
/// (or a test's partition) applies to it.
pub fn client_from(address: Option<std::net::IpAddr>) -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .local_address(address.filter(|a| !a.is_unspecified()))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("orchestrator/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client configuration is valid")
}

/// One GET with `timeout`; `Ok` for a 2xx answer, else why not, briefly: `timed out`,
/// `connection refused`, `HTTP 503`.
pub async fn probe(http: &reqwest::Client, url: &str, timeout: Duration) -> Result<(), String> {
    match http.get(url).timeout(timeout).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("HTTP {}", response.status().as_u16())),
        Err(err) if err.is_timeout() => Err("timed out".into()),
        Err(err) if err.is_connect() => Err("connection refused".into()),
        Err(err) => Err(err.without_url().to_string()),
    }
}
