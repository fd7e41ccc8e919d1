//! The package index: PEP 691 JSON pages (and PEP 503 HTML ones), and the core metadata
//! of a wheel — from a PEP 658 `.metadata` file when the index offers one, otherwise read
//! out of the remote wheel with HTTP range requests (the zip's central directory, then the
//! `*.dist-info/METADATA` member only). Metadata is cached in the store by wheel hash.

use crate::digest::Sha256Hex;
use crate::fetch::{FetchError, Fetcher};
use crate::store::Store;
use std::io::Read;

/// One distribution file listed for a project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexFile {
    pub filename: String,
    pub url: String,
    pub sha256: Sha256Hex,
    pub size: Option<u64>,
    pub requires_python: Option<String>,
    pub yanked: bool,
    /// The index serves `<url>.metadata` (PEP 658/714).
    pub core_metadata: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PypiError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{url}: cannot read the index page: {reason}")]
    Page { url: String, reason: String },
    #[error("{file}: cannot read its metadata: {reason}")]
    Metadata { file: String, reason: String },
}

/// PEP 503 name normalization.
pub fn normalize(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.chars() {
        if c == '-' || c == '_' || c == '.' {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Resolves a possibly relative URL against the page it was found on.
pub fn join_url(page: &str, href: &str) -> String {
    if href.contains("://") {
        return href.to_string();
    }
    let scheme_end = page.find("://").map(|i| i + 3).unwrap_or(0);
    if let Some(rest) = href.strip_prefix('/') {
        let host_end = page[scheme_end..]
            .find('/')
            .map(|i| scheme_end + i)
            .unwrap_or(page.len());
        return format!("{}/{rest}", &page[..host_end]);
    }
    let dir_end = page.rfind('/').map(|i| i + 1).unwrap_or(page.len());
    let mut base: Vec<&str> = page[scheme_end..dir_end]
        .trim_end_matches('/')
        .split('/')
        .collect();
    for part in href.split('/') {
        match part {
            ".." => {
                if base.len() > 1 {
                    base.pop();
                }
            }
            "." => {}
            p => base.push(p),
        }
    }
    format!("{}{}", &page[..scheme_end], base.join("/"))
}

/// Checks the file name and sha256 an index gives a file before they become store paths.
fn checked(page_url: &str, filename: &str, sha256: &str) -> Result<(String, Sha256Hex), PypiError> {
    let bad = |e: &dyn std::fmt::Display| PypiError::Page {
        url: page_url.into(),
        reason: e.to_string(),
    };
    crate::name::file_name("index file name", filename).map_err(|e| bad(&e))?;
    let sha256 = Sha256Hex::parse(sha256).map_err(|e| bad(&e))?;
    Ok((filename.to_string(), sha256))
}

/// `%XX` escapes decoded (an HTML page's links percent-encode `+` in local versions); a
/// malformed escape is kept as it is, and then refused as a file name.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Downloads an index's file into the store (unless it is there), checked against the
/// index's sha256 and, where the index gives one, its size.
pub fn fetch_file(
    fetcher: &Fetcher,
    store: &Store,
    file: &IndexFile,
) -> Result<std::path::PathBuf, FetchError> {
    fetcher.fetch_into_store(
        std::slice::from_ref(&file.url),
        "",
        store,
        &file.filename,
        &crate::store::Expected::sha256(&file.sha256, file.size),
        &|_| {},
    )
}

/// The size of a chosen file: the index's word where it gives one (PEP 691), otherwise
/// (PEP 503 HTML pages carry none) the size of the file itself, downloaded into the store
/// and checked against the index's sha256 — the fetch that follows then finds it there.
pub fn file_size(fetcher: &Fetcher, store: &Store, file: &IndexFile) -> Result<u64, PypiError> {
    if let Some(size) = file.size {
        return Ok(size);
    }
    let path = fetch_file(fetcher, store, file)?;
    std::fs::metadata(&path)
        .map(|m| m.len())
        .map_err(|e| PypiError::Metadata {
            file: file.filename.clone(),
            reason: format!("reading its size in the store: {e}"),
        })
}

fn parse_json(page_url: &str, bytes: &[u8]) -> Result<Vec<IndexFile>, PypiError> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| PypiError::Page {
        url: page_url.into(),
        reason: e.to_string(),
    })?;
    let files = v["files"].as_array().ok_or_else(|| PypiError::Page {
        url: page_url.into(),
        reason: "no `files` list".into(),
    })?;
    files
        .iter()
        .filter_map(|f| {
            let sha256 = f["hashes"]["sha256"].as_str()?;
            let filename = f["filename"].as_str()?;
            let url = join_url(page_url, f["url"].as_str()?);
            let truthy =
                |x: &serde_json::Value| !(x.is_null() || x == &serde_json::Value::Bool(false));
            Some(
                checked(page_url, filename, sha256).map(|(filename, sha256)| IndexFile {
                    filename,
                    url,
                    sha256,
                    size: f["size"].as_u64(),
                    requires_python: f["requires-python"].as_str().map(str::to_string),
                    yanked: truthy(&f["yanked"]),
                    core_metadata: truthy(&f["core-metadata"]) || truthy(&f["dist-info-metadata"]),
                }),
            )
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn parse_html(page_url: &str, text: &str) -> Result<Vec<IndexFile>, PypiError> {
    let mut out = Vec::new();
    for chunk in text.split("<a ").skip(1) {
        let Some(end) = chunk.find('>') else { continue };
        let attrs = &chunk[..end];
        let attr = |name: &str| -> Option<String> {
            let key = format!("{name}=\"");
            let start = attrs.find(&key)? + key.len();
            let len = attrs[start..].find('"')?;
            Some(unescape(&attrs[start..start + len]))
        };
        let Some(href) = attr("href") else { continue };
        let (url, fragment) = href.split_once('#').unwrap_or((&href, ""));
        let Some(sha256) = fragment.strip_prefix("sha256=") else {
            continue;
        };
        let filename = percent_decode(url.rsplit('/').next().unwrap_or(url));
        let (filename, sha256) = checked(page_url, &filename, sha256)?;
        out.push(IndexFile {
            filename,
            url: join_url(page_url, url),
            sha256,
            size: None,
            requires_python: attr("data-requires-python"),
            yanked: attrs.contains("data-yanked"),
            core_metadata: attrs.contains("data-core-metadata")
                || attrs.contains("data-dist-info-metadata"),
        });
    }
    Ok(out)
}

/// The files a project page lists: PEP 691 JSON when it starts with `{`, PEP 503 HTML
/// otherwise. Every file name and hash is checked ([`crate::name`]).
pub fn parse_page(url: &str, bytes: &[u8]) -> Result<Vec<IndexFile>, PypiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first == Some(b'{') {
        parse_json(url, bytes)
    } else {
        parse_html(url, &String::from_utf8_lossy(bytes))
    }
}

/// Every file of a project, from the first index that has it.
pub fn project_files(
    fetcher: &Fetcher,
    indexes: &[String],
    name: &str,
) -> Result<Vec<IndexFile>, PypiError> {
    let mut last = None;
    for index in indexes {
        let url = format!("{}/{}/", index.trim_end_matches('/'), normalize(name));
        match fetcher.get_url(
            &url,
            Some("application/vnd.pypi.simple.v1+json, text/html;q=0.1"),
            None,
        ) {
            Ok(bytes) => return parse_page(&url, &bytes),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .map(PypiError::from)
        .unwrap_or_else(|| PypiError::Page {
            url: name.into(),
            reason: "no index is configured".into(),
        }))
}

/// The core metadata fields the resolver needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoreMetadata {
    pub name: String,
    pub version: String,
    pub requires_dist: Vec<String>,
    pub requires_python: Option<String>,
}

impl CoreMetadata {
    /// Parses the RFC 822-style header block of a METADATA file.
    pub fn parse(text: &str) -> CoreMetadata {
        let mut m = CoreMetadata::default();
        let mut current: Option<(String, String)> = None;
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if line.is_empty() {
                break;
            }
            if line.starts_with(' ') || line.starts_with('\t') {
                if let Some((_, v)) = current.as_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if let Some(done) = current.take() {
                fields.push(done);
            }
            if let Some((k, v)) = line.split_once(':') {
                current = Some((k.trim().to_string(), v.trim().to_string()));
            }
        }
        fields.extend(current);
        for (k, v) in fields {
            match k.to_ascii_lowercase().as_str() {
                "name" => m.name = v,
                "version" => m.version = v,
                "requires-dist" => m.requires_dist.push(v),
                "requires-python" => m.requires_python = Some(v),
                _ => {}
            }
        }
        m
    }
}

fn metadata_cache(store: &Store, sha256: &str) -> std::path::PathBuf {
    store
        .area(crate::store::Area::PypiMetadata)
        .join(format!("{sha256}.METADATA"))
}

/// The METADATA of a wheel: from the store's cache, the index's `.metadata` file, or the
/// remote wheel's zip directory read with range requests.
pub fn wheel_metadata(
    fetcher: &Fetcher,
    store: &Store,
    file: &IndexFile,
) -> Result<CoreMetadata, PypiError> {
    let cache = metadata_cache(store, &file.sha256);
    if let Ok(text) = std::fs::read_to_string(&cache) {
        return Ok(CoreMetadata::parse(&text));
    }
    let bad = |reason: String| PypiError::Metadata {
        file: file.filename.clone(),
        reason,
    };
    let bytes = if file.core_metadata {
        fetcher.get_url(&format!("{}.metadata", file.url), None, None)?
    } else {
        metadata_by_range(fetcher, file).map_err(bad)?
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    crate::store::write_atomic(&cache, text.as_bytes()).map_err(|e| PypiError::Metadata {
        file: file.filename.clone(),
        reason: e.to_string(),
    })?;
    Ok(CoreMetadata::parse(&text))
}

fn u16_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?) as u64)
}

fn u32_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?) as u64)
}

