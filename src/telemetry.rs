//! Logging setup: tracing, human-readable by default, JSON with
//! `[DEFAULT] use_json = true`, `debug` honoured, to stderr or
//! `log_file` / `log_dir`; and the request id of the request being served,
//! for the clients that pass it on (Keystone, the backend).

mod oslo_format;

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use std::io::IsTerminal;

use tracing_subscriber::fmt::{self, writer::BoxMakeWriter};
use tracing_subscriber::prelude::*;
use tracing_subscriber::{reload, EnvFilter, Registry};

tokio::task_local! {
    /// The request this task is serving.
    static SERVING: Serving;
}

/// A request being served: its `req-<uuid>`, and what its stages have
/// learned of it for its access-log line and metrics.
struct Serving {
    id: Arc<str>,
    learned: Cell<Learned>,
}

/// What the stages learned of a request, as the labels of its access-log
/// line and metrics: the route's name, and how far it got in deciding who
/// may do what. `None` until a stage says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Learned {
    pub(crate) route: Option<&'static str>,
    pub(crate) access: Option<&'static str>,
}

/// Runs `f` (a request's handling) with `id` as its request id, and
/// returns what its stages learned ([`learn`]). Awaited by the actix
/// worker serving the request, that is on a tokio `LocalSet` (which
/// [`spawn`] relies on).
pub(crate) async fn with_request_id<F: std::future::Future>(
    id: Arc<str>,
    f: F,
) -> (F::Output, Learned) {
    let serving = Serving {
        id,
        learned: Cell::default(),
    };
    let mut fut = std::pin::pin!(SERVING.scope(serving, f));
    let out = fut.as_mut().await;
    let learned = fut
        .as_mut()
        .take_value()
        .map_or_else(Learned::default, |s| s.learned.get());
    (out, learned)
}

/// Records what a stage learned of the request this task serves (nothing
/// outside one): `route`, when given, and `access`.
pub(crate) fn learn(route: Option<&'static str>, access: &'static str) {
    let _ = SERVING.try_with(|s| {
        let mut l = s.learned.get();
        l.route = route.or(l.route);
        l.access = Some(access);
        s.learned.set(l);
    });
}

/// Spawns `task` (a backend connection's) on this thread. Within a
/// request's handling, on the `LocalSet` of the actix worker serving it,
/// where the request's own task runs: a wake-up between the two is then
/// answered in the same round of the scheduler, whereas from a task of the
/// runtime's own queue it costs the thread a round through the I/O driver
/// (an `epoll_wait`) before the request's task runs. Elsewhere (background
/// tasks), on the runtime.
pub(crate) fn spawn<F>(task: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    if SERVING.try_with(|_| ()).is_ok() {
        tokio::task::spawn_local(task);
    } else {
        tokio::spawn(task);
    }
}

/// The request id of the request being served, if this runs for one (not
/// in background tasks such as health checks).
pub(crate) fn request_id() -> Option<Arc<str>> {
    SERVING.try_with(|s| s.id.clone()).ok()
}

/// What oslo.log's options say about where and how to log.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogOptions {
    pub(crate) debug: bool,
    pub(crate) use_json: bool,
    /// Full path of the log file, if any.
    pub(crate) log_file: Option<PathBuf>,
    /// A `tracing` filter that overrides `debug` (e.g. from `--log-level`).
    pub(crate) level: Option<String>,
    /// Without a log file: standard error when set, else standard output
    /// (oslo.log's `use_stderr`).
    pub(crate) use_stderr: bool,
    /// `logging_context_format_string` (plain text, within a request).
    pub(crate) context_format: String,
    /// `logging_default_format_string` (plain text, outside a request).
    pub(crate) default_format: String,
}

/// Changes the log level of the running service (SIGHUP re-reads `debug`).
pub(crate) struct LogHandle {
    handle: reload::Handle<EnvFilter, Registry>,
    level: Option<String>,
}

