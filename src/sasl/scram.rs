//! SCRAM (RFC 5802, RFC 7677) message parsing and proof verification, server side.

use std::sync::Arc;

use base64::prelude::*;

use super::credentials::{HashBytes, KeyedMacs, ScramHash, ScramKeys, ct_eq};
use super::{ChannelBindingType, SaslFailure};

/// Whether `c` may appear in a SCRAM nonce (`printable` in RFC 5802 §7).
pub(crate) fn is_nonce_char(c: char) -> bool {
    matches!(c, '\x21'..='\x7e') && c != ','
}

/// The channel-binding flag of a gs2 header (RFC 5802 §7, `gs2-cbind-flag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gs2Flag {
    /// `n`: the client does not support channel binding.
    No,
    /// `y`: the client supports it but thinks the server does not.
    ClientSupports,
    /// `p=<name>`: the client binds to this type (`None`: a name we do
    /// not know).
    Binding(Option<ChannelBindingType>),
}

/// A parsed client-first message.
#[derive(Clone)]
pub(crate) struct ClientFirst {
    /// The gs2 channel-binding flag.
    pub flag: Gs2Flag,
    /// The channel-binding data the client must echo in client-final
    /// (after the gs2 header), set by the exchange once it accepts `p=`.
    pub binding: Option<Vec<u8>>,
    /// The whole message, verbatim: `gs2-header` then
    /// `client-first-message-bare`.
    message: String,
    /// Where `client-first-message-bare` starts in `message`.
    bare_start: usize,
    /// Where the client's nonce is in `message`.
    nonce: core::ops::Range<usize>,
    /// Decoded authorization identity from `a=`, if any.
    pub authzid: Option<String>,
    /// Decoded authentication identity, before SASLprep.
    pub authcid: String,
    /// SASLprepped authentication identity.
    pub username: String,
}

impl ClientFirst {
    /// `gs2-header`, including its trailing comma (e.g. `n,,`).
    #[cfg(test)]
    pub(crate) fn gs2_header(&self) -> &str {
        self.message.get(..self.bare_start).unwrap_or_default()
    }

    /// `client-first-message-bare`, verbatim.
    #[cfg(test)]
    pub(crate) fn client_first_bare(&self) -> &str {
        self.message.get(self.bare_start..).unwrap_or_default()
    }

    /// The client's nonce.
    pub(crate) fn client_nonce(&self) -> &str {
        self.message.get(self.nonce.clone()).unwrap_or_default()
    }
}

/// Decodes a `saslname` (`=2C` → `,`, `=3D` → `=`). Any other `=` is an error.
fn decode_saslname(name: &str) -> Result<String, SaslFailure> {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match c {
            '=' => match (chars.next(), chars.next()) {
                (Some('2'), Some('C')) => out.push(','),
                (Some('3'), Some('D')) => out.push('='),
                _ => return Err(SaslFailure::MalformedRequest),
            },
            ',' => return Err(SaslFailure::MalformedRequest),
            c => out.push(c),
        }
    }
    if out.is_empty() {
        return Err(SaslFailure::MalformedRequest);
    }
    Ok(out)
}

