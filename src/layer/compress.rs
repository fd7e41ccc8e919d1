//! Layer compression whose bytes never depend on the thread count.
//!
//! gzip: the input is cut into fixed 1 MiB blocks, each deflated independently (raw
//! deflate, ending in a sync flush, the last one final), then joined under one gzip
//! header and trailer — pigz's layout without dictionary sharing. Block boundaries are
//! fixed, so 1 or 16 threads give the same bytes. zstd: libzstd's multithreaded encoder
//! with at least one worker, which is byte-identical for any worker count ≥ 1.
//! Both backends are pinned by Cargo.lock; golden-hash tests catch any drift.

use flate2::{Compress, Compression as Level, FlushCompress, Status};
use rayon::prelude::*;

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
const GZIP_LEVEL: u32 = 6;
const ZSTD_LEVEL: i32 = 3;

/// Compresses a whole layer tar.
pub fn compress(data: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::Gzip => gzip(data),
        Compression::Zstd => zstd_compress(data),
        Compression::None => data.to_vec(),
    }
}

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

/// Parallel, deterministic gzip (one member).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let blocks: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(GZIP_BLOCK).collect()
    };
    let n = blocks.len();
    let parts: Vec<Vec<u8>> = blocks
        .par_iter()
        .enumerate()
        .map(|(i, b)| deflate_block(b, i + 1 == n))
        .collect();
    let mut crc = flate2::Crc::new();
    crc.update(data);
    let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum::<usize>() + 18);
    // Header: magic, deflate, no flags, mtime 0, no extra flags, OS 3 (Unix).
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    for p in &parts {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn zstd_compress(data: &[u8]) -> Vec<u8> {
    let workers = rayon::current_num_threads().max(1) as u32;
    let mut enc = zstd::stream::Encoder::new(Vec::with_capacity(data.len() / 3), ZSTD_LEVEL)
        .expect("zstd encoder");
    enc.multithread(workers).expect("zstd built with zstdmt");
    enc.include_checksum(true).expect("zstd parameter");
    std::io::Write::write_all(&mut enc, data).expect("compressing to memory");
    enc.finish().expect("compressing to memory")
}

/// Decompresses a layer blob (for `realize --check` and tests).
pub fn decompress(blob: &[u8], compression: Compression) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    match compression {
        Compression::Gzip => {
            flate2::read::MultiGzDecoder::new(blob).read_to_end(&mut out)?;
        }
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(blob)?.read_to_end(&mut out)?;
        }
        Compression::None => out.extend_from_slice(blob),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

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
        let one = in_pool(1, || zstd_compress(&data));
        let three = in_pool(3, || zstd_compress(&data));
        assert_eq!(one, three);
        assert_eq!(decompress(&one, Compression::Zstd).unwrap(), data);
    }

    #[test]
    fn golden_hashes_pin_the_compressed_bytes() {
        // If these change, the compression backend changed: every layer digest would too.
        let data = sample();
        assert_eq!(
            hex::encode(Sha256::digest(gzip(&data))),
            GOLDEN_GZIP,
            "gzip bytes changed"
        );
        assert_eq!(
            hex::encode(Sha256::digest(zstd_compress(&data))),
            GOLDEN_ZSTD,
            "zstd bytes changed"
        );
    }

    const GOLDEN_GZIP: &str = "fcdf5d6cd4f428732e6ccc9b79b075463338a97ec2db1d4f6f15e58e7e943539";
    const GOLDEN_ZSTD: &str = "a0e73c6e2d5ce3a387eba7b86bd6a76832f71e4b82100475d0f99d5741c60089";
}
