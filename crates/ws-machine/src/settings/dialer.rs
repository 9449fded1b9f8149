//! The choice of how the byte stream under a WebSocket is opened: by TCP to
//! the URL's host, or by the caller's own dialer. (Opening it is the
//! connection layer's job; this is only the setting.)

use std::{future::Future, io, pin::Pin, sync::Arc};

use tokio::io::{AsyncRead, AsyncWrite};

use crate::types::Endpoint;

/// A byte stream a WebSocket can run on.
pub(crate) trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> ByteStream for S {}

type DialFuture = Pin<Box<dyn Future<Output = io::Result<Box<dyn ByteStream>>> + Send>>;

/// The caller's dialer, boxed so that the `Arc` around it is one pointer.
type DialFn = Box<dyn Fn(Endpoint) -> DialFuture + Send + Sync>;

/// How connections reach the server. One pointer wide: every machine's
/// task holds it.
#[derive(Clone)]
pub(crate) enum Dialer {
    /// TCP to the endpoint, with `TCP_NODELAY`.
    Tcp,
    /// The caller's own ([`Builder::dialer`](crate::Builder::dialer)).
    Custom(Arc<DialFn>),
}

impl Dialer {
    /// Wraps the caller's dialer; its stream is boxed, so every dialer gives
    /// the connection layer the same type.
    pub(crate) fn custom<F, Fut, S>(dial: F) -> Self
    where
        F: Fn(Endpoint) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<S>> + Send + 'static,
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        Self::Custom(Arc::new(Box::new(move |endpoint| {
            let opening = dial(endpoint);
            Box::pin(async move {
                let stream: Box<dyn ByteStream> = Box::new(opening.await?);
                Ok(stream)
            })
        })))
    }
}