/// Parses a client-first message. The gs2 flag is returned, not judged
/// (that depends on the mechanism and the connection). Mandatory extensions
/// (`m=`), a badly formed channel-binding name and any syntax, UTF-8 or
/// SASLprep problem are `MalformedRequest`.
pub(crate) fn parse_client_first(message: &[u8]) -> Result<ClientFirst, SaslFailure> {
    const MALFORMED: SaslFailure = SaslFailure::MalformedRequest;
    let text = core::str::from_utf8(message).map_err(|_| MALFORMED)?;
    let (flag, rest) = text.split_once(',').ok_or(MALFORMED)?;
    let flag = match flag {
        "n" => Gs2Flag::No,
        "y" => Gs2Flag::ClientSupports,
        _ => {
            let name = flag.strip_prefix("p=").ok_or(MALFORMED)?;
            // cb-name = 1*(ALPHA / DIGIT / "." / "-")
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            {
                return Err(MALFORMED);
            }
            Gs2Flag::Binding(ChannelBindingType::from_name(name))
        }
    };
    let (authz, bare) = rest.split_once(',').ok_or(MALFORMED)?;
    let authzid = if authz.is_empty() {
        None
    } else {
        Some(decode_saslname(authz.strip_prefix("a=").ok_or(MALFORMED)?)?)
    };
    let bare_start = text.len() - bare.len();

    let mut attrs = bare.split(',');
    let user_attr = attrs.next().ok_or(MALFORMED)?;
    if user_attr.starts_with("m=") {
        return Err(MALFORMED);
    }
    let authcid = decode_saslname(user_attr.strip_prefix("n=").ok_or(MALFORMED)?)?;
    let client_nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or(MALFORMED)?;
    if client_nonce.is_empty() || !client_nonce.chars().all(is_nonce_char) {
        return Err(MALFORMED);
    }
    // Optional extensions may follow; each must at least look like `x=...`.
    for ext in attrs {
        let mut chars = ext.chars();
        if !(chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.next() == Some('=')) {
            return Err(MALFORMED);
        }
    }
    let username = stringprep::saslprep(&authcid)
        .map_err(|_| MALFORMED)?
        .into_owned();
    if username.is_empty() {
        return Err(MALFORMED);
    }
    // `<gs2-header><user_attr>,r=<nonce>`
    let nonce_start = bare_start + user_attr.len() + ",r=".len();
    Ok(ClientFirst {
        flag,
        binding: None,
        message: text.to_owned(),
        bare_start,
        nonce: nonce_start..nonce_start + client_nonce.len(),
        authzid,
        authcid,
        username,
    })
}

/// State kept between server-first and client-final.
#[derive(Clone)]
pub(crate) struct Pending {
    pub hash: ScramHash,
    /// The client-first message (`gs2-header` and
    /// `client-first-message-bare`), verbatim.
    client_first: String,
    /// Where `client-first-message-bare` starts in `client_first`.
    bare_start: usize,
    /// With channel binding: the gs2 header followed by the binding data,
    /// whose base64 the client-final `c=` must be.
    cbind_input: Option<Vec<u8>>,
    /// `r=<combined nonce>,s=<salt>,i=<iterations>`.
    pub server_first: String,
    stored_key: HashBytes,
    /// HMACs keyed with `StoredKey` and `ServerKey`.
    macs: Arc<KeyedMacs>,
    pub username: String,
}

/// Longest base64 `p=` value decoded without allocating (a proof is 28 or
/// 44 characters; anything longer is refused anyway).
const PROOF_B64_INLINE: usize = 88;

impl Pending {
    /// Builds the server-first message for `first` using the stored `keys`
    /// (`None` only if the keys cannot key an HMAC, which never happens).
    pub(crate) fn new(
        hash: ScramHash,
        first: ClientFirst,
        server_nonce: &str,
        keys: &ScramKeys,
    ) -> Option<Self> {
        let macs = keys.keyed_macs(hash)?;
        let client_nonce = first.client_nonce();
        let salt_len = base64::encoded_len(keys.salt.len(), true).unwrap_or(0);
        let mut server_first =
            String::with_capacity(2 + client_nonce.len() + server_nonce.len() + 3 + salt_len + 13);
        server_first.push_str("r=");
        server_first.push_str(client_nonce);
        server_first.push_str(server_nonce);
        server_first.push_str(",s=");
        BASE64_STANDARD.encode_string(&keys.salt, &mut server_first);
        server_first.push_str(",i=");
        push_decimal(&mut server_first, keys.iterations.max(1));
        let cbind_input = first.binding.map(|data| {
            let header = first.message.as_bytes().get(..first.bare_start);
            let mut input = header.unwrap_or_default().to_vec();
            input.extend_from_slice(&data);
            input
        });
        Some(Pending {
            hash,
            cbind_input,
            client_first: first.message,
            bare_start: first.bare_start,
            server_first,
            stored_key: HashBytes::new(&keys.stored_key),
            macs,
            username: first.username,
        })
    }

    fn gs2_header(&self) -> &[u8] {
        self.client_first
            .as_bytes()
            .get(..self.bare_start)
            .unwrap_or_default()
    }

    fn client_first_bare(&self) -> &[u8] {
        self.client_first
            .as_bytes()
            .get(self.bare_start..)
            .unwrap_or_default()
    }

    /// `<client nonce><server nonce>`, from `server_first`.
    fn combined_nonce(&self) -> &str {
        let rest = self.server_first.get(2..).unwrap_or_default();
        rest.split_once(',').map_or(rest, |(nonce, _)| nonce)
    }

