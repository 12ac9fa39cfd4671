//! What may reach a terminal. Names, groups, reasons and messages come from the cluster and
//! from requests other people made; printed raw, an escape sequence could rewrite the line, a
//! newline forge a table row, a right-to-left override reverse a name. Every line we print to
//! a terminal goes through [`printable`]; JSON and YAML output escape on their own.

use std::borrow::Cow;

/// Whether `c` can change how a terminal shows the text around it: a control character
/// (C0, DEL, C1) or a bidirectional formatting character.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every unsafe character written as an escape (`\u{1b}`), the rest as is.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match is_unsafe(c) {
                true => c.escape_unicode().to_string(),
                false => c.to_string(),
            })
            .collect(),
    )
}

/// `printable`, for text made of lines: each line escaped, the line breaks kept.
pub fn printable_lines(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| match line.strip_suffix('\n') {
            Some(line) => format!("{}\n", printable(line)),
            None => printable(line).into_owned(),
        })
        .collect()
}

/// `jane.csr` as is, `my file.csr` as `'my file.csr'`: safe to paste into a shell.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_rewrites_and_reversals_but_not_names() {
        assert_eq!(printable("jane.doe@example.com"), "jane.doe@example.com");
        assert_eq!(printable("Zoë 山田"), "Zoë 山田");
        assert_eq!(printable("eve\x1b[2Kadmin"), "eve\\u{1b}[2Kadmin");
        assert_eq!(printable("a\nb\r"), "a\\u{a}b\\u{d}");
        assert_eq!(printable("\u{202E}nimda"), "\\u{202e}nimda");
        assert_eq!(printable("x\u{2066}y\u{9b}"), "x\\u{2066}y\\u{9b}");
        assert_eq!(printable_lines("ok\nbad\x07\n"), "ok\nbad\\u{7}\n");
    }
}
