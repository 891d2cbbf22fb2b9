//! The OpenID provider the resource-server tests rely on (issue 19): panva's
//! oidc-provider, run by `tests/oidc/provider.cjs`, issues RFC 9068 access
//! tokens that name the right issuer, audience, client and scopes, signed
//! with a key its JWKS publishes; restarting it with new keys rotates them;
//! and it counts JWKS fetches exactly. Both node and oidc-provider are
//! installed by `cargo xtask ci`, which runs this test.

use std::time::{Duration, Instant};

use petsage_tests::Scratch;
use petsage_tests::oidc::{AUDIENCE, Alg, Provider, decode_unverified};

/// The key ids the provider's JWKS publishes (fetching it once).
fn published_kids(provider: &Provider) -> Vec<String> {
    let jwks = provider.jwks();
    let keys = jwks["keys"].as_array().expect("JWKS has keys");
    for key in keys {
        assert!(
            key.get("d").is_none(),
            "the JWKS publishes a private key: {key}"
        );
    }
    keys.iter()
        .map(|k| k["kid"].as_str().expect("every key has a kid").to_owned())
        .collect()
}

/// Checks `token` is an RFC 9068 access token for `client`, signed with a
/// published key of algorithm `alg`; returns its `kid`.
fn check_access_token(
    provider: &Provider,
    token: &str,
    client: &str,
    alg: Alg,
    kids: &[String],
) -> String {
    let (header, payload) = decode_unverified(token);
    assert_eq!(header["typ"], "at+jwt", "{header}");
    assert_eq!(header["alg"], alg.name(), "{header}");
    let kid = header["kid"].as_str().expect("header has a kid").to_owned();
    assert!(kids.contains(&kid), "kid {kid} not in the JWKS {kids:?}");
    assert_eq!(payload["iss"], provider.issuer().as_str(), "{payload}");
    assert_eq!(payload["aud"], AUDIENCE, "{payload}");
    assert_eq!(payload["sub"], client, "{payload}");
    assert_eq!(payload["client_id"], client, "{payload}");
    let scope = payload["scope"].as_str().expect("payload has a scope");
    assert!(scope.split(' ').any(|s| s == "notes:read"), "{payload}");
    assert!(
        payload["exp"].as_u64() > payload["iat"].as_u64(),
        "{payload}"
    );
    assert!(payload["jti"].is_string(), "{payload}");
    kid
}

#[test]
#[ignore = "needs node and oidc-provider: run by cargo xtask ci"]
fn the_provider_issues_jwt_access_tokens_rotates_keys_and_counts_jwks_fetches() {
    let started = Instant::now();
    let dir = Scratch::new("oidc");
    let mut provider = Provider::start(dir.path(), Alg::Rs256);
    println!(
        "provider at {} in {:?}",
        provider.issuer(),
        started.elapsed()
    );

    assert_eq!(provider.jwks_fetches(), 0);
    let kids = published_kids(&provider);
    assert_eq!(
        provider.jwks_fetches(),
        1,
        "one GET of the JWKS counts once"
    );
    assert_eq!(
        provider.jwks_fetches(),
        1,
        "reading the count is not a fetch"
    );

    let alice = provider.token("alice", "alice-secret", "notes:read notes:write");
    let kid = check_access_token(&provider, &alice, "alice", Alg::Rs256, &kids);
    let bob = provider.token("bob", "bob-secret", "notes:read");
    assert_eq!(
        check_access_token(&provider, &bob, "bob", Alg::Rs256, &kids),
        kid
    );
    let (_, payload) = decode_unverified(&bob);
    assert_eq!(payload["scope"], "notes:read", "only what was asked for");
    assert_eq!(provider.jwks_fetches(), 1, "issuing tokens fetches no JWKS");

    // The hostile cases PetSage must refuse can be made.
    let wrong_secret =
        provider.token_reply("alice", "bob-secret", "notes:read", "urn:petsage:notes");
    assert_eq!(wrong_secret.status.as_u16(), 401, "{}", wrong_secret.body);
    let pets = provider.token_for("bob", "bob-secret", "pets:read", "urn:petsage:pets");
    let (_, payload) = decode_unverified(&pets);
    assert_eq!(payload["aud"], "pets", "{payload}");
    assert_eq!(payload["scope"], "pets:read", "{payload}");
    let (header, payload) = decode_unverified(&provider.id_token("alice"));
    assert_eq!(header["typ"], "JWT", "{header}");
    assert_eq!(payload["aud"], "alice", "{payload}");
    assert!(kids.iter().any(|k| header["kid"] == k.as_str()), "{header}");

    for n in 2..=4 {
        published_kids(&provider);
        assert_eq!(provider.jwks_fetches(), n, "exactly one per fetch");
    }

    let issuer = provider.issuer();
    let old_file = provider.jwks_file();
    provider.restart_with_new_keys();
    assert_ne!(provider.jwks_file(), old_file);
    assert_eq!(provider.issuer(), issuer, "the issuer survives a restart");
    assert_eq!(provider.jwks_fetches(), 0, "a new process counts afresh");
    let new_kids = published_kids(&provider);
    assert_eq!(provider.jwks_fetches(), 1);
    assert!(
        new_kids.iter().all(|k| !kids.contains(k)),
        "rotated keys are all new: {kids:?} then {new_kids:?}"
    );
    let rotated = provider.token("alice", "alice-secret", "notes:read");
    let new_kid = check_access_token(&provider, &rotated, "alice", Alg::Rs256, &new_kids);
    assert_ne!(new_kid, kid);
    println!("kid {kid} rotated to {new_kid}");

    provider.stop();
    assert!(
        std::net::TcpStream::connect_timeout(
            &issuer
                .trim_start_matches("http://")
                .parse()
                .expect("issuer is IP:PORT"),
            Duration::from_secs(1)
        )
        .is_err(),
        "a stopped provider no longer answers"
    );
    println!("done in {:?}", started.elapsed());
}

#[test]
#[ignore = "needs node and oidc-provider: run by cargo xtask ci"]
fn the_provider_signs_with_es256_when_asked() {
    let dir = Scratch::new("oidc-es256");
    let provider = Provider::start(dir.path(), Alg::Es256);
    let kids = published_kids(&provider);
    let token = provider.token("bob", "bob-secret", "notes:read notes:write");
    let kid = check_access_token(&provider, &token, "bob", Alg::Es256, &kids);
    let jwks = provider.jwks();
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
        .unwrap_or_else(|| panic!("{kid} not in {jwks}"));
    assert_eq!(key["kty"], "EC", "{key}");
    assert_eq!(key["crv"], "P-256", "{key}");
    assert_eq!(provider.jwks_fetches(), 2);
}