/// Reads `*.dist-info/METADATA` from a remote wheel with at most three range requests.
fn metadata_by_range(fetcher: &Fetcher, file: &IndexFile) -> Result<Vec<u8>, String> {
    let size = match file.size {
        Some(s) => s,
        None => return full_wheel_metadata(fetcher, file),
    };
    let tail_len = size.min(64 * 1024);
    let tail = fetcher
        .get_url(&file.url, None, Some((size - tail_len, size - 1)))
        .map_err(|e| e.to_string())?;
    let eocd = tail
        .windows(4)
        .rposition(|w| w == [0x50, 0x4b, 0x05, 0x06])
        .ok_or("no end of central directory (zip64 or not a zip)")?;
    let cd_size = u32_at(&tail, eocd + 12).ok_or("short EOCD")?;
    let cd_offset = u32_at(&tail, eocd + 16).ok_or("short EOCD")?;
    if cd_offset == 0xffff_ffff || cd_size == 0xffff_ffff {
        return full_wheel_metadata(fetcher, file);
    }
    let tail_start = size - tail_len;
    let cd = if cd_offset >= tail_start {
        tail[(cd_offset - tail_start) as usize..(cd_offset - tail_start + cd_size) as usize]
            .to_vec()
    } else {
        fetcher
            .get_url(&file.url, None, Some((cd_offset, cd_offset + cd_size - 1)))
            .map_err(|e| e.to_string())?
    };
    let mut i = 0usize;
    while i + 46 <= cd.len() && cd[i..i + 4] == [0x50, 0x4b, 0x01, 0x02] {
        let method = u16_at(&cd, i + 10).ok_or("short entry")?;
        let csize = u32_at(&cd, i + 20).ok_or("short entry")?;
        let name_len = u16_at(&cd, i + 28).ok_or("short entry")? as usize;
        let extra_len = u16_at(&cd, i + 30).ok_or("short entry")? as usize;
        let comment_len = u16_at(&cd, i + 32).ok_or("short entry")? as usize;
        let local = u32_at(&cd, i + 42).ok_or("short entry")?;
        let name = String::from_utf8_lossy(cd.get(i + 46..i + 46 + name_len).ok_or("short name")?)
            .into_owned();
        if name.ends_with(".dist-info/METADATA") && name.matches('/').count() == 1 {
            // Local header (30 bytes + name + extra) then the data; read a generous window.
            let want = 30 + name_len as u64 + 1024 + csize;
            let chunk = fetcher
                .get_url(&file.url, None, Some((local, (local + want).min(size) - 1)))
                .map_err(|e| e.to_string())?;
            let lname = u16_at(&chunk, 26).ok_or("short local header")? as usize;
            let lextra = u16_at(&chunk, 28).ok_or("short local header")? as usize;
            let start = 30 + lname + lextra;
            let data = chunk
                .get(start..start + csize as usize)
                .ok_or("short local data")?;
            let declared = u32_at(&cd, i + 24).ok_or("short entry")?;
            return match method {
                0 => read_metadata(&name, data, declared),
                8 => read_metadata(&name, flate2::read::DeflateDecoder::new(data), declared),
                m => Err(format!("METADATA uses zip method {m}")),
            };
        }
        i += 46 + name_len + extra_len + comment_len;
    }
    Err("the wheel has no top-level *.dist-info/METADATA".into())
}

