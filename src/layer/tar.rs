//! A deterministic tar writer: every header field is set from the entry, never from the
//! file system. ustar headers, with a PAX extended header (fixed name) only for what ustar
//! cannot hold: long paths or link targets, large sizes or ids, non-ASCII names.

use std::io::{self, Write};

/// What a tar entry is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EntryKind {
    File,
    Dir,
    Symlink(String),
    /// A hard link to another path of the same archive (written earlier).
    Hardlink(String),
    CharDevice(u32, u32),
    BlockDevice(u32, u32),
    Fifo,
}

/// Metadata of one entry; `path` is relative, without `./`, directories without a trailing `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits including setuid, setgid and sticky (0o7777).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: u64,
}

const BLOCK: usize = 512;

fn octal(field: &mut [u8], value: u64) -> bool {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    if s.len() > digits {
        return false;
    }
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
    true
}

fn pax_record(out: &mut Vec<u8>, key: &str, value: &str) {
    // "<len> <key>=<value>\n" where len counts itself.
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    out.extend_from_slice(format!("{len}{body}").as_bytes());
}

fn fits(s: &str, n: usize) -> bool {
    s.len() <= n && s.is_ascii()
}

/// Splits a path into ustar (prefix, name) if it fits.
fn split_ustar(path: &str) -> Option<(&str, &str)> {
    if fits(path, 100) {
        return Some(("", path));
    }
    if !path.is_ascii() || path.len() > 256 {
        return None;
    }
    // The prefix ends at a '/' and must be <= 155 bytes, the name <= 100.
    for (i, b) in path.bytes().enumerate().rev() {
        if b == b'/' && i <= 155 && path.len() - i - 1 <= 100 && i > 0 {
            return Some((&path[..i], &path[i + 1..]));
        }
    }
    None
}

fn raw_header(
    name: &str,
    prefix: &str,
    h: &Header,
    size: u64,
    typeflag: u8,
    link: &str,
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut b[100..108], (h.mode & 0o7777) as u64);
    octal(&mut b[108..116], h.uid.min(0o7777777));
    octal(&mut b[116..124], h.gid.min(0o7777777));
    octal(&mut b[124..136], size.min(0o77777777777));
    octal(&mut b[136..148], h.mtime.min(0o77777777777));
    b[156] = typeflag;
    b[157..157 + link.len()].copy_from_slice(link.as_bytes());
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    if let EntryKind::CharDevice(ma, mi) | EntryKind::BlockDevice(ma, mi) = h.kind {
        octal(&mut b[329..337], ma as u64);
        octal(&mut b[337..345], mi as u64);
    }
    b[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    // Checksum: sum of all bytes with the checksum field as spaces.
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| x as u32).sum();
    let s = format!("{sum:06o}\0 ");
    b[148..156].copy_from_slice(s.as_bytes());
    b
}