impl LogHandle {
    /// Applies `[DEFAULT] debug` again (unless a fixed level or `AETOS_LOG`
    /// was given at start).
    pub(crate) fn set_debug(&self, debug: bool) -> Result<(), String> {
        if self.level.is_some() || std::env::var_os("AETOS_LOG").is_some() {
            return Ok(());
        }
        self.handle
            .reload(filter_for(None, debug))
            .map_err(|e| e.to_string())
    }
}

fn filter_for(level: Option<&str>, debug: bool) -> EnvFilter {
    let default = level.unwrap_or(if debug { "debug" } else { "info" });
    // Dependencies are chatty at debug; keep them at warn unless asked.
    EnvFilter::new(format!("warn,aetos={default},aetos_api={default}"))
}

/// Installs the global subscriber. `AETOS_LOG` (a tracing filter) overrides
/// the level chosen by the options. Returns an error message when the log
/// file cannot be opened.
pub(crate) fn init_logging(opts: &LogOptions) -> Result<LogHandle, String> {
    let filter = EnvFilter::try_from_env("AETOS_LOG")
        .unwrap_or_else(|_| filter_for(opts.level.as_deref(), opts.debug));
    let (filter, handle) = reload::Layer::new(filter);
    let (writer, ansi) = match &opts.log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("[DEFAULT] log_file: cannot open {}: {e}", path.display()))?;
            (BoxMakeWriter::new(Mutex::new(file)), false)
        }
        // Colours only for a person at a terminal, never in files or journald.
        None if opts.use_stderr => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::stderr().is_terminal(),
        ),
        None => (
            BoxMakeWriter::new(std::io::stdout),
            std::io::stdout().is_terminal(),
        ),
    };
    let layer = fmt::layer()
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(writer);
    let layer = if opts.use_json {
        layer.json().boxed()
    } else {
        // oslo.log's line, so that OpenStack log pipelines parse it.
        layer
            .with_ansi(false)
            .event_format(oslo_format::OsloFormat::new(
                &opts.context_format,
                &opts.default_format,
            ))
            .boxed()
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(oslo_format::RequestIds)
        .with(layer)
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))?;
    Ok(LogHandle {
        handle,
        level: opts.level.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the running task is polled by a `LocalSet` (where
    /// `spawn_local` is allowed; it panics elsewhere).
    fn on_local_set() -> bool {
        std::panic::catch_unwind(|| drop(tokio::task::spawn_local(async {}))).is_ok()
    }

    async fn spawned_on_local_set() -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        spawn(async move {
            let _ = tx.send(on_local_set());
        });
        rx.await.expect("the spawned task ran")
    }

    #[actix_web::test]
    async fn within_a_request_a_task_is_spawned_beside_it_on_the_workers_local_set() {
        assert!(
            with_request_id("req-1".into(), spawned_on_local_set())
                .await
                .0
        );
        // Outside a request's handling, even on this thread: the runtime's queue.
        assert!(!spawned_on_local_set().await);
    }

    #[tokio::test]
    async fn what_the_stages_learn_of_a_request_is_returned_with_its_answer() {
        let (out, learned) = with_request_id("req-2".into(), async {
            assert_eq!(request_id().as_deref(), Some("req-2"));
            learn(Some("query"), "unauthenticated");
            learn(None, "scoped");
            7
        })
        .await;
        assert_eq!(out, 7);
        assert_eq!(
            learned,
            Learned {
                route: Some("query"),
                access: Some("scoped")
            }
        );
        let (_, nothing) = with_request_id("req-3".into(), async {}).await;
        assert_eq!(nothing, Learned::default());
        // Outside a request: nothing to record, no panic.
        learn(Some("query"), "scoped");
        assert_eq!(request_id(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn background_tasks_are_spawned_on_the_runtime() {
        assert!(!spawned_on_local_set().await);
    }
}
