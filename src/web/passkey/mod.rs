//! Passkeys on gatehouse's pages: the single-use challenges (`challenge`), the posted
//! assertion verified for one passkey (`assertion`), enrolment at
//! `/account/passkeys` (`enrol`), "Sign in with a passkey" on the login page
//! (`login`), and a passkey as the second factor after a password (`second`). The
//! WebAuthn checks themselves are `protocol::webauthn`; the page script is
//! `/assets/passkey.js` (`templates/passkey.js`).

pub mod assertion;
pub mod challenge;
pub mod enrol;
pub mod login;
pub mod second;
