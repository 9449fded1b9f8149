//! The in-process echo server (`wsm-server`) on 127.0.0.1, on a runtime of
//! its own so that a test can drive `wsm` synchronously meanwhile.

use std::{net::SocketAddr, time::Duration};

use tokio::runtime::Runtime;
use wsm_server::{Config, Server};

/// A server that can be stopped and started again on the same port.
pub struct Local {
    pub rt: Runtime,
    server: Option<Server>,
    pub addr: SocketAddr,
}

impl Local {
    /// A server on a port the system chooses.
    pub fn start() -> Self {
        Self::start_with(Config::default())
    }

    /// A server with these faults, on a port the system chooses.
    pub fn start_with(config: Config) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the server");
        let server = {
            let _inside = rt.enter();
            Server::start(config).expect("start the echo server")
        };
        let addr = server.addr();
        Self {
            rt,
            server: Some(server),
            addr,
        }
    }

    /// A runtime only: the server is started later on `addr` (a port that
    /// was free a moment ago), for clients that must find nobody first.
    pub fn not_yet() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the server");
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("find a free port");
        let addr = probe.local_addr().expect("its address");
        drop(probe);
        Self {
            rt,
            server: None,
            addr,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// The running server.
    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("the server runs")
    }

    /// Stops the server: connections dropped, port closed.
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.stop());
        }
    }

    /// Starts the server (again) on the same port.
    pub fn restart(&mut self) {
        let _inside = self.rt.enter();
        self.server = Some(Server::bind(self.addr, Config::default()).expect("bind the same port"));
    }

    /// Waits until `n` messages were received in total.
    pub fn wait_for_messages(&self, n: u64) {
        let server = self.server();
        assert!(
            self.rt
                .block_on(server.wait_for_messages(n, Duration::from_secs(20))),
            "the server did not receive {n} messages"
        );
    }

    /// Waits until `n` connections were accepted in total.
    pub fn wait_for_connections(&self, n: u64) {
        let server = self.server();
        assert!(
            self.rt
                .block_on(server.wait_for_connections(n, Duration::from_secs(20))),
            "the server did not accept {n} connections"
        );
    }

    /// Waits until `n` upgrade requests were received in total.
    pub fn wait_for_handshakes(&self, n: u64) {
        let server = self.server();
        assert!(
            self.rt
                .block_on(server.wait_for_handshakes(n, Duration::from_secs(20))),
            "the server did not see {n} handshakes"
        );
    }
}
