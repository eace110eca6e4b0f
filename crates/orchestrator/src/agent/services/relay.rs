//! Where a web droplet's services reach the infrastructure on master: a TCP relay on the
//! droplet's own address and the instance's port, which forwards each connection to master
//! wherever the fleet state says master is now. A master replaced from its snapshot comes
//! back at a new address; the services keep their `NAME_HOST` and reconnect through the relay
//! without a redeploy.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};

/// How long a connection to master may take to open.
const CONNECT: Duration = Duration::from_secs(5);

/// The relays of one droplet, by port.
pub struct Relays {
    address: IpAddr,
    master: Arc<RwLock<Option<IpAddr>>>,
    listening: Mutex<BTreeMap<u16, tokio::task::JoinHandle<()>>>,
}

impl Relays {
    pub fn new(address: IpAddr) -> Relays {
        Relays {
            address,
            master: Arc::new(RwLock::new(None)),
            listening: Mutex::new(BTreeMap::new()),
        }
    }

    /// Where master is now; new connections go there from this moment.
    pub fn set_master(&self, address: Option<IpAddr>) {
        *self.master.write().expect("not poisoned") = address;
    }

    /// Relays `port` of this droplet to the same port on master, once.
    pub async fn ensure(&self, port: u16) -> Result<(), String> {
        if self.listening.lock().expect("not poisoned").contains_key(&port) {
            return Ok(());
        }
        let at = SocketAddr::new(self.address, port);
        let listener = TcpListener::bind(at)
            .await
            .map_err(|err| format!("cannot relay {at} to master's infrastructure: {err}"))?;
        let (address, master) = (self.address, Arc::clone(&self.master));
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else { continue };
                let master = *master.read().expect("not poisoned");
                tokio::spawn(relay(inbound, address, master, port));
            }
        });
        let mut listening = self.listening.lock().expect("not poisoned");
        if let Some(earlier) = listening.insert(port, task) {
            earlier.abort();
        }
        Ok(())
    }

    pub fn stop_all(&self) {
        for (_, task) in std::mem::take(&mut *self.listening.lock().expect("not poisoned")) {
            task.abort();
        }
    }
}

/// Carries one connection to master and back until either side closes it.
async fn relay(
    mut inbound: tokio::net::TcpStream,
    address: IpAddr,
    master: Option<IpAddr>,
    port: u16,
) {
    let Some(master) = master else {
        tracing::warn!(
            port,
            "no master is known yet; a connection to the infrastructure is closed"
        );
        return;
    };
    // From this droplet's own address, which master's firewall lets in.
    let socket = match address {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    };
    let Ok(socket) = socket else { return };
    if socket.bind(SocketAddr::new(address, 0)).is_err() {
        return;
    }
    let target = SocketAddr::new(master, port);
    match tokio::time::timeout(CONNECT, socket.connect(target)).await {
        Ok(Ok(mut outbound)) => {
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
        }
        Ok(Err(err)) => tracing::debug!(%target, %err, "master's infrastructure refused"),
        Err(_) => tracing::debug!(%target, "master's infrastructure did not answer"),
    }
}
