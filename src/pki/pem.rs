//! PEM blocks, found in text that may hold more (`openssl req -text`, a chain, comments).

/// The first PEM block whose label ends with `label` (`NEW CERTIFICATE REQUEST` and `EC PRIVATE
/// KEY` count), without what surrounds it.
pub fn block<'a>(input: &'a [u8], label: &str) -> Option<&'a [u8]> {
    let text = std::str::from_utf8(input).ok()?;
    let mut from = 0;
    while let Some(i) = text[from..].find("-----BEGIN ") {
        let begin = from + i;
        let line_end = text[begin..].find('\n').map_or(text.len(), |j| begin + j);
        let header = text[begin..line_end].trim_end();
        if header.ends_with(&format!("{label}-----")) {
            let name = &header["-----BEGIN ".len()..header.len() - 5];
            let footer = format!("-----END {name}-----");
            let end = text[line_end..].find(&footer)? + line_end + footer.len();
            return Some(&input[begin..end]);
        }
        from = line_end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::block;

    #[test]
    fn blocks_are_found_by_the_end_of_their_label_among_others() {
        let text = b"Certificate Request:\n  Data: ...\n-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n-----BEGIN NEW CERTIFICATE REQUEST-----\nBB==\n-----END NEW CERTIFICATE REQUEST-----\ntrailer\n";
        let found = block(text, "CERTIFICATE REQUEST").unwrap();
        assert_eq!(
            found,
            b"-----BEGIN NEW CERTIFICATE REQUEST-----\nBB==\n-----END NEW CERTIFICATE REQUEST-----"
        );
        assert_eq!(block(text, "PRIVATE KEY"), None);
        assert_eq!(
            block(
                b"-----BEGIN CERTIFICATE REQUEST-----\nno end\n",
                "CERTIFICATE REQUEST"
            ),
            None
        );
        assert_eq!(block(&[0xff, 0xfe], "CERTIFICATE"), None);
    }
}
