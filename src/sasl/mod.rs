//! Server-side SASL (RFC 6120 §6) as a pure state machine: PLAIN, SCRAM-SHA-1 and
//! SCRAM-SHA-256, and their channel-binding variants SCRAM-SHA-1-PLUS and
//! SCRAM-SHA-256-PLUS (RFC 5802 §6) when the caller supplies [`ChannelBindings`].
//!
//! The machine never touches storage and never runs PBKDF2. SCRAM needs an account's
//! stored [`Credentials`]: it returns [`SaslStep::NeedCredentials`]; the caller looks
//! them up (possibly asynchronously) and resumes with
//! [`SaslExchange::provide_credentials`]. PLAIN needs the password checked against
//! those credentials, which costs a full key derivation: it returns
//! [`SaslStep::VerifyPassword`] with the [`Password`], the caller checks it wherever it
//! likes (e.g. with [`PasswordCheck::from_credentials`] on a thread pool) and resumes
//! with [`SaslExchange::provide_password_check`]. The exchange keeps no copy of the
//! password while it waits. Payloads are raw bytes: base64 coding of `<auth/>`,
//! `<challenge/>`, `<response/>` and `<success/>` text is the caller's job.

mod binding;
mod credentials;
mod password;
mod plain;
mod scram;

use core::fmt;

use base64::prelude::*;

pub use binding::{ChannelBindingType, ChannelBindings};
pub use credentials::{Credentials, ScramHash, ScramKeys};
pub use password::{Password, PasswordCheck};

