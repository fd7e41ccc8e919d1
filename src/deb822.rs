//! Reader for deb822 control data: `Packages`, `Release`, `status` and `control` files.
//!
//! Index files are tens of megabytes, so paragraphs are read without copying: every
//! field value is a slice of the input, continuation lines included.

/// One paragraph: its fields in file order, each value a slice of the input text.
#[derive(Debug, Clone, Default)]
pub struct Paragraph<'a> {
    fields: Vec<(&'a str, &'a str)>,
    /// 1-based line on which the paragraph starts, for error messages.
    pub line: usize,
}

impl<'a> Paragraph<'a> {
    /// The value of a field (names compare case-insensitively, as in dpkg), trimmed.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// The fields in file order.
    pub fn fields(&self) -> &[(&'a str, &'a str)] {
        &self.fields
    }
}

/// A line that is neither a field, a continuation nor a paragraph break.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {reason}")]
pub struct ControlError {
    pub line: usize,
    pub reason: String,
}

/// Iterates over the paragraphs of a deb822 text. Comment lines (`#`) are skipped.
pub struct Paragraphs<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Paragraphs<'a> {
    pub fn new(text: &'a str) -> Self {
        Paragraphs {
            text,
            pos: 0,
            line: 0,
        }
    }

    fn next_line(&mut self) -> Option<&'a str> {
        if self.pos >= self.text.len() {
            return None;
        }
        let rest = &self.text[self.pos..];
        let end = memchr::memchr(b'\n', rest.as_bytes()).unwrap_or(rest.len());
        self.pos += (end + 1).min(rest.len());
        self.line += 1;
        Some(rest[..end].strip_suffix('\r').unwrap_or(&rest[..end]))
    }
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>, ControlError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut paragraph = Paragraph::default();
        // Index of the field whose value continuation lines extend, and the value's start offset.
        let mut open: Option<(usize, usize)> = None;
        loop {
            let line_start = self.pos;
            let Some(line) = self.next_line() else {
                break;
            };
            if line.trim().is_empty() {
                if paragraph.fields.is_empty() {
                    continue;
                }
                break;
            }
            if line.starts_with('#') {
                continue;
            }
            if line.starts_with(' ') || line.starts_with('\t') {
                let Some((index, value_start)) = open else {
                    return Some(Err(ControlError {
                        line: self.line,
                        reason: "continuation line outside a field".into(),
                    }));
                };
                let value_end = line_start + line.len();
                paragraph.fields[index].1 = &self.text[value_start..value_end];
                continue;
            }
            let Some(colon) = line.find(':') else {
                return Some(Err(ControlError {
                    line: self.line,
                    reason: format!("expected `Field: value`, found {:?}", truncate(line)),
                }));
            };
            let name = &line[..colon];
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Some(Err(ControlError {
                    line: self.line,
                    reason: format!("invalid field name {name:?}"),
                }));
            }
            if paragraph.fields.is_empty() {
                paragraph.line = self.line;
            }
            let value_start = line_start + colon + 1;
            paragraph
                .fields
                .push((name, &self.text[value_start..line_start + line.len()]));
            open = Some((paragraph.fields.len() - 1, value_start));
        }
        if paragraph.fields.is_empty() {
            None
        } else {
            Some(Ok(paragraph))
        }
    }
}

fn truncate(line: &str) -> &str {
    match line.char_indices().nth(60) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

/// Parses a whole text into paragraphs, stopping at the first malformed line.
pub fn parse(text: &str) -> Result<Vec<Paragraph<'_>>, ControlError> {
    Paragraphs::new(text).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_continuations_and_paragraph_breaks() {
        let text = "Package: a\nDepends: b,\n c\nDescription: short\n long line\n .\n\n\nPackage: b\r\nVersion: 1\r\n";
        let paragraphs = parse(text).unwrap();
        assert_eq!(paragraphs.len(), 2);
        assert_eq!(paragraphs[0].get("package"), Some("a"));
        assert_eq!(paragraphs[0].get("Depends"), Some("b,\n c"));
        assert_eq!(
            paragraphs[0].get("Description"),
            Some("short\n long line\n .")
        );
        assert_eq!(paragraphs[1].get("Version"), Some("1"));
        assert_eq!(paragraphs[1].line, 9);
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let err = parse("Package: a\nno colon here\n").unwrap_err();
        assert_eq!(err.line, 2);
        let err = parse(" leading continuation\n").unwrap_err();
        assert_eq!(err.line, 1);
    }
}
