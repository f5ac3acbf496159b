//! Per-operation store metrics: a [`Store`] around another that measures each call
//! (`gatehouse_store_operation_seconds{op, store}`) and counts its failures
//! (`gatehouse_store_errors_total{op, store}`), whatever the store. [`super::open`]
//! wraps every store it opens in one.

use super::{
    CodeGrant, DeviceDecision, DeviceGrant, IssuedIds, Key, Polled, Redeemed, RefreshGrant,
    Session, StandingQuery, StandingRecords, Store, StoreFuture,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A store whose every operation is measured.
pub(crate) struct Metered {
    inner: Arc<dyn Store>,
}

impl Metered {
    /// Measures the operations of `inner`.
    pub(crate) fn new(inner: Arc<dyn Store>) -> Self {
        Self { inner }
    }

    /// Runs `operation`, recording how long it took under `op` and whether it failed.
    fn timed<'a, T: Send + 'a>(
        &'a self,
        op: &'static str,
        operation: StoreFuture<'a, T>,
    ) -> StoreFuture<'a, T> {
        let store = self.inner.kind();
        Box::pin(async move {
            let started = Instant::now();
            let result = operation.await;
            metrics::histogram!("gatehouse_store_operation_seconds", "op" => op, "store" => store)
                .record(started.elapsed().as_secs_f64());
            if result.is_err() {
                metrics::counter!("gatehouse_store_errors_total", "op" => op, "store" => store)
                    .increment(1);
            }
            result
        })
    }
}

