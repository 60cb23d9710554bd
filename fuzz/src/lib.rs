//! The properties the fuzz targets check, shared by them (each target is a thin
//! `fuzz_target!` around one of these functions).
//!
//! - [`codec`]: one codec's `decode` and `encode` against a reference reading of its format.
//! - [`reassembly`]: a byte stream split at arbitrary points and fed through
//!   [`ringport::server::Reassembly`] (the server's own reassembly), with pauses and passes cut
//!   short as backpressure does, must give the frames of the unsplit stream.
//!
//! A violated property panics, which libFuzzer reports as a crash.

use ringport::Buf;
use ringport::server::{Codec, CodecKind, Frame, FrameError, RAW_CHUNK, Reassembly};

/// Reads the structured part of a fuzz input from its front.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    /// A frame limit: mostly small (so short inputs exceed it), sometimes at the edges of the
    /// header widths and of `usize` (overflow). Never 0: `Limits` refuses it.
    fn max_frame(&mut self) -> usize {
        let v = self.u16();
        match v >> 14 {
            0 | 1 => 1 + usize::from(v & 0x3f),
            2 => 1 + usize::from(v & 0x3fff),
            _ => [
                usize::MAX,
                usize::MAX - 1,
                usize::MAX >> 1,
                u32::MAX as usize,
                u32::MAX as usize + 1,
                u16::MAX as usize,
                u16::MAX as usize + 1,
                RAW_CHUNK,
            ][usize::from(v & 7)],
        }
    }
}

/// What decoding should give, by the codec's documented format (written independently of the
/// codec's code). A `TooLarge` is expected exactly when no continuation of the input can give
/// a frame within the limit.
fn reference_decode(
    kind: CodecKind,
    input: &[u8],
    max: usize,
) -> Result<Option<Frame>, FrameError> {
    let too_large = |size| Err(FrameError::TooLarge { size, max });
    match kind {
        CodecKind::Raw => {
            let n = input.len().min(max.clamp(1, RAW_CHUNK));
            Ok((n > 0).then_some(Frame {
                payload: 0..n,
                len: n,
            }))
        }
        CodecKind::Len16 | CodecKind::Len32 => {
            let head = if kind == CodecKind::Len16 { 2 } else { 4 };
            if input.len() < head {
                return Ok(None);
            }
            let size = input[..head]
                .iter()
                .fold(0usize, |n, &b| n << 8 | usize::from(b));
            if size > max {
                return too_large(size);
            }
            if input.len() < head + size {
                return Ok(None);
            }
            Ok(Some(Frame {
                payload: head..head + size,
                len: head + size,
            }))
        }
        CodecKind::Line => match input.iter().position(|&b| b == b'\n') {
            Some(nl) => {
                let end = if nl > 0 && input[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                if end > max {
                    return too_large(end);
                }
                Ok(Some(Frame {
                    payload: 0..end,
                    len: nl + 1,
                }))
            }
            None => {
                // Every byte is payload, except a last '\r' that may start the line ending.
                let known = input.len() - usize::from(input.last() == Some(&b'\r'));
                if known > max {
                    too_large(known)
                } else {
                    Ok(None)
                }
            }
        },
    }
}

/// The same outcome, comparing errors by kind and limit (a `TooLarge`'s size is "as far as it
/// is known", which depends on how much input was seen).
fn same(a: &Result<Option<Frame>, FrameError>, b: &Result<Option<Frame>, FrameError>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a == b,
        (Err(FrameError::TooLarge { max: a, .. }), Err(FrameError::TooLarge { max: b, .. })) => {
            a == b
        }
        (Err(FrameError::Malformed(_)), Err(FrameError::Malformed(_))) => true,
        _ => false,
    }
}

/// Checks the invariants of one `decode` result on `input`.
fn check_decoded(
    kind: CodecKind,
    input: &[u8],
    max: usize,
    got: &Result<Option<Frame>, FrameError>,
) {
    match got {
        Ok(Some(f)) => {
            assert!(
                f.len >= 1,
                "{kind}: an empty frame would never make progress: {f:?}"
            );
            assert!(
                f.len <= input.len(),
                "{kind}: {f:?} beyond the {} input bytes",
                input.len()
            );
            assert!(
                f.payload.start <= f.payload.end && f.payload.end <= f.len,
                "{kind}: payload outside the frame: {f:?}"
            );
            let limit = if kind == CodecKind::Raw {
                max.clamp(1, RAW_CHUNK)
            } else {
                max
            };
            assert!(
                f.payload.len() <= limit,
                "{kind}: {f:?} over the limit {max}"
            );
        }
        Ok(None) => {}
        Err(FrameError::TooLarge { size, max: m }) => {
            assert!(*m == max && *size > max, "{kind}: {got:?} with limit {max}");
        }
        Err(FrameError::Malformed(_)) => {}
    }
    let want = reference_decode(kind, input, max);
    assert!(
        same(got, &want),
        "{kind}: decode gave {got:?}, the format says {want:?}"
    );
}

