//! Hot reload: watch the config file, the files it includes and every file they
//! reference, debounce bursts, reload on SIGHUP too; swap in a new registry only when
//! the whole tree is valid, and otherwise keep serving the last good one.
//!
//! Watching the parent directories (not the files) is what lets editors that save by
//! rename, and Kubernetes ConfigMap updates (an atomic `..data` symlink swap), be seen.
//! Events for other files in those directories (an editor's swap file, a log, anything
//! an unrelated process writes) are ignored: only a name the config was read through
//! (the file, or the first link of its symlink target) starts a reload, or, in the
//! directory an `include` glob reads, a name the glob matches (a file added to
//! `clients.d/`).

use crate::config::IncludeGlob;
use crate::jwt::keys::SigningKey;
use crate::load::{self, Loaded};
use crate::oauth::{backchannel, standing};
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::StoreError;
use anyhow::Context;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// Quiet time after the last file event before reloading: long enough to merge an
/// editor's burst of writes, short enough that a change applies well within 2 s.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// The longest a burst may postpone a reload: a file rewritten without pause (a
/// generator, a sync loop) still reloads at least this often.
const MAX_DELAY: Duration = Duration::from_secs(1);

/// The signing key used when the config lists none: made once per process so that
/// reloads do not invalidate tokens already issued.
#[derive(Default)]
pub(crate) struct FallbackKey(Option<Arc<SigningKey>>);

impl FallbackKey {
    /// The key to pass to `Registry::new` for `loaded`: none when it has keys of its own.
    pub(crate) fn for_config(
        &mut self,
        loaded: &Loaded,
    ) -> anyhow::Result<Option<Arc<SigningKey>>> {
        if !loaded.config.keys.is_empty() {
            return Ok(None);
        }
        if self.0.is_none() {
            let (key, _) = SigningKey::generate(crate::config::file::Algorithm::ES256, None)
                .context("generating an ephemeral signing key")?;
            tracing::warn!(
                kid = key.kid(),
                "no [[keys]] configured: signing with an ephemeral ES256 key; tokens will not \
                 survive a restart (make one with `gatehouse keygen`)"
            );
            self.0 = Some(Arc::new(key));
        }
        Ok(self.0.clone())
    }
}

/// Loads `config_path` and logs its warnings; the error lists every problem. The
/// load's transient heap (the parsed document, positions, the file model) is given
/// back on this thread: the allocator keeps freed pages per thread, so only the thread
/// that freed them can return them at once.
pub fn load_config(config_path: &Path) -> Result<Loaded, load::Rejected> {
    let loaded = load::load(config_path);
    crate::memory::collect();
    let loaded = loaded?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    Ok(loaded)
}

/// The server's first generation: its registry, the ephemeral key kept for the reloads
/// when the config lists none, and what the reloader watches and compares.
pub(crate) struct FirstGeneration {
    pub(crate) registry: Registry,
    pub(crate) fallback: FallbackKey,
    pub(crate) watched: Watched,
    pub(crate) fingerprint: [u8; 32],
}

/// Loads `config_path` and builds the first registry (generation 1, loaded at `now`)
/// on the loader thread ([`on_loader_thread`]), as every reload does.
pub(crate) async fn first_generation(
    config_path: PathBuf,
    now: std::time::SystemTime,
) -> anyhow::Result<FirstGeneration> {
    let build = move || -> anyhow::Result<FirstGeneration> {
        let loaded = load_config(&config_path)?;
        let mut fallback = FallbackKey::default();
        let fallback_key = fallback.for_config(&loaded)?;
        let Loaded {
            config,
            files,
            globs,
            fingerprint,
            ..
        } = loaded;
        let registry = Registry::new(config, 1, now, fallback_key).with_fingerprint(&fingerprint);
        Ok(FirstGeneration {
            registry,
            fallback,
            watched: Watched { files, globs },
            fingerprint,
        })
    };
    on_loader_thread(build).await?
}

/// A job for the loader thread.
type Job = Box<dyn FnOnce() + Send>;

/// Runs `work` (a config load) on the loader thread, the one thread of the process
/// that loads configs and builds their clients, off the async threads. The allocator
/// keeps a block another thread frees until the thread that allocated it collects, so
/// the thread that builds each generation is the one that collects once it is released
/// ([`return_when_released`]): a generation built on the thread that started the
/// server stayed resident after a reload freed it (100,000 clients: 192 MiB after, 111
/// before), and one built on a pool thread came back only when the collection happened
/// to run on that thread.
async fn on_loader_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    submit(Box::new(move || {
        let _ = done.send(work());
    }))?;
    result
        .await
        .map_err(|_| anyhow::anyhow!("the config load panicked"))
}

