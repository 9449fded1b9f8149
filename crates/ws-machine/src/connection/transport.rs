//! What the engine runs on: the opened stream, plus a recorder of the
//! upgrade's answer.
//!
//! The engine reports a rejected upgrade's status code but not its headers,
//! and the machine needs `Retry-After`. So while the handshake is under way
//! the transport records the bytes read (the first 16 KiB of a rejection;
//! of a `101` answer, its head, until it is checked), and it cuts the answer
//! off at 64 KiB, so a server sending endless headers cannot fill memory
//! while the handshake timeout runs.
//!
//! It also refuses a `101` answer whose `Sec-WebSocket-Accept` is not 20
//! bytes in Base64 (a SHA-1 digest, which a correct one is) before the
//! engine reads it: tokio-websockets 0.13.3 decodes that value into a
//! 20-byte buffer with a Base64 call that panics when it does not fit,
//! which would end the machine's task without a word (found by fuzzing,
//! `fuzz/regressions/handshake/tws-long-accept-panics`).
//!
//! Under the compression engine, the transport also watches the frame
//! headers the server sends once the upgrade succeeded ([`FrameScan`]):
//! yawc 0.5 unmasks a masked frame from the server without a word, where
//! RFC 6455 (section 5.1) says the client must fail the connection, and it
//! answers an unknown opcode with close code 1003 where 1002 is due. Both
//! are refused here, before yawc reads them.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use base64::Engine as _;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::oneshot,
    time::Instant,
};

use super::stream::Io;

/// Most bytes of a rejected handshake's answer kept to read its headers.
const MAX_RECORDED: usize = 16 * 1024;

/// The length of what a correct `Sec-WebSocket-Accept` holds: a SHA-1
/// digest, in Base64.
const ACCEPT_DIGEST_LEN: usize = 20;

/// Most headers of an upgrade's answer read here: hyper's limit, under
/// the compression engine (yawc); more fail the handshake there.
const MAX_HEADERS: usize = 100;

/// Most bytes read while waiting for the answer to the upgrade request.
const MAX_HANDSHAKE_ANSWER: usize = 64 * 1024;

/// The byte stream under the engine.
pub(crate) struct Transport {
    io: Box<dyn Io>,
    /// While the handshake is under way, the recorder of the bytes read;
    /// after it, the subprotocol the server chose, until the driver takes
    /// it. Boxed: most of a connection's life it is `None`.
    handshake: Option<Box<Handshake>>,
    /// With the compression engine, after the upgrade: where the server's
    /// frame headers are.
    frames: Option<Box<FrameScan>>,
}

enum Handshake {
    Recording(Recorder),
    Chosen(Arc<str>),
}

/// The answer to the upgrade request as read so far. The engine drops the
/// transport when the handshake fails, so the recording is handed out then.
struct Recorder {
    bytes: Vec<u8>,
    /// What is being read of the answer, and so what is kept of it.
    part: Part,
    /// All bytes read so far, recorded or not.
    total: usize,
    /// Whether the head of a `101` answer is handed out too, as soon as it
    /// is complete (for an engine that does not return the answer).
    success_head: bool,
    /// Where the recording goes: when the transport is dropped during the
    /// handshake, or (with `success_head`) once a `101` head is complete.
    on_drop: Option<oneshot::Sender<Vec<u8>>>,
}

/// Where the answer to the upgrade request has got to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Its head, kept whole until its blank line.
    Head,
    /// The rest of a rejection: kept up to [`MAX_RECORDED`] in all.
    Rejection,
    /// The rest of a checked `101` answer: the server's first frames,
    /// not kept.
    Upgraded,
}

impl Transport {
    /// A transport that records the upgrade's answer; the receiver gets the
    /// recording if the transport is dropped before [`Transport::upgraded`].
    pub(crate) fn recording(io: Box<dyn Io>) -> (Self, oneshot::Receiver<Vec<u8>>) {
        Self::recorder(io, false)
    }

    /// A transport that records the upgrade's answer, as
    /// [`Transport::recording`], and also hands out the head of a `101`
    /// answer as soon as it is complete (then stops recording): for an
    /// engine that keeps the answer to itself.
    #[cfg(feature = "deflate")]
    pub(crate) fn recording_head(io: Box<dyn Io>) -> (Self, oneshot::Receiver<Vec<u8>>) {
        Self::recorder(io, true)
    }

    fn recorder(io: Box<dyn Io>, success_head: bool) -> (Self, oneshot::Receiver<Vec<u8>>) {
        let (recorder, recording) = Recorder::new(success_head);
        (
            Self {
                io,
                handshake: Some(Box::new(Handshake::Recording(recorder))),
                frames: None,
            },
            recording,
        )
    }

