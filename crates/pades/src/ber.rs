//! BER to DER normalisation of CMS blobs: many real-world signers write the outer CMS layers
//! with indefinite lengths (BER), which the strict `der` decoder refuses. Indefinite lengths
//! become definite and constructed OCTET STRINGs become primitive; nothing else changes (the
//! signed attributes and certificates are DER already, as RFC 5652 requires).

/// Deepest nesting accepted (hostile input guard).
const MAX_DEPTH: usize = 64;

/// Converts one BER element at the start of `input` to DER. Returns the DER bytes and the
/// number of input bytes consumed, or `None` when the input is not valid BER.
pub fn to_der(input: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::with_capacity(input.len());
    let used = element(input, &mut out, 0)?;
    Some((out, used))
}

fn header(input: &[u8]) -> Option<(Vec<u8>, Option<usize>, usize)> {
    // returns (tag bytes, length or None for indefinite, header length)
    let first = *input.first()?;
    let mut i = 1;
    if first & 0x1f == 0x1f {
        loop {
            let b = *input.get(i)?;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            if i > 6 {
                return None;
            }
        }
    }
    let tag = input[..i].to_vec();
    let l = *input.get(i)?;
    i += 1;
    if l == 0x80 {
        return Some((tag, None, i));
    }
    if l < 0x80 {
        return Some((tag, Some(l as usize), i));
    }
    let n = (l & 0x7f) as usize;
    if n > 4 {
        return None;
    }
    let mut len = 0usize;
    for _ in 0..n {
        len = (len << 8) | *input.get(i)? as usize;
        i += 1;
    }
    Some((tag, Some(len), i))
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn element(input: &[u8], out: &mut Vec<u8>, depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let (tag, len, hl) = header(input)?;
    let constructed = tag[0] & 0x20 != 0;
    if !constructed {
        let len = len?;
        let end = hl.checked_add(len)?;
        let content = input.get(hl..end)?;
        out.extend_from_slice(&tag);
        push_len(out, len);
        out.extend_from_slice(content);
        return Some(end);
    }
    // children
    let mut body = Vec::new();
    let mut pos = hl;
    match len {
        Some(len) => {
            let end = hl.checked_add(len)?;
            if end > input.len() {
                return None;
            }
            while pos < end {
                pos += element(&input[pos..end], &mut body, depth + 1)?;
            }
        }
        None => loop {
            if input.get(pos..pos + 2)? == [0, 0] {
                pos += 2;
                break;
            }
            pos += element(&input[pos..], &mut body, depth + 1)?;
        },
    }
    if tag == [0x24] {
        // constructed OCTET STRING: concatenate the (now DER) primitive segments
        let mut data = Vec::new();
        let mut i = 0;
        while i < body.len() {
            let (_, l, h) = header(&body[i..])?;
            let l = l?;
            data.extend_from_slice(body.get(i + h..i + h + l)?);
            i += h + l;
        }
        out.push(0x04);
        push_len(out, data.len());
        out.extend_from_slice(&data);
    } else {
        out.extend_from_slice(&tag);
        push_len(out, body.len());
        out.extend_from_slice(&body);
    }
    Some(pos)
}

#[cfg(test)]
mod tests {
    use super::to_der;

    #[test]
    fn indefinite_lengths_become_definite() {
        // SEQUENCE (indef) { INTEGER 5, OCTET STRING (constructed, indef) { "ab", "c" } }
        let ber = [
            0x30, 0x80, 0x02, 0x01, 0x05, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c',
            0x00, 0x00, 0x00, 0x00, 0xff,
        ];
        let (der, used) = to_der(&ber).expect("valid BER");
        assert_eq!(used, ber.len() - 1);
        assert_eq!(
            der,
            [0x30, 0x08, 0x02, 0x01, 0x05, 0x04, 0x03, b'a', b'b', b'c']
        );
    }

    #[test]
    fn garbage_is_refused_without_panic() {
        assert!(to_der(&[0x30, 0x80, 0x02]).is_none());
        assert!(to_der(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(to_der(&[]).is_none());
    }
}