    /// Checks a client-final message and returns the server-final message
    /// (`v=<base64 ServerSignature>`).
    ///
    /// Bad syntax, a channel-binding value other than the base64 gs2 header
    /// (without channel binding), or a nonce mismatch is `MalformedRequest`;
    /// a wrong proof or, with channel binding, a `c=` other than the base64
    /// of the gs2 header and the binding data is `NotAuthorized`.
    pub(crate) fn verify_client_final(&self, message: &[u8]) -> Result<ServerFinal, SaslFailure> {
        const MALFORMED: SaslFailure = SaslFailure::MalformedRequest;
        let text = core::str::from_utf8(message).map_err(|_| MALFORMED)?;
        let (without_proof, proof_b64) = text.rsplit_once(",p=").ok_or(MALFORMED)?;
        if proof_b64.contains(',') {
            return Err(MALFORMED);
        }
        let mut attrs = without_proof.split(',');
        let cbind = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(MALFORMED)?;
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(MALFORMED)?;
        match &self.cbind_input {
            Some(input) if !is_base64_of(cbind.as_bytes(), input) => {
                return Err(SaslFailure::NotAuthorized);
            }
            None if !is_base64_of(cbind.as_bytes(), self.gs2_header()) => return Err(MALFORMED),
            _ => {}
        }
        if nonce != self.combined_nonce() {
            return Err(MALFORMED);
        }
        let mut inline = [0u8; PROOF_B64_INLINE / 4 * 3];
        let proof_len;
        let heap;
        let proof: &[u8] = if proof_b64.len() <= PROOF_B64_INLINE {
            proof_len = BASE64_STANDARD
                .decode_slice(proof_b64, &mut inline)
                .map_err(|_| MALFORMED)?;
            inline.get(..proof_len).unwrap_or_default()
        } else {
            heap = BASE64_STANDARD.decode(proof_b64).map_err(|_| MALFORMED)?;
            &heap
        };
        if proof.len() != self.hash.output_len() {
            return Err(SaslFailure::NotAuthorized);
        }

        // AuthMessage = client-first-message-bare "," server-first-message ","
        //               client-final-message-without-proof
        let auth_message: [&[u8]; 5] = [
            self.client_first_bare(),
            b",",
            self.server_first.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        let client_signature = self.macs.client_signature(&auth_message);
        let mut client_key = [0u8; HashBytes::MAX];
        for ((k, p), s) in client_key
            .iter_mut()
            .zip(proof)
            .zip(client_signature.as_slice())
        {
            *k = p ^ s;
        }
        let client_key = client_key.get(..proof.len()).unwrap_or_default();
        if !ct_eq(
            self.hash.digest_inline(client_key).as_slice(),
            self.stored_key.as_slice(),
        ) {
            return Err(SaslFailure::NotAuthorized);
        }
        let server_signature = self.macs.server_signature(&auth_message);
        Ok(ServerFinal::new(server_signature.as_slice()))
    }
}

/// A SCRAM server-final message, `v=<base64 ServerSignature>`, held inline.
#[derive(Clone, Copy)]
pub(crate) struct ServerFinal {
    bytes: [u8; ServerFinal::MAX],
    len: usize,
}

impl ServerFinal {
    /// `v=` and the base64 of the longest signature (SHA-256).
    const MAX: usize = 2 + 4 * HashBytes::MAX.div_ceil(3);

    fn new(signature: &[u8]) -> Self {
        let mut bytes = [0u8; Self::MAX];
        bytes[0] = b'v';
        bytes[1] = b'=';
        let len = bytes
            .get_mut(2..)
            .and_then(|tail| BASE64_STANDARD.encode_slice(signature, tail).ok())
            .map_or(2, |n| n + 2);
        ServerFinal { bytes, len }
    }