    /// The upgrade succeeded, with this subprotocol: stop recording.
    pub(crate) fn upgraded(&mut self, protocol: Option<Arc<str>>) {
        self.handshake = protocol.map(|p| Box::new(Handshake::Chosen(p)));
    }

    /// The subprotocol the server chose, once.
    pub(crate) fn take_protocol(&mut self) -> Option<Arc<str>> {
        match self.handshake.take().map(|h| *h) {
            Some(Handshake::Chosen(protocol)) => Some(protocol),
            Some(recording @ Handshake::Recording(_)) => {
                self.handshake = Some(Box::new(recording));
                None
            }
            None => None,
        }
    }

    /// When the socket last accepted a byte.
    pub(crate) fn last_write(&self) -> Option<Instant> {
        self.io.last_write()
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        if let Some(Handshake::Recording(recorder)) = self.handshake.take().map(|h| *h)
            && let Some(on_drop) = recorder.on_drop
        {
            // Nobody waits for it once the handshake succeeded or was abandoned.
            let _ = on_drop.send(recorder.bytes);
        }
    }
}

impl Recorder {
    /// A recorder of an answer not read yet, and where its recording goes.
    fn new(success_head: bool) -> (Self, oneshot::Receiver<Vec<u8>>) {
        let (on_drop, recording) = oneshot::channel();
        let recorder = Self {
            bytes: Vec::new(),
            part: Part::Head,
            total: 0,
            success_head,
            on_drop: Some(on_drop),
        };
        (recorder, recording)
    }

    /// Notes `fresh`, the bytes just read; an error once the answer is too
    /// long, or when it is a `101` with a `Sec-WebSocket-Accept` the
    /// engine would choke on. `Ok(Some(at))` once a `101` head was handed
    /// out: recording is over, and the server's frames start at
    /// `fresh[at..]`.
    fn note(&mut self, fresh: &[u8]) -> io::Result<Option<usize>> {
        let before = self.total;
        self.total += fresh.len();
        if self.total > MAX_HANDSHAKE_ANSWER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the answer to the upgrade request exceeds {MAX_HANDSHAKE_ANSWER} bytes"),
            ));
        }
        match self.part {
            Part::Head => {}
            Part::Rejection => {
                let room = MAX_RECORDED.saturating_sub(self.bytes.len());
                self.bytes
                    .extend_from_slice(&fresh[..fresh.len().min(room)]);
                return Ok(None);
            }
            Part::Upgraded => return Ok(None),
        }
        self.bytes.extend_from_slice(fresh);
        // A head ends with a line: parsed again only when one may have
        // ended (at most once per line, and an answer the engine can read
        // has at most 27 of them).
        if !fresh.contains(&b'\n') {
            return Ok(None);
        }
        let end = match read_head(&self.bytes)? {
            Head::Incomplete => return Ok(None),
            Head::Other => {
                self.part = Part::Rejection;
                self.bytes.truncate(MAX_RECORDED);
                return Ok(None);
            }
            Head::SwitchingProtocols { end } => end,
        };
        self.part = Part::Upgraded;
        if self.success_head
            && let Some(on_drop) = self.on_drop.take()
        {
            self.bytes.truncate(end);
            let _ = on_drop.send(std::mem::take(&mut self.bytes));
            return Ok(Some(end.saturating_sub(before).min(fresh.len())));
        }
        // The engine has the answer; nothing of it is needed here.
        self.bytes = Vec::new();
        Ok(None)
    }
}

/// What the answer to the upgrade request read so far is.
enum Head {
    /// Its head is not complete yet.
    Incomplete,
    /// Not a `101` answer, or not one the engine can read: the engine
    /// reports what it is.
    Other,
    /// A `101` answer, its `Sec-WebSocket-Accept` checked, whose head ends
    /// at `end`.
    SwitchingProtocols { end: usize },
}

/// A head httparse refuses, told apart by its status line and blank line
/// alone: the engine's parser (hyper's, under yawc) may take what httparse
/// does not, so a `101` is still handed out, unchecked (tokio-websockets
/// parses with httparse and fails such an answer before it decodes
/// anything).
fn unparsed(answer: &[u8]) -> Head {
    let switching = [b"HTTP/1.1 101 ".as_slice(), b"HTTP/1.0 101 "]
        .iter()
        .any(|start| answer.starts_with(start));
    if !switching {
        return Head::Other;
    }
    let blank = [b"\r\n\r\n".as_slice(), b"\n\n", b"\n\r\n"]
        .iter()
        .filter_map(|line| {
            answer
                .windows(line.len())
                .position(|w| w == *line)
                .map(|at| at + line.len())
        })
        .min();
    match blank {
        Some(end) => Head::SwitchingProtocols { end },
        None => Head::Incomplete,
    }
}

