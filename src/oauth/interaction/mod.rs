//! What happens between an authorization request and its code, without a page: the
//! login policy (`policy`: which step comes next, as a pure rule) and the requests that
//! wait for the user (`pending`: kept in the store, bounded, answered once). The pages
//! that show each step are `web::interaction` and its neighbours.

pub mod pending;
pub mod policy;