    /// The message.
    pub(crate) fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// Whether `encoded` is the padded standard base64 encoding of `raw`,
/// without allocating.
fn is_base64_of(encoded: &[u8], raw: &[u8]) -> bool {
    // 48 raw bytes encode to exactly 64 characters (no padding), so chunk
    // encodings concatenate to the encoding of the whole.
    const RAW: usize = 48;
    if base64::encoded_len(raw.len(), true) != Some(encoded.len()) {
        return false;
    }
    let mut buf = [0u8; RAW / 3 * 4];
    let mut rest = encoded;
    for chunk in raw.chunks(RAW) {
        let Ok(n) = BASE64_STANDARD.encode_slice(chunk, &mut buf) else {
            return false;
        };
        let (head, tail) = rest.split_at(n.min(rest.len()));
        if buf.get(..n) != Some(head) {
            return false;
        }
        rest = tail;
    }
    rest.is_empty()
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in digits.get(i..).unwrap_or_default() {
        out.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saslname_decoding() {
        assert_eq!(decode_saslname("a=2Cb=3Dc").as_deref(), Ok("a,b=c"));
        for bad in ["", "a=", "a=2", "a=2c", "a=3d", "a=41", "=", "a,b"] {
            assert_eq!(
                decode_saslname(bad),
                Err(SaslFailure::MalformedRequest),
                "{bad}"
            );
        }
    }

    #[test]
    fn base64_comparison() {
        for len in [0, 1, 2, 3, 47, 48, 49, 95, 96, 97, 200] {
            let raw: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let encoded = BASE64_STANDARD.encode(&raw);
            assert!(is_base64_of(encoded.as_bytes(), &raw), "{len}");
            let mut wrong = encoded.clone().into_bytes();
            if let Some(last) = wrong.first_mut() {
                *last = if *last == b'A' { b'B' } else { b'A' };
                assert!(!is_base64_of(&wrong, &raw), "{len}");
            }
            assert!(!is_base64_of(format!("{encoded}AAAA").as_bytes(), &raw));
            let unpadded = encoded.trim_end_matches('=');
            if unpadded.len() != encoded.len() {
                assert!(!is_base64_of(unpadded.as_bytes(), &raw));
            }
        }
    }

    #[test]
    fn decimal() {
        for n in [0, 1, 9, 10, 4096, 65_535, u32::MAX] {
            let mut s = String::from("i=");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("i={n}"));
        }
    }

    #[test]
    fn client_first_parsing() {
        let cf = parse_client_first(b"n,,n=user,r=abc").unwrap();
        assert_eq!(cf.gs2_header(), "n,,");
        assert_eq!(cf.authzid, None);
        assert_eq!(cf.username, "user");
        assert_eq!(cf.client_first_bare(), "n=user,r=abc");
        assert_eq!(cf.client_nonce(), "abc");

        let cf = parse_client_first(b"y,a=us=3Der,n=us=2Cer,r=x,e=ext").unwrap();
        assert_eq!(cf.gs2_header(), "y,a=us=3Der,");
        assert_eq!(cf.authzid.as_deref(), Some("us=er"));
        assert_eq!(cf.authcid, "us,er");
        assert_eq!(cf.client_first_bare(), "n=us=2Cer,r=x,e=ext");
        assert_eq!(cf.flag, Gs2Flag::ClientSupports);

        for (header, flag) in [
            ("p=tls-exporter", Some(ChannelBindingType::TlsExporter)),
            (
                "p=tls-server-end-point",
                Some(ChannelBindingType::TlsServerEndPoint),
            ),
            ("p=tls-unique", None),
        ] {
            let cf = parse_client_first(format!("{header},,n=user,r=abc").as_bytes()).unwrap();
            assert_eq!(cf.flag, Gs2Flag::Binding(flag), "{header}");
            assert_eq!(cf.gs2_header(), format!("{header},,"));
        }
    }

    #[test]
    fn client_first_rejects() {
        for bad in [
            &b""[..],
            b"n",
            b"n,",
            b"n,,",
            b"p=,,n=user,r=abc",
            b"p=tls_unique,,n=user,r=abc",
            b"q=tls-unique,,n=user,r=abc",
            b"x,,n=user,r=abc",
            b"N,,n=user,r=abc",
            b"n,b=x,n=user,r=abc",
            b"n,a=,n=user,r=abc",
            b"n,a=b=,n=user,r=abc",
            b"n,,m=ext,n=user,r=abc",
            b"n,,n=,r=abc",
            b"n,,n=us=er,r=abc",
            b"n,,n=user,r=",
            b"n,,n=user",
            b"n,,r=abc,n=user",
            b"n,,n=user,r=a\x7fb",
            b"n,,n=user,r=a b",
            b"n,,n=us\xffer,r=abc",
            b"n,,n=user,r=abc,",
            b"n,,n=user,r=abc,=x",
            b"n,,n=user,r=abc,ext",
            "n,,n=us\u{7}er,r=abc".as_bytes(),
        ] {
            assert!(
                matches!(parse_client_first(bad), Err(SaslFailure::MalformedRequest)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
