//! [`AuthorityFix`]: a transparent I/O wrapper between an accepted client connection and hyper
//! that makes HTTP/2 requests whose `:authority` carries a URL scheme acceptable to hyper.
//!
//! etcdctl 3.4's `--cluster` commands dial each member with a target like
//! `passthrough:///http://127.0.0.1:2379`, so their gRPC client sends
//! `:authority: http://127.0.0.1:2379`. etcd accepts that; hyper's HTTP/2 layer rejects it as a
//! malformed authority and resets the stream with `PROTOCOL_ERROR`. This module owns the fix:
//! it watches the client-to-server bytes of an HTTP/2 connection with prior knowledge (the
//! client preface first), decodes every header block with its own HPACK decoder (which follows
//! the client's encoder), and strips the scheme from such an authority (`http://h:p` -> `h:p`).
//!
//! - Bytes of anything that is not HTTP/2 (HTTP/1.1 requests) pass through untouched; the choice
//!   is made from the first bytes.
//! - Frames other than header blocks (HEADERS + CONTINUATION) pass through untouched and, in the
//!   common case, are never copied: the wrapper reads straight into the caller's buffer and
//!   only walks the frame headers. Only the bytes that arrive in the same read after a header
//!   block split across reads, or after a re-encoded block, are copied once more.
//!   (PUSH_PROMISE, which a server refuses from a client, passes through undecoded.)
//! - Until a block needs changing, every header block is forwarded byte for byte, so hyper's
//!   HPACK decoder stays in step with the client's encoder.
//! - From the first block that needs changing on, every header block of the connection is
//!   re-encoded by this module's own HPACK encoder. The first re-encoded block starts with two
//!   dynamic table size updates (0, then the table size the client last chose, 4096 by default)
//!   that empty hyper's table, so from then on hyper's decoder follows this module's encoder.
//!   Blocks larger than 16384 bytes are split into HEADERS + CONTINUATION frames. (This
//!   relies on hyper's SETTINGS_MAX_FRAME_SIZE and SETTINGS_HEADER_TABLE_SIZE being at their
//!   defaults, 16384 and 4096, which kvd does not change.)
//! - A malformed frame stream is passed through unchanged (hyper reports the error). Once
//!   blocks are being re-encoded that is no longer possible, so a block the wrapper cannot
//!   decode is replaced by a deliberately invalid one (HPACK index 0): hyper then ends the
//!   connection with a GOAWAY, as it does for any block it cannot decode.
//!
//! Writes (server to client) pass straight through.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use loona_hpack::encoder::encode_integer_into;
use loona_hpack::{Decoder, Encoder};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::debug;

/// The HTTP/2 client connection preface.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Length of an HTTP/2 frame header.
const FRAME_HEADER_LEN: usize = 9;
/// Frame type HEADERS.
const HEADERS: u8 = 0x1;
/// Frame type CONTINUATION.
const CONTINUATION: u8 = 0x9;
/// Flag END_STREAM (HEADERS).
const END_STREAM: u8 = 0x1;
/// Flag END_HEADERS (HEADERS, CONTINUATION).
const END_HEADERS: u8 = 0x4;
/// Flag PADDED (HEADERS).
const PADDED: u8 = 0x8;
/// Flag PRIORITY (HEADERS).
const PRIORITY: u8 = 0x20;
/// Length of the priority fields of a HEADERS frame with the PRIORITY flag.
const PRIORITY_LEN: usize = 5;
/// The largest frame payload every HTTP/2 server accepts (SETTINGS_MAX_FRAME_SIZE default).
const MAX_FRAME_PAYLOAD: usize = 16_384;
/// The HPACK dynamic table size every HTTP/2 decoder starts with (SETTINGS_HEADER_TABLE_SIZE).
const DEFAULT_TABLE_SIZE: usize = 4_096;
/// The most bytes of one header block (all its frames) the wrapper holds back. hyper's own
/// limits reject far smaller blocks, so a larger one is passed on for hyper to refuse.
const MAX_BLOCK: usize = 256 * 1024;
/// How many bytes to ask the inner stream for while completing a held header block.
const READ_CHUNK: usize = 8 * 1024;
/// An emptied hold buffer larger than this is freed rather than kept for the connection.
const KEEP_CAPACITY: usize = 32 * 1024;

/// A transparent wrapper around an accepted connection that rewrites HTTP/2 `:authority`
/// values carrying a URL scheme (`http://127.0.0.1:2379` -> `127.0.0.1:2379`) in the
/// client-to-server direction. See the module docs for what passes through untouched.
#[derive(Debug)]
pub struct AuthorityFix<S> {
    /// The accepted connection.
    inner: S,
    /// Where in the byte stream the reader is.
    scanner: Scanner,
    /// Bytes read from `inner` and not yet handed to the reader: `held[..ready]` is final,
    /// `held[ready..]` is still to be examined (the `scanner` describes its first byte).
    held: BytesMut,
    /// How many bytes at the front of `held` are final.
    ready: usize,
    /// The HPACK state, made when the first header block arrives.
    rewriter: Option<Box<Rewriter>>,
}

impl<S> AuthorityFix<S> {
    /// Wraps an accepted connection (TCP, or TLS after the handshake).
    pub fn new(inner: S) -> Self {
        AuthorityFix {
            inner,
            scanner: Scanner {
                phase: Phase::Preface(0),
                payload_left: 0,
            },
            held: BytesMut::new(),
            ready: 0,
            rewriter: None,
        }
    }

    /// Wraps a connection whose bytes are passed on untouched (peer listeners: only etcdctl's
    /// `--cluster` dialing on client URLs needs the rewrite).
    pub fn passthrough(inner: S) -> Self {
        let mut fix = Self::new(inner);
        fix.scanner.phase = Phase::Raw;
        fix
    }

    /// Stops examining bytes: everything held is handed on as it is, and later reads go
    /// straight to the inner stream.
    fn pass_rest(&mut self) {
        self.scanner.phase = Phase::Raw;
        self.ready = self.held.len();
        self.rewriter = None;
    }

    /// Replaces the header block at `held[ready..ready + len]` with `with`.
    fn splice(&mut self, len: usize, with: &[u8]) {
        let mut next = BytesMut::with_capacity(self.held.len() - len + with.len());
        next.extend_from_slice(&self.held[..self.ready]);
        next.extend_from_slice(with);
        next.extend_from_slice(&self.held[self.ready + len..]);
        self.held = next;
        self.ready += with.len();
    }

    /// Examines bytes just read into the caller's buffer. Returns how many of them stay there;
    /// the rest (a header block to complete, or what follows a rewritten block) moves into
    /// `held`, which is empty on entry.
    fn examine_direct(&mut self, data: &[u8]) -> usize {
        let mut pos = 0;
        loop {
            let stop = match self.scanner.scan(&data[pos..]) {
                Scan::All => return data.len(),
                Scan::Stop(n) => pos + n,
            };
            let rewriter = self.rewriter.get_or_insert_with(Box::default);
            match rewriter.examine(&data[stop..]) {
                Block::Keep(len) => pos = stop + len,
                Block::Incomplete => {
                    self.held.extend_from_slice(&data[stop..]);
                    return stop;
                }
                Block::Replace(len) => {
                    self.held.extend_from_slice(&rewriter.out);
                    self.ready = self.held.len();
                    self.held.extend_from_slice(&data[stop + len..]);
                    return stop;
                }
                Block::GiveUp => {
                    self.pass_rest();
                    return data.len();
                }
                Block::Poison(stream) => {
                    self.held.extend_from_slice(&poison_frame(stream));
                    self.held.extend_from_slice(&data[stop..]);
                    self.pass_rest();
                    return stop;
                }
            }
        }
    }

