//! A password in transit, and the verdict on it.
//!
//! A PLAIN login hands the client's password to the embedder in
//! [`Request::VerifyPassword`](crate::Request::VerifyPassword), so that the
//! expensive check (PBKDF2 over the stored salt) runs wherever the embedder
//! likes, e.g. a thread pool, and never inside the core loop. [`Password`]
//! wipes its bytes when dropped and never prints them.

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::credentials::{Credentials, ct_eq};

/// A plaintext password as sent with SASL PLAIN (not yet SASLprepped).
///
/// The bytes are overwritten with zeros when the value is dropped (every clone
/// owns and wipes its own copy), and `Debug` prints `Password(<redacted>)`.
/// Equality is compared in constant time (the length is not secret).
#[derive(Clone, Default)]
pub struct Password(String);

impl Password {
    /// Takes ownership of `password`. The `String`'s buffer is wiped on drop;
    /// copies made before this call are the caller's to wipe.
    #[must_use]
    pub fn new(password: String) -> Self {
        Password(password)
    }

    /// The password text. Do not keep copies: they are not wiped.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the password is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Password::new(password)
    }
}

impl From<&str> for Password {
    fn from(password: &str) -> Self {
        Password::new(password.to_owned())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl PartialEq for Password {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for Password {}

impl Zeroize for Password {
    fn zeroize(&mut self) {
        // Wipes the whole allocation (spare capacity included) and empties it.
        self.0.zeroize();
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for Password {}

/// The verdict on a PLAIN password: the answer to
/// [`Request::VerifyPassword`](crate::Request::VerifyPassword), given with
/// [`Response::PasswordChecked`](crate::Response::PasswordChecked).
///
/// The core answers [`PasswordCheck::WrongPassword`] and
/// [`PasswordCheck::UnknownUser`] with the same SASL `<not-authorized/>` and
/// text, so a client cannot tell them apart; the distinction is for the
/// embedder's logs. [`PasswordCheck::from_credentials`] computes it from stored
/// [`Credentials`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PasswordCheck {
    /// The password is right and the account may log in: `<success/>`.
    Valid,
    /// The password is wrong (or no keys are stored to check it against):
    /// `<not-authorized/>`.
    WrongPassword,
    /// There is no such account: `<not-authorized/>`, exactly as for a wrong
    /// password.
    UnknownUser,
    /// The account exists but may not log in: `<account-disabled/>` (whether or
    /// not the password was right, as for SCRAM).
    AccountDisabled,
}

impl PasswordCheck {
    /// Checks `password` against an account's stored credentials (`None`: no
    /// such account), as [`MemoryStore`](crate::MemoryStore) does.
    ///
    /// This runs PBKDF2 with the stored iteration count (4096 by default, about
    /// a millisecond): call it from a thread pool (e.g. tokio's
    /// `spawn_blocking`), not from the task that drives the
    /// [`SessionManager`](crate::SessionManager). A disabled account is
    /// reported without deriving anything.
    #[must_use]
    pub fn from_credentials(credentials: Option<&Credentials>, password: &Password) -> Self {
        match credentials {
            None => PasswordCheck::UnknownUser,
            Some(credentials) => credentials.check_plain(password),
        }
    }

    /// Whether the login may proceed.
    #[must_use]
    pub fn is_valid(self) -> bool {
        self == PasswordCheck::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_password() {
        let pw = Password::from("hunter2");
        assert_eq!(format!("{pw:?}"), "Password(<redacted>)");
        assert_eq!(format!("{pw:#?}"), "Password(<redacted>)");
        assert_eq!(pw.expose(), "hunter2");
    }

    #[test]
    fn zeroize_wipes_and_empties() {
        let mut pw = Password::new(String::from("secret"));
        pw.zeroize();
        assert!(pw.is_empty());
        assert_eq!(pw.expose(), "");
    }

    #[test]
    fn equality() {
        assert_eq!(Password::from("a"), Password::from("a"));
        assert_ne!(Password::from("a"), Password::from("b"));
        assert_ne!(Password::from("a"), Password::from("ab"));
    }

    #[test]
    fn verdicts_from_credentials() {
        let creds = Credentials::from_password("right", b"salt", 2);
        let right = Password::from("right");
        let wrong = Password::from("wrong");
        assert_eq!(
            PasswordCheck::from_credentials(Some(&creds), &right),
            PasswordCheck::Valid
        );
        assert!(PasswordCheck::from_credentials(Some(&creds), &right).is_valid());
        assert_eq!(
            PasswordCheck::from_credentials(Some(&creds), &wrong),
            PasswordCheck::WrongPassword
        );
        assert_eq!(
            PasswordCheck::from_credentials(None, &right),
            PasswordCheck::UnknownUser
        );
        let mut disabled = creds.clone();
        disabled.disabled = true;
        assert_eq!(
            PasswordCheck::from_credentials(Some(&disabled), &right),
            PasswordCheck::AccountDisabled
        );
        assert_eq!(disabled.check_plain(&wrong), PasswordCheck::AccountDisabled);
        let no_keys = Credentials {
            sha1: None,
            sha256: None,
            disabled: false,
        };
        assert_eq!(no_keys.check_plain(&right), PasswordCheck::WrongPassword);
    }
}
