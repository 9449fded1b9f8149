//! The open connection's I/O: opening one ([`connector`]: a dialed byte
//! stream, a proxy's tunnel over it, TLS over that, the upgrade), the engine behind it ([`engine`]), and
//! running it ([`link`]: reading, writing, the keep-alive and write
//! timers, the close handshake; [`talk`]: its heartbeat and ready gate).

pub(crate) mod connector;
pub(crate) mod engine;
pub(crate) mod link;
mod proxy;
mod stream;
pub(crate) mod talk;
mod tls;
mod transport;
