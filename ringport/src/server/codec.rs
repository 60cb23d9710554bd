//! Framing codecs: where one message ends in a byte stream.
//!
//! TCP delivers bytes, not messages: one read may hold half a message, or several. A [`Codec`]
//! finds complete frames in the bytes received so far; the server keeps the unfinished rest for
//! the next read and hands every complete frame to the handler, in order.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use crate::buf::Buf;

/// Why bytes could not be framed, or a payload could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A frame is larger than the limit (the length prefix says so, or no delimiter came in time).
    TooLarge {
        /// The frame's size, as far as it is known.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes break the codec's format.
    Malformed(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { size, max } => {
                write!(f, "frame of {size} bytes exceeds the limit of {max}")
            }
            FrameError::Malformed(why) => write!(f, "malformed frame: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// One complete frame found at the start of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Where the payload lies in the input (without length prefix or delimiter).
    pub payload: Range<usize>,
    /// How many input bytes the frame used up (payload plus framing).
    pub len: usize,
}

/// Splits a byte stream into frames and frames outgoing payloads.
///
/// Implementations are stateless: everything a codec needs is in the input slice, so one codec
/// value serves every connection of a server.
pub trait Codec: Send + Sync + 'static {
    /// The first complete frame at the start of `input`, `Ok(None)` if more bytes are needed,
    /// or an error if `input` can never become a valid frame (such as one larger than
    /// `max_frame` payload bytes).
    fn decode(&self, input: &[u8], max_frame: usize) -> Result<Option<Frame>, FrameError>;

    /// Appends `payload`, framed, to `out`.
    fn encode(&self, payload: &[u8], out: &mut Buf) -> Result<(), FrameError>;

    /// The codec's name, as the CLI spells it.
    fn name(&self) -> &'static str;
}

/// The largest frame [`Raw`] makes of the bytes at hand.
pub const RAW_CHUNK: usize = 64 << 10;

/// No framing: the bytes at hand are one frame (at most [`RAW_CHUNK`] or the frame limit),
/// sent back as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl Codec for Raw {
    fn decode(&self, input: &[u8], max_frame: usize) -> Result<Option<Frame>, FrameError> {
        if input.is_empty() {
            return Ok(None);
        }
        let n = input.len().min(max_frame.clamp(1, RAW_CHUNK));
        Ok(Some(Frame {
            payload: 0..n,
            len: n,
        }))
    }

    fn encode(&self, payload: &[u8], out: &mut Buf) -> Result<(), FrameError> {
        out.extend_from_slice(payload);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "raw"
    }
}

/// The width of a [`LengthPrefixed`] header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LenWidth {
    /// A big-endian `u16`: payloads up to 65,535 bytes.
    U16,
    /// A big-endian `u32`.
    U32,
}

impl LenWidth {
    fn bytes(self) -> usize {
        match self {
            LenWidth::U16 => 2,
            LenWidth::U32 => 4,
        }
    }
}

/// A big-endian length header (u16 or u32) followed by that many payload bytes.
#[derive(Debug, Clone, Copy)]
pub struct LengthPrefixed {
    width: LenWidth,
}

impl LengthPrefixed {
    /// Frames with a `u16` length header.
    pub fn u16() -> LengthPrefixed {
        LengthPrefixed {
            width: LenWidth::U16,
        }
    }

    /// Frames with a `u32` length header.
    pub fn u32() -> LengthPrefixed {
        LengthPrefixed {
            width: LenWidth::U32,
        }
    }

    /// The header width.
    pub fn width(&self) -> LenWidth {
        self.width
    }
}

impl Codec for LengthPrefixed {
    fn decode(&self, input: &[u8], max_frame: usize) -> Result<Option<Frame>, FrameError> {
        let head = self.width.bytes();
        let Some(header) = input.get(..head) else {
            return Ok(None);
        };
        let size = match self.width {
            LenWidth::U16 => usize::from(u16::from_be_bytes([header[0], header[1]])),
            LenWidth::U32 => {
                let n = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
                usize::try_from(n).unwrap_or(usize::MAX)
            }
        };
        if size > max_frame {
            return Err(FrameError::TooLarge {
                size,
                max: max_frame,
            });
        }
        let len = head + size;
        if input.len() < len {
            return Ok(None);
        }
        Ok(Some(Frame {
            payload: head..len,
            len,
        }))
    }