/// Reads the head of the answer in `answer`; an error if it is a `101`
/// whose `Sec-WebSocket-Accept` does not hold 20 bytes in Base64.
fn read_head(answer: &[u8]) -> io::Result<Head> {
    // As many headers as either engine reads (hyper's 100, for yawc;
    // tokio-websockets reads 25, and fails an answer with more before it
    // looks at `Sec-WebSocket-Accept`).
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let end = match response.parse(answer) {
        Ok(httparse::Status::Complete(end)) => end,
        Ok(httparse::Status::Partial) => return Ok(Head::Incomplete),
        Err(_) => return Ok(unparsed(answer)),
    };
    if response.code != Some(101) {
        return Ok(Head::Other);
    }
    let accept = response
        .headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case("Sec-WebSocket-Accept"));
    let Some(accept) = accept else {
        // The engine says it is missing.
        return Ok(Head::SwitchingProtocols { end });
    };
    match base64::engine::general_purpose::STANDARD.decode(accept.value) {
        // The engine compares it with the key's.
        Ok(digest) if digest.len() == ACCEPT_DIGEST_LEN => Ok(Head::SwitchingProtocols { end }),
        Ok(_) | Err(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the server's Sec-WebSocket-Accept ({} bytes) is not a SHA-1 digest in Base64: not the answer of a WebSocket server (check the URL, or what stands in between)",
                accept.value.len()
            ),
        )),
    }
}

/// The error of a read that found a forbidden frame.
fn forbidden(frame: ForbiddenFrame) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, frame)
}

/// A frame from the server that RFC 6455 forbids: the transport's read
/// fails with this inside an `InvalidData` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ForbiddenFrame {
    /// Section 5.1: a server must not mask its frames.
    #[error("the server masked a frame (RFC 6455 forbids it)")]
    Masked,
    /// Section 5.2: opcodes 3 to 7 and 11 to 15 are reserved.
    #[error("the server sent a frame with the reserved opcode {0:#x}")]
    ReservedOpcode(u8),
}

/// Follows the frame headers in the server's bytes without copying the
/// payloads: only each header is looked at, the payload is skipped by its
/// length.
#[derive(Debug, Default)]
pub(crate) struct FrameScan {
    /// The header read so far (at most 14 bytes: 2, a 64-bit length, a
    /// mask key).
    header: [u8; 14],
    have: usize,
    /// Payload bytes still to skip.
    skip: u64,
    /// A forbidden frame was found: nothing more is read.
    forbidden: Option<ForbiddenFrame>,
}

