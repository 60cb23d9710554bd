//! Frame reassembly: the frames of a byte stream that arrives in reads of any size.
//!
//! The worker runs one [`Reassembly`] pass per read of a connection: the unfinished rest of
//! earlier reads comes first, the new bytes after it, and every complete frame is handed out in
//! order. The fuzz target `reassembly` (in `fuzz/`) runs this same code over streams split at
//! arbitrary points.

use super::codec::{Codec, FrameError};

/// One framing pass over a connection's unfinished input (`pending`) followed by newly
/// received bytes.
///
/// Frames come out in stream order, each exactly once, however the stream was split into
/// reads, as long as every pass ends with [`finish`](Reassembly::finish): it keeps the bytes
/// not framed (an unfinished frame, or frames the caller chose not to take yet, e.g. under
/// backpressure) in `pending` for the next pass, which may bring no new bytes at all.
///
/// When `pending` is empty the new bytes are framed where they lie, without a copy; they are
/// copied only when a frame spans two reads or the pass leaves bytes unframed.
///
/// ```
/// use ringport::server::{Lines, Reassembly};
///
/// let mut pending = Vec::new();
/// let mut frames = Vec::new();
/// for read in [&b"hel"[..], b"lo\nwor", b"ld\n"] {
///     let mut pass = Reassembly::new(&mut pending, read);
///     while let Some(frame) = pass.next_frame(&Lines, 1024).unwrap() {
///         frames.push(frame.to_vec());
///     }
///     pass.finish();
/// }
/// assert_eq!(frames, [b"hello".to_vec(), b"world".to_vec()]);
/// assert!(pending.is_empty());
/// ```
#[derive(Debug)]
pub struct Reassembly<'a> {
    pending: &'a mut Vec<u8>,
    data: &'a [u8],
    /// The new bytes were appended to `pending` (it held earlier ones), and frames come from
    /// there; otherwise they come straight from `data`.
    joined: bool,
    /// Bytes framed so far.
    pos: usize,
}

