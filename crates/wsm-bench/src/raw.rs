//! The bare engine: tokio-websockets, the library the machine wraps, used
//! directly at its default settings (`ClientBuilder::new().uri(url).connect()`),
//! as the baseline the machine's cost is measured against.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::net::TcpStream;
use tokio_websockets::{ClientBuilder, MaybeTlsStream, Message, WebSocketStream};

use crate::error::Error;

/// A connected bare WebSocket.
pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects to `url` with the engine's defaults.
///
/// # Errors
///
/// [`Error::RawUrl`] if the URL does not parse, [`Error::Raw`] if connecting
/// or the upgrade fails.
pub(crate) async fn connect(url: &str) -> Result<Socket, Error> {
    let builder = ClientBuilder::new()
        .uri(url)
        .map_err(|source| Error::RawUrl {
            url: url.to_owned(),
            source,
        })?;
    let (socket, _response) = builder.connect().await.map_err(Error::raw("connecting"))?;
    Ok(socket)
}

/// A binary message sharing `payload` (no copy).
pub(crate) fn binary(payload: &Bytes) -> Message {
    Message::binary(payload.clone())
}

/// The length of the next text or binary message from `stream`; pings and
/// pongs are skipped (the engine answers pings itself).
///
/// # Errors
///
/// [`Error::Closed`] if the server closes, [`Error::Raw`] if reading fails.
pub(crate) async fn next_len<S>(stream: &mut S) -> Result<usize, Error>
where
    S: Stream<Item = Result<Message, tokio_websockets::Error>> + Unpin,
{
    loop {
        match stream.next().await {
            Some(Ok(message)) if message.is_text() || message.is_binary() => {
                return Ok(message.as_payload().len());
            }
            Some(Ok(message)) if message.is_close() => {
                return Err(Error::Closed("the last echo came back"));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(Error::raw("reading")(e)),
            None => return Err(Error::Closed("the last echo came back")),
        }
    }
}
