//! One line per event on stderr, which the init scripts send to syslog; both camera programs log
//! through here. Never key material.
//!
//! Every message becomes exactly one line. Logged values often come from outside (a certificate
//! subject, a host name, a file name, a client's string), so control characters are escaped
//! visibly instead of written: a subject holding a newline cannot end the line and forge another
//! one ("camera-web: the admin password was set"), a carriage return or a terminal escape cannot
//! hide text, a bidirectional override cannot reorder it. The backslash is escaped too, so that
//! text which merely looks like an escape (`\n` typed by someone) cannot pass for one.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;

/// Logs an event.
pub fn info(message: &str) {
    write_line(&line("", message));
}

/// Logs something that went wrong but did not stop the program.
pub fn warn(message: &str) {
    write_line(&line("warning: ", message));
}

/// Writes one whole line with one `write` call, so lines from threads never interleave. A failed
/// write is dropped: no stderr must not stop the camera (`eprintln!` would panic).
fn write_line(line: &str) {
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `prefix`, the escaped message and a newline.
fn line(prefix: &str, message: &str) -> String {
    let escaped = escape(message);
    let mut line = String::with_capacity(prefix.len() + escaped.len() + 1);
    line.push_str(prefix);
    line.push_str(&escaped);
    line.push('\n');
    line
}

/// `message` with every character that could break or disguise a log line escaped: `\n`, `\r`,
/// `\t`, `\\`, other C0 controls, DEL and C1 controls as `\x..`, and line/paragraph separators and
/// bidirectional controls as `\u{....}`. Everything else, non-ASCII text included, is kept.
pub fn escape(message: &str) -> Cow<'_, str> {
    if !message.chars().any(needs_escape) {
        return Cow::Borrowed(message);
    }
    let mut out = String::with_capacity(message.len() + 8);
    for c in message.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x100 && needs_escape(c) => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`escape`] of at most the first `max_chars` characters of `text`, for outside text quoted in a
/// sentence (a server's error message, a name): a longer text is cut on a character boundary and
/// the cut marked with `...`. The limit counts characters of `text`, before escaping.
pub fn escape_bounded(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => {
            let mut out = escape(&text[..end]).into_owned();
            out.push_str("...");
            out
        }
        None => escape(text).into_owned(),
    }
}

/// Displays outside text with [`escape`] applied, for `format!` and error messages.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&escape(self.0))
    }
}

fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control() // C0, DEL, C1 (NEL U+0085 included)
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' // line and paragraph separators
                | '\u{061c}' | '\u{200e}' | '\u{200f}' // bidirectional marks
                | '\u{202a}'..='\u{202e}' // bidirectional embeddings and overrides
                | '\u{2066}'..='\u{2069}' // bidirectional isolates
        )
}

/// An error and its causes on one line: `what failed: why: why that`. A cause whose text the line
/// already holds (an error that repeats its source in its own message) is not repeated.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_kept_as_it_is() {
        assert!(matches!(escape("camera-web: listening on https://[::]:443"), Cow::Borrowed(_)));
        assert_eq!(escape("Kamera Eingang — 東京 ✓"), "Kamera Eingang — 東京 ✓");
    }

    /// A certificate subject holding a newline must not write a forged line.
    #[test]
    fn a_subject_with_a_newline_cannot_forge_a_line() {
        let subject = "CN=cam\ncamera-web: the admin password was set";
        let written = line("", &format!("camera-web: serving the uploaded certificate ({subject})"));
        assert_eq!(written.matches('\n').count(), 1, "{written:?}");
        assert!(written.ends_with('\n'));
        assert!(!written.lines().any(|l| l.starts_with("camera-web: the admin password was set")), "{written:?}");
        assert_eq!(
            written,
            "camera-web: serving the uploaded certificate (CN=cam\\ncamera-web: the admin password was set)\n"
        );
        let warning = line("warning: ", "a\r\nb");
        assert_eq!(warning, "warning: a\\r\\nb\n");
    }

    #[test]
    fn every_control_character_is_escaped_visibly() {
        let cases = [
            ("\n", "\\n"),
            ("\r", "\\r"),
            ("\t", "\\t"),
            ("\0", "\\x00"),
            ("\u{1b}[2J", "\\x1b[2J"),
            ("\u{7f}", "\\x7f"),
            ("\u{85}", "\\x85"), // NEL, a C1 control some readers take as a line end
            ("\u{9b}", "\\x9b"), // CSI, the C1 form of ESC [
            ("\u{2028}", "\\u{2028}"),
            ("\u{2029}", "\\u{2029}"),
            ("\u{202e}", "\\u{202e}"), // right-to-left override
            ("\u{2066}", "\\u{2066}"),
            ("\\n", "\\\\n"), // a typed backslash-n is not an escaped newline
        ];
        for (raw, want) in cases {
            assert_eq!(escape(raw), want, "{raw:?}");
        }
        // Every code point: what remains after escaping holds no line break and no control.
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let escaped = escape(c.encode_utf8(&mut [0; 4])).into_owned();
            for d in escaped.chars() {
                assert!(!d.is_control() && d != '\u{2028}' && d != '\u{2029}', "{c:?} -> {escaped:?}");
            }
        }
    }

    #[test]
    fn bounded_text_is_cut_on_a_character_and_marked() {
        assert_eq!(escape_bounded("short", 5), "short");
        assert_eq!(escape_bounded("longer text", 6), "longer...");
        // Multi-byte characters are never split.
        assert_eq!(escape_bounded("東京東京", 3), "東京東...");
        // Escaping happens after the cut and is never cut itself.
        assert_eq!(escape_bounded("a\u{202e}b\nc", 3), "a\\u{202e}b...");
        assert_eq!(escape_bounded("\u{1b}[2J", 100), "\\x1b[2J");
        assert_eq!(escape_bounded("", 0), "");
        assert_eq!(escape_bounded("x", 0), "...");
        assert_eq!(Escaped("cam\n\u{2066}").to_string(), "cam\\n\\u{2066}");
    }

    #[test]
    fn errors_are_one_line_with_their_causes() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("cannot write /var/lib/camera-https/clock")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("No space left on device"));
        assert_eq!(chain(&e), "cannot write /var/lib/camera-https/clock: No space left on device");
        // A cause already in the message is not repeated.
        #[derive(Debug)]
        struct Repeats(std::io::Error);
        impl std::fmt::Display for Repeats {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot read ca.key: {}", self.0)
            }
        }
        impl std::error::Error for Repeats {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Repeats(std::io::Error::other("Permission denied"));
        assert_eq!(chain(&e), "cannot read ca.key: Permission denied");
    }
}
