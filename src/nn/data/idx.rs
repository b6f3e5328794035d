//! The IDX array format (the format of the original MNIST files), plain or gzip-compressed:
//! [`read_idx`] for a file, [`parse_idx`] for bytes in memory.
//!
//! An IDX file is a 4-byte magic number `00 00 tt nd`, then `nd` dimensions as big-endian `u32`,
//! then `Π dims` elements in row-major order. The type code `tt` is `0x08` for unsigned bytes
//! (the only type read here; `0x09` i8, `0x0B` i16, `0x0C` i32, `0x0D` f32 and `0x0E` f64 are
//! rejected by name). A file starting with the gzip magic `1f 8b` is decompressed first
//! (concatenated gzip members are read as one stream, and each member's CRC is checked).
//!
//! Validation is exact: the payload must hold exactly `Π dims` bytes; a short payload, trailing
//! bytes, a bad magic number, an unsupported type, a header declaring no dimensions, a size that
//! overflows `usize` or a corrupt gzip stream each give an [`Error::Format`] naming the value,
//! never a panic. A dimension of size 0 is allowed (an empty array is well formed).

use crate::error::{Error, Result};
use flate2::read::MultiGzDecoder;
use std::io::{self, Read};
use std::path::Path;

/// The first two bytes of every gzip stream (RFC 1952).
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The IDX type code of unsigned bytes, the element type this reader supports.
pub const TYPE_U8: u8 = 0x08;

/// Label used in errors for bytes parsed from memory.
const MEMORY: &str = "<memory>";

/// Largest allocation made up front for the payload; a larger payload grows as it is read, so a
/// corrupt header claiming gigabytes costs nothing before the data is actually there.
const MAX_PREALLOC: usize = 1 << 26;

/// An IDX array of unsigned bytes: its dimensions and its row-major elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    dims: Vec<usize>,
    data: Vec<u8>,
}

impl IdxArray {
    /// The magic number of this array's header, `0x0000_08nd` with `nd` its number of dimensions
    /// (`0x803` for MNIST images, `0x801` for labels).
    pub fn magic(&self) -> u32 {
        // A parsed header has at most 255 dimensions (one byte).
        magic_u8(self.dims.len() as u8)
    }

    /// The dimensions, outermost first (e.g. `[count, rows, cols]`).
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The elements in row-major order; `data().len() == dims().iter().product()`.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The dimensions and the elements, by value.
    pub fn into_parts(self) -> (Vec<usize>, Vec<u8>) {
        (self.dims, self.data)
    }
}

/// The magic number of an unsigned-byte IDX array with `ndim` dimensions: `0x0000_08nd`.
pub fn magic_u8(ndim: u8) -> u32 {
    (u32::from(TYPE_U8) << 8) | u32::from(ndim)
}

/// Reads an IDX file of unsigned bytes, gzip-compressed or not (detected by its first two bytes).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read (missing, unreadable); [`Error::Format`] naming the
/// file and the offending value for any malformed content (see the [module doc](self)).
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_idx(&bytes).map_err(|e| e.at_path(path))
}

/// Parses the bytes of an IDX file of unsigned bytes, gzip-compressed or not.
///
/// # Errors
/// [`Error::Format`] with path `<memory>` naming the offending value for any malformed content:
/// an empty buffer, a short header, a first word that is neither an IDX magic (`00 00 ..`) nor
/// gzip (`1f 8b`), a type code other than `0x08`, no dimensions, an element count overflowing
/// `usize`, a payload shorter or longer than `Π dims` bytes, or a corrupt gzip stream.
pub fn parse_idx(bytes: &[u8]) -> Result<IdxArray> {
    if bytes.is_empty() {
        return Err(Error::format(
            MEMORY,
            "empty file (an IDX file has at least a 4-byte magic number)",
        ));
    }
    if bytes.starts_with(&GZIP_MAGIC) {
        parse_stream(&mut MultiGzDecoder::new(bytes), true)
    } else {
        parse_stream(&mut &bytes[..], false)
    }
}

