//! Layer compression whose bytes never depend on the thread count.
//!
//! gzip: the input is cut into fixed 1 MiB blocks, each deflated independently (raw
//! deflate, ending in a sync flush, the last one final), then joined under one gzip
//! header and trailer — pigz's layout without dictionary sharing. Block boundaries are
//! fixed, so 1 or 16 threads give the same bytes, and a stream can be compressed as it is
//! written, block by block, in bounded memory. zstd: libzstd's multithreaded encoder
//! with at least one worker, which is byte-identical for any worker count ≥ 1.
//! Both backends are pinned by Cargo.lock; golden-hash tests catch any drift.

use flate2::{Compress, Compression as Level, FlushCompress, Status};

/// How layer blobs are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

impl Compression {
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Compression> {
        match s {
            "gzip" => Some(Compression::Gzip),
            "zstd" => Some(Compression::Zstd),
            "none" => Some(Compression::None),
            _ => None,
        }
    }
}

const GZIP_BLOCK: usize = 1 << 20;
/// Level 5, not zlib's default 6: on layer tars (Debian's files, a Python tree, shared
/// libraries) zlib-rs's level 6 made blobs at most 0.4% smaller for 13–28% more time
/// (docs/architecture.md, "Tar and compress").
const GZIP_LEVEL: u32 = 5;
const ZSTD_LEVEL: i32 = 3;

fn deflate_block(block: &[u8], last: bool) -> Vec<u8> {
    let mut c = Compress::new(Level::new(GZIP_LEVEL), false);
    let mut out = Vec::with_capacity(block.len() / 2 + 128);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        let consumed = c.total_in() as usize;
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(4096));
        }
        let status = c
            .compress_vec(&block[consumed..], &mut out, flush)
            .expect("deflate on memory cannot fail");
        let done_input = c.total_in() as usize == block.len();
        match status {
            Status::StreamEnd => break,
            _ if done_input && !last && out.capacity() > out.len() => break,
            _ => {}
        }
    }
    out
}

/// Blocks being deflated at once, per layer: enough to keep every core busy, few enough
/// that memory stays a few MiB per layer being written.
fn blocks_in_flight(threads: usize) -> usize {
    (4 * threads).max(4)
}

/// Streaming, deterministic gzip: input is cut into [`GZIP_BLOCK`]s as it arrives; each full
/// block is deflated on a pool of the writer's own while the caller goes on reading, and
/// the deflated blocks are written out in order. The bytes are the same for the same
/// input, whatever the thread count or the pieces the input arrives in.
struct GzipWriter<W: std::io::Write> {
    out: W,
    block: Vec<u8>,
    crc: flate2::Crc,
    pool: rayon::ThreadPool,
    /// Blocks being deflated, oldest first.
    in_flight: std::collections::VecDeque<std::sync::mpsc::Receiver<Vec<u8>>>,
    max_in_flight: usize,
}

impl<W: std::io::Write> GzipWriter<W> {
    fn new(mut out: W) -> std::io::Result<Self> {
        // A pool of its own, as large as the caller's: the caller may be a worker of the
        // global pool waiting for a block, and deflating on that pool could then wait for
        // itself.
        let threads = rayon::current_num_threads();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("gzip-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        // Header: magic, deflate, no flags, mtime 0, no extra flags, OS 3 (Unix).
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])?;
        Ok(GzipWriter {
            out,
            block: Vec::with_capacity(GZIP_BLOCK),
            crc: flate2::Crc::new(),
            pool,
            in_flight: std::collections::VecDeque::new(),
            max_in_flight: blocks_in_flight(threads),
        })
    }

    /// Hands a block to the pool; writes out the oldest ones while too many are pending.
    fn submit(&mut self, block: Vec<u8>, last: bool) -> std::io::Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.pool.spawn(move || {
            let _ = tx.send(deflate_block(&block, last));
        });
        self.in_flight.push_back(rx);
        while self.in_flight.len() > self.max_in_flight {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> std::io::Result<()> {
        let Some(rx) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let deflated = rx
            .recv()
            .map_err(|_| std::io::Error::other("a compressing thread panicked"))?;
        self.out.write_all(&deflated)
    }

    fn finish(mut self) -> std::io::Result<W> {
        // The block being filled is the last one: a full block is only submitted once more
        // input follows it, so this is empty only for an empty input.
        let last = std::mem::take(&mut self.block);
        self.submit(last, true)?;
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        let (crc, size) = (self.crc.sum(), self.crc.amount());
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&size.to_le_bytes())?;
        Ok(self.out)
    }
}