/// Queues `job` on the loader thread, started on first use; a job that panics does
/// not end it.
fn submit(job: Job) -> anyhow::Result<()> {
    static LOADER: OnceLock<Option<std::sync::mpsc::Sender<Job>>> = OnceLock::new();
    let loader = LOADER.get_or_init(|| {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("gatehouse-loader".to_owned())
            .spawn(move || {
                for job in queue {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            });
        thread.ok().map(|_| jobs)
    });
    loader
        .as_ref()
        .context("cannot start the config loader thread")?
        .send(job)
        .map_err(|_| anyhow::anyhow!("the config loader thread has ended"))
}

/// How often the reloader looks whether the last request holding an old generation
/// has let it go.
const RELEASE_POLL: Duration = Duration::from_millis(100);
/// How long it looks at most (a request ends within its deadlines); it collects then
/// anyway.
const RELEASE_WAIT: Duration = Duration::from_secs(60);

/// Gives back to the system the heap of `old`'s generation once the last request
/// holding it has dropped it: the loader thread, which built it, collects. An
/// allocator keeps freed memory for reuse; about half of a 100,000-client server's
/// resident memory after a reload was heap nobody used (bench/README.md, "Clients").
fn return_when_released(old: Arc<Registry>) {
    let released = Arc::downgrade(&old);
    drop(old);
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        while released.strong_count() > 0 && started.elapsed() < RELEASE_WAIT {
            tokio::time::sleep(RELEASE_POLL).await;
        }
        if let Err(e) = submit(Box::new(crate::memory::collect)) {
            tracing::warn!(error = %e, "cannot return the old configuration's memory");
        }
    });
}

/// Starts the reloader task for `state`.
pub(crate) fn spawn(
    state: Arc<AppState>,
    config_path: PathBuf,
    watched: Watched,
    fingerprint: [u8; 32],
    fallback: FallbackKey,
) {
    // The directories are watched before this returns, so a change written right after
    // the server starts is not missed; the task then waits for events.
    let (tx, rx) = mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
        {
            let _ = tx.send(event.paths);
        }
    });
    let watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the config file; reload with SIGHUP");
            None
        }
    };
    let mut reloader = Reloader {
        state,
        config_path,
        fingerprint,
        fallback,
        watcher,
        watched: BTreeSet::new(),
        relevant: BTreeSet::new(),
        globs: Vec::new(),
    };
    reloader.watch(watched);
    tokio::spawn(async move { reloader.run(rx).await });
}

/// Merges a burst of file events: returns after `DEBOUNCE` without one, or at the latest
/// `MAX_DELAY` after the burst began.
async fn settle(events: &mut mpsc::UnboundedReceiver<Vec<PathBuf>>) {
    let deadline = tokio::time::Instant::now() + MAX_DELAY;
    loop {
        let quiet_until = (tokio::time::Instant::now() + DEBOUNCE).min(deadline);
        match tokio::time::timeout_at(quiet_until, events.recv()).await {
            Ok(Some(_)) if tokio::time::Instant::now() < deadline => {}
            _ => return,
        }
    }
}

/// The file names in the watched directories whose change can change the config: each
/// file's own name and, when the file is a symlink, the first component of its
/// target (`..data` in a ConfigMap volume, where `gatehouse.toml -> ..data/gatehouse.toml`
/// and the kubelet swaps `..data`).
fn relevant_names(files: &[PathBuf]) -> BTreeSet<OsString> {
    let mut names = BTreeSet::new();
    for file in files {
        if let Some(name) = file.file_name() {
            names.insert(name.to_owned());
        }
        if let Ok(target) = std::fs::read_link(file)
            && target.is_relative()
            && let Some(Component::Normal(first)) = target.components().next()
        {
            names.insert(first.to_owned());
        }
    }
    names
}

/// What a loaded (or rejected) config was read from: the files, and the `include`
/// globs whose directories may gain a file.
#[derive(Default)]
pub(crate) struct Watched {
    pub(crate) files: Vec<PathBuf>,
    pub(crate) globs: Vec<IncludeGlob>,
}