/// Fuzzes one codec: `decode` on arbitrary bytes and on a prefix of them, `encode` of arbitrary
/// payloads and decoding them back.
///
/// Input: max frame (2 bytes), prefix cut (2 bytes), payload padding (2 bytes), then the bytes.
pub fn codec(kind: CodecKind, data: &[u8]) {
    let codec = kind.codec();
    let mut input = Input(data);
    let max = input.max_frame();
    let cut = usize::from(input.u16());
    let pad = input.u16();
    let bytes = input.0;

    // Decode: never panics, stays within the input and the limit, follows the format.
    let whole = codec.decode(bytes, max);
    check_decoded(kind, bytes, max, &whole);

    // A prefix of the input decodes to "need more" or to what the whole input gives: framing
    // does not depend on how the bytes arrived (Raw, which takes what is there, excepted).
    let prefix = &bytes[..cut % (bytes.len() + 1)];
    let part = codec.decode(prefix, max);
    check_decoded(kind, prefix, max, &part);
    if kind != CodecKind::Raw && !matches!(part, Ok(None)) {
        assert!(
            same(&part, &whole),
            "{kind}: {} of {} bytes decode to {part:?}, all of them to {whole:?}",
            prefix.len(),
            bytes.len()
        );
    }

    // Encode then decode round-trips. Padding grows the payload past a u16 header's reach
    // (and Raw's chunk); the other codecs have no limit near there.
    let mut payload = bytes.to_vec();
    if pad >> 15 == 1 && matches!(kind, CodecKind::Len16 | CodecKind::Raw) {
        payload.resize(payload.len() + usize::from(pad & 0x7fff) + 65_000, b'p');
    }
    let mut out = Buf::from(&b"before"[..]);
    let encoded = codec.encode(&payload, &mut out);
    assert_eq!(
        &out[..6],
        b"before",
        "{kind}: encode overwrote what was in its output"
    );
    let wire = &out[6..];
    let header_max = match kind {
        CodecKind::Len16 => Some(usize::from(u16::MAX)),
        CodecKind::Len32 => Some(u32::MAX as usize),
        _ => None,
    };
    match kind {
        CodecKind::Line if payload.contains(&b'\n') => {
            assert!(
                matches!(encoded, Err(FrameError::Malformed(_))),
                "line: a payload with a newline encoded: {encoded:?}"
            );
            return;
        }
        _ if header_max.is_some_and(|h| payload.len() > h) => {
            let h = header_max.unwrap_or_default();
            assert_eq!(
                encoded,
                Err(FrameError::TooLarge {
                    size: payload.len(),
                    max: h
                }),
                "{kind}"
            );
            return;
        }
        _ => assert_eq!(encoded, Ok(()), "{kind}: {} byte payload", payload.len()),
    }
    if kind == CodecKind::Raw {
        assert_eq!(wire, &payload[..], "raw: encode changed the bytes");
    }
    let roomy = payload.len().max(1);
    if kind != CodecKind::Raw || payload.len() <= RAW_CHUNK {
        match codec.decode(wire, roomy) {
            Ok(None) if payload.is_empty() && kind == CodecKind::Raw => {}
            Ok(Some(f)) if f.len == wire.len() && wire[f.payload.clone()] == payload[..] => {}
            other => panic!(
                "{kind}: {} payload bytes encoded to {wire:?} decode to {other:?}",
                payload.len()
            ),
        }
    }
    // Decoding the encoded frame under the fuzzed limit: too large exactly when it exceeds it.
    let under_limit = codec.decode(wire, max);
    check_decoded(kind, wire, max, &under_limit);
    if kind != CodecKind::Raw {
        assert_eq!(
            matches!(under_limit, Err(FrameError::TooLarge { .. })),
            payload.len() > max,
            "{kind}: {} payload bytes under limit {max}: {under_limit:?}",
            payload.len()
        );
    }
}

/// What one read of a chunked stream does, as the worker would.
#[derive(Clone, Copy)]
enum Mode {
    /// A pass taking every frame there is.
    All,
    /// The connection is paused: the bytes are only kept.
    Paused,
    /// A pass cut short by backpressure after one frame.
    One,
    /// A pass cut short by backpressure before any frame.
    None,
}