impl<W: std::io::Write> std::io::Write for GzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            if self.block.len() == GZIP_BLOCK {
                // More input follows, so the full block is not the last.
                let full = std::mem::replace(&mut self.block, Vec::with_capacity(GZIP_BLOCK));
                self.submit(full, false)?;
            }
            let take = (GZIP_BLOCK - self.block.len()).min(rest.len());
            self.block.extend_from_slice(&rest[..take]);
            self.crc.update(&rest[..take]);
            rest = &rest[take..];
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A layer compressor that streams: bytes written in, compressed bytes out to `W`.
pub struct Compressor<W: std::io::Write>(Backend<W>);

enum Backend<W: std::io::Write> {
    Gzip(Box<GzipWriter<W>>),
    Zstd(zstd::stream::Encoder<'static, W>),
    None(W),
}

impl<W: std::io::Write> Compressor<W> {
    pub fn new(compression: Compression, out: W) -> std::io::Result<Self> {
        Ok(Compressor(match compression {
            Compression::Gzip => Backend::Gzip(Box::new(GzipWriter::new(out)?)),
            Compression::Zstd => {
                let workers = rayon::current_num_threads().max(1) as u32;
                let mut enc = zstd::stream::Encoder::new(out, ZSTD_LEVEL)?;
                enc.multithread(workers)?;
                enc.include_checksum(true)?;
                Backend::Zstd(enc)
            }
            Compression::None => Backend::None(out),
        }))
    }

    /// Ends the stream and returns the writer.
    pub fn finish(self) -> std::io::Result<W> {
        match self.0 {
            Backend::Gzip(g) => g.finish(),
            Backend::Zstd(enc) => enc.finish(),
            Backend::None(out) => Ok(out),
        }
    }
}

impl<W: std::io::Write> std::io::Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            Backend::Gzip(g) => g.write(buf),
            Backend::Zstd(enc) => enc.write(buf),
            Backend::None(out) => out.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Flushing would end a compressed block early and change the bytes: only the
        // plain writer flushes.
        match &mut self.0 {
            Backend::None(out) => out.flush(),
            _ => Ok(()),
        }
    }
}

