//! PEM blocks, found in text that may hold more (`openssl req -text`, a chain, comments), and
//! read as leniently as openssl reads them (RFC 7468 "lax"): base64 lines of any length (76 is
//! common, from tools that wrap like MIME), CRLF line ends, trailing spaces. The strict decoder
//! underneath wants 64-character lines, so each block is rewrapped first.

use std::borrow::Cow;

use x509_cert::Certificate;

/// The first PEM block whose label ends with `label` (`NEW CERTIFICATE REQUEST` and `EC PRIVATE
/// KEY` count; `""`: any label), without what surrounds it.
pub fn block<'a>(input: &'a [u8], label: &str) -> Option<&'a [u8]> {
    // On bytes, not text: anything may come before a block (the pem_keys fuzz target found
    // offsets shifted by a lossy UTF-8 copy).
    const BEGIN: &[u8] = b"-----BEGIN ";
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let suffix = format!("{label}-----");
    let mut from = 0;
    while let Some(i) = find(&input[from..], BEGIN) {
        let begin = from + i;
        let line_end = find(&input[begin..], b"\n").map_or(input.len(), |j| begin + j);
        let header = input[begin..line_end].trim_ascii_end();
        if header.len() >= BEGIN.len() + 5 && header.ends_with(suffix.as_bytes()) {
            let name = &header[BEGIN.len()..header.len() - 5];
            let footer = [b"-----END ", name, b"-----"].concat();
            let end = find(&input[line_end..], &footer)? + line_end + footer.len();
            return Some(&input[begin..end]);
        }
        from = line_end;
    }
    None
}

/// `input` with the base64 of every PEM block rewrapped to 64-character lines, `\n` line ends
/// and no trailing white space; text around the blocks kept as it is.
pub fn rewrapped(input: &[u8]) -> Cow<'_, [u8]> {
    let Ok(text) = std::str::from_utf8(input) else {
        return Cow::Borrowed(input);
    };
    let mut out = String::with_capacity(text.len());
    let mut body: Option<String> = None;
    for line in text.lines() {
        let line = line.trim_end();
        match &mut body {
            None => {
                out += line;
                out += "\n";
                if line.starts_with("-----BEGIN ") {
                    body = Some(String::new());
                }
            }
            Some(b64) if line.starts_with("-----END ") => {
                for chunk in b64.as_bytes().chunks(64) {
                    out += std::str::from_utf8(chunk).unwrap_or_default();
                    out += "\n";
                }
                out += line;
                out += "\n";
                body = None;
            }
            // Encapsulated headers (an encrypted key's Proc-Type) stay as they are.
            Some(b64) if line.contains(':') => {
                out += line;
                out += "\n";
                let _ = b64;
            }
            Some(b64) => b64.extend(line.chars().filter(|c| !c.is_whitespace())),
        }
    }
    if body.is_some() || out.as_bytes() == input {
        return Cow::Borrowed(input); // no end line: leave the error to the decoder
    }
    Cow::Owned(out.into_bytes())
}

/// Every certificate of a PEM bundle, read leniently.
pub fn certificates(input: &[u8]) -> x509_cert::der::Result<Vec<Certificate>> {
    Certificate::load_pem_chain(&rewrapped(input))
}

/// One PEM block's label and bytes, read leniently.
pub fn decode(block: &[u8]) -> x509_cert::der::Result<(String, Vec<u8>)> {
    let text = rewrapped(block);
    let (label, der) = x509_cert::der::pem::decode_vec(&text)?;
    Ok((label.to_string(), der))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // Bytes that are not text before a block do not hide it; "" finds any label.
        let mut odd = vec![0xff, 0xfe];
        odd.extend_from_slice(text);
        assert_eq!(block(&odd, ""), block(text, "CERTIFICATE"));
    }
}

#[cfg(test)]
mod lax {
    use super::*;

    /// A self-signed certificate, made by openssl.
    fn openssl_certificate() -> String {
        let scratch = crate::testing::Scratch::new("pem");
        let (cert, _) = crate::testing::ca(scratch.path(), "pem");
        String::from_utf8(cert).unwrap()
    }

    #[test]
    fn base64_lines_of_76_crlf_and_trailing_spaces_read_as_openssl_reads_them() {
        let pem = openssl_certificate();
        let strict = certificates(pem.as_bytes()).unwrap();
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        let wrapped: Vec<String> = body
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}  \r", std::str::from_utf8(c).unwrap()))
            .collect();
        let lax = format!(
            "-----BEGIN CERTIFICATE-----\r\n{}\n-----END CERTIFICATE-----\r\n",
            wrapped.join("\n")
        );
        assert!(
            Certificate::load_pem_chain(lax.as_bytes()).is_err(),
            "the strict decoder takes it"
        );
        assert_eq!(certificates(lax.as_bytes()).unwrap(), strict);
        let (label, der) = decode(lax.as_bytes()).unwrap();
        assert_eq!(label, "CERTIFICATE");
        assert_eq!(der, x509_cert::der::Encode::to_der(&strict[0]).unwrap());
    }
}
