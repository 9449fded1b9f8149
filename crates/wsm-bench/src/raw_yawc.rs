//! Bare yawc 0.5, issue 8's candidate engine, at its defaults
//! (`WebSocket::connect(url)`, which dials TCP itself), with
//! permessage-deflate offered (`with_balanced_compression`) when asked.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use yawc::{Frame, OpCode, Options, TcpWebSocket, WebSocket};

use crate::error::Error;

/// Connects to `url`.
///
/// # Errors
///
/// [`Error::RawYawc`] if the URL does not parse, connecting or the upgrade
/// fails.
pub(crate) async fn connect(url: &str, deflate: bool) -> Result<TcpWebSocket, Error> {
    let url = url.parse().map_err(|e: url::ParseError| Error::RawYawc {
        doing: "parsing the URL",
        source: e.into(),
    })?;
    let options = if deflate {
        Options::default().with_balanced_compression()
    } else {
        Options::default()
    };
    WebSocket::connect(url)
        .with_options(options)
        .await
        .map_err(Error::raw_yawc("connecting"))
}

/// A binary frame sharing `payload` (yawc copies it into its write buffer).
pub(crate) fn binary(payload: &Bytes) -> Frame {
    Frame::binary(payload.clone())
}

/// The length of the next text or binary message; pings and pongs are
/// skipped (yawc answers pings itself).
///
/// # Errors
///
/// [`Error::Closed`] if the server closes or the stream ends (yawc's
/// `Stream` ends on any error).
pub(crate) async fn next_len<S>(stream: &mut S) -> Result<usize, Error>
where
    S: Stream<Item = Frame> + Unpin,
{
    loop {
        match stream.next().await {
            Some(frame) if matches!(frame.opcode(), OpCode::Text | OpCode::Binary) => {
                return Ok(frame.payload().len());
            }
            Some(frame) if frame.opcode() == OpCode::Close => {
                return Err(Error::Closed("the last echo came back"));
            }
            Some(_) => {}
            None => return Err(Error::Closed("the last echo came back")),
        }
    }
}