/// A reader of a layer blob's tar (for `realize --check` and tests).
pub fn decoder<'r>(
    blob: impl std::io::Read + 'r,
    compression: Compression,
) -> std::io::Result<Box<dyn std::io::Read + 'r>> {
    Ok(match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            blob,
        ))),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(blob)?),
        Compression::None => Box::new(blob),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// A whole input compressed in memory, in one piece.
    fn compress(data: &[u8], compression: Compression) -> Vec<u8> {
        let mut w = Compressor::new(compression, Vec::new()).unwrap();
        std::io::Write::write_all(&mut w, data).unwrap();
        w.finish().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        compress(data, Compression::Gzip)
    }

    fn decompress(blob: &[u8], compression: Compression) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut decoder(blob, compression)?, &mut out)?;
        Ok(out)
    }

    fn sample() -> Vec<u8> {
        // 3.5 MiB of compressible, non-trivial data.
        (0..3_670_016u32)
            .map(|i| ((i / 7) % 251) as u8 ^ ((i % 13) as u8))
            .collect()
    }

    fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(f)
    }

    #[test]
    fn gzip_is_identical_for_any_thread_count_and_round_trips() {
        let data = sample();
        let one = in_pool(1, || gzip(&data));
        let four = in_pool(4, || gzip(&data));
        assert_eq!(one, four);
        assert_eq!(decompress(&one, Compression::Gzip).unwrap(), data);
        // Also readable by a plain single-member decoder.
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&one[..]), &mut plain)
            .unwrap();
        assert_eq!(plain, data);
        assert_eq!(decompress(&gzip(b""), Compression::Gzip).unwrap(), b"");
    }

    #[test]
    fn zstd_is_identical_for_any_thread_count_and_round_trips() {
        let data = sample();
        let one = in_pool(1, || compress(&data, Compression::Zstd));
        let three = in_pool(3, || compress(&data, Compression::Zstd));
        assert_eq!(one, three);
        assert_eq!(decompress(&one, Compression::Zstd).unwrap(), data);
    }

    /// 1.5 MiB of text-like data (words drawn by a fixed generator): unlike `sample`'s
    /// short period, its matches are where compression levels choose differently.
    fn words() -> Vec<u8> {
        const WORDS: [&[u8]; 12] = [
            b"usr",
            b"lib",
            b"share",
            b"doc",
            b"python3",
            b"site-packages",
            b"__init__",
            b"copyright",
            b"x86_64-linux-gnu",
            b"locale",
            b"LC_MESSAGES",
            b"changelog",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut out = Vec::with_capacity(1_600_000);
        while out.len() < 1_572_864 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.extend_from_slice(WORDS[(state % 12) as usize]);
            out.push(if state.is_multiple_of(5) { b'\n' } else { b'/' });
            if state.is_multiple_of(3) {
                out.extend_from_slice(format!("{}", state % 10_007).as_bytes());
            }
        }
        out
    }

    #[test]
    fn golden_hashes_pin_the_compressed_bytes() {
        // If these change, the compression backend or its level changed: every layer
        // digest would too.
        let data = sample();
        assert_eq!(
            hex::encode(Sha256::digest(gzip(&data))),
            GOLDEN_GZIP,
            "gzip bytes changed"
        );
        assert_eq!(
            hex::encode(Sha256::digest(gzip(&words()))),
            GOLDEN_GZIP_WORDS,
            "gzip bytes of text changed"
        );
        assert_eq!(
            hex::encode(Sha256::digest(compress(&data, Compression::Zstd))),
            GOLDEN_ZSTD,
            "zstd bytes changed"
        );
    }

    #[test]
    fn streamed_in_odd_pieces_the_bytes_are_the_same() {
        // Pieces that straddle block boundaries, and inputs that end exactly on one.
        for len in [
            0,
            1,
            GZIP_BLOCK,
            2 * GZIP_BLOCK,
            3_670_016,
            9 * GZIP_BLOCK + 5,
        ] {
            let data: Vec<u8> = (0..len as u32).map(|i| ((i / 5) % 241) as u8).collect();
            for compression in [Compression::Gzip, Compression::Zstd] {
                let whole = compress(&data, compression);
                let mut w = Compressor::new(compression, Vec::new()).unwrap();
                for piece in data.chunks(77_777) {
                    std::io::Write::write_all(&mut w, piece).unwrap();
                }
                let streamed = w.finish().unwrap();
                assert_eq!(streamed, whole, "{compression:?}, {len} bytes");
                assert_eq!(decompress(&streamed, compression).unwrap(), data);
            }
        }
    }

    const GOLDEN_GZIP: &str = "fcdf5d6cd4f428732e6ccc9b79b075463338a97ec2db1d4f6f15e58e7e943539";
    const GOLDEN_GZIP_WORDS: &str =
        "90c842276f032c177a1c2c70be84dda09e638632bf04e43eab3298f5ca75d7d4";
    const GOLDEN_ZSTD: &str = "a0e73c6e2d5ce3a387eba7b86bd6a76832f71e4b82100475d0f99d5741c60089";
}