    fn encode(&self, payload: &[u8], out: &mut Buf) -> Result<(), FrameError> {
        let too_large = |max: usize| FrameError::TooLarge {
            size: payload.len(),
            max,
        };
        match self.width {
            LenWidth::U16 => {
                let n = u16::try_from(payload.len()).map_err(|_| too_large(u16::MAX as usize))?;
                out.extend_from_slice(&n.to_be_bytes());
            }
            LenWidth::U32 => {
                let n = u32::try_from(payload.len()).map_err(|_| too_large(u32::MAX as usize))?;
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        out.extend_from_slice(payload);
        Ok(())
    }

    fn name(&self) -> &'static str {
        match self.width {
            LenWidth::U16 => "len16",
            LenWidth::U32 => "len32",
        }
    }
}

/// Lines ending in `\n` (a `\r` before it is dropped too); payloads exclude the line ending.
///
/// A payload that itself ends in `\r` is encoded with `\r\n`, so that it decodes back whole.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lines;

impl Codec for Lines {
    fn decode(&self, input: &[u8], max_frame: usize) -> Result<Option<Frame>, FrameError> {
        // A line of `max_frame` bytes may carry "\r\n": look that far and no further.
        let window = &input[..input.len().min(max_frame.saturating_add(2))];
        match memchr::memchr(b'\n', window) {
            Some(nl) => {
                let end = if nl > 0 && input[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                if end > max_frame {
                    return Err(FrameError::TooLarge {
                        size: end,
                        max: max_frame,
                    });
                }
                Ok(Some(Frame {
                    payload: 0..end,
                    len: nl + 1,
                }))
            }
            None => {
                // Every byte is payload, except a last '\r' that may begin the line ending: past
                // the limit already, the line can never fit.
                let known = input.len() - usize::from(input.last() == Some(&b'\r'));
                if known > max_frame {
                    return Err(FrameError::TooLarge {
                        size: known,
                        max: max_frame,
                    });
                }
                Ok(None)
            }
        }
    }

    fn encode(&self, payload: &[u8], out: &mut Buf) -> Result<(), FrameError> {
        if memchr::memchr(b'\n', payload).is_some() {
            return Err(FrameError::Malformed("a line payload contains a newline"));
        }
        // A payload ending in '\r' gets "\r\n": decoding drops one '\r', and its own stays.
        let ending: &[u8] = if payload.last() == Some(&b'\r') {
            b"\r\n"
        } else {
            b"\n"
        };
        out.reserve(payload.len() + ending.len());
        out.extend_from_slice(payload);
        out.extend_from_slice(ending);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "line"
    }
}

/// The built-in codecs by name, for configuration and the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CodecKind {
    /// [`Raw`].
    #[default]
    Raw,
    /// [`LengthPrefixed::u16`].
    Len16,
    /// [`LengthPrefixed::u32`].
    Len32,
    /// [`Lines`].
    Line,
}

impl CodecKind {
    /// The codec this names.
    pub fn codec(self) -> std::sync::Arc<dyn Codec> {
        match self {
            CodecKind::Raw => std::sync::Arc::new(Raw),
            CodecKind::Len16 => std::sync::Arc::new(LengthPrefixed::u16()),
            CodecKind::Len32 => std::sync::Arc::new(LengthPrefixed::u32()),
            CodecKind::Line => std::sync::Arc::new(Lines),
        }
    }

