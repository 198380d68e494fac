//! [`AccountJid`], the one key that names an account in the [`Store`]
//! API and in every [`Request`].
//!
//! [`Store`]: crate::Store
//! [`Request`]: crate::Request

use std::fmt;
use std::str::FromStr;

use jid::{BareJid, DomainPart, NodePart};

/// The bare JID of an account, `user@host`: always with a localpart, never
/// with a resource, both parts normalised (nodeprep, nameprep, no trailing
/// dot on the domain).
///
/// Why a type of its own rather than two strings or a plain [`BareJid`]:
/// two `&str` arguments were passed as `(host, user)` in one place and
/// `(user, host)` in another, and a [`BareJid`] may lack a localpart (a
/// server's own JID), which is never an account. An `AccountJid` is built
/// only from a valid, normalised user name and domain, so a store can use it
/// as its key directly (it is `Eq + Ord + Hash`) or read
/// [`AccountJid::user`] and [`AccountJid::host`] for its own schema.
///
/// ```
/// use xmpp_session::AccountJid;
///
/// let a = AccountJid::new("Juliet", "Capulet.example.")?;
/// assert_eq!(a.user(), "juliet");
/// assert_eq!(a.host(), "capulet.example");
/// assert_eq!(a, "juliet@capulet.example".parse()?);
/// # Ok::<(), xmpp_session::jid::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountJid(BareJid);

impl AccountJid {
    /// The account `user@host`, both parts normalised. Fails when either is
    /// not valid in a JID (e.g. a user name with `@` or a space).
    pub fn new(user: &str, host: &str) -> Result<Self, jid::Error> {
        let node = NodePart::new(user)?;
        let domain = DomainPart::new(host)?;
        Ok(Self(BareJid::from_parts(Some(&node), &domain)))
    }

    /// The account of a bare JID, `None` when it has no localpart.
    pub fn from_bare(jid: BareJid) -> Option<Self> {
        jid.node().is_some().then_some(Self(jid))
    }

    /// For the core: a bare JID known to name a user. Should it lack a
    /// localpart, [`AccountJid::user`] is empty; nothing panics.
    pub(crate) fn from_user_jid(jid: &BareJid) -> Self {
        Self(jid.clone())
    }

    /// The (nodeprepped) user name.
    pub fn user(&self) -> &str {
        self.0.node().map(|n| n.as_str()).unwrap_or_default()
    }

    /// The (nameprepped) domain.
    pub fn host(&self) -> &str {
        self.0.domain().as_str()
    }

    /// The account as a [`BareJid`].
    pub fn as_bare(&self) -> &BareJid {
        &self.0
    }

    /// The account as an owned [`BareJid`].
    pub fn into_bare(self) -> BareJid {
        self.0
    }

    /// `user@host`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for AccountJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountJid({})", self.0.as_str())
    }
}

impl fmt::Display for AccountJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl FromStr for AccountJid {
    type Err = jid::Error;

    /// Parses `user@host`; a JID without a localpart or with a resource is
    /// refused.
    fn from_str(s: &str) -> Result<Self, jid::Error> {
        let jid = jid::Jid::new(s)?;
        if jid.resource().is_some() {
            return Err(jid::Error::ResourceInBareJid);
        }
        Self::from_bare(jid.into_bare()).ok_or(jid::Error::NodeEmpty)
    }
}

impl From<AccountJid> for BareJid {
    fn from(account: AccountJid) -> Self {
        account.0
    }
}

impl TryFrom<BareJid> for AccountJid {
    type Error = jid::Error;

    fn try_from(jid: BareJid) -> Result<Self, jid::Error> {
        Self::from_bare(jid).ok_or(jid::Error::NodeEmpty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_refuses() {
        let a = AccountJid::new("ROMEO", "Example.COM.").expect("valid");
        assert_eq!(a.as_str(), "romeo@example.com");
        assert!(AccountJid::new("a b", "example.com").is_err());
        assert!(AccountJid::new("", "example.com").is_err());
        assert!(AccountJid::new("a", "").is_err());
        assert!("example.com".parse::<AccountJid>().is_err());
        assert!("a@example.com/r".parse::<AccountJid>().is_err());
        assert_eq!(
            "a@Example.com".parse::<AccountJid>(),
            AccountJid::new("a", "example.com")
        );
    }
}