impl<'a> Reassembly<'a> {
    /// Starts a pass over `pending` (bytes left unframed by earlier passes) followed by `data`.
    pub fn new(pending: &'a mut Vec<u8>, data: &'a [u8]) -> Reassembly<'a> {
        let joined = !pending.is_empty();
        if joined {
            pending.extend_from_slice(data);
        }
        Reassembly {
            pending,
            data,
            joined,
            pos: 0,
        }
    }

    /// Bytes the pass holds in `pending` (counted against a memory budget while it runs): the
    /// earlier bytes and the new ones if they had to be joined, else none.
    pub fn held(&self) -> usize {
        if self.joined { self.pending.len() } else { 0 }
    }

    /// The payload of the next complete frame; `Ok(None)` when more bytes are needed, an error
    /// when the bytes can never become a frame (the caller should stop framing this stream).
    pub fn next_frame(
        &mut self,
        codec: &dyn Codec,
        max_frame: usize,
    ) -> Result<Option<&[u8]>, FrameError> {
        let src: &[u8] = if self.joined { self.pending } else { self.data };
        let rest = &src[self.pos..];
        let Some(frame) = codec.decode(rest, max_frame)? else {
            return Ok(None);
        };
        // A frame the codec has not got, or an empty one (which would frame the same bytes
        // forever), can only come from a broken codec: end this stream rather than loop, panic
        // or hand out the wrong bytes.
        let fits = (1..=rest.len()).contains(&frame.len)
            && frame.payload.start <= frame.payload.end
            && frame.payload.end <= frame.len;
        if !fits {
            return Err(FrameError::Malformed(
                "the codec decoded a frame outside its input",
            ));
        }
        let payload = &src[self.pos + frame.payload.start..self.pos + frame.payload.end];
        self.pos += frame.len;
        Ok(Some(payload))
    }

    /// Ends the pass, keeping every byte not framed in `pending`, in order.
    pub fn finish(self) {
        if self.joined {
            self.pending.drain(..self.pos);
        } else {
            self.pending.extend_from_slice(&self.data[self.pos..]);
        }
    }

    /// Ends the pass and drops every byte not framed (the stream is being abandoned).
    pub fn discard(self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{CodecKind, LengthPrefixed, Lines, Raw};

    /// Frames `stream` fed in `reads`, taking at most `take` frames per pass.
    fn frames_of(codec: &dyn Codec, reads: &[&[u8]], take: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
        let mut pending = Vec::new();
        let mut frames = Vec::new();
        let mut pass_over = |data: &[u8], pending: &mut Vec<u8>| {
            let mut pass = Reassembly::new(pending, data);
            for _ in 0..take {
                match pass.next_frame(codec, 64).unwrap() {
                    Some(f) => frames.push(f.to_vec()),
                    None => break,
                }
            }
            pass.finish();
        };
        for read in reads {
            pass_over(read, &mut pending);
        }
        // Passes with no new bytes, as after backpressure lifts, until everything is out.
        for _ in 0..16 {
            pass_over(&[], &mut pending);
        }
        (frames, pending)
    }

    #[test]
    fn frames_spanning_reads_come_out_whole() {
        let (frames, rest) = frames_of(&Lines, &[b"ab", b"c\nd", b"e\nf\ng", b"h"], usize::MAX);
        assert_eq!(frames, [b"abc".to_vec(), b"de".to_vec(), b"f".to_vec()]);
        assert_eq!(rest, b"gh");
    }

    #[test]
    fn frames_left_in_a_pass_come_out_in_the_next() {
        let wire = b"\x00\x01a\x00\x02bc\x00\x00\x00\x03def";
        for take in [1, 2, usize::MAX] {
            for split in 0..=wire.len() {
                let (a, b) = wire.split_at(split);
                let (frames, rest) = frames_of(&LengthPrefixed::u16(), &[a, b], take);
                let want: [&[u8]; 4] = [b"a", b"bc", b"", b"def"];
                assert_eq!(
                    frames,
                    want.map(<[u8]>::to_vec),
                    "take {take} split {split}"
                );
                assert!(rest.is_empty());
            }
        }
    }

    #[test]
    fn held_counts_only_joined_bytes() {
        let mut pending = Vec::new();
        let pass = Reassembly::new(&mut pending, b"abc");
        assert_eq!(pass.held(), 0);
        pass.finish();
        assert_eq!(pending, b"abc");
        let pass = Reassembly::new(&mut pending, b"de");
        assert_eq!(pass.held(), 5);
        pass.discard();
        assert!(pending.is_empty());
    }

    #[test]
    fn raw_keeps_every_byte_in_order() {
        let (frames, rest) = frames_of(&Raw, &[b"abc", b"", b"defgh"], 1);
        assert_eq!(frames.concat(), b"abcdefgh");
        assert!(rest.is_empty());
    }

    #[test]
    fn errors_leave_the_pass_usable_for_discard() {
        let codec = CodecKind::Len16.codec();
        let mut pending = b"\x00".to_vec();
        let mut pass = Reassembly::new(&mut pending, b"\xff");
        assert!(matches!(
            pass.next_frame(&*codec, 16),
            Err(FrameError::TooLarge { size: 255, max: 16 })
        ));
        pass.discard();
        assert!(pending.is_empty());
    }

    /// A codec that claims an empty frame, or more bytes than it was given.
    struct Broken(usize);

    impl Codec for Broken {
        fn decode(&self, _: &[u8], _: usize) -> Result<Option<crate::server::Frame>, FrameError> {
            Ok(Some(crate::server::Frame {
                payload: 0..self.0,
                len: self.0,
            }))
        }
        fn encode(&self, _: &[u8], _: &mut crate::Buf) -> Result<(), FrameError> {
            Ok(())
        }
        fn name(&self) -> &'static str {
            "broken"
        }
    }

    #[test]
    fn a_broken_codec_ends_the_stream_instead_of_looping() {
        for claimed in [0, 4] {
            let mut pending = Vec::new();
            let mut pass = Reassembly::new(&mut pending, b"abc");
            assert!(matches!(
                pass.next_frame(&Broken(claimed), 16),
                Err(FrameError::Malformed(_))
            ));
        }
    }
}