    /// Examines `held[ready..]` one step.
    fn advance_held(&mut self) -> Advance {
        let data = &self.held[self.ready..];
        let stop = match self.scanner.scan(data) {
            Scan::All => {
                self.ready = self.held.len();
                return Advance::Progress;
            }
            Scan::Stop(0) => 0,
            Scan::Stop(n) => {
                self.ready += n;
                return Advance::Progress;
            }
        };
        let rewriter = self.rewriter.get_or_insert_with(Box::default);
        match rewriter.examine(&data[stop..]) {
            Block::Keep(len) => self.ready += len,
            Block::Incomplete => return Advance::NeedMore,
            Block::Replace(len) => {
                let out = std::mem::take(&mut rewriter.out);
                self.splice(len, &out);
                if let Some(rewriter) = self.rewriter.as_mut() {
                    rewriter.out = out;
                }
            }
            Block::GiveUp => self.pass_rest(),
            Block::Poison(stream) => {
                self.splice(0, &poison_frame(stream));
                self.pass_rest();
            }
        }
        Advance::Progress
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.ready > 0 {
                let n = this.ready.min(buf.remaining());
                buf.put_slice(&this.held[..n]);
                this.held.advance(n);
                this.ready -= n;
                if this.held.is_empty() && this.held.capacity() > KEEP_CAPACITY {
                    this.held = BytesMut::new();
                }
                return Poll::Ready(Ok(()));
            }
            if let Phase::Raw = this.scanner.phase {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            if !this.held.is_empty() {
                match this.advance_held() {
                    Advance::Progress => {}
                    Advance::NeedMore => {
                        let len = this.held.len();
                        this.held.resize(len + READ_CHUNK, 0);
                        let mut more = ReadBuf::new(&mut this.held[len..]);
                        let read = Pin::new(&mut this.inner).poll_read(cx, &mut more);
                        let n = more.filled().len();
                        this.held.truncate(len + n);
                        ready!(read)?;
                        if n == 0 {
                            // End of stream inside a frame: hand on what there is.
                            this.pass_rest();
                        }
                    }
                }
                continue;
            }
            let start = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            let end = buf.filled().len();
            if end == start {
                return Poll::Ready(Ok(()));
            }
            let keep = this.examine_direct(&buf.filled()[start..end]);
            if keep < end - start {
                buf.set_filled(start + keep);
            }
            if keep > 0 {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// What one step over held bytes achieved.
enum Advance {
    /// Some bytes became final, or the wrapper stopped examining.
    Progress,
    /// A header block is incomplete: more bytes must be read.
    NeedMore,
}

/// Where in the byte stream the wrapper is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Matching the client preface; this many bytes matched so far.
    Preface(usize),
    /// Walking HTTP/2 frames.
    Frames,
    /// Passing everything through.
    Raw,
}

/// Walks frame headers over a byte stream, stopping where a header block begins.
#[derive(Debug)]
struct Scanner {
    phase: Phase,
    /// Bytes of the current pass-through frame's payload not seen yet.
    payload_left: usize,
}

/// What [`Scanner::scan`] found.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// All the bytes pass through unchanged.
    All,
    /// The bytes before this offset pass through; a frame starts at it that must be examined
    /// whole (a HEADERS frame, or a frame header not complete yet).
    Stop(usize),
}

impl Scanner {
    /// Advances over `data`, which follows the bytes scanned before.
    fn scan(&mut self, data: &[u8]) -> Scan {
        let mut pos = 0;
        match self.phase {
            Phase::Raw => return Scan::All,
            Phase::Preface(matched) => {
                let n = (PREFACE.len() - matched).min(data.len());
                if data[..n] != PREFACE[matched..matched + n] {
                    self.phase = Phase::Raw;
                    return Scan::All;
                }
                if matched + n < PREFACE.len() {
                    self.phase = Phase::Preface(matched + n);
                    return Scan::All;
                }
                self.phase = Phase::Frames;
                pos = n;
            }
            Phase::Frames => {}
        }
        loop {
            let skip = self.payload_left.min(data.len() - pos);
            pos += skip;
            self.payload_left -= skip;
            if pos == data.len() {
                return Scan::All;
            }
            let rest = &data[pos..];
            if rest.len() < FRAME_HEADER_LEN || rest[3] == HEADERS {
                return Scan::Stop(pos);
            }
            self.payload_left = frame_len(rest);
            pos += FRAME_HEADER_LEN;
        }
    }
}

/// The payload length in a frame header.
fn frame_len(header: &[u8]) -> usize {
    usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2])
}

/// The stream id in a frame header, without the reserved bit.
fn stream_id(header: &[u8]) -> u32 {
    u32::from_be_bytes([header[5] & 0x7f, header[6], header[7], header[8]])
}

/// A HEADERS frame whose block no HPACK decoder accepts (index 0), for the stream given.
fn poison_frame(stream: u32) -> [u8; FRAME_HEADER_LEN + 1] {
    let [a, b, c, d] = stream.to_be_bytes();
    [0, 0, 1, HEADERS, END_HEADERS, a, b, c, d, 0x80]
}

/// What to do with a header block.
#[derive(Debug, PartialEq, Eq)]
enum Block {
    /// More bytes are needed to see the whole block.
    Incomplete,
    /// Pass the block (this many bytes) on unchanged.
    Keep(usize),
    /// Replace the block (this many bytes) with [`Rewriter::out`].
    Replace(usize),
    /// The block is malformed while nothing was rewritten yet: stop examining, pass everything.
    GiveUp,
    /// The block is malformed after rewriting began: send hyper an invalid block on this
    /// stream, then pass everything.
    Poison(u32),
}

/// The HPACK state of one connection.
struct Rewriter {
    /// Follows the client's encoder.
    decoder: Decoder<'static>,
    /// Present once blocks are re-encoded; hyper's decoder then follows it.
    encoder: Option<Encoder<'static>>,
    /// The dynamic table size the client last chose.
    client_table_size: usize,
    /// Size updates at the start of the current block.
    updates: Vec<usize>,
    /// The current block's fragment when it spans several frames.
    fragment: Vec<u8>,
    /// Names and values of the current block, back to back.
    flat: Vec<u8>,
    /// (offset in `flat`, name length, value length) for each field of the current block.
    fields: Vec<(usize, usize, usize)>,
    /// Byte ranges of the current block's fragment pieces.
    pieces: Vec<(usize, usize)>,
    /// The re-encoded fragment.
    encoded: Vec<u8>,
    /// The re-encoded block as frames.
    out: Vec<u8>,
}

impl std::fmt::Debug for Rewriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rewriter")
            .field("rewriting", &self.encoder.is_some())
            .field("client_table_size", &self.client_table_size)
            .finish_non_exhaustive()
    }
}

