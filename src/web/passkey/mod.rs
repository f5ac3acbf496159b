//! Passkeys on gatehouse's pages: the single-use challenges (`challenge`), enrolment at
//! `/account/passkeys` (`enrol`), and "Sign in with a passkey" on the login page
//! (`login`). The WebAuthn checks themselves are `protocol::webauthn`; the page script
//! is `/assets/passkey.js` (`templates/passkey.js`).

pub mod challenge;
pub mod enrol;
pub mod login;
