//! The pages a person sees: login, consent, logout and errors, with their cookies,
//! CSRF protection and security headers.

pub mod consent;
pub mod cookies;
pub mod csrf;
pub mod interaction;
pub mod login;
pub mod logout;
pub mod page;
pub mod session;
pub mod templates;
pub mod throttle;