/// Writes a tar stream entry by entry; `finish` adds the two zero blocks.
pub struct TarWriter<W: Write> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter { out }
    }

    /// Writes one entry; `data` must be `h.size` bytes for files and empty otherwise.
    pub fn append(&mut self, h: &Header, data: &[u8]) -> io::Result<()> {
        debug_assert_eq!(
            data.len() as u64,
            if h.kind == EntryKind::File { h.size } else { 0 }
        );
        self.write_header(h)?;
        self.write_padded(data)
    }

    fn write_header(&mut self, h: &Header) -> io::Result<()> {
        let (typeflag, link, size) = match &h.kind {
            EntryKind::File => (b'0', "", h.size),
            EntryKind::Dir => (b'5', "", 0),
            EntryKind::Symlink(t) => (b'2', t.as_str(), 0),
            EntryKind::Hardlink(t) => (b'1', t.as_str(), 0),
            EntryKind::CharDevice(..) => (b'3', "", 0),
            EntryKind::BlockDevice(..) => (b'4', "", 0),
            EntryKind::Fifo => (b'6', "", 0),
        };
        let mut path = h.path.clone();
        if h.kind == EntryKind::Dir && !path.ends_with('/') {
            path.push('/');
        }
        let mut pax = Vec::new();
        let split = split_ustar(&path);
        if split.is_none() {
            pax_record(&mut pax, "path", &path);
        }
        if !fits(link, 100) {
            pax_record(&mut pax, "linkpath", link);
        }
        if size > 0o77777777777 {
            pax_record(&mut pax, "size", &size.to_string());
        }
        if h.uid > 0o7777777 {
            pax_record(&mut pax, "uid", &h.uid.to_string());
        }
        if h.gid > 0o7777777 {
            pax_record(&mut pax, "gid", &h.gid.to_string());
        }
        if !pax.is_empty() {
            let pax_header = Header {
                path: String::new(),
                kind: EntryKind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: pax.len() as u64,
                mtime: h.mtime,
            };
            let block = raw_header(
                "././@PaxHeader",
                "",
                &pax_header,
                pax.len() as u64,
                b'x',
                "",
            );
            self.out.write_all(&block)?;
            self.write_padded(&pax)?;
        }
        let (prefix, name) = split.unwrap_or(("", ""));
        let name = if split.is_some() {
            name.to_string()
        } else {
            truncate_ascii(&path, 100)
        };
        let link_field = if fits(link, 100) {
            link.to_string()
        } else {
            truncate_ascii(link, 100)
        };
        let block = raw_header(&name, prefix, h, size, typeflag, &link_field);
        self.out.write_all(&block)
    }

    /// Writes a regular file whose content comes from a reader of exactly `h.size` bytes.
    pub fn append_reader(&mut self, h: &Header, reader: impl io::Read) -> io::Result<()> {
        self.write_header(h)?;
        let n = io::copy(&mut reader.take(h.size), &mut self.out)?;
        if n != h.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: {n} of {} bytes", h.path, h.size),
            ));
        }
        let pad = (BLOCK - (n as usize) % BLOCK) % BLOCK;
        self.out.write_all(&[0u8; BLOCK][..pad])
    }

    fn write_padded(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)?;
        let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
        self.out.write_all(&[0u8; BLOCK][..pad])
    }

    /// Ends the archive and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; BLOCK * 2])?;
        Ok(self.out)
    }
}

/// The longest ASCII prefix of at most `n` bytes (the PAX record carries the real value).
fn truncate_ascii(s: &str, n: usize) -> String {
    s.chars().filter(|c| c.is_ascii()).take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind, size: u64) -> Header {
        Header {
            path: path.into(),
            kind,
            mode: 0o4755,
            uid: 0,
            gid: 43,
            size,
            mtime: 1_700_000_000,
        }
    }

    fn read_back(bytes: &[u8]) -> Vec<(String, u32, u64, Option<String>)> {
        let mut ar = tar::Archive::new(bytes);
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.gid().unwrap(),
                    e.link_name()
                        .unwrap()
                        .map(|l| l.to_string_lossy().into_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn long_paths_and_links_use_pax_and_read_back_exactly() {
        let long = format!("usr/share/{}/file-with-a-long-name", "d".repeat(200));
        let weird = "usr/share/doc/ünïcode";
        let mut w = TarWriter::new(Vec::new());
        w.append(&entry("usr/bin/su", EntryKind::File, 3), b"abc")
            .unwrap();
        w.append(&entry(&long, EntryKind::Symlink(long.clone()), 0), b"")
            .unwrap();
        w.append(&entry(weird, EntryKind::Dir, 0), b"").unwrap();
        let bytes = w.finish().unwrap();
        let back = read_back(&bytes);
        assert_eq!(back[0], ("usr/bin/su".into(), 0o4755, 43, None));
        assert_eq!(back[1].0, long);
        assert_eq!(back[1].3.as_deref(), Some(long.as_str()));
        assert_eq!(back[2].0, format!("{weird}/"));
    }

    #[test]
    fn output_is_a_pure_function_of_the_entries() {
        let build = || {
            let mut w = TarWriter::new(Vec::new());
            w.append(&entry("a", EntryKind::File, 1), b"x").unwrap();
            w.finish().unwrap()
        };
        assert_eq!(build(), build());
        assert_eq!(build().len(), 512 * 4);
    }
}
