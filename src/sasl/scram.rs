//! SCRAM (RFC 5802, RFC 7677) message parsing and proof verification, server side.

use base64::prelude::*;

use super::SaslFailure;
use super::credentials::{ScramHash, ScramKeys, ct_eq};

/// Whether `c` may appear in a SCRAM nonce (`printable` in RFC 5802 §7).
pub(crate) fn is_nonce_char(c: char) -> bool {
    matches!(c, '\x21'..='\x7e') && c != ','
}

/// A parsed client-first message.
#[derive(Clone)]
pub(crate) struct ClientFirst {
    /// `gs2-header`, including its trailing comma (e.g. `n,,`).
    pub gs2_header: String,
    /// Decoded authorization identity from `a=`, if any.
    pub authzid: Option<String>,
    /// Decoded authentication identity, before SASLprep.
    pub authcid: String,
    /// SASLprepped authentication identity.
    pub username: String,
    /// `client-first-message-bare`, verbatim.
    pub client_first_bare: String,
    /// The client's nonce.
    pub client_nonce: String,
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

/// Parses a client-first message. Channel binding (`p=`), mandatory extensions
/// (`m=`) and any syntax, UTF-8 or SASLprep problem are `MalformedRequest`.
pub(crate) fn parse_client_first(message: &[u8]) -> Result<ClientFirst, SaslFailure> {
    const MALFORMED: SaslFailure = SaslFailure::MalformedRequest;
    let text = core::str::from_utf8(message).map_err(|_| MALFORMED)?;
    let (flag, rest) = text.split_once(',').ok_or(MALFORMED)?;
    // We never offer -PLUS, so `y` (client supports binding, thinks we do not) is fine.
    if flag != "n" && flag != "y" {
        return Err(MALFORMED);
    }
    let (authz, bare) = rest.split_once(',').ok_or(MALFORMED)?;
    let authzid = if authz.is_empty() {
        None
    } else {
        Some(decode_saslname(authz.strip_prefix("a=").ok_or(MALFORMED)?)?)
    };
    let gs2_header = text.strip_suffix(bare).ok_or(MALFORMED)?;

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
    Ok(ClientFirst {
        gs2_header: gs2_header.to_owned(),
        authzid,
        authcid,
        username,
        client_first_bare: bare.to_owned(),
        client_nonce: client_nonce.to_owned(),
    })
}

/// State kept between server-first and client-final.
#[derive(Clone)]
pub(crate) struct Pending {
    pub hash: ScramHash,
    pub gs2_header: String,
    pub client_first_bare: String,
    pub server_first: String,
    pub combined_nonce: String,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub username: String,
}

impl Pending {
    /// Builds the server-first message for `first` using the stored `keys`.
    pub(crate) fn new(
        hash: ScramHash,
        first: ClientFirst,
        server_nonce: &str,
        keys: &ScramKeys,
    ) -> Self {
        let combined_nonce = format!("{}{}", first.client_nonce, server_nonce);
        let server_first = format!(
            "r={},s={},i={}",
            combined_nonce,
            BASE64_STANDARD.encode(&keys.salt),
            keys.iterations.max(1)
        );
        Pending {
            hash,
            gs2_header: first.gs2_header,
            client_first_bare: first.client_first_bare,
            server_first,
            combined_nonce,
            stored_key: keys.stored_key.clone(),
            server_key: keys.server_key.clone(),
            username: first.username,
        }
    }

    /// Checks a client-final message and returns the server-final message
    /// (`v=<base64 ServerSignature>`).
    ///
    /// Bad syntax, a channel-binding value other than the base64 gs2 header, or a
    /// nonce mismatch is `MalformedRequest`; a wrong proof is `NotAuthorized`.
    pub(crate) fn verify_client_final(&self, message: &[u8]) -> Result<Vec<u8>, SaslFailure> {
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
        if cbind != BASE64_STANDARD.encode(self.gs2_header.as_bytes()) {
            return Err(MALFORMED);
        }
        if nonce != self.combined_nonce {
            return Err(MALFORMED);
        }
        let proof = BASE64_STANDARD.decode(proof_b64).map_err(|_| MALFORMED)?;
        if proof.len() != self.hash.output_len() {
            return Err(SaslFailure::NotAuthorized);
        }

        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let client_signature = self.hash.hmac(&self.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_signature.iter())
            .map(|(p, s)| p ^ s)
            .collect();
        if !ct_eq(&self.hash.digest(&client_key), &self.stored_key) {
            return Err(SaslFailure::NotAuthorized);
        }
        let server_signature = self.hash.hmac(&self.server_key, auth_message.as_bytes());
        Ok(format!("v={}", BASE64_STANDARD.encode(server_signature)).into_bytes())
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
    fn client_first_parsing() {
        let cf = parse_client_first(b"n,,n=user,r=abc").unwrap();
        assert_eq!(cf.gs2_header, "n,,");
        assert_eq!(cf.authzid, None);
        assert_eq!(cf.username, "user");
        assert_eq!(cf.client_first_bare, "n=user,r=abc");
        assert_eq!(cf.client_nonce, "abc");

        let cf = parse_client_first(b"y,a=us=3Der,n=us=2Cer,r=x,e=ext").unwrap();
        assert_eq!(cf.gs2_header, "y,a=us=3Der,");
        assert_eq!(cf.authzid.as_deref(), Some("us=er"));
        assert_eq!(cf.authcid, "us,er");
        assert_eq!(cf.client_first_bare, "n=us=2Cer,r=x,e=ext");
    }

    #[test]
    fn client_first_rejects() {
        for bad in [
            &b""[..],
            b"n",
            b"n,",
            b"n,,",
            b"p=tls-unique,,n=user,r=abc",
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
