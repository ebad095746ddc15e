//! Netstrings (`LEN:BYTES,`), the framing of Postfix's socketmap protocol; I/O-free.
//!
//! The decoder takes bytes as they arrive, in any split, and yields whole payloads. It never
//! buffers more than the declared maximum: a length prefix that is too long, too large, or not
//! a number is an error, after which the connection cannot be resynchronised and is closed.

/// Why a byte stream is not a sequence of acceptable netstrings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetstringError {
    /// The length prefix is not digits followed by `:`.
    #[error("malformed netstring length")]
    BadLength,
    /// The announced payload is larger than this decoder accepts.
    #[error("netstring longer than {0} bytes")]
    TooLong(usize),
    /// The payload is not followed by `,`.
    #[error("netstring not terminated by ','")]
    BadTerminator,
}

/// An incremental netstring decoder with a bound on the payload size.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    max: usize,
}

impl Decoder {
    /// A decoder that refuses payloads longer than `max` bytes.
    pub fn new(max: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            max,
        }
    }

    /// Append received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet part of a whole netstring.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next whole payload, `Ok(None)` when more bytes are needed.
    pub fn next_payload(&mut self) -> Result<Option<Vec<u8>>, NetstringError> {
        // The longest acceptable prefix: the digits of `max` and the colon.
        let digits_max = self.max.to_string().len();
        let Some(colon) = self.buf.iter().position(|&b| b == b':') else {
            if self.buf.len() > digits_max || !self.buf.iter().all(u8::is_ascii_digit) {
                return Err(self.length_error());
            }
            return Ok(None);
        };
        let prefix = &self.buf[..colon];
        if prefix.is_empty() || prefix.len() > digits_max || !prefix.iter().all(u8::is_ascii_digit)
        {
            return Err(self.length_error());
        }
        // Digits only and at most as many as `max` has: parses into usize.
        let len: usize = std::str::from_utf8(prefix)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(NetstringError::BadLength)?;
        if len > self.max {
            return Err(NetstringError::TooLong(self.max));
        }
        let end = colon + 1 + len;
        if self.buf.len() <= end {
            return Ok(None);
        }
        if self.buf[end] != b',' {
            return Err(NetstringError::BadTerminator);
        }
        let payload = self.buf[colon + 1..end].to_vec();
        self.buf.drain(..=end);
        Ok(Some(payload))
    }

    fn length_error(&self) -> NetstringError {
        // All digits but too many of them: a length beyond the bound.
        let prefix = self.buf.split(|&b| b == b':').next().unwrap_or_default();
        if !prefix.is_empty() && prefix.iter().all(u8::is_ascii_digit) {
            NetstringError::TooLong(self.max)
        } else {
            NetstringError::BadLength
        }
    }
}

/// `payload` as a netstring.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out.push(b',');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut Decoder) -> Result<Vec<Vec<u8>>, NetstringError> {
        let mut out = Vec::new();
        while let Some(p) = d.next_payload()? {
            out.push(p);
        }
        Ok(out)
    }

    #[test]
    fn decodes_in_any_split() {
        let stream = b"12:hello world!,0:,3:a,b,";
        for split in 0..stream.len() {
            let mut d = Decoder::new(100);
            d.feed(&stream[..split]);
            let mut got = all(&mut d).expect("valid");
            d.feed(&stream[split..]);
            got.extend(all(&mut d).expect("valid"));
            assert_eq!(
                got,
                vec![b"hello world!".to_vec(), Vec::new(), b"a,b".to_vec()],
                "split at {split}"
            );
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn encode_round_trips() {
        let mut d = Decoder::new(10);
        d.feed(&encode(b"OK x"));
        assert_eq!(d.next_payload(), Ok(Some(b"OK x".to_vec())));
    }

    #[test]
    fn refuses_hostile_input_without_buffering_it() {
        for (bytes, err) in [
            (&b"x:"[..], NetstringError::BadLength),
            (b":abc,", NetstringError::BadLength),
            (b"-1:", NetstringError::BadLength),
            (b"3:abc;", NetstringError::BadTerminator),
            (b"101:", NetstringError::TooLong(100)),
            (b"9999", NetstringError::TooLong(100)),
            (b"99999999999999999999999999:", NetstringError::TooLong(100)),
            (b"1 :a,", NetstringError::BadLength),
            (b"GET / HTTP/1.0\r\n", NetstringError::BadLength),
        ] {
            let mut d = Decoder::new(100);
            d.feed(bytes);
            assert_eq!(
                d.next_payload(),
                Err(err),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        // A length within bounds whose bytes have not all arrived yet is not an error.
        let mut d = Decoder::new(100);
        d.feed(b"100:");
        assert_eq!(d.next_payload(), Ok(None));
    }
}