impl Default for Rewriter {
    fn default() -> Self {
        let mut decoder = Decoder::new();
        // hyper refuses larger tables (kvd leaves SETTINGS_HEADER_TABLE_SIZE at its default);
        // the limit also bounds what a client can make this decoder hold.
        decoder.set_max_allowed_table_size(DEFAULT_TABLE_SIZE);
        Rewriter {
            decoder,
            encoder: None,
            client_table_size: DEFAULT_TABLE_SIZE,
            updates: Vec::new(),
            fragment: Vec::new(),
            flat: Vec::new(),
            fields: Vec::new(),
            pieces: Vec::new(),
            encoded: Vec::new(),
            out: Vec::new(),
        }
    }
}

/// A header block's frames, located.
struct Located {
    /// Bytes of all the block's frames.
    len: usize,
    /// The first frame's flags.
    flags: u8,
    /// The first frame's stream id.
    stream: u32,
    /// Where the priority fields are, if the first frame has them.
    priority: Option<usize>,
}

impl Rewriter {
    /// Examines the header block starting at `data[0]` (a HEADERS frame, or a frame header
    /// not complete yet). Decodes it when complete, so call it once per complete block.
    fn examine(&mut self, data: &[u8]) -> Block {
        if data.len() < FRAME_HEADER_LEN {
            return Block::Incomplete;
        }
        let block = match self.locate(data) {
            Ok(Some(block)) => block,
            Ok(None) => return Block::Incomplete,
            Err(()) => return self.fail(stream_id(data), "malformed header block"),
        };
        let decoded = if let [(start, end)] = self.pieces[..] {
            self.decode(&data[start..end])
        } else {
            let mut joined = std::mem::take(&mut self.fragment);
            joined.clear();
            for &(start, end) in &self.pieces {
                joined.extend_from_slice(&data[start..end]);
            }
            let decoded = self.decode(&joined);
            self.fragment = joined;
            decoded
        };
        if decoded.is_err() {
            return self.fail(block.stream, "undecodable header block");
        }
        let needs_fix = self
            .fields()
            .any(|(name, value)| fixed(name, value).is_some());
        if self.encoder.is_none() {
            if !needs_fix {
                return Block::Keep(block.len);
            }
            debug!(
                stream = block.stream,
                "HTTP/2 client sent an :authority with a URL scheme; re-encoding its header blocks"
            );
            let mut encoder = Encoder::new();
            encoder.set_max_table_size(self.client_table_size);
            self.encoder = Some(encoder);
            // Empty hyper's table, then give it the size the client chose.
            self.updates.clear();
            self.updates.push(0);
            self.updates.push(self.client_table_size);
        }
        self.encode();
        self.frame(data, &block);
        Block::Replace(block.len)
    }

    /// What to do with a block that cannot be handled.
    fn fail(&mut self, stream: u32, why: &str) -> Block {
        if self.encoder.is_some() {
            debug!(
                stream,
                why, "HTTP/2 header block cannot be re-encoded; ending the connection"
            );
            Block::Poison(stream)
        } else {
            debug!(
                stream,
                why, "HTTP/2 header block not examined; passing the connection through"
            );
            Block::GiveUp
        }
    }

    /// Finds the frames of the block at `data[0]` and its fragment pieces (into `pieces`).
    /// `Ok(None)`: not complete yet. `Err`: malformed or too large.
    fn locate(&mut self, data: &[u8]) -> Result<Option<Located>, ()> {
        self.pieces.clear();
        let flags = data[4];
        let stream = stream_id(data);
        let mut priority = None;
        let mut at = 0;
        loop {
            if data.len() < at + FRAME_HEADER_LEN {
                return Ok(None);
            }
            let header = &data[at..at + FRAME_HEADER_LEN];
            let len = frame_len(header);
            if at + FRAME_HEADER_LEN + len > MAX_BLOCK {
                return Err(());
            }
            if at > 0 && (header[3] != CONTINUATION || stream_id(header) != stream) {
                return Err(());
            }
            if data.len() < at + FRAME_HEADER_LEN + len {
                return Ok(None);
            }
            let mut start = at + FRAME_HEADER_LEN;
            let mut end = start + len;
            if at == 0 {
                let mut pad = 0;
                if flags & PADDED != 0 {
                    if start == end {
                        return Err(());
                    }
                    pad = usize::from(data[start]);
                    start += 1;
                }
                if flags & PRIORITY != 0 {
                    if end - start < PRIORITY_LEN {
                        return Err(());
                    }
                    priority = Some(start);
                    start += PRIORITY_LEN;
                }
                if pad > end - start {
                    return Err(());
                }
                end -= pad;
            }
            self.pieces.push((start, end));
            at += FRAME_HEADER_LEN + len;
            if header[4] & END_HEADERS != 0 {
                return Ok(Some(Located {
                    len: at,
                    flags,
                    stream,
                    priority,
                }));
            }
        }
    }

    /// Decodes a fragment into `flat`/`fields`, noting its leading table size updates.
    fn decode(&mut self, fragment: &[u8]) -> Result<(), ()> {
        self.updates.clear();
        let mut at = 0;
        while at < fragment.len() && fragment[at] & 0xe0 == 0x20 {
            let (size, used) = decode_size_update(&fragment[at..]).ok_or(())?;
            self.updates.push(size);
            at += used;
        }
        if let Some(&size) = self.updates.last() {
            self.client_table_size = size;
        }
        self.flat.clear();
        self.fields.clear();
        if at == fragment.len() && !self.updates.is_empty() {
            // Only size updates: valid HPACK that loona refuses (it wants a field after them).
            for &size in &self.updates {
                if size > DEFAULT_TABLE_SIZE {
                    return Err(());
                }
                self.decoder.set_max_table_size(size);
            }
            return Ok(());
        }
        let flat = &mut self.flat;
        let fields = &mut self.fields;
        self.decoder
            .decode_with_cb(fragment, |name, value| {
                fields.push((flat.len(), name.len(), value.len()));
                flat.extend_from_slice(&name);
                flat.extend_from_slice(&value);
            })
            .map_err(|_| ())
    }

    /// The decoded fields of the current block.
    fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.fields.iter().map(|&(at, name_len, value_len)| {
            let name = &self.flat[at..at + name_len];
            let value = &self.flat[at + name_len..at + name_len + value_len];
            (name, value)
        })
    }

    /// Re-encodes the current block (with `updates` first) into `encoded`.
    fn encode(&mut self) {
        let Some(encoder) = self.encoder.as_mut() else {
            return;
        };
        self.encoded.clear();
        for &size in &self.updates {
            encoder.set_max_table_size(size);
            encode_integer_into(size, 5, 0x20, &mut self.encoded)
                .expect("writing to a Vec cannot fail");
        }
        let flat = &self.flat;
        let fields = self.fields.iter().map(|&(at, name_len, value_len)| {
            let name = &flat[at..at + name_len];
            let value = &flat[at + name_len..at + name_len + value_len];
            (name, fixed(name, value).unwrap_or(value))
        });
        encoder
            .encode_into(fields, &mut self.encoded)
            .expect("writing to a Vec cannot fail");
    }

    /// Frames `encoded` as a HEADERS frame (+ CONTINUATION frames) into `out`, keeping the
    /// original block's stream, END_STREAM flag and priority fields.
    fn frame(&mut self, data: &[u8], block: &Located) {
        self.out.clear();
        let priority = block.priority.map(|at| &data[at..at + PRIORITY_LEN]);
        let first_room = MAX_FRAME_PAYLOAD - priority.map_or(0, <[u8]>::len);
        let split = first_room.min(self.encoded.len());
        let (first, mut rest) = self.encoded.split_at(split);
        let mut flags = block.flags & (END_STREAM | PRIORITY);
        if rest.is_empty() {
            flags |= END_HEADERS;
        }
        let payload_len = priority.map_or(0, <[u8]>::len) + first.len();
        push_frame_header(&mut self.out, payload_len, HEADERS, flags, block.stream);
        if let Some(priority) = priority {
            self.out.extend_from_slice(priority);
        }
        self.out.extend_from_slice(first);
        while !rest.is_empty() {
            let (piece, after) = rest.split_at(MAX_FRAME_PAYLOAD.min(rest.len()));
            let flags = if after.is_empty() { END_HEADERS } else { 0 };
            push_frame_header(
                &mut self.out,
                piece.len(),
                CONTINUATION,
                flags,
                block.stream,
            );
            self.out.extend_from_slice(piece);
            rest = after;
        }
    }
}

