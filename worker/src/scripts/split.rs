//! Splits a plan script into statements the way each engine's own client would, so a semicolon inside a
//! string, an identifier, a comment, a dollar-quoted body or a `DELIMITER` block never cuts a statement.
//!
//! - Both engines: `'…'` strings with `''` doubling, `/* … */` comments, `--` comments.
//! - MySQL/MariaDB: `"…"` strings and `` `…` `` identifiers, backslash escapes in strings, `#` comments,
//!   `--` only when followed by whitespace (so `5--3` is arithmetic), and `DELIMITER` lines, which are
//!   client commands the server rejects (1064) and so are consumed here.
//! - PostgreSQL: `"…"` identifiers, backslash escapes only in `E'…'`, nested `/* */`, and
//!   `$tag$ … $tag$` bodies.
//!
//! Comments stay in the statement text (the server ignores them); statements that hold only comments
//! and whitespace are dropped.

use super::Dialect;

/// One statement and the line it starts on, for logs and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub line: usize,
    pub sql: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("line {line}: {what} is never closed")]
    Unterminated { line: usize, what: &'static str },
    #[error("line {line}: DELIMITER needs a delimiter that is not blank and has no quote or backslash")]
    BadDelimiter { line: usize },
}

pub fn split(script: &str, dialect: Dialect) -> Result<Vec<Statement>, SplitError> {
    Splitter { src: script, pos: 0, line: 1, dialect, delimiter: ";".into(), out: Vec::new() }.run()
}

struct Splitter<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    dialect: Dialect,
    delimiter: String,
    out: Vec<Statement>,
}

impl Splitter<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    /// Moves past `n` bytes, counting newlines.
    fn advance(&mut self, n: usize) {
        self.line += self.src[self.pos..self.pos + n].matches('\n').count();
        self.pos += n;
    }

    fn run(mut self) -> Result<Vec<Statement>, SplitError> {
        let mut start = 0;
        let mut start_line = 1;
        let mut at_line_start = true;
        while self.pos < self.src.len() {
            if at_line_start
                && self.dialect == Dialect::MySql
                && let Some((new, consumed)) = self.delimiter_command()?
            {
                self.push(start, self.pos, start_line);
                self.delimiter = new;
                self.advance(consumed);
                start = self.pos;
                start_line = self.line;
                at_line_start = true;
                continue;
            }
            let rest = self.rest();
            if rest.starts_with(self.delimiter.as_str()) {
                self.push(start, self.pos, start_line);
                let n = self.delimiter.len();
                self.advance(n);
                start = self.pos;
                start_line = self.line;
                at_line_start = false;
                continue;
            }
            let c = rest.chars().next().expect("not at end");
            at_line_start = c == '\n' || (at_line_start && (c == ' ' || c == '\t' || c == '\r'));
            let skip = self.token_len(c)?;
            self.advance(skip);
        }
        self.push(start, self.src.len(), start_line);
        Ok(self.out)
    }

    fn push(&mut self, from: usize, to: usize, line: usize) {
        let text = &self.src[from..to];
        if has_code(text, self.dialect) {
            // Report the line of the first non-blank character.
            let lead = text.len() - text.trim_start().len();
            let line = line + text[..lead].matches('\n').count();
            self.out.push(Statement { line, sql: text.trim().to_owned() });
        }
    }

    /// A `DELIMITER x` line at the current position: the new delimiter and the bytes the line takes.
    fn delimiter_command(&self) -> Result<Option<(String, usize)>, SplitError> {
        let rest = self.rest();
        let trimmed = rest.trim_start_matches([' ', '\t']);
        let indent = rest.len() - trimmed.len();
        let Some(word) = trimmed.get(..9) else {
            return Ok(None);
        };
        if !word.eq_ignore_ascii_case("delimiter") || !trimmed[9..].starts_with([' ', '\t']) {
            return Ok(None);
        }
        let line_end = trimmed.find('\n').map_or(trimmed.len(), |i| i + 1);
        let value = trimmed[9..line_end].trim();
        if value.is_empty() || value.contains(['\'', '"', '`', '\\']) {
            return Err(SplitError::BadDelimiter { line: self.line });
        }
        Ok(Some((value.to_owned(), indent + line_end)))
    }

    /// Length of the token starting with `c`: a whole string, identifier, comment or dollar body, or just
    /// the one character.
    fn token_len(&self, c: char) -> Result<usize, SplitError> {
        let rest = self.rest();
        let mysql = self.dialect == Dialect::MySql;
        let unterminated = |what| SplitError::Unterminated { line: self.line, what };
        match c {
            '\'' => {
                let escape_backslash = mysql || self.pg_escape_string();
                quoted(rest, '\'', escape_backslash).ok_or_else(|| unterminated("a quoted string"))
            }
            '"' => quoted(rest, '"', mysql).ok_or_else(|| unterminated("a double-quoted name or string")),
            '`' if mysql => quoted(rest, '`', false).ok_or_else(|| unterminated("a backtick-quoted name")),
            '#' if mysql => Ok(rest.find('\n').unwrap_or(rest.len())),
            '-' if rest.starts_with("--") && (!mysql || rest[2..].chars().next().is_none_or(char::is_whitespace)) => {
                Ok(rest.find('\n').unwrap_or(rest.len()))
            }
            '/' if rest.starts_with("/*") => block_comment(rest, !mysql).ok_or_else(|| unterminated("a /* comment")),
            '$' if !mysql => Ok(match dollar_tag(rest) {
                Some(tag) => {
                    rest[tag.len()..].find(tag).map(|i| i + 2 * tag.len()).ok_or_else(|| unterminated("a $$ body"))?
                }
                None => 1,
            }),
            _ => Ok(c.len_utf8()),
        }
    }

    /// Whether the `'` at the current position opens a PostgreSQL `E'…'` string.
    fn pg_escape_string(&self) -> bool {
        let before = &self.src[..self.pos];
        let mut chars = before.chars().rev();
        matches!(chars.next(), Some('e' | 'E')) && !chars.next().is_some_and(|c| c.is_alphanumeric() || c == '_')
    }
}

