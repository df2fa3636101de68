//! A connection's input: bytes read from the socket that the request parser
//! has not consumed yet.
//!
//! One fixed-size buffer per connection, allocated once (a maximal request
//! head plus a little, so "too large" is detectable). Consumed bytes are
//! reclaimed lazily: the buffer rewinds when it runs empty and moves its
//! pending bytes to the front only when they reach its end, so a stream of
//! pipelined requests costs no copy per request. A buffer full of pending
//! bytes refuses to read more (it never grows).
//!
//! It doesn't parse (that is `http::request`, driven by the connection) and
//! doesn't decide what a full buffer means (the parser has already refused
//! a head that large when it happens).

use std::io::{self, Read};

pub(super) struct ReadBuffer {
    buf: Box<[u8]>,
    /// Pending (unconsumed) bytes are `buf[start..end]`.
    start: usize,
    end: usize,
}

impl ReadBuffer {
    pub(super) fn new(capacity: usize) -> ReadBuffer {
        ReadBuffer {
            buf: vec![0; capacity].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The bytes read and not consumed yet.
    pub(super) fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Marks the first `n` pending bytes consumed.
    pub(super) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start, "consumed more than pending");
        self.start += n;
    }

    /// Forgets every pending byte.
    pub(super) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// The whole buffer as scratch space, for input read only to be thrown
    /// away (a lingering close). Forgets every pending byte first.
    pub(super) fn scratch(&mut self) -> &mut [u8] {
        self.clear();
        &mut self.buf
    }

    /// Reads once into free space, retrying on `EINTR`. `Ok(0)` is the end
    /// of the stream; an error when the pending bytes fill the buffer.
    pub(super) fn fill(&mut self, src: &mut impl Read) -> io::Result<usize> {
        if self.is_empty() {
            self.clear();
        } else if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // Full of one incomplete head: the parser has already refused it.
            return Err(io::Error::other("input buffer full"));
        }
        loop {
            match src.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that hands out its script one step per `read`, then would block.
    struct Script(Vec<io::Result<&'static [u8]>>);

    impl Read for Script {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let bytes = self.0.remove(0)?;
            let n = bytes.len().min(out.len());
            out[..n].copy_from_slice(&bytes[..n]);
            Ok(n)
        }
    }

    #[test]
    fn reads_append_and_consuming_takes_from_the_front() {
        let mut input = ReadBuffer::new(16);
        let mut src = Script(vec![Ok(b"GET / "), Ok(b"HTTP/1.1")]);
        assert_eq!(input.fill(&mut src).unwrap(), 6);
        assert_eq!(input.fill(&mut src).unwrap(), 8);
        assert_eq!(input.pending(), b"GET / HTTP/1.1");
        input.consume(4);
        assert_eq!(input.pending(), b"/ HTTP/1.1");
        assert_eq!(
            input.fill(&mut src).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert_eq!(input.pending(), b"/ HTTP/1.1", "a failed read keeps input");
    }

    #[test]
    fn an_emptied_buffer_rewinds_so_the_next_read_gets_all_of_it() {
        let mut input = ReadBuffer::new(8);
        let mut src = Script(vec![Ok(b"abcdef"), Ok(b"12345678")]);
        input.fill(&mut src).unwrap();
        input.consume(6);
        assert!(input.is_empty());
        assert_eq!(input.fill(&mut src).unwrap(), 8, "the whole buffer is free");
        assert_eq!(input.pending(), b"12345678");
    }

    #[test]
    fn pending_bytes_move_to_the_front_only_when_they_reach_the_end() {
        let mut input = ReadBuffer::new(8);
        let mut src = Script(vec![Ok(b"abcd"), Ok(b"efgh"), Ok(b"ijkl")]);
        input.fill(&mut src).unwrap();
        input.consume(2);
        // Room left at the end: read there, no copy.
        assert_eq!(input.fill(&mut src).unwrap(), 4);
        assert_eq!(input.pending(), b"cdefgh");
        // At the end: compact, then read into the freed front.
        assert_eq!(input.fill(&mut src).unwrap(), 2);
        assert_eq!(input.pending(), b"cdefghij");
    }

    #[test]
    fn a_buffer_full_of_pending_bytes_refuses_to_read() {
        let mut input = ReadBuffer::new(4);
        let mut src = Script(vec![Ok(b"abcd"), Ok(b"more")]);
        input.fill(&mut src).unwrap();
        let err = input.fill(&mut src).unwrap_err();
        assert_eq!(err.to_string(), "input buffer full");
        assert_eq!(input.pending(), b"abcd");
        assert_eq!(src.0.len(), 1, "nothing was read");
    }

    #[test]
    fn interrupted_reads_are_retried_and_end_of_stream_is_zero() {
        let mut input = ReadBuffer::new(8);
        let mut src = Script(vec![
            Err(io::ErrorKind::Interrupted.into()),
            Ok(b"ab"),
            Ok(b""),
        ]);
        assert_eq!(input.fill(&mut src).unwrap(), 2);
        assert_eq!(input.fill(&mut src).unwrap(), 0);
        assert_eq!(input.pending(), b"ab");
    }

    #[test]
    fn scratch_space_is_the_whole_buffer_and_forgets_input() {
        let mut input = ReadBuffer::new(8);
        input.fill(&mut Script(vec![Ok(b"abc")])).unwrap();
        assert_eq!(input.scratch().len(), 8);
        assert!(input.is_empty());
    }
}
