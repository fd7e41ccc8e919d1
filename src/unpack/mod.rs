//! Streaming readers for package formats.

pub mod beneath;
pub mod deb;
pub mod zip_member;

use std::io::Read;

/// An xz decoder over bytes whose sha256 already matched what was locked or signed, so xz's
/// own check is skipped (it would verify the same bytes again). `memory_limit` caps the
/// dictionary a stream's header may ask for. The decoder buffers its input itself.
pub fn verified_xz<'a>(
    data: impl Read + 'a,
    memory_limit: u64,
) -> std::io::Result<Box<dyn Read + 'a>> {
    let stream =
        liblzma::stream::Stream::new_stream_decoder(memory_limit, liblzma::stream::IGNORE_CHECK)
            .map_err(std::io::Error::other)?;
    Ok(Box::new(liblzma::read::XzDecoder::new_stream(data, stream)))
}