/// A connection's side of reassembly, as the worker keeps it.
struct Conn {
    /// The worker's `io.input`: bytes not framed yet.
    pending: Vec<u8>,
    got: Framed,
}

impl Conn {
    /// One pass over the pending bytes and `data`, taking at most `take` frames.
    fn pass(&mut self, codec: &dyn Codec, max: usize, data: &[u8], take: usize) {
        if self.got.error.is_some() {
            return; // the connection is ending: it reads no more
        }
        let mut pass = Reassembly::new(&mut self.pending, data);
        for _ in 0..take {
            match pass.next_frame(codec, max) {
                Ok(Some(payload)) => self.got.frames.push(payload.to_vec()),
                Ok(None) => break,
                Err(e) => {
                    self.got.error = Some(error_kind(&e));
                    return pass.discard();
                }
            }
        }
        pass.finish();
    }
}

/// The frames (payloads) of a stream, the first error's kind, and the bytes left unframed.
#[derive(Debug, PartialEq)]
struct Framed {
    frames: Vec<Vec<u8>>,
    error: Option<&'static str>,
    rest: Vec<u8>,
}

fn error_kind(e: &FrameError) -> &'static str {
    match e {
        FrameError::TooLarge { .. } => "too large",
        FrameError::Malformed(_) => "malformed",
    }
}

/// Frames the whole stream in one go, with nothing but `decode`.
fn unsplit(codec: &dyn Codec, stream: &[u8], max: usize) -> Framed {
    let mut frames = Vec::new();
    let mut pos = 0;
    let error = loop {
        match codec.decode(&stream[pos..], max) {
            Ok(Some(f)) => {
                frames.push(stream[pos + f.payload.start..pos + f.payload.end].to_vec());
                pos += f.len;
            }
            Ok(None) => break None,
            Err(e) => break Some(error_kind(&e)),
        }
    };
    let rest = if error.is_some() {
        Vec::new()
    } else {
        stream[pos..].to_vec()
    };
    Framed {
        frames,
        error,
        rest,
    }
}

/// Fuzzes reassembly: the stream split into reads of arbitrary sizes, with pauses and passes
/// cut short, through the server's [`Reassembly`](ringport::server::Reassembly).
///
/// Input: codec (1 byte), max frame (2 bytes), the number of reads `n` (1 byte), `n` read
/// bytes (low 6 bits: length; high 2 bits: [`Mode`]), then the stream. What the reads do not
/// cover comes as one last read.
pub fn reassembly(data: &[u8]) {
    let mut input = Input(data);
    let kind = CodecKind::ALL[usize::from(input.byte() % 4)];
    let codec = kind.codec();
    let max = input.max_frame();
    let n = usize::from(input.byte());
    let reads = input.take(n);
    let stream = input.0;

    let mut conn = Conn {
        pending: Vec::new(),
        got: Framed {
            frames: Vec::new(),
            error: None,
            rest: Vec::new(),
        },
    };
    let mut left = stream;
    for &r in reads {
        let (chunk, rest) = left.split_at(usize::from(r & 0x3f).min(left.len()));
        left = rest;
        match [Mode::All, Mode::Paused, Mode::One, Mode::None][usize::from(r >> 6)] {
            Mode::All => conn.pass(&*codec, max, chunk, usize::MAX),
            // As the worker does while paused: keep the bytes, frame them later.
            Mode::Paused => conn.pending.extend_from_slice(chunk),
            Mode::One => conn.pass(&*codec, max, chunk, 1),
            Mode::None => conn.pass(&*codec, max, chunk, 0),
        }
    }
    conn.pass(&*codec, max, left, usize::MAX);
    // Backpressure lifted: a pass with no new bytes takes whatever is complete.
    conn.pass(&*codec, max, &[], usize::MAX);
    let mut got = conn.got;
    if got.error.is_none() {
        got.rest = conn.pending;
    }

    let want = unsplit(&*codec, stream, max);
    let limit = if kind == CodecKind::Raw {
        max.clamp(1, RAW_CHUNK)
    } else {
        max
    };
    for f in &got.frames {
        assert!(
            f.len() <= limit,
            "{kind}: a {} byte frame over the limit {max}",
            f.len()
        );
    }
    if kind == CodecKind::Raw {
        // Raw frames are whatever the reads brought: the bytes, all of them, in order.
        assert_eq!(got.frames.concat(), stream, "raw: bytes lost or reordered");
        assert!(got.error.is_none() && got.rest.is_empty(), "raw: {got:?}");
    } else {
        assert_eq!(
            got, want,
            "{kind}: split reads framed differently from the whole stream"
        );
    }
}
