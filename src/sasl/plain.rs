//! PLAIN (RFC 4616) message parsing.

use zeroize::Zeroize;

use super::{Password, SaslFailure};

/// A parsed PLAIN message: `[authzid] NUL authcid NUL passwd`.
pub(crate) struct PlainMessage {
    /// The authorization identity, `None` if empty.
    pub authzid: Option<String>,
    /// The raw authentication identity, as sent.
    pub authcid: String,
    /// The SASLprepped authentication identity.
    pub username: String,
    /// The password, as sent (SASLprep is applied when it is checked). Wiped on drop.
    pub password: Password,
}

/// Parses a PLAIN message. Any format, UTF-8 or SASLprep problem, or an empty
/// authcid or password, is `MalformedRequest`.
///
/// The password is copied once, into the returned [`Password`]; the SASLprepped
/// copy made to validate it is wiped. Wiping `message` is the caller's job.
pub(crate) fn parse(message: &[u8]) -> Result<PlainMessage, SaslFailure> {
    let mut parts = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslFailure::MalformedRequest);
    };
    let utf8 = |b: &[u8]| {
        core::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| SaslFailure::MalformedRequest)
    };
    let authzid = utf8(authzid)?;
    let authcid = utf8(authcid)?;
    let password = core::str::from_utf8(password).map_err(|_| SaslFailure::MalformedRequest)?;
    if authcid.is_empty() || password.is_empty() {
        return Err(SaslFailure::MalformedRequest);
    }
    let username = stringprep::saslprep(&authcid)
        .map_err(|_| SaslFailure::MalformedRequest)?
        .into_owned();
    let prepped_empty = match stringprep::saslprep(password) {
        Err(_) => return Err(SaslFailure::MalformedRequest),
        Ok(std::borrow::Cow::Borrowed(prepped)) => prepped.is_empty(),
        Ok(std::borrow::Cow::Owned(mut prepped)) => {
            let empty = prepped.is_empty();
            prepped.zeroize();
            empty
        }
    };
    if username.is_empty() || prepped_empty {
        return Err(SaslFailure::MalformedRequest);
    }
    let password = Password::new(password.to_owned());
    Ok(PlainMessage {
        authzid: (!authzid.is_empty()).then_some(authzid),
        authcid,
        username,
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let m = parse(b"\0user\0pencil").unwrap();
        assert_eq!(m.authzid, None);
        assert_eq!(m.username, "user");
        assert_eq!(m.password.expose(), "pencil");
        let m = parse(b"user@example.com\0user\0pencil").unwrap();
        assert_eq!(m.authzid.as_deref(), Some("user@example.com"));
        assert_eq!(m.authcid, "user");
        // SASLprep maps U+00A0 to SPACE.
        let m = parse("\0a\u{A0}b\0pw".as_bytes()).unwrap();
        assert_eq!(m.username, "a b");
        assert_eq!(m.authcid, "a\u{A0}b");
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in [
            &b""[..],
            b"user",
            b"\0user",
            b"\0\0pw",
            b"\0user\0",
            b"\0user\0pw\0",
            b"a\0b\0c\0d",
            b"\0us\xffer\0pw",
            b"\0user\0p\xffw",
            b"\xff\0user\0pw",
            "\0us\u{7}er\0pw".as_bytes(),
            "\0user\0p\u{7}w".as_bytes(),
            "\0\u{AD}\0pw".as_bytes(),
            "\0user\0\u{AD}".as_bytes(),
        ] {
            assert_eq!(
                parse(bad).err(),
                Some(SaslFailure::MalformedRequest),
                "{bad:?}"
            );
        }
    }
}