/// A SASL mechanism supported by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// `PLAIN` (RFC 4616).
    Plain,
    /// `SCRAM-SHA-1` (RFC 5802).
    ScramSha1,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-1-PLUS` (RFC 5802 with channel binding). Offered only on a
    /// TLS connection whose [`ChannelBindings`] are known.
    ScramSha1Plus,
    /// `SCRAM-SHA-256-PLUS` (RFC 7677 with channel binding). Offered only on
    /// a TLS connection whose [`ChannelBindings`] are known.
    ScramSha256Plus,
}

impl Mechanism {
    /// All mechanisms, strongest first (the channel-binding ones before the
    /// others).
    pub const ALL: [Mechanism; 5] = [
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::Plain,
    ];

    /// The IANA mechanism name, as used in `<mechanism/>` and `<auth mechanism=…>`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Mechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
        }
    }

    /// Looks a mechanism up by its exact (case-sensitive) name.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        Mechanism::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Whether the password crosses the wire in the clear (so TLS is required).
    #[must_use]
    pub fn is_plaintext(self) -> bool {
        matches!(self, Mechanism::Plain)
    }

    /// The SCRAM hash, or `None` for PLAIN.
    #[must_use]
    pub fn scram_hash(self) -> Option<ScramHash> {
        match self {
            Mechanism::Plain => None,
            Mechanism::ScramSha1 | Mechanism::ScramSha1Plus => Some(ScramHash::Sha1),
            Mechanism::ScramSha256 | Mechanism::ScramSha256Plus => Some(ScramHash::Sha256),
        }
    }

    /// Whether this is a channel-binding (`-PLUS`) mechanism.
    #[must_use]
    pub fn is_plus(self) -> bool {
        matches!(self, Mechanism::ScramSha1Plus | Mechanism::ScramSha256Plus)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A SASL failure condition (RFC 6120 §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SaslFailure {
    /// `<aborted/>`: the client aborted the exchange.
    #[error("aborted")]
    Aborted,
    /// `<account-disabled/>`.
    #[error("account-disabled")]
    AccountDisabled,
    /// `<credentials-expired/>`.
    #[error("credentials-expired")]
    CredentialsExpired,
    /// `<encryption-required/>`: the mechanism needs TLS.
    #[error("encryption-required")]
    EncryptionRequired,
    /// `<incorrect-encoding/>`: bad base64.
    #[error("incorrect-encoding")]
    IncorrectEncoding,
    /// `<invalid-authzid/>`.
    #[error("invalid-authzid")]
    InvalidAuthzid,
    /// `<invalid-mechanism/>`.
    #[error("invalid-mechanism")]
    InvalidMechanism,
    /// `<malformed-request/>`.
    #[error("malformed-request")]
    MalformedRequest,
    /// `<mechanism-too-weak/>`.
    #[error("mechanism-too-weak")]
    MechanismTooWeak,
    /// `<not-authorized/>`.
    #[error("not-authorized")]
    NotAuthorized,
    /// `<temporary-auth-failure/>`.
    #[error("temporary-auth-failure")]
    TemporaryAuthFailure,
}

impl SaslFailure {
    /// The RFC 6120 §6.5 element name, e.g. `"not-authorized"`.
    #[must_use]
    pub fn condition(self) -> &'static str {
        match self {
            SaslFailure::Aborted => "aborted",
            SaslFailure::AccountDisabled => "account-disabled",
            SaslFailure::CredentialsExpired => "credentials-expired",
            SaslFailure::EncryptionRequired => "encryption-required",
            SaslFailure::IncorrectEncoding => "incorrect-encoding",
            SaslFailure::InvalidAuthzid => "invalid-authzid",
            SaslFailure::InvalidMechanism => "invalid-mechanism",
            SaslFailure::MalformedRequest => "malformed-request",
            SaslFailure::MechanismTooWeak => "mechanism-too-weak",
            SaslFailure::NotAuthorized => "not-authorized",
            SaslFailure::TemporaryAuthFailure => "temporary-auth-failure",
        }
    }
}

/// What the caller must do next.
///
/// `Debug` never shows a password (see [`Password`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslStep {
    /// Send `<challenge/>` with these raw bytes (base64-encoded by the caller).
    Challenge(Vec<u8>),
    /// SCRAM: look up the [`Credentials`] of this SASLprepped username, then call
    /// [`SaslExchange::provide_credentials`].
    NeedCredentials {
        /// The SASLprepped authentication identity (not nodeprepped).
        username: String,
    },
    /// PLAIN: check this password for this SASLprepped username (e.g. with
    /// [`PasswordCheck::from_credentials`], off the latency-sensitive thread), then
    /// call [`SaslExchange::provide_password_check`]. The exchange keeps no copy of
    /// the password; it is wiped when this value (and any clone) is dropped.
    VerifyPassword {
        /// The SASLprepped authentication identity (not nodeprepped).
        username: String,
        /// The password as sent (SASLprep is applied when it is checked).
        password: Password,
    },
    /// Authentication succeeded; send `<success/>` with the additional data if any.
    Success {
        /// The SASLprepped authentication identity.
        username: String,
        /// SCRAM server-final message (`v=…`); `None` for PLAIN.
        additional_data: Option<Vec<u8>>,
    },
    /// Authentication failed; send `<failure/>`. The exchange is finished.
    Failure {
        /// The failure condition.
        failure: SaslFailure,
        /// Optional human-readable `<text/>`.
        text: Option<&'static str>,
    },
}

/// `<text/>` for an out-of-order message (Prosody's wording).
const TEXT_OUT_OF_ORDER: &str = "Out of order SASL element";
/// `<text/>` for an unknown user or a wrong password/proof (identical, so as not to
/// reveal which).
const TEXT_NOT_AUTHORIZED: &str =
    "Unable to authorize you with the authentication credentials you've sent.";
/// `<text/>` for a missing initial response.
const TEXT_NO_INITIAL_RESPONSE: &str = "Initial response required";
/// `<text/>` for an unparseable message.
const TEXT_MALFORMED: &str = "Invalid message";
/// `<text/>` for a disallowed authorization identity.
const TEXT_INVALID_AUTHZID: &str = "Authorization identity does not match the username";
/// `<text/>` when the caller resumes an exchange that was not waiting for credentials.
const TEXT_UNEXPECTED_CREDENTIALS: &str = "No credentials were requested";
/// `<text/>` when the caller resumes an exchange that was not waiting for a password
/// check.
const TEXT_UNEXPECTED_CHECK: &str = "No password check was requested";
/// `<text/>` for a channel-binding type the connection cannot check
/// (RFC 5802 `server-error-value`).
const TEXT_CB_NOT_SUPPORTED: &str = "channel-binding-not-supported";
/// `<text/>` for a `-PLUS` mechanism used without channel binding.
const TEXT_CB_REQUIRED: &str = "A -PLUS mechanism requires channel binding";
/// `<text/>` for channel binding with a mechanism without `-PLUS`.
const TEXT_CB_WITHOUT_PLUS: &str = "Channel binding requires a -PLUS mechanism";
/// `<text/>` for `y` on a connection that offers channel binding (a
/// possible downgrade attack, RFC 5802 §6).
const TEXT_CB_DOWNGRADE: &str = "server-does-support-channel-binding";
/// `<text/>` for a disabled account.
const TEXT_ACCOUNT_DISABLED: &str = "Account disabled";

/// Where an exchange is.
enum State {
    /// PLAIN: message parsed, password handed out, waiting for the verdict.
    PlainAwaitCheck { username: String },
    /// SCRAM: client-first parsed, waiting for the account's credentials.
    ScramNeedCredentials(scram::ClientFirst),
    /// SCRAM: server-first sent, waiting for client-final.
    ScramAwaitClientFinal(scram::Pending),
    /// Success or failure has been returned.
    Finished,
}

impl State {
    fn phase(&self) -> &'static str {
        match self {
            State::PlainAwaitCheck { .. } => "await-password-check",
            State::ScramNeedCredentials(_) => "need-credentials",
            State::ScramAwaitClientFinal(_) => "await-client-final",
            State::Finished => "finished",
        }
    }
}

/// One server-side SASL exchange, from `<auth/>` to `<success/>` or `<failure/>`.
///
/// Once a [`SaslStep::Success`] or [`SaslStep::Failure`] is returned the exchange is
/// finished; further calls fail. To let a client retry, start a new exchange.
pub struct SaslExchange {
    mechanism: Mechanism,
    server_nonce: String,
    domain: Option<String>,
    /// What the connection can bind to; empty without TLS data.
    bindings: ChannelBindings,
    state: State,
}

impl fmt::Debug for SaslExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslExchange")
            .field("mechanism", &self.mechanism)
            .field("domain", &self.domain)
            .field("bindings", &self.bindings)
            .field("phase", &self.state.phase())
            .finish_non_exhaustive()
    }
}

impl SaslExchange {
    /// Starts a mechanism with the client's initial response (`None` = no initial
    /// response sent, `Some(b"")` = empty response `=`).
    ///
    /// `server_nonce` is random bytes supplied by the caller (16 or more are
    /// recommended); it is base64-encoded into the SCRAM nonce. An authorization
    /// identity is accepted only if empty or equal to the username; see
    /// [`SaslExchange::start_for_domain`] to also accept the bare JID form.
    #[must_use]
    pub fn start(
        mechanism: Mechanism,
        initial_response: Option<&[u8]>,
        server_nonce: &[u8],
    ) -> (Self, SaslStep) {
        Self::start_inner(
            mechanism,
            initial_response,
            BASE64_STANDARD.encode(server_nonce),
            None,
            ChannelBindings::default(),
        )
    }

    /// Like [`SaslExchange::start`], but also accepts an authorization identity of the
    /// form `username@domain` (the bare JID of the authenticating account; the domain
    /// is compared ASCII-case-insensitively).
    #[must_use]
    pub fn start_for_domain(
        mechanism: Mechanism,
        initial_response: Option<&[u8]>,
        server_nonce: &[u8],
        domain: &str,
    ) -> (Self, SaslStep) {
        let bindings = ChannelBindings::default();
        Self::start_with_channel_binding(
            mechanism,
            initial_response,
            server_nonce,
            domain,
            bindings,
        )
    }

    /// Like [`SaslExchange::start_for_domain`] on a connection with channel
    /// binding: the `-PLUS` mechanisms check the client's binding against
    /// `bindings`, and the plain SCRAM mechanisms refuse a client that says
    /// it supports binding (`y`) when `bindings` is not empty, as that means
    /// the `-PLUS` mechanisms were offered and removed on the way (RFC 5802
    /// §6). Pass empty `bindings` when no `-PLUS` mechanism was offered.
    #[must_use]
    pub fn start_with_channel_binding(
        mechanism: Mechanism,
        initial_response: Option<&[u8]>,
        server_nonce: &[u8],
        domain: &str,
        bindings: ChannelBindings,
    ) -> (Self, SaslStep) {
        Self::start_inner(
            mechanism,
            initial_response,
            BASE64_STANDARD.encode(server_nonce),
            Some(domain.to_owned()),
            bindings,
        )
    }

    /// Like [`SaslExchange::start`] with the server nonce given as text (for test
    /// vectors). Characters not allowed in a SCRAM nonce are dropped.
    #[must_use]
    #[doc(hidden)]
    pub fn start_with_nonce_text(
        mechanism: Mechanism,
        initial_response: Option<&[u8]>,
        nonce_text: &str,
    ) -> (Self, SaslStep) {
        Self::start_with_nonce_text_and_bindings(
            mechanism,
            initial_response,
            nonce_text,
            ChannelBindings::default(),
        )
    }

    /// [`SaslExchange::start_with_nonce_text`] with channel binding (for test
    /// vectors).
    #[must_use]
    #[doc(hidden)]
    pub fn start_with_nonce_text_and_bindings(
        mechanism: Mechanism,
        initial_response: Option<&[u8]>,
        nonce_text: &str,
        bindings: ChannelBindings,
    ) -> (Self, SaslStep) {
        let nonce = nonce_text
            .chars()
            .filter(|&c| scram::is_nonce_char(c))
            .collect();
        Self::start_inner(mechanism, initial_response, nonce, None, bindings)
    }

    fn start_inner(
        mechanism: Mechanism,
        initial_response: Option<&[u8]>,
        server_nonce: String,
        domain: Option<String>,
        bindings: ChannelBindings,
    ) -> (Self, SaslStep) {
        let mut exchange = SaslExchange {
            mechanism,
            server_nonce,
            domain,
            bindings,
            state: State::Finished,
        };
        let step = match initial_response {
            // Prosody quirk: no empty challenge; both PLAIN and SCRAM need one.
            None => fail(SaslFailure::MalformedRequest, TEXT_NO_INITIAL_RESPONSE),
            Some(message) => exchange.first_message(message),
        };
        (exchange, step)
    }

    /// Handles the first client message of the mechanism.
    fn first_message(&mut self, message: &[u8]) -> SaslStep {
        match self.mechanism.scram_hash() {
            None => match plain::parse(message) {
                Err(failure) => fail(failure, TEXT_MALFORMED),
                Ok(msg) => {
                    if let Some(authzid) = &msg.authzid
                        && !self.authzid_acceptable(authzid, &msg.authcid, &msg.username)
                    {
                        return fail(SaslFailure::InvalidAuthzid, TEXT_INVALID_AUTHZID);
                    }
                    let username = msg.username.clone();
                    self.state = State::PlainAwaitCheck {
                        username: msg.username,
                    };
                    SaslStep::VerifyPassword {
                        username,
                        password: msg.password,
                    }
                }
            },
            Some(_) => match scram::parse_client_first(message) {
                Err(failure) => fail(failure, TEXT_MALFORMED),
                Ok(mut first) => {
                    match self.channel_binding(first.flag) {
                        Ok(binding) => first.binding = binding,
                        Err(text) => return fail(SaslFailure::NotAuthorized, text),
                    }
                    if let Some(authzid) = &first.authzid
                        && !self.authzid_acceptable(authzid, &first.authcid, &first.username)
                    {
                        return fail(SaslFailure::InvalidAuthzid, TEXT_INVALID_AUTHZID);
                    }
                    let username = first.username.clone();
                    self.state = State::ScramNeedCredentials(first);
                    SaslStep::NeedCredentials { username }
                }
            },
        }
    }

    /// Judges the gs2 flag against the mechanism and the connection: the
    /// binding data the client must echo, or the failure text
    /// (`not-authorized`).
    fn channel_binding(&self, flag: scram::Gs2Flag) -> Result<Option<Vec<u8>>, &'static str> {
        use scram::Gs2Flag;
        match (flag, self.mechanism.is_plus()) {
            (Gs2Flag::Binding(kind), true) => kind
                .and_then(|kind| self.bindings.get(kind))
                .map(|data| Some(data.to_vec()))
                .ok_or(TEXT_CB_NOT_SUPPORTED),
            (Gs2Flag::No | Gs2Flag::ClientSupports, true) => Err(TEXT_CB_REQUIRED),
            (Gs2Flag::Binding(_), false) => Err(TEXT_CB_WITHOUT_PLUS),
            (Gs2Flag::ClientSupports, false) if !self.bindings.is_empty() => Err(TEXT_CB_DOWNGRADE),
            (Gs2Flag::No | Gs2Flag::ClientSupports, false) => Ok(None),
        }
    }

    /// Whether `authzid` names the authenticating account itself.
    fn authzid_acceptable(&self, authzid: &str, authcid: &str, username: &str) -> bool {
        if authzid == authcid || authzid == username {
            return true;
        }
        match (&self.domain, authzid.split_once('@')) {
            (Some(domain), Some((local, authz_domain))) => {
                (local == authcid || local == username) && authz_domain.eq_ignore_ascii_case(domain)
            }
            _ => false,
        }
    }

    /// Handles a `<response/>` (raw, already base64-decoded).
    pub fn respond(&mut self, response: &[u8]) -> SaslStep {
        match self.respond_inline(response) {
            Ok((username, server_final)) => SaslStep::Success {
                username,
                additional_data: Some(server_final.as_slice().to_vec()),
            },
            Err(step) => step,
        }
    }

    /// [`SaslExchange::respond`] with the success held inline: the
    /// username and the SCRAM server-final message; any other step is the
    /// error.
    pub(crate) fn respond_inline(
        &mut self,
        response: &[u8],
    ) -> Result<(String, scram::ServerFinal), SaslStep> {
        match core::mem::replace(&mut self.state, State::Finished) {
            State::ScramAwaitClientFinal(pending) => match pending.verify_client_final(response) {
                Ok(server_final) => Ok((pending.username, server_final)),
                Err(SaslFailure::NotAuthorized) => {
                    Err(fail(SaslFailure::NotAuthorized, TEXT_NOT_AUTHORIZED))
                }
                Err(failure) => Err(fail(failure, TEXT_MALFORMED)),
            },
            State::PlainAwaitCheck { .. } | State::ScramNeedCredentials(_) | State::Finished => {
                Err(fail(SaslFailure::MalformedRequest, TEXT_OUT_OF_ORDER))
            }
        }
    }

    /// Resumes a SCRAM exchange after [`SaslStep::NeedCredentials`] with the
    /// account's stored credentials.
    ///
    /// `None` (no such user) and missing keys for the mechanism's hash yield
    /// `not-authorized`, indistinguishable from a wrong password; a disabled account
    /// yields `account-disabled`. Calling this when no credentials were requested
    /// (including a PLAIN exchange, which asks for [`SaslStep::VerifyPassword`])
    /// finishes the exchange with `temporary-auth-failure`.
    pub fn provide_credentials(&mut self, credentials: Option<&Credentials>) -> SaslStep {
        match self.offer_credentials(credentials) {
            Ok(challenge) => SaslStep::Challenge(challenge.to_vec()),
            Err(step) => step,
        }
    }

    /// [`SaslExchange::provide_credentials`] without copying the challenge:
    /// on success it is borrowed from the exchange (the SCRAM server-first
    /// message); any other step is the error.
    pub(crate) fn offer_credentials(
        &mut self,
        credentials: Option<&Credentials>,
    ) -> Result<&[u8], SaslStep> {
        let state = core::mem::replace(&mut self.state, State::Finished);
        let State::ScramNeedCredentials(first) = state else {
            return Err(fail(
                SaslFailure::TemporaryAuthFailure,
                TEXT_UNEXPECTED_CREDENTIALS,
            ));
        };
        let Some(credentials) = credentials else {
            return Err(fail(SaslFailure::NotAuthorized, TEXT_NOT_AUTHORIZED));
        };
        if credentials.disabled {
            return Err(fail(SaslFailure::AccountDisabled, TEXT_ACCOUNT_DISABLED));
        }
        let keys = self
            .mechanism
            .scram_hash()
            .and_then(|hash| Some((hash, credentials.keys(hash)?)));
        let Some((hash, keys)) = keys else {
            return Err(fail(SaslFailure::NotAuthorized, TEXT_NOT_AUTHORIZED));
        };
        let Some(pending) = scram::Pending::new(hash, first, &self.server_nonce, keys) else {
            return Err(fail(SaslFailure::NotAuthorized, TEXT_NOT_AUTHORIZED));
        };
        self.state = State::ScramAwaitClientFinal(pending);
        match &self.state {
            State::ScramAwaitClientFinal(pending) => Ok(pending.server_first.as_bytes()),
            _ => Err(fail(
                SaslFailure::TemporaryAuthFailure,
                TEXT_UNEXPECTED_CREDENTIALS,
            )),
        }
    }

    /// Resumes a PLAIN exchange after [`SaslStep::VerifyPassword`] with the verdict.
    ///
    /// [`PasswordCheck::Valid`] succeeds; [`PasswordCheck::WrongPassword`] and
    /// [`PasswordCheck::UnknownUser`] yield the same `not-authorized` and text (as
    /// for SCRAM); [`PasswordCheck::AccountDisabled`] yields `account-disabled`.
    /// Calling this when no check was requested (including on a SCRAM exchange)
    /// finishes the exchange with `temporary-auth-failure`.
    pub fn provide_password_check(&mut self, check: PasswordCheck) -> SaslStep {
        let State::PlainAwaitCheck { username } =
            core::mem::replace(&mut self.state, State::Finished)
        else {
            return fail(SaslFailure::TemporaryAuthFailure, TEXT_UNEXPECTED_CHECK);
        };
        match check {
            PasswordCheck::Valid => SaslStep::Success {
                username,
                additional_data: None,
            },
            PasswordCheck::WrongPassword | PasswordCheck::UnknownUser => {
                fail(SaslFailure::NotAuthorized, TEXT_NOT_AUTHORIZED)
            }
            PasswordCheck::AccountDisabled => {
                fail(SaslFailure::AccountDisabled, TEXT_ACCOUNT_DISABLED)
            }
        }
    }

    /// The mechanism of this exchange.
    #[must_use]
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Whether a success or failure has been returned (no further steps possible).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }
}

/// A failure step with a text.
fn fail(failure: SaslFailure, text: &'static str) -> SaslStep {
    SaslStep::Failure {
        failure,
        text: Some(text),
    }
}

#[cfg(test)]
mod tests;