impl FrameScan {
    /// Takes the next bytes from the server. `Err(at)` when a forbidden
    /// frame starts at `bytes[at]` (0 also when its header began in earlier
    /// bytes): what comes before it may still be read, nothing after.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<(), usize> {
        let mut at = 0;
        while at < bytes.len() {
            let rest = &bytes[at..];
            if self.skip > 0 {
                let n = usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                self.skip -= n as u64;
                at += n;
                continue;
            }
            let header_start = at.saturating_sub(self.have);
            let n = (self.header_len() - self.have).min(rest.len());
            self.header[self.have..self.have + n].copy_from_slice(&rest[..n]);
            self.have += n;
            at += n;
            let opcode = self.header[0] & 0x0f;
            if matches!(opcode, 0x3..=0x7 | 0xb..=0xf) {
                self.forbidden = Some(ForbiddenFrame::ReservedOpcode(opcode));
                return Err(header_start);
            }
            if self.have >= 2 && self.header[1] & 0x80 != 0 {
                self.forbidden = Some(ForbiddenFrame::Masked);
                return Err(header_start);
            }
            if self.have == self.header_len() {
                self.skip = self.payload_len();
                self.have = 0;
            }
        }
        Ok(())
    }

    /// The forbidden frame found, if any.
    pub(crate) fn forbidden(&self) -> Option<ForbiddenFrame> {
        self.forbidden
    }

    /// The length of the header being read: 2 until its first two bytes
    /// say more.
    fn header_len(&self) -> usize {
        if self.have < 2 {
            return 2;
        }
        2 + match self.header[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        }
    }

    /// The payload length a whole header gives.
    fn payload_len(&self) -> u64 {
        match self.header[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => {
                let mut len = [0u8; 8];
                len.copy_from_slice(&self.header[2..10]);
                u64::from_be_bytes(len)
            }
            n => u64::from(n),
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(frame) = this.frames.as_deref().and_then(FrameScan::forbidden) {
            return Poll::Ready(Err(forbidden(frame)));
        }
        let start = buf.filled().len();
        let mut before = start;
        let result = Pin::new(this.io.as_mut()).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(Handshake::Recording(recorder))) =
            (&result, this.handshake.as_deref_mut())
        {
            match recorder.note(&buf.filled()[before..]) {
                Err(e) => return Poll::Ready(Err(e)),
                Ok(Some(frames_at)) => {
                    // Only the compression engine has the head handed out;
                    // its frames are watched from here.
                    this.handshake = None;
                    this.frames = Some(Box::default());
                    before += frames_at;
                }
                Ok(None) => return result,
            }
        }
        if let (Poll::Ready(Ok(())), Some(frames)) = (&result, this.frames.as_deref_mut())
            && let Err(at) = frames.feed(&buf.filled()[before..])
        {
            // What came before the forbidden frame is read (the end of the
            // upgrade's answer, whole frames); the next read fails. An empty
            // read would look like the end of the stream: fail at once then.
            let end = before + at;
            if end == start
                && let Some(frame) = frames.forbidden()
            {
                return Poll::Ready(Err(forbidden(frame)));
            }
            buf.set_filled(end);
        }
        result
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().io.as_mut()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().io.as_mut()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().io.as_mut()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().io.as_mut()).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame as a server sends it: `first`, the length in its shortest
    /// form, the mask key if any, the payload.
    fn server_frame(first: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
        let bit = if mask.is_some() { 0x80 } else { 0 };
        let mut out = vec![first];
        match payload.len() {
            n @ 0..=125 => out.push(bit | u8::try_from(n).expect("small")),
            n @ 126..=0xffff => {
                out.push(bit | 126);
                out.extend_from_slice(&u16::try_from(n).expect("16 bits").to_be_bytes());
            }
            n => {
                out.push(bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend(mask.into_iter().flatten());
        out.extend_from_slice(payload);
        out
    }

    fn answer_101(accept: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes()
    }

    /// The same answer with bare line feeds, which HTTP parsers (and the
    /// engine's) accept too.
    fn answer_101_lf(accept: &str) -> Vec<u8> {
        String::from_utf8(answer_101(accept))
            .expect("text")
            .replace("\r\n", "\n")
            .into_bytes()
    }

    #[test]
    fn a_101_with_an_accept_of_the_wrong_length_is_refused_in_any_slicing() {
        // Too long, too short, 21 bytes in 28 characters, not Base64.
        for accept in [
            "x".repeat(200),
            "c2VjcmV0".to_owned(),
            "A".repeat(28),
            "!".repeat(28),
        ] {
            for (answer, slice) in [answer_101(&accept), answer_101_lf(&accept)]
                .into_iter()
                .flat_map(|answer| [1, 2, 3, 5, 17, answer.len()].map(|n| (answer.clone(), n)))
            {
                let (mut recorder, _) = Recorder::new(false);
                let refused = answer
                    .chunks(slice)
                    .map(|chunk| recorder.note(chunk))
                    .find_map(Result::err)
                    .expect("refused");
                assert_eq!(refused.kind(), io::ErrorKind::InvalidData);
                let text = refused.to_string();
                assert!(
                    text.contains(&format!("({} bytes) is not a SHA-1 digest", accept.len())),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn a_101_head_is_handed_out_whole_and_the_frames_after_it_found() {
        let head = answer_101(&format!("{}=", "A".repeat(27)));
        let mut answer = head.clone();
        answer.extend(server_frame(0x81, None, b"first"));
        for slice in [1, 2, 3, 4, 9, head.len(), answer.len()] {
            let (mut recorder, mut recording) = Recorder::new(true);
            let mut frames = Vec::new();
            let mut handed_out = false;
            for chunk in answer.chunks(slice) {
                if handed_out {
                    frames.extend_from_slice(chunk);
                } else if let Some(at) = recorder.note(chunk).expect("accepted") {
                    handed_out = true;
                    frames.extend_from_slice(&chunk[at..]);
                }
            }
            assert!(handed_out, "slice {slice}");
            assert_eq!(recording.try_recv().expect("the head"), head);
            assert_eq!(frames, server_frame(0x81, None, b"first"), "slice {slice}");
        }
    }

    #[test]
    fn a_101_with_many_headers_is_handed_out() {
        // More than tokio-websockets reads, as many as hyper (under yawc)
        // reads: the head is checked and handed out all the same.
        let mut head = String::from("HTTP/1.1 101 Switching Protocols\r\n");
        for n in 0..(MAX_HEADERS - 1) {
            head.push_str(&format!("X-Padding-{n}: {n}\r\n"));
        }
        head.push_str(&format!(
            "Sec-WebSocket-Accept: {}=\r\n\r\n",
            "A".repeat(27)
        ));
        let (mut recorder, mut recording) = Recorder::new(true);
        assert_eq!(
            recorder.note(head.as_bytes()).expect("accepted"),
            Some(head.len())
        );
        assert_eq!(recording.try_recv().expect("the head"), head.as_bytes());
    }

    #[test]
    fn a_101_httparse_refuses_is_handed_out_unchecked() {
        // A space before the colon: httparse refuses it, hyper may not.
        let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade : websocket\r\n\r\n";
        let mut answer = head.to_vec();
        answer.extend(server_frame(0x81, None, b"first"));
        for slice in [1, 5, answer.len()] {
            let (mut recorder, mut recording) = Recorder::new(true);
            let handed_out = answer
                .chunks(slice)
                .find_map(|chunk| recorder.note(chunk).expect("not refused"));
            assert!(handed_out.is_some(), "slice {slice}");
            assert_eq!(recording.try_recv().expect("the head"), head);
        }
        // Anything else httparse refuses is not a 101.
        let (mut recorder, _) = Recorder::new(true);
        assert_eq!(
            recorder.note(b"SSH-2.0-OpenSSH_9.6\r\n").expect("noted"),
            None
        );
        assert!(recorder.part == Part::Rejection);
    }

    #[test]
    fn a_rejection_is_recorded_up_to_its_limit_and_a_101_not_kept() {
        let mut rejection = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n\r\n".to_vec();
        rejection.extend(vec![b'x'; 2 * MAX_RECORDED]);
        let (mut recorder, _) = Recorder::new(false);
        for chunk in rejection.chunks(1000) {
            assert_eq!(recorder.note(chunk).expect("within the limit"), None);
        }
        assert_eq!(recorder.bytes, rejection[..MAX_RECORDED]);

        let mut upgrade = answer_101(&format!("{}=", "A".repeat(27)));
        upgrade.extend(vec![0x82; 1000]);
        let (mut recorder, _) = Recorder::new(false);
        for chunk in upgrade.chunks(100) {
            assert_eq!(recorder.note(chunk).expect("accepted"), None);
        }
        assert!(recorder.bytes.is_empty());
    }

    #[test]
    fn frames_of_every_length_pass_in_any_slicing() {
        let mut stream = Vec::new();
        for size in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            stream.extend(server_frame(0x82, None, &vec![0x80; size]));
        }
        stream.extend(server_frame(0x89, None, b"ping"));
        for slice in [1, 2, 3, 7, 13, 4096, stream.len()] {
            let mut scan = FrameScan::default();
            for chunk in stream.chunks(slice) {
                scan.feed(chunk).expect("no masked frame");
            }
            assert_eq!(
                (scan.have, scan.skip),
                (0, 0),
                "ends between frames ({slice})"
            );
        }
    }

    #[test]
    fn a_masked_frame_is_found_wherever_it_is_cut() {
        let mut stream = server_frame(0x81, None, &[0x80; 300]);
        stream.extend(server_frame(0x81, Some([1, 2, 3, 4]), b"hi"));
        for slice in [1, 2, 5, 301, stream.len()] {
            let mut scan = FrameScan::default();
            let mut offset = 0;
            let mut found = None;
            for chunk in stream.chunks(slice) {
                if let Err(at) = scan.feed(chunk) {
                    found = Some(offset + at);
                    break;
                }
                offset += chunk.len();
            }
            // The masked frame starts after the first frame's 2 + 2 + 300
            // bytes; a header cut after its first byte is reported where
            // the chunk with its second byte starts.
            let at = found.unwrap_or_else(|| panic!("not found in slices of {slice}"));
            assert!((304..=305).contains(&at), "at {at} in slices of {slice}");
            assert_eq!(scan.forbidden(), Some(ForbiddenFrame::Masked));
        }
        // A reserved opcode is found too.
        let mut scan = FrameScan::default();
        let mut stream = server_frame(0x82, None, b"fine");
        stream.extend(server_frame(0x83, None, b"??"));
        assert_eq!(scan.feed(&stream), Err(6));
        assert_eq!(scan.forbidden(), Some(ForbiddenFrame::ReservedOpcode(3)));
        // A payload that looks like a masked header is skipped, not read.
        let mut scan = FrameScan::default();
        scan.feed(&server_frame(0x82, None, &[0x81, 0x82, 0, 0, 0, 0]))
            .expect("inside a payload");
    }
}