struct Reloader {
    state: Arc<AppState>,
    config_path: PathBuf,
    fingerprint: [u8; 32],
    fallback: FallbackKey,
    watcher: Option<RecommendedWatcher>,
    watched: BTreeSet<PathBuf>,
    /// See [`relevant_names`]; recomputed at every load.
    relevant: BTreeSet<OsString>,
    /// The `include` globs of the last load: a name one matches is relevant too.
    globs: Vec<IncludeGlob>,
}

impl Reloader {
    /// True when one of an event's paths names a file the config was read through.
    fn concerns_us(&self, paths: &[PathBuf]) -> bool {
        paths.iter().any(|p| {
            p.file_name().is_some_and(|n| {
                self.relevant.contains(n)
                    || n.to_str()
                        .is_some_and(|n| self.globs.iter().any(|g| g.matches(n)))
            })
        })
    }

    async fn run(&mut self, mut events: mpsc::UnboundedReceiver<Vec<PathBuf>>) {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP");
                None
            }
        };
        loop {
            let forced = tokio::select! {
                event = events.recv() => match event {
                    None => {
                        // The watcher is gone; only SIGHUP can reload from here on.
                        if let Some(h) = hangup.as_mut() { h.recv().await; } else { return; }
                        true
                    }
                    Some(paths) if self.concerns_us(&paths) => {
                        settle(&mut events).await;
                        false
                    }
                    Some(_) => continue,
                },
                Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    true
                }
            };
            self.reload(forced).await;
        }
    }

    /// Loads the file again; swaps it in when valid and changed (or when `forced`).
    async fn reload(&mut self, forced: bool) {
        let Some(mut loaded) = self.parse_and_validate().await else {
            return;
        };
        self.set_reload_error(None);
        self.watch(Watched {
            files: std::mem::take(&mut loaded.files),
            globs: std::mem::take(&mut loaded.globs),
        });
        if loaded.fingerprint == self.fingerprint && !forced {
            return;
        }
        let fallback = match self.fallback.for_config(&loaded) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "cannot apply the new configuration");
                return;
            }
        };
        let old = self.state.snapshot();
        let generation = old.generation + 1;
        let new = Registry::new(
            loaded.config,
            generation,
            self.state.clock.system_time(),
            fallback,
        )
        .with_fingerprint(&loaded.fingerprint);
        let changes = load::diff::diff(&old.side(), &new.side());
        // Before anyone is served by `new`: the tokens of removed clients and of
        // removed secrets, and the identities admitted by narrowed provider rules, end
        // for good. If the store cannot record it, `new` is not applied (a token of a
        // removed client must not outlive the removal); the next change or SIGHUP
        // tries again.
        if let Err(e) = end_removed(&self.state, &old, &new, &changes).await {
            tracing::error!(error = %e, "cannot record the clients whose tokens end; the new configuration is not applied");
            self.set_reload_error(Some(format!(
                "the new configuration is not applied: the clients it removes or re-keys could not be recorded ({e})"
            )));
            return;
        }
        self.fingerprint = loaded.fingerprint;
        self.state.verifier.retain_current(&new);
        announce(&old, &new, &changes);
        let endings = backchannel::fanout::reload_endings(&old, &new);
        let new = Arc::new(new);
        self.state.registry.store(new.clone());
        // The sessions its users' and clients' `tokens_not_before`, or a user's
        // removal, end: their clients are told (once across replicas).
        backchannel::fanout::tell_in_background(&self.state, &new, endings);
        // The old registry goes with the last request still holding it; what it
        // freed then goes back to the system.
        return_when_released(old);
    }

    /// Reads and validates the config tree off the async threads; a rejected one is
    /// logged, counted, kept for `/readyz`, and its files still watched.
    async fn parse_and_validate(&mut self) -> Option<Loaded> {
        let path = self.config_path.clone();
        let loaded = match on_loader_thread(move || load_config(&path)).await {
            Ok(result) => result,
            Err(e) => {
                tracing::error!(error = %e, "config reload task failed");
                return None;
            }
        };
        let rejected = match loaded {
            Ok(loaded) => return Some(loaded),
            Err(rejected) => rejected,
        };
        for d in rejected.diagnostics.iter().filter(|d| d.issue.is_error()) {
            tracing::error!("{d}");
        }
        metrics::counter!("gatehouse_config_reloads_total", "result" => "rejected").increment(1);
        tracing::error!(
            event = "config_reloaded",
            result = "rejected",
            "the new configuration is invalid; still serving generation {}",
            self.state.snapshot().generation
        );
        self.set_reload_error(Some(rejected.to_string()));
        self.watch(Watched {
            files: rejected.files,
            globs: rejected.globs,
        });
        None
    }

    /// What `/readyz` says of the last reload: `None` once one was applied.
    fn set_reload_error(&self, error: Option<String>) {
        *self
            .state
            .last_reload_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = error;
    }

    /// Watches the directories holding the files and those the globs read (adding
    /// any new ones), and reacts from now on to changes of these files, and to files
    /// the globs match, only.
    fn watch(&mut self, watched: Watched) {
        self.relevant = relevant_names(&watched.files);
        self.globs = watched.globs;
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        let dirs = watched
            .files
            .iter()
            .map(|file| {
                file.parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
            })
            .chain(self.globs.iter().map(IncludeGlob::dir));
        for dir in dirs {
            if self.watched.contains(dir) {
                continue;
            }
            match watcher.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(dir.to_owned());
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory")
                }
            }
        }
    }
}