impl Store for Metered {
    fn put_code(&self, key: Key, grant: CodeGrant, ttl: Duration) -> StoreFuture<'_, ()> {
        self.timed("put_code", self.inner.put_code(key, grant, ttl))
    }

    fn redeem_code(&self, key: Key, issued: IssuedIds) -> StoreFuture<'_, Redeemed<CodeGrant>> {
        self.timed("redeem_code", self.inner.redeem_code(key, issued))
    }

    fn redeem_code_with_refresh(
        &self,
        code: Key,
        issued: IssuedIds,
        key: Key,
        first: RefreshGrant,
        ttl: Duration,
    ) -> StoreFuture<'_, Redeemed<CodeGrant>> {
        self.timed(
            "redeem_code_with_refresh",
            self.inner
                .redeem_code_with_refresh(code, issued, key, first, ttl),
        )
    }

    fn put_refresh(&self, key: Key, grant: RefreshGrant, ttl: Duration) -> StoreFuture<'_, ()> {
        self.timed("put_refresh", self.inner.put_refresh(key, grant, ttl))
    }

    fn peek_code(&self, key: Key) -> StoreFuture<'_, Redeemed<CodeGrant>> {
        self.timed("peek_code", self.inner.peek_code(key))
    }

    fn peek_refresh(&self, key: Key) -> StoreFuture<'_, Redeemed<RefreshGrant>> {
        self.timed("peek_refresh", self.inner.peek_refresh(key))
    }

    fn use_refresh(&self, key: Key) -> StoreFuture<'_, Redeemed<RefreshGrant>> {
        self.timed("use_refresh", self.inner.use_refresh(key))
    }

    fn rotate_refresh(
        &self,
        old: Key,
        key: Key,
        next: RefreshGrant,
        ttl: Duration,
    ) -> StoreFuture<'_, Redeemed<RefreshGrant>> {
        self.timed(
            "rotate_refresh",
            self.inner.rotate_refresh(old, key, next, ttl),
        )
    }

    fn revoke_family(&self, family: &str, ttl: Duration) -> StoreFuture<'_, ()> {
        self.timed("revoke_family", self.inner.revoke_family(family, ttl))
    }

    fn family_revoked(&self, family: &str) -> StoreFuture<'_, bool> {
        self.timed("family_revoked", self.inner.family_revoked(family))
    }

    fn set_not_before(&self, client_id: &str, at: u64, ttl: Duration) -> StoreFuture<'_, ()> {
        self.timed(
            "set_not_before",
            self.inner.set_not_before(client_id, at, ttl),
        )
    }

    fn not_before(&self, client_id: &str) -> StoreFuture<'_, Option<u64>> {
        self.timed("not_before", self.inner.not_before(client_id))
    }

    fn deny_jti(&self, jti: &str, ttl: Duration) -> StoreFuture<'_, ()> {
        self.timed("deny_jti", self.inner.deny_jti(jti, ttl))
    }

    fn jti_denied(&self, jti: &str) -> StoreFuture<'_, bool> {
        self.timed("jti_denied", self.inner.jti_denied(jti))
    }

    fn standing<'a>(&'a self, query: &'a StandingQuery) -> StoreFuture<'a, StandingRecords> {
        self.timed("standing", self.inner.standing(query))
    }

    fn remember_once(&self, key: &str, until: u64) -> StoreFuture<'_, bool> {
        self.timed("remember_once", self.inner.remember_once(key, until))
    }

    fn index_session(&self, name: &str, sid: &str, until: u64, cap: usize) -> StoreFuture<'_, ()> {
        self.timed(
            "index_session",
            self.inner.index_session(name, sid, until, cap),
        )
    }

    fn indexed_sessions(&self, name: &str) -> StoreFuture<'_, Vec<String>> {
        self.timed("indexed_sessions", self.inner.indexed_sessions(name))
    }

    fn unindex_session(&self, name: &str, sid: &str) -> StoreFuture<'_, ()> {
        self.timed("unindex_session", self.inner.unindex_session(name, sid))
    }

    fn put_session(&self, key: Key, session: Session, ttl: Duration) -> StoreFuture<'_, ()> {
        self.timed("put_session", self.inner.put_session(key, session, ttl))
    }

    fn get_session(&self, key: Key) -> StoreFuture<'_, Option<Session>> {
        self.timed("get_session", self.inner.get_session(key))
    }

    fn delete_session(&self, key: Key) -> StoreFuture<'_, ()> {
        self.timed("delete_session", self.inner.delete_session(key))
    }

    fn put_pending(&self, key: Key, request: String, ttl: Duration) -> StoreFuture<'_, ()> {
        self.timed("put_pending", self.inner.put_pending(key, request, ttl))
    }

    fn get_pending(&self, key: Key) -> StoreFuture<'_, Option<String>> {
        self.timed("get_pending", self.inner.get_pending(key))
    }

    fn delete_pending(&self, key: Key) -> StoreFuture<'_, bool> {
        self.timed("delete_pending", self.inner.delete_pending(key))
    }

    fn put_device(
        &self,
        device: Key,
        user: Key,
        grant: DeviceGrant,
        ttl: Duration,
    ) -> StoreFuture<'_, bool> {
        self.timed(
            "put_device",
            self.inner.put_device(device, user, grant, ttl),
        )
    }

    fn device_by_user_code(&self, user: Key) -> StoreFuture<'_, Option<DeviceGrant>> {
        self.timed("device_by_user_code", self.inner.device_by_user_code(user))
    }

    fn decide_device(
        &self,
        user: Key,
        decision: DeviceDecision,
    ) -> StoreFuture<'_, Option<DeviceGrant>> {
        self.timed("decide_device", self.inner.decide_device(user, decision))
    }

    fn poll_device(
        &self,
        device: Key,
        client_id: &str,
        now: u64,
        step: u64,
    ) -> StoreFuture<'_, Polled> {
        self.timed(
            "poll_device",
            self.inner.poll_device(device, client_id, now, step),
        )
    }

    fn add_failure(&self, name: &str, window: Duration) -> StoreFuture<'_, (u32, Duration)> {
        self.timed("add_failure", self.inner.add_failure(name, window))
    }

    fn take_back_failure(&self, name: &str) -> StoreFuture<'_, ()> {
        self.timed("take_back_failure", self.inner.take_back_failure(name))
    }

    fn failures(&self, name: &str) -> StoreFuture<'_, (u32, Duration)> {
        self.timed("failures", self.inner.failures(name))
    }

    fn clear_failures(&self, name: &str) -> StoreFuture<'_, ()> {
        self.timed("clear_failures", self.inner.clear_failures(name))
    }

    fn sizes(&self) -> StoreFuture<'_, Vec<(&'static str, usize)>> {
        self.timed("sizes", self.inner.sizes())
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        self.timed("ping", self.inner.ping())
    }

    fn shared_secret(&self, name: &str, fresh: [u8; 32]) -> StoreFuture<'_, [u8; 32]> {
        self.timed("shared_secret", self.inner.shared_secret(name, fresh))
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}