/// Downloads the whole wheel and reads METADATA from it (for zip64 or when no size is known).
fn full_wheel_metadata(fetcher: &Fetcher, file: &IndexFile) -> Result<Vec<u8>, String> {
    let bytes = fetcher
        .get_url(&file.url, None, None)
        .map_err(|e| e.to_string())?;
    metadata_in_wheel(bytes)
}

/// The largest METADATA file read (the largest on the index is well under 1 MiB).
const MAX_METADATA: u64 = 16 << 20;

/// The top-level `*.dist-info/METADATA` of a whole wheel.
pub fn metadata_in_wheel(bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let name = (0..zip.len())
        .filter_map(|i| {
            zip.by_index(i)
                .ok()
                .and_then(|f| f.name().ok().map(|n| n.to_string()))
        })
        .find(|n| n.ends_with(".dist-info/METADATA") && n.matches('/').count() == 1)
        .ok_or("the wheel has no top-level *.dist-info/METADATA")?;
    let member = zip.by_name(&name).map_err(|e| e.to_string())?;
    let declared = member.size();
    read_metadata(&name, member, declared)
}

/// A METADATA member's bytes, refused past [`MAX_METADATA`] and capped by its declared size.
fn read_metadata(name: &str, member: impl Read, declared: u64) -> Result<Vec<u8>, String> {
    if declared > MAX_METADATA {
        return Err(format!(
            "{name} declares {declared} bytes; core metadata over {MAX_METADATA} is refused"
        ));
    }
    crate::unpack::zip_member::read_capped(name, member, declared).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_urls() {
        assert_eq!(normalize("Foo.Bar__baz"), "foo-bar-baz");
        assert_eq!(
            join_url("http://h/simple/numpy/", "../../files/n.whl"),
            "http://h/files/n.whl"
        );
        assert_eq!(
            join_url("http://h/simple/numpy/", "/f/n.whl"),
            "http://h/f/n.whl"
        );
        assert_eq!(
            join_url("http://h/simple/numpy/", "n.whl"),
            "http://h/simple/numpy/n.whl"
        );
        assert_eq!(
            join_url("http://h/simple/numpy/", "https://o/n.whl"),
            "https://o/n.whl"
        );
    }

    #[test]
    fn html_pages_and_metadata_headers() {
        let (ab, ef) = ("ab".repeat(32), "ef".repeat(32));
        let html = format!(
            r#"<a href="../../f/a-1.0%2Blocal-py3-none-any.whl#sha256={ab}" data-requires-python="&gt;=3.9" data-dist-info-metadata="sha256=cd">a</a><a href="a-0.9.tar.gz#sha256={ef}" data-yanked="">x</a>"#
        );
        let files = parse_html("http://h/simple/a/", &html).unwrap();
        assert_eq!(files[0].filename, "a-1.0+local-py3-none-any.whl");
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].requires_python.as_deref(), Some(">=3.9"));
        assert!(files[0].core_metadata && !files[0].yanked && files[1].yanked);
        let m = CoreMetadata::parse(
            "Metadata-Version: 2.1\nName: a\nVersion: 1.0\nRequires-Dist: b>=1\nRequires-Dist: c; extra == \"x\"\nRequires-Python: >=3.9\n\nBody: not a header\n",
        );
        assert_eq!(
            (
                m.name.as_str(),
                m.requires_dist.len(),
                m.requires_python.as_deref()
            ),
            ("a", 2, Some(">=3.9"))
        );
    }
}