/// Parses an IDX stream (`gzip`: whether it is the output of a gzip decoder, for the messages).
fn parse_stream(r: &mut dyn Read, gzip: bool) -> Result<IdxArray> {
    let what = if gzip { "decompressed " } else { "" };
    let mut magic = [0u8; 4];
    fill(r, &mut magic, 0, gzip, "magic number")?;
    if magic[..2] != [0, 0] {
        return Err(Error::format(
            MEMORY,
            format!(
                "bad magic number 0x{:08x}: an IDX file starts with two zero bytes{}",
                u32::from_be_bytes(magic),
                if gzip {
                    ""
                } else {
                    " (or with the gzip magic 1f 8b)"
                }
            ),
        ));
    }
    let (code, ndim) = (magic[2], usize::from(magic[3]));
    if code != TYPE_U8 {
        return Err(Error::format(
            MEMORY,
            format!(
                "unsupported IDX element type code 0x{code:02x} ({}) in magic number 0x{:08x}; \
                 only 0x08 (unsigned byte) is read",
                type_name(code),
                u32::from_be_bytes(magic)
            ),
        ));
    }
    if ndim == 0 {
        return Err(Error::format(
            MEMORY,
            "magic number 0x00000800 declares 0 dimensions; an IDX array has at least one",
        ));
    }
    let mut raw = vec![0u8; 4 * ndim];
    fill(r, &mut raw, 4, gzip, &format!("header ({ndim} dimensions)"))?;
    let dims: Vec<usize> = raw
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let header = 4 + 4 * ndim;
    let expected = dims
        .iter()
        .try_fold(1usize, |p, &d| p.checked_mul(d))
        .ok_or_else(|| {
            Error::format(
                MEMORY,
                format!("dimensions {dims:?}: the element count overflows usize"),
            )
        })?;

    let mut data = Vec::with_capacity(expected.min(MAX_PREALLOC));
    let got = r
        .take(expected as u64)
        .read_to_end(&mut data)
        .map_err(|e| stream_error(e, header + data.len(), gzip))?;
    if got < expected {
        return Err(Error::format(
            MEMORY,
            format!(
                "truncated payload: dimensions {dims:?} need {expected} {what}bytes after the \
                 {header}-byte header, got {got}"
            ),
        ));
    }
    // Anything after the payload is an error; reading to the end also checks the gzip CRCs.
    let trailing =
        io::copy(r, &mut io::sink()).map_err(|e| stream_error(e, header + expected, gzip))?;
    if trailing > 0 {
        return Err(Error::format(
            MEMORY,
            format!(
                "{trailing} trailing {what}bytes after the payload: dimensions {dims:?} need \
                 exactly {expected} bytes after the {header}-byte header"
            ),
        ));
    }
    Ok(IdxArray { dims, data })
}

/// Fills `buf` from `r` (`offset`: the stream position, for the message), or a format error
/// naming `part`, the bytes it needs and the bytes found.
fn fill(r: &mut dyn Read, buf: &mut [u8], offset: usize, gzip: bool, part: &str) -> Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(Error::format(
                    MEMORY,
                    format!(
                        "truncated {part}: needs {} {}bytes at offset {offset}, got {got}",
                        buf.len(),
                        if gzip { "decompressed " } else { "" }
                    ),
                ));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(stream_error(e, offset + got, gzip)),
        }
    }
    Ok(())
}

/// A read error of the decoder (a plain byte slice never fails) as a format error.
fn stream_error(e: io::Error, decompressed: usize, gzip: bool) -> Error {
    let kind = if gzip { "gzip stream" } else { "stream" };
    Error::format(
        MEMORY,
        format!("corrupt or truncated {kind} after {decompressed} decompressed bytes: {e}"),
    )
}

/// Name of an IDX type code, for error messages.
fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => "not an IDX type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn idx(dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, TYPE_U8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(payload);
        b
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn msg(bytes: &[u8]) -> String {
        match parse_idx(bytes) {
            Err(e @ Error::Format { .. }) => e.to_string(),
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn plain_and_gzip_parse_the_same() {
        let b = idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let a = parse_idx(&b).unwrap();
        assert_eq!(a.dims(), &[2, 3]);
        assert_eq!(a.data(), &[1, 2, 3, 4, 5, 6]);
        assert_eq!(a.magic(), 0x802);
        assert_eq!(parse_idx(&gz(&b)).unwrap(), a);
        // Two gzip members are one stream (RFC 1952 §2.2).
        let (h, p) = b.split_at(7);
        assert_eq!(parse_idx(&[gz(h), gz(p)].concat()).unwrap(), a);
    }

    #[test]
    fn header_errors_name_the_value() {
        assert!(msg(&[]).contains("empty"));
        assert!(msg(&[0, 0, 8]).contains("needs 4 bytes at offset 0, got 3"));
        let m = msg(&[0x12, 0x34, 0x08, 0x01, 0, 0, 0, 0]);
        assert!(m.contains("0x12340801"), "{m}");
        let m = msg(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert!(m.contains("0x0d") && m.contains("f32"), "{m}");
        assert!(msg(&[0, 0, 8, 0]).contains("0 dimensions"));
        let m = msg(&idx(&[3, 5], &[])[..9]);
        assert!(
            m.contains("header (2 dimensions)") && m.contains("needs 8") && m.contains("got 5"),
            "{m}"
        );
        let m = msg(&idx(&[u32::MAX, u32::MAX, u32::MAX], &[]));
        assert!(m.contains("overflow"), "{m}");
    }

    #[test]
    fn payload_must_be_exact() {
        let m = msg(&idx(&[2, 3], &[1, 2, 3, 4, 5]));
        assert!(m.contains("need 6 bytes") && m.contains("got 5"), "{m}");
        let m = msg(&idx(&[2, 3], &[0; 9]));
        assert!(m.contains("3 trailing bytes"), "{m}");
        let m = msg(&gz(&idx(&[2, 3], &[0; 7])));
        assert!(m.contains("1 trailing decompressed bytes"), "{m}");
        // An empty array (a zero dimension) is well formed.
        assert_eq!(parse_idx(&idx(&[0, 28], &[])).unwrap().data().len(), 0);
    }

    #[test]
    fn corrupt_gzip_is_a_format_error() {
        let z = gz(&idx(&[4], &[9, 8, 7, 6]));
        let m = msg(&z[..z.len() - 3]);
        assert!(m.contains("gzip stream"), "{m}");
        let mut bad_crc = z.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 0xff; // the CRC32 of the trailer
        let m = msg(&bad_crc);
        assert!(m.contains("gzip stream"), "{m}");
        assert!(msg(&[0x1f, 0x8b, 1, 2, 3]).contains("gzip stream"));
    }
}
