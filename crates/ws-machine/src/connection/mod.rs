//! The open connection's I/O: opening one ([`connector`]: a dialed byte
//! stream, TLS over it, the upgrade), the engine behind it ([`engine`]), and
//! running it ([`link`]: reading, writing, the keep-alive and write
//! timers, the close handshake).

pub(crate) mod connector;
pub(crate) mod engine;
pub(crate) mod link;
mod stream;
mod tls;
mod transport;
