//! A server written byte by byte (agreeing to permessage-deflate or not),
//! for what an independent server cannot show: frames exactly as the client
//! wrote them (is the compressed bit set?), and frames no real server
//! would send (a message that inflates to a gigabyte, reserved bits, a
//! length of 2^63).

use base64::{Engine as _, engine::general_purpose::STANDARD};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};

use super::WAIT;

/// Reads the upgrade request, agrees to permessage-deflate (no
/// parameters), and returns the client's `Sec-WebSocket-Extensions` offer.
pub async fn agree_to_deflate(socket: &mut TcpStream) -> String {
    agree(socket, Some("permessage-deflate")).await
}

/// Reads the upgrade request and accepts it, with no extension (whatever
/// the client offered).
pub async fn agree_plain(socket: &mut TcpStream) {
    agree(socket, None).await;
}

/// Reads the upgrade request, accepts it with `extension` (if any), and
/// returns the client's `Sec-WebSocket-Extensions` offer.
async fn agree(socket: &mut TcpStream, extension: Option<&str>) -> String {
    let request = read_request(socket).await;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    parsed.parse(&request).expect("an HTTP request");
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
            .unwrap_or_default()
    };
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(header("sec-websocket-key").as_bytes());
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = STANDARD.encode(sha1.digest().bytes());
    let extension = extension
        .map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n"))
        .unwrap_or_default();
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n{extension}\r\n"
    );
    socket.write_all(answer.as_bytes()).await.expect("write");
    header("sec-websocket-extensions")
}

/// Reads the upgrade request, whole.
pub async fn read_request(socket: &mut TcpStream) -> Vec<u8> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.ends_with(b"\r\n\r\n") {
        let n = timeout(WAIT, socket.read(&mut buf))
            .await
            .expect("the request in time")
            .expect("read");
        assert!(n > 0, "the client hung up during the upgrade");
        request.extend_from_slice(&buf[..n]);
        assert!(request.len() < 16 * 1024, "an endless request");
    }
    request
}

/// The next frame from the client: its first byte (FIN, RSV1-3, opcode)
/// and its payload, unmasked.
pub async fn client_frame(socket: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    timeout(WAIT, socket.read_exact(&mut head))
        .await
        .expect("a frame in time")
        .expect("read");
    assert_eq!(head[1] & 0x80, 0x80, "a client's frame is masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut n = [0u8; 2];
            socket.read_exact(&mut n).await.expect("read");
            u64::from(u16::from_be_bytes(n))
        }
        127 => {
            let mut n = [0u8; 8];
            socket.read_exact(&mut n).await.expect("read");
            u64::from_be_bytes(n)
        }
        n => u64::from(n),
    };
    let len = usize::try_from(len).expect("a frame that fits in memory");
    assert!(len < 16 << 20, "a frame of {len} bytes");
    let mut rest = vec![0u8; 4 + len];
    timeout(WAIT, socket.read_exact(&mut rest))
        .await
        .expect("the frame in time")
        .expect("read");
    let (mask, payload) = rest.split_at(4);
    let payload = payload
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    (head[0], payload)
}
