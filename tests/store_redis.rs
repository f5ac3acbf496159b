//! The store conformance suite against a real Redis: the same checks the memory store
//! passes, on a redis-server of this test's own, with the clock the suite advances.

mod common;

use common::redis::RedisServer;
use gatehouse::clock::Clock;
use gatehouse::store::redis::RedisStore;
use gatehouse::store::{Store, conformance};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_redis_store_conforms() {
    let Some(redis) = RedisServer::start("the_redis_store_conforms") else {
        return;
    };
    let clock = Clock::system();
    let store = RedisStore::connect(&redis.url(), "conformance:", clock.clone())
        .await
        .expect("connects");
    conformance::run(Arc::new(store), &clock).await;
}

#[tokio::test]
async fn two_prefixes_share_one_redis_without_seeing_each_other() {
    let Some(redis) = RedisServer::start("two_prefixes_share_one_redis") else {
        return;
    };
    let clock = Clock::system();
    let a = RedisStore::connect(&redis.url(), "a:", clock.clone())
        .await
        .expect("connects");
    let b = RedisStore::connect(&redis.url(), "b:", clock.clone())
        .await
        .expect("connects");
    a.deny_jti("j", std::time::Duration::from_secs(60))
        .await
        .expect("deny");
    assert!(a.jti_denied("j").await.expect("read"));
    assert!(
        !b.jti_denied("j").await.expect("read"),
        "b: is another deployment"
    );
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_hang() {
    let Some(mut redis) = RedisServer::start("an_unreachable_redis_is_an_error") else {
        return;
    };
    let clock = Clock::system();
    let store = RedisStore::connect(&redis.url(), "down:", clock.clone())
        .await
        .expect("connects");
    redis.stop();
    let started = std::time::Instant::now();
    assert!(store.ping().await.is_err());
    assert!(store.jti_denied("j").await.is_err());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "failed fast: {:?}",
        started.elapsed()
    );
    redis.restart();
    let back = common::eventually(std::time::Duration::from_secs(5), || async {
        store.ping().await.is_ok()
    })
    .await;
    assert!(back, "the store reconnects by itself once Redis is back");
}