/// Appends a frame header.
fn push_frame_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    let len = u32::try_from(len).expect("frame payloads here are at most 16384 bytes");
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
}

/// Decodes a dynamic table size update (an HPACK integer with a 5-bit prefix) at `data[0]`:
/// the size and the bytes used. `None` if it is truncated or absurdly large.
fn decode_size_update(data: &[u8]) -> Option<(usize, usize)> {
    const PREFIX_MAX: usize = 0x1f;
    let first = usize::from(*data.first()? & 0x1f);
    if first < PREFIX_MAX {
        return Some((first, 1));
    }
    let mut value = PREFIX_MAX;
    for (i, &byte) in data.iter().enumerate().skip(1).take(4) {
        value += usize::from(byte & 0x7f) << (7 * (i - 1));
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The value to send instead of `value` for the field `name`, if it needs changing: an
/// `:authority` with a URL scheme loses the scheme (and any path after the host and port).
fn fixed<'a>(name: &[u8], value: &'a [u8]) -> Option<&'a [u8]> {
    if name != b":authority" {
        return None;
    }
    let scheme_end = value.windows(3).position(|w| w == b"://")? + 3;
    let rest = &value[scheme_end..];
    let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use tokio::io::AsyncReadExt;

    use super::*;

    /// A scripted inner stream: hands out `chunks` one (or part of one) per read, optionally
    /// returning `Pending` before every read; writes are discarded.
    struct Script {
        chunks: VecDeque<Vec<u8>>,
        pend: bool,
        pend_next: bool,
    }

    impl AsyncRead for Script {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if self.pend_next {
                self.pend_next = false;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.pend_next = self.pend;
            if let Some(chunk) = self.chunks.front_mut() {
                let n = chunk.len().min(buf.remaining());
                buf.put_slice(&chunk[..n]);
                chunk.drain(..n);
                if chunk.is_empty() {
                    self.chunks.pop_front();
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Script {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Feeds `input` through the wrapper in chunks of `chunk()` bytes, reading with buffers
    /// of `read()` bytes, and returns everything read.
    async fn pump(
        input: &[u8],
        mut chunk: impl FnMut() -> usize,
        mut read: impl FnMut() -> usize,
        pend: bool,
    ) -> Vec<u8> {
        let mut chunks = VecDeque::new();
        let mut rest = input;
        while !rest.is_empty() {
            let (a, b) = rest.split_at(chunk().clamp(1, rest.len()));
            chunks.push_back(a.to_vec());
            rest = b;
        }
        let mut fix = AuthorityFix::new(Script {
            chunks,
            pend,
            pend_next: false,
        });
        let mut out = Vec::new();
        loop {
            let mut buf = vec![0; read().max(1)];
            let n = fix.read(&mut buf).await.expect("scripted reads never fail");
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    /// Runs `input` through the wrapper in many chunkings; asserts they all agree and
    /// returns the output.
    async fn through(input: &[u8]) -> Vec<u8> {
        let whole = pump(input, || usize::MAX, || 1 << 20, false).await;
        let tiny = pump(input, || 1, || 1, false).await;
        assert!(
            tiny == whole,
            "1-byte chunks and reads differ from one read"
        );
        let tiny_pending = pump(input, || 1, || 7, true).await;
        assert!(tiny_pending == whole, "1-byte chunks with Pending differ");
        for seed in 0..8 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut rng2 = StdRng::seed_from_u64(seed + 100);
            let small = pump(
                input,
                || rng.gen_range(1..40),
                || rng2.gen_range(1..60),
                seed % 2 == 0,
            )
            .await;
            assert!(
                small == whole,
                "random small chunking (seed {seed}) differs"
            );
            let mut rng = StdRng::seed_from_u64(seed + 200);
            let mut rng2 = StdRng::seed_from_u64(seed + 300);
            let large = pump(
                input,
                || rng.gen_range(1..30_000),
                || rng2.gen_range(1..40_000),
                false,
            )
            .await;
            assert!(
                large == whole,
                "random large chunking (seed {seed}) differs"
            );
        }
        whole
    }

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        push_frame_header(&mut out, payload.len(), kind, flags, stream);
        out.extend_from_slice(payload);
        out
    }

    /// A header block as HEADERS + CONTINUATION frames of at most `max` fragment bytes.
    fn block(stream: u32, fragment: &[u8], end_stream: bool, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut pieces: Vec<&[u8]> = fragment.chunks(max).collect();
        if pieces.is_empty() {
            pieces.push(&[]);
        }
        let last = pieces.len() - 1;
        for (i, piece) in pieces.into_iter().enumerate() {
            let mut flags = if i == last { END_HEADERS } else { 0 };
            let kind = if i == 0 { HEADERS } else { CONTINUATION };
            if i == 0 && end_stream {
                flags |= END_STREAM;
            }
            out.extend(frame(kind, flags, stream, piece));
        }
        out
    }

    type Fields = Vec<(String, String)>;

    fn request(authority: &str, extra: &[(&str, &str)]) -> Fields {
        let mut fields: Fields = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/etcdserverpb.Maintenance/Status"),
            (":authority", authority),
            ("content-type", "application/grpc"),
            ("user-agent", "grpc-go/1.26.0"),
            ("te", "trailers"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        fields.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        fields
    }

    fn encode(encoder: &mut Encoder<'static>, fields: &Fields) -> Vec<u8> {
        encoder.encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    fn preface_and_settings() -> Vec<u8> {
        let mut out = PREFACE.to_vec();
        out.extend(frame(0x4, 0, 0, &[0, 4, 0, 0x40, 0, 0]));
        out.extend(frame(0x8, 0, 0, &[0, 0x0f, 0, 1]));
        out
    }

    /// A frame as the server's side sees it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Frame {
        kind: u8,
        flags: u8,
        stream: u32,
        payload: Vec<u8>,
    }

    fn parse_frames(bytes: &[u8]) -> Vec<Frame> {
        assert!(bytes.starts_with(PREFACE), "output lost the preface");
        let mut at = PREFACE.len();
        let mut frames = Vec::new();
        while at < bytes.len() {
            let header = &bytes[at..at + FRAME_HEADER_LEN];
            let len = frame_len(header);
            frames.push(Frame {
                kind: header[3],
                flags: header[4],
                stream: stream_id(header),
                payload: bytes[at + FRAME_HEADER_LEN..at + FRAME_HEADER_LEN + len].to_vec(),
            });
            at += FRAME_HEADER_LEN + len;
        }
        frames
    }

    /// What the server's side decodes from the output.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Headers {
            stream: u32,
            end_stream: bool,
            priority: Option<Vec<u8>>,
            fields: Fields,
        },
        Other(Frame),
    }

    /// Decodes frames as an HTTP/2 server would (SETTINGS_MAX_FRAME_SIZE and
    /// SETTINGS_HEADER_TABLE_SIZE at their defaults), checking the limits hold.
    fn server_view(frames: &[Frame]) -> Vec<Seen> {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(DEFAULT_TABLE_SIZE);
        let mut seen = Vec::new();
        let mut i = 0;
        while i < frames.len() {
            let first = &frames[i];
            i += 1;
            if first.kind != HEADERS {
                assert_ne!(first.kind, CONTINUATION, "stray CONTINUATION");
                seen.push(Seen::Other(first.clone()));
                continue;
            }
            let mut payload = first.payload.as_slice();
            let mut pad = 0;
            if first.flags & PADDED != 0 {
                pad = usize::from(payload[0]);
                payload = &payload[1..];
            }
            let mut priority = None;
            if first.flags & PRIORITY != 0 {
                priority = Some(payload[..PRIORITY_LEN].to_vec());
                payload = &payload[PRIORITY_LEN..];
            }
            let mut fragment = payload[..payload.len() - pad].to_vec();
            let mut flags = first.flags;
            while flags & END_HEADERS == 0 {
                let next = &frames[i];
                i += 1;
                assert_eq!(next.kind, CONTINUATION);
                assert_eq!(next.stream, first.stream);
                fragment.extend_from_slice(&next.payload);
                flags = next.flags;
            }
            let mut at = 0;
            let mut sizes = Vec::new();
            while at < fragment.len() && fragment[at] & 0xe0 == 0x20 {
                let (size, used) = decode_size_update(&fragment[at..]).expect("size update");
                assert!(
                    size <= DEFAULT_TABLE_SIZE,
                    "table size over the server's limit"
                );
                sizes.push(size);
                at += used;
            }
            if !sizes.is_empty() && at == fragment.len() {
                // Only size updates (which loona refuses to decode on their own).
                for size in sizes {
                    decoder.set_max_table_size(size);
                }
                fragment.clear();
            }
            let fields = decoder
                .decode(&fragment)
                .expect("the server can decode every block")
                .into_iter()
                .map(|(n, v)| {
                    (
                        String::from_utf8(n).expect("utf-8 name"),
                        String::from_utf8(v).expect("utf-8 value"),
                    )
                })
                .collect();
            seen.push(Seen::Headers {
                stream: first.stream,
                end_stream: first.flags & END_STREAM != 0,
                priority,
                fields,
            });
        }
        seen
    }

    fn assert_frame_limits(frames: &[Frame]) {
        for f in frames {
            assert!(
                f.payload.len() <= MAX_FRAME_PAYLOAD,
                "frame larger than 16384"
            );
        }
    }

    fn fixed_fields(fields: &Fields) -> Fields {
        fields
            .iter()
            .map(|(n, v)| {
                let v = fixed(n.as_bytes(), v.as_bytes())
                    .map(|v| String::from_utf8(v.to_vec()).expect("utf-8"))
                    .unwrap_or_else(|| v.clone());
                (n.clone(), v)
            })
            .collect()
    }

    #[tokio::test]
    async fn http2_without_scheme_passes_byte_for_byte() {
        let mut enc = Encoder::new();
        let mut input = preface_and_settings();
        input.extend(block(
            1,
            &encode(&mut enc, &request("127.0.0.1:2379", &[])),
            false,
            1 << 14,
        ));
        input.extend(frame(0x0, 0x1, 1, &[0, 0, 0, 0, 3, 8, 1, 2]));
        // A block split over HEADERS + two CONTINUATIONs.
        let fields = request("127.0.0.1:2379", &[("token", "abcdefghijklmnop")]);
        input.extend(block(3, &encode(&mut enc, &fields), false, 20));
        // A padded DATA frame with a large payload.
        let mut data = vec![4u8];
        data.extend(std::iter::repeat_n(7u8, 40_000));
        data.extend([0u8; 4]);
        input.extend(frame(0x0, 0x8 | 0x1, 3, &data));
        // HEADERS with PADDED and PRIORITY.
        let fragment = encode(&mut enc, &request("localhost:2379", &[]));
        let mut payload = vec![3u8, 0, 0, 0, 1, 16];
        payload.extend(&fragment);
        payload.extend([0u8; 3]);
        input.extend(frame(
            HEADERS,
            END_HEADERS | PADDED | PRIORITY | END_STREAM,
            5,
            &payload,
        ));
        input.extend(frame(0x6, 0, 0, &[1, 2, 3, 4, 5, 6, 7, 8]));
        // Trailers-like block without pseudo-headers.
        let trailers: Fields = vec![("grpc-status".into(), "0".into())];
        input.extend(block(1, &encode(&mut enc, &trailers), true, 1 << 14));
        let out = through(&input).await;
        assert!(
            out == input,
            "a stream needing no change must pass unchanged"
        );
    }

    #[tokio::test]
    async fn non_http2_passes_unchanged() {
        let mut http1 = b"POST /v3/kv/range HTTP/1.1\r\nHost: 127.0.0.1:2379\r\n".to_vec();
        http1.extend_from_slice(b"Content-Length: 5\r\n\r\nhello");
        assert!(through(&http1).await == http1);
        // Starts like the preface but is not.
        let mut almost = b"PRI * HTTP/1.1\r\n\r\n".to_vec();
        almost.extend(frame(HEADERS, END_HEADERS, 1, &[0x80]));
        assert!(through(&almost).await == almost);
        // A preface and nothing else; a truncated preface.
        assert!(through(PREFACE).await == PREFACE);
        assert!(through(&PREFACE[..10]).await == PREFACE[..10]);
        assert!(through(b"").await.is_empty());
    }

    #[tokio::test]
    async fn scheme_is_stripped_and_hpack_stays_in_step() {
        let mut enc = Encoder::new();
        let mut input = preface_and_settings();
        let mut expected = Vec::new();
        let data = frame(0x0, 0x1, 1, &[0, 0, 0, 0, 2, 8, 1]);
        let requests = [
            request("127.0.0.1:2379", &[("x-a", "1")]),
            request("http://127.0.0.1:2379", &[("x-a", "1")]),
            request("http://127.0.0.1:2379", &[("x-a", "2"), ("x-b", "same")]),
            request("https://[::1]:2379/", &[("x-b", "same")]),
            request("127.0.0.1:2379", &[("x-b", "same"), ("x-a", "1")]),
        ];
        let mut stream = 1;
        for fields in &requests {
            input.extend(block(stream, &encode(&mut enc, fields), false, 1 << 14));
            input.extend(frame(0x0, 0x1, stream, &data[FRAME_HEADER_LEN..]));
            expected.push((stream, fixed_fields(fields)));
            stream += 2;
        }
        // A block larger than one frame, in and out.
        let big = "v".repeat(20_000);
        let fields = request("http://127.0.0.1:2379", &[("x-big", &big)]);
        input.extend(block(stream, &encode(&mut enc, &fields), true, 1 << 14));
        expected.push((stream, fixed_fields(&fields)));
        stream += 2;
        // PADDED + PRIORITY after the switch.
        let fields = request("http://localhost:2379", &[("x-a", "1")]);
        let mut payload = vec![2u8, 0, 0, 0, 1, 200];
        payload.extend(encode(&mut enc, &fields));
        payload.extend([0u8; 2]);
        input.extend(frame(
            HEADERS,
            END_HEADERS | PADDED | PRIORITY,
            stream,
            &payload,
        ));
        expected.push((stream, fixed_fields(&fields)));
        // Trailers on stream 1.
        let trailers: Fields = vec![("x-trailer".into(), "t".into())];
        input.extend(block(1, &encode(&mut enc, &trailers), true, 1 << 14));
        expected.push((1, trailers));

        let out = through(&input).await;
        let frames = parse_frames(&out);
        assert_frame_limits(&frames);
        let seen = server_view(&frames);
        let headers: Vec<(u32, Fields)> = seen
            .iter()
            .filter_map(|s| match s {
                Seen::Headers { stream, fields, .. } => Some((*stream, fields.clone())),
                Seen::Other(_) => None,
            })
            .collect();
        assert_eq!(headers, expected);
        let authorities: Vec<&str> = headers
            .iter()
            .flat_map(|(_, f)| f.iter().filter(|(n, _)| n == ":authority"))
            .map(|(_, v)| v.as_str())
            .collect();
        let want = [
            "127.0.0.1:2379",
            "127.0.0.1:2379",
            "127.0.0.1:2379",
            "[::1]:2379",
            "127.0.0.1:2379",
            "127.0.0.1:2379",
            "localhost:2379",
        ];
        assert_eq!(authorities, want);
        // Everything else is exactly as sent.
        let sent = server_view(&parse_frames(&input));
        let others = |v: &[Seen]| {
            v.iter()
                .filter(|s| matches!(s, Seen::Other(_)))
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(others(&seen), others(&sent));
        // The first block (before any change) is forwarded as it was.
        let first_in = parse_frames(&input)[2].clone();
        let first_out = frames[2].clone();
        assert_eq!(first_in, first_out);
        // END_STREAM and priority survive; padding is dropped.
        let big_block = seen.iter().find_map(|s| match s {
            Seen::Headers {
                stream: 11,
                end_stream,
                ..
            } => Some(*end_stream),
            _ => None,
        });
        assert_eq!(big_block, Some(true));
        let big_frames = frames.iter().filter(|f| f.stream == 11).count();
        assert!(
            big_frames >= 2,
            "the big block must be split into several frames"
        );
        let prio = seen.iter().find_map(|s| match s {
            Seen::Headers {
                stream: 13,
                priority,
                ..
            } => Some(priority.clone()),
            _ => None,
        });
        assert_eq!(prio, Some(Some(vec![0, 0, 0, 1, 200])));
        assert!(frames
            .iter()
            .all(|f| f.flags & PADDED == 0 || f.kind != HEADERS || f.stream == 0));
    }

    #[tokio::test]
    async fn client_table_size_updates_are_followed() {
        let mut enc = Encoder::new();
        let mut input = preface_and_settings();
        // Block 1 shrinks the client's table to 256.
        enc.set_max_table_size(256);
        let mut fragment = Vec::new();
        encode_integer_into(256, 5, 0x20, &mut fragment).expect("vec");
        fragment.extend(encode(
            &mut enc,
            &request("127.0.0.1:2379", &[("x-1", "a")]),
        ));
        input.extend(block(1, &fragment, true, 1 << 14));
        // Block 2 switches.
        let second = request("http://127.0.0.1:2379", &[("x-2", "b")]);
        input.extend(block(3, &encode(&mut enc, &second), true, 1 << 14));
        // Block 3 empties and regrows the client's table.
        enc.set_max_table_size(0);
        enc.set_max_table_size(1000);
        let mut fragment = Vec::new();
        encode_integer_into(0, 5, 0x20, &mut fragment).expect("vec");
        encode_integer_into(1000, 5, 0x20, &mut fragment).expect("vec");
        let third = request("http://127.0.0.1:2379", &[("x-3", "c")]);
        fragment.extend(encode(&mut enc, &third));
        input.extend(block(5, &fragment, true, 1 << 14));
        // Block 4 is nothing but a size update (valid HPACK; the server resets that stream).
        enc.set_max_table_size(500);
        let mut fragment = Vec::new();
        encode_integer_into(500, 5, 0x20, &mut fragment).expect("vec");
        input.extend(block(9, &fragment, true, 1 << 14));
        let fourth = request("http://127.0.0.1:2379", &[("x-3", "c"), ("x-4", "d")]);
        input.extend(block(7, &encode(&mut enc, &fourth), true, 1 << 14));

        let out = through(&input).await;
        let frames = parse_frames(&out);
        let headers: Vec<&Frame> = frames.iter().filter(|f| f.kind == HEADERS).collect();
        // Block 2 starts by emptying the server's table and setting the client's size.
        let mut prelude = Vec::new();
        encode_integer_into(0, 5, 0x20, &mut prelude).expect("vec");
        encode_integer_into(256, 5, 0x20, &mut prelude).expect("vec");
        assert!(headers[1].payload.starts_with(&prelude));
        // Block 3 repeats the client's updates.
        let mut prelude = Vec::new();
        encode_integer_into(0, 5, 0x20, &mut prelude).expect("vec");
        encode_integer_into(1000, 5, 0x20, &mut prelude).expect("vec");
        assert!(headers[2].payload.starts_with(&prelude));
        let seen = server_view(&frames);
        let fields: Vec<Fields> = seen
            .into_iter()
            .filter_map(|s| match s {
                Seen::Headers { fields, .. } => Some(fields),
                Seen::Other(_) => None,
            })
            .collect();
        assert_eq!(fields[1], fixed_fields(&second));
        assert_eq!(fields[2], fixed_fields(&third));
        assert_eq!(fields[3], Fields::new());
        let mut prelude = Vec::new();
        encode_integer_into(500, 5, 0x20, &mut prelude).expect("vec");
        assert_eq!(headers[3].payload, prelude);
        assert_eq!(fields[4], fixed_fields(&fourth));
    }

    /// What etcdctl 3.4.23 sent for `endpoint status --cluster` to a member advertising
    /// `http://127.0.0.1:23791` (captured on loopback): preface, SETTINGS, SETTINGS ack,
    /// HEADERS (Huffman-coded, `:authority: http://127.0.0.1:23791`), DATA, PING.
    const ETCDCTL_CLUSTER_STATUS: &str = concat!(
        "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a00000004000000000000000004010000",
        "00000000770104000000018386459760a924882d9dcb6571afa066a925a87510ac6e48d36a3f4190",
        "9d29aee30c044eae05c0b86e09975f0f5f8b1d75d0620d263d4c4d65647a8b9acac8b4c7602bb2ca",
        "ecff40027465864d833505b11f40899acac8b24d494f6a7f8669f7c4e3af5b408d25062d49587599",
        "6ee5b1063d5f03332e34000005000100000001000000000000000806010000000002041010090e07",
        "07",
    );

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[tokio::test]
    async fn etcdctl_cluster_request_is_fixed() {
        let input = unhex(ETCDCTL_CLUSTER_STATUS);
        let sent = server_view(&parse_frames(&input));
        let out = through(&input).await;
        let seen = server_view(&parse_frames(&out));
        let authority = |v: &[Seen]| {
            v.iter()
                .find_map(|s| match s {
                    Seen::Headers { fields, .. } => fields
                        .iter()
                        .find(|(n, _)| n == ":authority")
                        .map(|(_, v)| v.clone()),
                    Seen::Other(_) => None,
                })
                .expect("a request")
        };
        assert_eq!(authority(&sent), "http://127.0.0.1:23791");
        assert_eq!(authority(&seen), "127.0.0.1:23791");
        assert_eq!(sent.len(), seen.len());
        for (s, o) in sent.iter().zip(&seen) {
            match (s, o) {
                (
                    Seen::Headers {
                        fields: a,
                        stream: sa,
                        end_stream: ea,
                        ..
                    },
                    Seen::Headers {
                        fields: b,
                        stream: sb,
                        end_stream: eb,
                        ..
                    },
                ) => {
                    assert_eq!(&fixed_fields(a), b);
                    assert_eq!((sa, ea), (sb, eb));
                }
                _ => assert_eq!(s, o),
            }
        }
    }

    #[tokio::test]
    async fn malformed_streams_pass_unchanged_before_any_change() {
        let mut enc = Encoder::new();
        let good = block(
            1,
            &encode(&mut enc, &request("127.0.0.1:1", &[])),
            false,
            1 << 14,
        );
        let cases: Vec<Vec<u8>> = vec![
            // HEADERS without END_HEADERS, then DATA.
            [frame(HEADERS, 0, 3, &[0x82]), frame(0, 1, 3, b"x")].concat(),
            // CONTINUATION on another stream.
            [
                frame(HEADERS, 0, 3, &[0x82]),
                frame(CONTINUATION, END_HEADERS, 5, &[0x84]),
            ]
            .concat(),
            // Padding longer than the payload.
            frame(HEADERS, END_HEADERS | PADDED, 3, &[9, 0x82]),
            // PRIORITY flag without room for it; PADDED with an empty payload.
            frame(HEADERS, END_HEADERS | PRIORITY, 3, &[0, 0]),
            frame(HEADERS, END_HEADERS | PADDED, 3, &[]),
            // Undecodable HPACK (index 0), then a block that would need a change.
            [
                frame(HEADERS, END_HEADERS, 3, &[0x80]),
                block(
                    5,
                    &Encoder::new().encode([(&b":authority"[..], &b"http://a:1"[..])]),
                    true,
                    99,
                ),
            ]
            .concat(),
            // A trailing size update.
            frame(HEADERS, END_HEADERS, 3, &[0x82, 0x20]),
            // A frame header cut short, and a HEADERS frame cut short.
            vec![0, 0, 5, 1],
            frame(HEADERS, END_HEADERS, 3, &[0x82, 0x84, 0x86])[..11].to_vec(),
            // A block larger than the wrapper holds.
            {
                let mut f = vec![0x10, 0, 0, HEADERS, END_HEADERS, 0, 0, 0, 3];
                f.extend(vec![0x82; 300_000]);
                f
            },
        ];
        for (i, case) in cases.into_iter().enumerate() {
            let mut input = preface_and_settings();
            input.extend(&good);
            input.extend(case);
            let out = through(&input).await;
            assert!(out == input, "case {i} changed");
        }
    }

    #[tokio::test]
    async fn random_frames_never_panic_and_pass_unchanged() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..300 {
            let mut input = preface_and_settings();
            for _ in 0..rng.gen_range(1..12) {
                let kind = [0u8, 1, 1, 1, 9, 3, 8][rng.gen_range(0..7)];
                let flags: u8 = rng.gen();
                let len = rng.gen_range(0..40);
                let payload: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                input.extend(frame(kind, flags, rng.gen_range(0..4), &payload));
            }
            if rng.gen_bool(0.3) {
                let cut = rng.gen_range(PREFACE.len()..input.len());
                input.truncate(cut);
            }
            let out = pump(&input, || 3, || 5, false).await;
            assert!(out == input, "random frames changed: {input:?}");
        }
    }

    #[tokio::test]
    async fn undecodable_block_after_change_ends_the_connection() {
        let mut enc = Encoder::new();
        let mut input = preface_and_settings();
        let fields = request("http://127.0.0.1:2379", &[]);
        input.extend(block(1, &encode(&mut enc, &fields), true, 1 << 14));
        let garbage = frame(HEADERS, END_HEADERS, 3, &[0x80]);
        input.extend(&garbage);
        input.extend(frame(0, 1, 3, b"after"));
        let out = through(&input).await;
        let frames = parse_frames(&out);
        let seen = server_view(&frames[..3]);
        assert!(matches!(&seen[2], Seen::Headers { fields: f, .. } if *f == fixed_fields(&fields)));
        assert_eq!(
            frames[3].payload,
            vec![0x80],
            "an invalid block for hyper to refuse"
        );
        assert_eq!(frames[3].stream, 3);
        assert!(out.ends_with(&[garbage, frame(0, 1, 3, b"after")].concat()));
    }

    #[test]
    fn authority_fix_rules() {
        let f = |v: &str| fixed(b":authority", v.as_bytes()).map(|v| v.to_vec());
        assert_eq!(f("http://127.0.0.1:2379"), Some(b"127.0.0.1:2379".to_vec()));
        assert_eq!(f("https://h:1/x/y"), Some(b"h:1".to_vec()));
        assert_eq!(f("unix://sock"), Some(b"sock".to_vec()));
        assert_eq!(f("127.0.0.1:2379"), None);
        assert_eq!(fixed(b"host", b"http://a:1"), None);
        assert_eq!(decode_size_update(&[0x3f, 0xe1, 0x1f]), Some((4096, 3)));
        assert_eq!(decode_size_update(&[0x20]), Some((0, 1)));
        assert_eq!(decode_size_update(&[0x3f, 0xff]), None);
    }

    mod end_to_end {
        use std::convert::Infallible;
        use std::net::SocketAddr;
        use std::time::Duration;

        use bytes::Bytes;
        use http_body_util::{BodyExt, Full};
        use hyper::body::Incoming;
        use hyper::{Request, Response};
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::server::conn::auto::Builder;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::{TcpListener, TcpStream};
        use tokio::task::JoinHandle;

        use super::*;

        /// Aborts the server task when the test ends, also on panic.
        struct Server(JoinHandle<()>, SocketAddr);

        impl Drop for Server {
            fn drop(&mut self) {
                self.0.abort();
            }
        }

        async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
            let authority = req
                .uri()
                .authority()
                .map(|a| a.to_string())
                .unwrap_or_default();
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => Bytes::from_static(b"body error"),
            };
            Ok(Response::builder()
                .header("x-authority", authority)
                .body(Full::new(body))
                .expect("a valid response"))
        }

        /// A hyper server as kvd runs it (hyper-util's auto builder), with or without the
        /// wrapper.
        async fn server(wrap: bool) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind loopback");
            let addr = listener.local_addr().expect("local addr");
            let task = tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    tokio::spawn(async move {
                        let builder = Builder::new(TokioExecutor::new());
                        let service = hyper::service::service_fn(echo);
                        if wrap {
                            let io = TokioIo::new(AuthorityFix::new(stream));
                            let _ = builder.serve_connection_with_upgrades(io, service).await;
                        } else {
                            let io = TokioIo::new(stream);
                            let _ = builder.serve_connection_with_upgrades(io, service).await;
                        }
                    });
                }
            });
            Server(task, addr)
        }

        #[derive(Debug, PartialEq, Eq)]
        enum Outcome {
            Response {
                status: String,
                authority: String,
                body: Vec<u8>,
            },
            Reset(u32),
        }

        /// A hand-made HTTP/2 client that can send any `:authority`.
        struct Client {
            io: TcpStream,
            encoder: Encoder<'static>,
            decoder: Decoder<'static>,
            next_stream: u32,
        }

        impl Client {
            async fn connect(addr: SocketAddr) -> Client {
                let mut io = TcpStream::connect(addr).await.expect("connect");
                let mut hello = PREFACE.to_vec();
                hello.extend(frame(0x4, 0, 0, &[]));
                io.write_all(&hello).await.expect("send preface");
                Client {
                    io,
                    encoder: Encoder::new(),
                    decoder: Decoder::new(),
                    next_stream: 1,
                }
            }

            async fn read_frame(&mut self) -> Frame {
                let mut header = [0u8; FRAME_HEADER_LEN];
                self.io.read_exact(&mut header).await.expect("frame header");
                let mut payload = vec![0; frame_len(&header)];
                self.io
                    .read_exact(&mut payload)
                    .await
                    .expect("frame payload");
                Frame {
                    kind: header[3],
                    flags: header[4],
                    stream: stream_id(&header),
                    payload,
                }
            }

            async fn call(&mut self, authority: &str, body: &[u8]) -> Outcome {
                let stream = self.next_stream;
                self.next_stream += 2;
                let fields = request(authority, &[("x-call", "1")]);
                let fragment = encode(&mut self.encoder, &fields);
                let mut bytes = block(stream, &fragment, false, 1 << 14);
                let mut pieces: Vec<&[u8]> = body.chunks(MAX_FRAME_PAYLOAD).collect();
                let last = pieces.pop().unwrap_or(&[]);
                for piece in pieces {
                    bytes.extend(frame(0, 0, stream, piece));
                }
                bytes.extend(frame(0, END_STREAM, stream, last));
                self.io.write_all(&bytes).await.expect("send request");
                let mut status = String::new();
                let mut seen_authority = String::new();
                let mut got = Vec::new();
                loop {
                    let f = self.read_frame().await;
                    match f.kind {
                        0x4 if f.flags & 1 == 0 => {
                            let ack = frame(0x4, 1, 0, &[]);
                            self.io.write_all(&ack).await.expect("settings ack");
                        }
                        0x7 => panic!("server sent GOAWAY: {:?}", f.payload),
                        0x3 if f.stream == stream => {
                            let code = u32::from_be_bytes([
                                f.payload[0],
                                f.payload[1],
                                f.payload[2],
                                f.payload[3],
                            ]);
                            return Outcome::Reset(code);
                        }
                        HEADERS => {
                            assert_eq!(f.flags & END_HEADERS, END_HEADERS);
                            let fields = self.decoder.decode(&f.payload).expect("hpack");
                            for (n, v) in fields {
                                let v = String::from_utf8(v).expect("utf-8");
                                match n.as_slice() {
                                    b":status" => status = v,
                                    b"x-authority" => seen_authority = v,
                                    _ => {}
                                }
                            }
                            if f.stream == stream && f.flags & END_STREAM != 0 {
                                break;
                            }
                        }
                        0x0 if f.stream == stream => {
                            got.extend_from_slice(&f.payload);
                            if f.flags & END_STREAM != 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                Outcome::Response {
                    status,
                    authority: seen_authority,
                    body: got,
                }
            }
        }

        fn ok(authority: &str, body: &[u8]) -> Outcome {
            Outcome::Response {
                status: "200".into(),
                authority: authority.into(),
                body: body.to_vec(),
            }
        }

        #[tokio::test]
        async fn hyper_serves_a_scheme_authority_behind_the_wrapper() {
            let server = server(true).await;
            let port = server.1.port();
            let plain = format!("127.0.0.1:{port}");
            let with_scheme = format!("http://127.0.0.1:{port}");
            let run = async {
                let mut client = Client::connect(server.1).await;
                assert_eq!(client.call(&plain, b"one").await, ok(&plain, b"one"));
                assert_eq!(client.call(&with_scheme, b"two").await, ok(&plain, b"two"));
                assert_eq!(
                    client.call(&with_scheme, b"three").await,
                    ok(&plain, b"three")
                );
                let big = vec![5u8; 60_000];
                assert_eq!(client.call(&plain, &big).await, ok(&plain, &big));
                assert_eq!(client.call(&with_scheme, b"").await, ok(&plain, b""));
            };
            tokio::time::timeout(Duration::from_secs(20), run)
                .await
                .expect("in time");
        }

        #[tokio::test]
        async fn hyper_resets_a_scheme_authority_without_the_wrapper() {
            let server = server(false).await;
            let port = server.1.port();
            let plain = format!("127.0.0.1:{port}");
            let with_scheme = format!("http://127.0.0.1:{port}");
            let run = async {
                let mut client = Client::connect(server.1).await;
                assert_eq!(client.call(&plain, b"one").await, ok(&plain, b"one"));
                // PROTOCOL_ERROR.
                assert_eq!(client.call(&with_scheme, b"two").await, Outcome::Reset(1));
                assert_eq!(client.call(&plain, b"three").await, ok(&plain, b"three"));
            };
            tokio::time::timeout(Duration::from_secs(20), run)
                .await
                .expect("in time");
        }

        #[tokio::test]
        async fn undecodable_block_after_a_change_ends_the_connection() {
            let server = server(true).await;
            let with_scheme = format!("http://127.0.0.1:{}", server.1.port());
            let run = async {
                let mut client = Client::connect(server.1).await;
                let answer = client.call(&with_scheme, b"one").await;
                assert!(matches!(answer, Outcome::Response { ref status, .. } if status == "200"));
                let garbage = frame(HEADERS, END_HEADERS | END_STREAM, 3, &[0x80]);
                client.io.write_all(&garbage).await.expect("send");
                loop {
                    let f = client.read_frame().await;
                    if f.kind == 0x7 {
                        let code = u32::from_be_bytes([
                            f.payload[4],
                            f.payload[5],
                            f.payload[6],
                            f.payload[7],
                        ]);
                        // hyper answers any undecodable block with GOAWAY PROTOCOL_ERROR.
                        assert_eq!(code, 0x1);
                        break;
                    }
                }
            };
            tokio::time::timeout(Duration::from_secs(20), run)
                .await
                .expect("in time");
        }

        #[tokio::test]
        async fn http1_is_served_behind_the_wrapper() {
            let server = server(true).await;
            let run = async {
                let mut io = TcpStream::connect(server.1).await.expect("connect");
                io.write_all(b"POST / HTTP/1.1\r\nHost: a:1\r\nContent-Length: 2\r\n\r\nhi")
                    .await
                    .expect("send");
                let mut got = Vec::new();
                let mut buf = [0u8; 1024];
                while !got.ends_with(b"hi") {
                    let n = io.read(&mut buf).await.expect("read");
                    assert!(n > 0, "server closed early: {got:?}");
                    got.extend_from_slice(&buf[..n]);
                }
                assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"), "{got:?}");
            };
            tokio::time::timeout(Duration::from_secs(20), run)
                .await
                .expect("in time");
        }
    }
}
