//! A client of the Toxiproxy HTTP API, for rows that put their faults on
//! the link as toxics: against `wsm_server::toxiproxy::Api`, started here,
//! or against a real Toxiproxy when `WSM_TOXIPROXY` names its API
//! (`127.0.0.1:8474`), so that the same rows run against both. Also
//! included by wsm-server's tests of the API (`#[path]`): it depends on
//! nothing else of this folder.

use std::{net::SocketAddr, time::Duration};

use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};
use wsm_server::toxiproxy::Api;

/// The longest a call may take.
const WAIT: Duration = Duration::from_secs(10);

/// The API the rows call.
pub struct Toxiproxy {
    addr: SocketAddr,
    /// The API started here, if `WSM_TOXIPROXY` named none.
    own: Option<Api>,
}

impl Toxiproxy {
    /// The API `WSM_TOXIPROXY` names, or one of wsm-server's on a port the
    /// system chooses.
    pub async fn start() -> Self {
        match std::env::var("WSM_TOXIPROXY") {
            Ok(addr) => Self {
                addr: addr
                    .parse()
                    .unwrap_or_else(|_| panic!("WSM_TOXIPROXY is IP:PORT, not {addr:?}")),
                own: None,
            },
            Err(_) => {
                let api = Api::start(SocketAddr::from(([127, 0, 0, 1], 0)))
                    .await
                    .expect("the API starts");
                Self {
                    addr: api.addr(),
                    own: Some(api),
                }
            }
        }
    }

    /// What the rows' table calls this API.
    pub fn name(&self) -> &'static str {
        if self.own.is_some() {
            "wsm fault-proxy's Toxiproxy API"
        } else {
            "Toxiproxy"
        }
    }

    /// Calls `method path` with `body`; the status and the JSON answer
    /// (`Null` when empty).
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(Value::to_string).unwrap_or_default();
        self.call_raw(method, path, &body).await
    }

    /// [`call`](Self::call) with a body as it is, JSON or not.
    pub async fn call_raw(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        let answer = timeout(WAIT, async {
            let mut stream = TcpStream::connect(self.addr)
                .await
                .expect("connect to the API");
            stream
                .write_all(request.as_bytes())
                .await
                .expect("write the call");
            let mut answer = Vec::new();
            stream
                .read_to_end(&mut answer)
                .await
                .expect("read the answer");
            answer
        })
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within {WAIT:?}"));
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = response.parse(&answer) else {
            panic!("{method} {path}: not an HTTP answer: {answer:?}");
        };
        let status = response.code.expect("a status");
        let body = &answer[head..];
        let json = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body).unwrap_or_else(|e| {
                panic!(
                    "{method} {path}: not JSON ({e}): {}",
                    String::from_utf8_lossy(body)
                )
            })
        };
        (status, json)
    }

    /// [`call`](Self::call), asserting the status.
    pub async fn expect(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        status: u16,
    ) -> Value {
        let (got, json) = self.call(method, path, body).await;
        assert_eq!(got, status, "{method} {path}: {json}");
        json
    }

    /// Stops the API started here.
    pub async fn stop(self) {
        if let Some(api) = self.own {
            api.stop().await;
        }
    }
}