/// Records, for every credential of a client of `old` that `new` no longer lists (a
/// secret removed from the list, the client removed, a public client made
/// confidential), that the tokens issued under it until now no longer stand, and, for
/// every provider whose rules `changes` narrow, that the identities they admitted
/// until now no longer stand; for as long as any token of either generation can
/// live. A secret only added, or rules only widened, end nothing.
async fn end_removed(
    state: &AppState,
    old: &Registry,
    new: &Registry,
    changes: &[load::diff::Change],
) -> Result<(), StoreError> {
    let longest = old.longest_token_ttl().max(new.longest_token_ttl());
    for provider in load::diff::narrowed_providers(changes) {
        standing::end_admissions(state, provider, longest).await?;
    }
    for before in old.clients() {
        let id = &before.id;
        let now = new.client(id);
        for credential in before.credentials() {
            if !now.is_some_and(|c| c.accepts_credential(credential.as_ref())) {
                standing::end_credential(state, id, credential.as_ref(), longest).await?;
            }
        }
    }
    Ok(())
}

/// Logs and counts an applied reload from `old` to `new`: the one-line diff, and the
/// settings that change only at the next restart.
fn announce(old: &Registry, new: &Registry, changes: &[load::diff::Change]) {
    if new.server.bind != old.server.bind {
        tracing::warn!(old = %old.server.bind, new = %new.server.bind, "[server] bind changed; it takes effect at the next restart");
    }
    if new.store != old.store {
        tracing::warn!(
            old = %old.store.backend.redacted(),
            new = %new.store.backend.redacted(),
            old_prefix = %old.store.key_prefix,
            new_prefix = %new.store.key_prefix,
            "[store] changed; it takes effect at the next restart"
        );
    }
    metrics::counter!("gatehouse_config_reloads_total", "result" => "applied").increment(1);
    tracing::info!(
        event = "config_reloaded",
        result = "applied",
        generation = new.generation,
        config_sha256 = new.config_sha256.as_deref().unwrap_or_default(),
        clients = new.clients().len(),
        users = new.user_count(),
        keys = new.keys.all().len(),
        widens = changes
            .iter()
            .filter(|c| c.mark == load::diff::Mark::Widens)
            .count(),
        credentials_replaced = changes
            .iter()
            .filter(|c| c.mark == load::diff::Mark::CredentialReplaced)
            .count(),
        "configuration reloaded: {}",
        load::diff::one_line(changes)
    );
}

#[cfg(test)]
mod tests {
    use crate::reload::on_loader_thread;

    /// Loads run on one thread, not the caller's, which outlives a load that panics.
    #[tokio::test]
    async fn loads_run_on_the_loader_thread_which_survives_a_panic() {
        let name = || std::thread::current().name().map(str::to_owned);
        let first = on_loader_thread(name).await.expect("a load");
        assert_eq!(first.as_deref(), Some("gatehouse-loader"));
        let panicked = on_loader_thread(|| -> u8 { panic!("a load that panics") }).await;
        assert!(panicked.is_err());
        let again = on_loader_thread(move || (name(), 7)).await.expect("a load");
        assert_eq!(again, (first, 7));
    }
}