    /// Every built-in codec.
    pub const ALL: [CodecKind; 4] = [
        CodecKind::Raw,
        CodecKind::Len16,
        CodecKind::Len32,
        CodecKind::Line,
    ];
}

impl FromStr for CodecKind {
    type Err = super::UnknownChoice;
    fn from_str(s: &str) -> Result<CodecKind, super::UnknownChoice> {
        match s {
            "raw" => Ok(CodecKind::Raw),
            "len16" => Ok(CodecKind::Len16),
            "len" | "len32" => Ok(CodecKind::Len32),
            "line" | "lines" => Ok(CodecKind::Line),
            other => Err(super::UnknownChoice {
                what: "codec",
                given: other.to_string(),
                expected: "raw, len (= len32), len16 or line",
            }),
        }
    }
}

impl fmt::Display for CodecKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.codec().name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `stream` in pieces of every size and checks the frames come out whole and in order.
    fn reassemble(codec: &dyn Codec, stream: &[u8], max: usize) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let mut pending = Vec::new();
        for piece in stream.chunks(1) {
            pending.extend_from_slice(piece);
            while let Some(f) = codec.decode(&pending, max).unwrap() {
                frames.push(pending[f.payload.clone()].to_vec());
                pending.drain(..f.len);
            }
        }
        assert!(pending.is_empty(), "bytes left over: {pending:?}");
        frames
    }

    fn encode_all(codec: &dyn Codec, msgs: &[&[u8]]) -> Vec<u8> {
        let mut out = Buf::new();
        for m in msgs {
            codec.encode(m, &mut out).unwrap();
        }
        out.into_vec()
    }

    #[test]
    fn every_codec_round_trips_split_at_every_byte() {
        let msgs: [&[u8]; 4] = [b"hello", b"", b"a longer message with spaces", b"x"];
        for kind in [CodecKind::Len16, CodecKind::Len32, CodecKind::Line] {
            let codec = kind.codec();
            let wire = encode_all(&*codec, &msgs);
            let frames = reassemble(&*codec, &wire, 1024);
            assert_eq!(frames, msgs.map(<[u8]>::to_vec), "{kind}");
        }
    }

    #[test]
    fn length_prefix_is_big_endian_and_limited() {
        let c = LengthPrefixed::u16();
        let mut out = Buf::new();
        c.encode(b"abc", &mut out).unwrap();
        assert_eq!(&out[..], b"\x00\x03abc");
        assert_eq!(
            c.decode(b"\x01\x00", 255),
            Err(FrameError::TooLarge {
                size: 256,
                max: 255
            })
        );
        assert_eq!(c.decode(b"\x00\x05ab", 255), Ok(None));
        let big = vec![0u8; 70_000];
        assert!(matches!(
            c.encode(&big, &mut Buf::new()),
            Err(FrameError::TooLarge { .. })
        ));
        let c32 = LengthPrefixed::u32();
        assert_eq!(
            c32.decode(b"\xff\xff\xff\xff", 1 << 20),
            Err(FrameError::TooLarge {
                size: u32::MAX as usize,
                max: 1 << 20
            })
        );
    }

    #[test]
    fn lines_strip_crlf_and_refuse_endless_lines() {
        let f = Lines.decode(b"ab\r\ncd\n", 10).unwrap().unwrap();
        assert_eq!((f.payload, f.len), (0..2, 4));
        assert_eq!(Lines.decode(b"0123456789", 10), Ok(None));
        assert!(Lines.decode(b"0123456789ab", 10).is_err());
        assert!(Lines.decode(b"0123456789ab\n", 10).is_err());
        assert!(Lines.decode(b"0123456789\r\n", 10).unwrap().is_some());
        assert!(Lines.encode(b"a\nb", &mut Buf::new()).is_err());
    }

    /// Found by the `codec_lines` fuzz target: an unterminated line one byte over the limit was
    /// reported only one byte later.
    #[test]
    fn lines_over_the_limit_are_refused_as_soon_as_they_are() {
        assert_eq!(
            Lines.decode(b"ab", 1),
            Err(FrameError::TooLarge { size: 2, max: 1 })
        );
        // ... but a last '\r' may still be the start of "\r\n".
        assert_eq!(Lines.decode(b"a\r", 1), Ok(None));
        assert!(Lines.decode(b"a\r\n", 1).unwrap().is_some());
    }

    /// Found by the `codec_lines` fuzz target: a payload ending in '\r' lost it on the way back.
    #[test]
    fn lines_payloads_ending_in_cr_round_trip() {
        let mut out = Buf::new();
        Lines.encode(b"abc\r", &mut out).unwrap();
        assert_eq!(&out[..], b"abc\r\r\n");
        let f = Lines.decode(&out, 4).unwrap().unwrap();
        assert_eq!((&out[f.payload], f.len), (&b"abc\r"[..], 6));
    }

    #[test]
    fn raw_takes_everything_up_to_the_limit() {
        let f = Raw.decode(b"abcdef", 4).unwrap().unwrap();
        assert_eq!((f.payload, f.len), (0..4, 4));
        assert_eq!(Raw.decode(b"", 4), Ok(None));
    }

    #[test]
    fn names_parse_back() {
        for kind in CodecKind::ALL {
            assert_eq!(kind.to_string().parse::<CodecKind>().unwrap(), kind);
        }
        assert!("nope".parse::<CodecKind>().is_err());
    }
}
