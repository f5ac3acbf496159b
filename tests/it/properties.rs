//! Properties of the pure protocol rules, checked on generated inputs: redirect URI
//! matching, PKCE, and form parsing.

use gatehouse::http::form::Form;
use gatehouse::protocol::pkce;
use gatehouse::protocol::redirect_uri::find_match;
use proptest::prelude::*;

fn segment() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,8}"
}

fn https_uri() -> impl Strategy<Value = String> {
    (segment(), segment(), proptest::option::of(segment())).prop_map(|(host, path, query)| {
        match query {
            Some(q) => format!("https://{host}.example.com/{path}?q={q}"),
            None => format!("https://{host}.example.com/{path}"),
        }
    })
}

fn verifier() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~-]{43,128}"
}

proptest! {
    #[test]
    fn a_registered_uri_matches_itself(registered in proptest::collection::vec(https_uri(), 1..5), pick in any::<prop::sample::Index>()) {
        let chosen = pick.get(&registered).clone();
        prop_assert_eq!(find_match(&registered, &chosen), Some(chosen.as_str()));
    }

    #[test]
    fn any_change_to_a_registered_uri_fails(uri in https_uri(), suffix in "[/a-z0-9?#%.]{1,4}", upper in any::<bool>()) {
        let registered = vec![uri.clone()];
        let appended = format!("{uri}{suffix}");
        prop_assert_eq!(find_match(&registered, &appended), None);
        if upper {
            prop_assert_eq!(find_match(&registered, &uri.to_uppercase()), None);
        }
        let prefix = &uri[..uri.len() - 1];
        prop_assert_eq!(find_match(&registered, prefix), None);
    }

    #[test]
    fn a_match_is_always_a_registered_uri(registered in proptest::collection::vec(https_uri(), 0..4), requested in "\\\\PC{0,60}") {
        if let Some(found) = find_match(&registered, &requested) {
            prop_assert!(registered.iter().any(|r| r == found));
        }
    }

    #[test]
    fn loopback_ip_ports_are_ignored_and_nothing_else(port in 1u16.., path in segment(), other in segment(), ipv6 in any::<bool>()) {
        let host = if ipv6 { "[::1]" } else { "127.0.0.1" };
        let registered = vec![format!("http://{host}/{path}")];
        let requested = format!("http://{host}:{port}/{path}");
        prop_assert!(find_match(&registered, &requested).is_some());
        if other != path {
            prop_assert_eq!(find_match(&registered, &format!("http://{host}:{port}/{other}")), None);
        }
        prop_assert_eq!(find_match(&registered, &format!("https://{host}:{port}/{path}")), None);
        prop_assert_eq!(find_match(&registered, &format!("http://localhost:{port}/{path}")), None);
    }

    #[test]
    fn pkce_accepts_exactly_the_verifier_of_the_challenge(v in verifier(), w in verifier()) {
        let challenge = pkce::challenge_of(&v);
        prop_assert!(pkce::is_challenge_syntax(&challenge));
        prop_assert!(pkce::verify(&v, &challenge));
        prop_assert_eq!(pkce::verify(&w, &challenge), v == w);
    }

    #[test]
    fn pkce_refuses_malformed_verifiers_even_with_their_own_challenge(v in "[^A-Za-z0-9._~-]{1,3}[A-Za-z0-9]{40,130}|[A-Za-z0-9]{0,42}|[A-Za-z0-9]{129,200}") {
        prop_assert!(!pkce::verify(&v, &pkce::challenge_of(&v)));
    }

    #[test]
    fn form_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Form::parse(&bytes);
    }

    #[test]
    fn form_parsing_round_trips(pairs in proptest::collection::btree_map("[a-z_]{1,10}", "\\\\PC{1,20}", 0..10)) {
        let encoded: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        let form = Form::parse(encoded.as_bytes()).expect("a valid encoding parses");
        for (name, value) in &pairs {
            prop_assert_eq!(form.get(name), Some(value.as_str()));
        }
    }
}