/// Length of a quoted token opening `s`, honouring doubled quotes and, where the dialect has them,
/// backslash escapes. `None` when it never closes.
fn quoted(s: &str, quote: char, backslash: bool) -> Option<usize> {
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if backslash && c == '\\' {
            chars.next();
        } else if c == quote {
            if s[i + 1..].starts_with(quote) {
                chars.next();
            } else {
                return Some(i + 1);
            }
        }
    }
    None
}

/// Length of a `/* */` comment opening `s`; PostgreSQL nests them, MySQL does not.
fn block_comment(s: &str, nested: bool) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < s.len() {
        if s[i..].starts_with("/*") && (nested || depth == 0) {
            depth += 1;
            i += 2;
        } else if s[i..].starts_with("*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return Some(i);
            }
        } else {
            i += s[i..].chars().next()?.len_utf8();
        }
    }
    None
}

/// The `$tag$` opening `s`, if it is one (`$1` is a parameter, not a tag).
fn dollar_tag(s: &str) -> Option<&str> {
    let body = &s[1..];
    let end = body.find('$')?;
    let tag = &body[..end];
    let valid = tag.is_empty()
        || (tag.starts_with(|c: char| c.is_alphabetic() || c == '_')
            && tag.chars().all(|c| c.is_alphanumeric() || c == '_'));
    valid.then(|| &s[..end + 2])
}

/// Whether `text` has anything besides whitespace and comments.
fn has_code(text: &str, dialect: Dialect) -> bool {
    let mysql = dialect == Dialect::MySql;
    let mut s = text.trim_start();
    while !s.is_empty() {
        if s.starts_with("--") && (!mysql || s[2..].chars().next().is_none_or(char::is_whitespace))
            || (mysql && s.starts_with('#'))
        {
            s = s.find('\n').map_or("", |i| &s[i..]);
        } else if s.starts_with("/*") && !s.starts_with("/*!") {
            s = block_comment(s, !mysql).map_or("", |n| &s[n..]);
        } else {
            return true;
        }
        s = s.trim_start();
    }
    false
}
