//! The policy enforcer: the compiled rule set, its hot-path decision, and
//! reloading when the operator's files change.
//!
//! The compiled rules live in an immutable `State` behind an
//! `RwLock<Arc<State>>`; a decision clones the `Arc` (no lock held while
//! evaluating) and reloads swap in a new `State`, so enforcement never waits
//! for file I/O. At most once per check interval (1 s by default) one
//! enforcing thread stats the policy files and, if anything changed,
//! re-reads them. A reload that fails leaves the enforcer failing closed
//! (every decision denies) until the files are fixed.

use super::defaults::defaults;
use super::eval::{decide, Ctx};
use super::file::{self, Fingerprint, RuleSpec};
use super::parser::{parse_legacy, parse_rule, Check};
use super::{PolicyError, PolicyOptions};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Default time between two looks at the policy files' modification times.
const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// One compiled rule set plus what is needed to notice that it is stale.
#[derive(Debug, Clone)]
struct State {
    /// Rule names by slot: registered defaults first, then file-only rules.
    names: Vec<String>,
    /// The effective check string of each slot.
    texts: Vec<String>,
    /// The compiled check of each slot; `None` when it failed to compile.
    checks: Vec<Option<Check>>,
    /// Why a slot failed to compile.
    errors: Vec<Option<String>>,
    /// Registered scope types of each slot (empty: not scope-checked).
    scopes: Vec<&'static [&'static str]>,
    /// Slot of each rule name.
    index: HashMap<String, usize>,
    /// Slots in oslo's effective-policy order: file rules, then the rest.
    order: Vec<usize>,
    /// Slot of `policy_default_rule`, if such a rule exists.
    default_slot: Option<usize>,
    /// Files the overrides were read from.
    files: Vec<PathBuf>,
    /// Files of the policy directories, watched individually.
    dir_files: Vec<PathBuf>,
    /// Stamps of everything watched, taken before the files were read.
    fingerprint: Fingerprint,
    /// Set when the last (re)load failed: every decision denies.
    failure: Option<String>,
    /// Unique per installed rule set (process-wide), for [`Decisions`].
    generation: u64,
}

/// Source of [`State::generation`].
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

impl State {
    /// Compiles the defaults merged with `overrides` (later entries win).
    fn compile(overrides: &[(String, RuleSpec)], default_rule: &str) -> State {
        let mut names = Vec::new();
        let mut scopes: Vec<&'static [&'static str]> = Vec::new();
        let mut specs = Vec::new();
        let mut index = HashMap::new();
        for d in defaults() {
            index.insert(d.name.to_string(), names.len());
            names.push(d.name.to_string());
            scopes.push(d.scope_types);
            specs.push(RuleSpec::Text(d.check_str.to_string()));
        }
        let registered = names.len();
        let mut overridden = HashSet::new();
        let mut order = Vec::new();
        for (name, spec) in overrides {
            let slot = match index.get(name) {
                Some(&slot) => {
                    specs[slot] = spec.clone();
                    slot
                }
                None => {
                    let slot = names.len();
                    index.insert(name.clone(), slot);
                    names.push(name.clone());
                    scopes.push(&[]);
                    specs.push(spec.clone());
                    slot
                }
            };
            if overridden.insert(slot) {
                order.push(slot);
            }
        }
        order.extend((0..registered).filter(|s| !overridden.contains(s)));

        let mut texts = Vec::with_capacity(specs.len());
        let mut checks = Vec::with_capacity(specs.len());
        let mut errors = Vec::with_capacity(specs.len());
        for spec in &specs {
            let (text, parsed) = match spec {
                RuleSpec::Text(t) => (t.clone(), parse_rule(t)),
                RuleSpec::Legacy(list) => {
                    let parsed = parse_legacy(list);
                    let text = match &parsed {
                        Ok(c) => c.to_string(),
                        Err(_) => format!("{list:?}"),
                    };
                    (text, parsed)
                }
            };
            texts.push(text);
            match parsed {
                Ok(c) => {
                    checks.push(Some(c));
                    errors.push(None);
                }
                Err(e) => {
                    checks.push(None);
                    errors.push(Some(e));
                }
            }
        }
        for c in checks.iter_mut().flatten() {
            resolve_refs(c, &index);
        }
        let edges: Vec<Vec<usize>> = checks
            .iter()
            .map(|c| {
                let mut out = Vec::new();
                if let Some(c) = c {
                    collect_refs(c, &mut out);
                }
                out.sort_unstable();
                out.dedup();
                out
            })
            .collect();
        for component in cycles(&edges) {
            let members: Vec<&str> = component.iter().map(|&s| names[s].as_str()).collect();
            let message = format!(
                "rule references form a cycle ({}); every rule in it denies",
                members.join(" -> ")
            );
            for &s in &component {
                checks[s] = None;
                errors[s] = Some(message.clone());
            }
        }
        for (slot, err) in errors.iter().enumerate() {
            if let Some(err) = err {
                tracing::error!(
                    rule = %names[slot],
                    check_str = %texts[slot],
                    "policy rule cannot be used and denies every request: {err}"
                );
            }
        }
        let default_slot = index.get(default_rule).copied();
        State {
            names,
            texts,
            checks,
            errors,
            scopes,
            index,
            order,
            default_slot,
            files: Vec::new(),
            dir_files: Vec::new(),
            fingerprint: Vec::new(),
            failure: None,
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The decision for `rule`. Denies on any failure.
    fn decide(&self, rule: &str, target: &Value, creds: &Value, enforce_scope: bool) -> bool {
        if self.failure.is_some() {
            return false;
        }
        let (slot, scopes) = match self.index.get(rule) {
            Some(&slot) => (slot, self.scopes.get(slot).copied().unwrap_or(&[])),
            // oslo: an unregistered rule falls back to the default rule,
            // without a scope check; no default rule means deny.
            None => match self.default_slot {
                Some(slot) => (slot, &[][..]),
                None => return false,
            },
        };
        if !scopes.is_empty() && !scopes.contains(&token_scope(creds)) {
            if enforce_scope {
                return false;
            }
            tracing::debug!(
                rule,
                scope = token_scope(creds),
                "token scope is not one of the rule's scope types; allowed because enforce_scope is off"
            );
        }
        match self.checks.get(slot) {
            Some(Some(check)) => decide(check, &Ctx::new(target, creds, &self.checks)),
            _ => false,
        }
    }
}

/// The scope of the token behind `creds`, as oslo.policy derives it.
fn token_scope(creds: &Value) -> &'static str {
    if truthy(creds.get("system")) || truthy(creds.get("system_scope")) {
        "system"
    } else if truthy(creds.get("domain_id")) {
        "domain"
    } else {
        "project"
    }
}

/// Python truthiness of an optional JSON value.
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// Points every `rule:NAME` at NAME's slot (left `None` when unknown).
fn resolve_refs(check: &mut Check, index: &HashMap<String, usize>) {
    match check {
        Check::Rule { name, slot } => *slot = index.get(name.as_str()).copied(),
        Check::Not(inner) => resolve_refs(inner, index),
        Check::And(items) | Check::Or(items) => {
            for c in items {
                resolve_refs(c, index);
            }
        }
        Check::True | Check::False | Check::Role(_) | Check::Generic { .. } => {}
    }
}

/// The slots `check` refers to.
fn collect_refs(check: &Check, out: &mut Vec<usize>) {
    match check {
        Check::Rule { slot: Some(s), .. } => out.push(*s),
        Check::Not(inner) => collect_refs(inner, out),
        Check::And(items) | Check::Or(items) => {
            for c in items {
                collect_refs(c, out);
            }
        }
        _ => {}
    }
}

/// The strongly connected components of the reference graph that contain a
/// cycle (Tarjan's algorithm, iterative so a long chain cannot overflow the
/// stack).
fn cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const UNSEEN: usize = usize::MAX;
    let n = edges.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0usize;
    let mut out = Vec::new();
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        let mut calls: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&(v, ei)) = calls.last() {
            if let Some(&w) = edges[v].get(ei) {
                if let Some(top) = calls.last_mut() {
                    top.1 += 1;
                }
                if w >= n {
                    continue;
                }
                if index[w] == UNSEEN {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                calls.pop();
                if let Some(&(u, _)) = calls.last() {
                    low[u] = low[u].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 || edges[v].contains(&v) {
                        component.reverse();
                        out.push(component);
                    }
                }
            }
        }
    }
    out
}

/// Shared state behind every clone of an [`Enforcer`].
#[derive(Debug)]
struct Inner {
    opts: PolicyOptions,
    state: RwLock<Arc<State>>,
    /// Zero point for the millisecond clock below.
    epoch: Instant,
    /// When (ms since `epoch`) the files may next be stat'ed.
    next_check_ms: AtomicU64,
    /// Milliseconds between two stat rounds.
    interval_ms: AtomicU64,
    /// Serialises reloads (the hot path only ever `try_lock`s it).
    reload_lock: Mutex<()>,
}

/// Decides oslo.policy rules for requests.
///
/// Cheap to clone (an `Arc` inside), `Send + Sync`; every clone sees the
/// same rules and reloads.
#[derive(Debug, Clone)]
pub struct Enforcer {
    inner: Arc<Inner>,
}

impl Enforcer {
    /// Loads the defaults merged with the operator's policy files.
    ///
    /// A missing policy file or directory means "defaults only"; a present
    /// file that cannot be read or parsed is an error (the service should
    /// refuse to start).
    pub fn new(opts: PolicyOptions) -> Result<Enforcer, PolicyError> {
        let state = load_state(&opts).map_err(|(err, _, _)| err)?;
        let interval_ms = u64::try_from(DEFAULT_CHECK_INTERVAL.as_millis()).unwrap_or(1000);
        let inner = Inner {
            opts,
            state: RwLock::new(Arc::new(state)),
            epoch: Instant::now(),
            next_check_ms: AtomicU64::new(interval_ms),
            interval_ms: AtomicU64::new(interval_ms),
            reload_lock: Mutex::new(()),
        };
        Ok(Enforcer {
            inner: Arc::new(inner),
        })
    }

    /// Decides whether `creds` may perform `rule` on `target`.
    ///
    /// Never panics; any failure to decide (unknown rule without a default
    /// rule, a broken rule, a failed reload, a token scope the rule does not
    /// accept) returns `false`.
    pub fn enforce(&self, rule: &str, target: &Value, creds: &Value) -> bool {
        self.maybe_reload();
        let state = self.snapshot();
        state.decide(rule, target, creds, self.inner.opts.enforce_scope)
    }

    /// [`Enforcer::enforce`], with the generation of the rule set that
    /// decided (see [`Enforcer::generation`]).
    pub fn enforce_in_generation(&self, rule: &str, target: &Value, creds: &Value) -> (bool, u64) {
        self.maybe_reload();
        let state = self.snapshot();
        let allowed = state.decide(rule, target, creds, self.inner.opts.enforce_scope);
        (allowed, state.generation)
    }

    /// Which rule set is in force: unique per loaded (or failed) rule set,
    /// process-wide, so a decision remembered under one generation is the
    /// decision of the rules in force while it is current.
    pub fn generation(&self) -> u64 {
        self.maybe_reload();
        self.snapshot().generation
    }

    /// Re-reads the policy files now (SIGHUP). On failure every decision
    /// denies until a later reload succeeds, and the error is returned.
    pub fn reload(&self) -> Result<(), PolicyError> {
        let _guard = self
            .inner
            .reload_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.reload_locked()
    }

    /// The effective policy: every rule with the check string in force, in
    /// oslopolicy-policy-generator's order (rules from files first, then
    /// the registered defaults not overridden).
    pub fn effective_rules(&self) -> Vec<(String, String)> {
        self.maybe_reload();
        let state = self.snapshot();
        state
            .order
            .iter()
            .map(|&s| (state.names[s].clone(), state.texts[s].clone()))
            .collect()
    }

    /// The policy files the rules in force were read from, in reading order.
    pub fn policy_files(&self) -> Vec<PathBuf> {
        self.snapshot().files.clone()
    }

    /// Rules that cannot be used (parse error, `rule:` cycle) with the
    /// reason; each denies every request. `check-config` reports these.
    pub fn broken_rules(&self) -> Vec<(String, String)> {
        let state = self.snapshot();
        state
            .order
            .iter()
            .filter_map(|&s| {
                state.errors[s]
                    .as_ref()
                    .map(|e| (state.names[s].clone(), e.clone()))
            })
            .collect()
    }

    /// Why the enforcer is failing closed (the last reload's error), if it
    /// is.
    pub fn load_error(&self) -> Option<String> {
        self.snapshot().failure.clone()
    }

    /// Sets how often `enforce` looks at the files' modification times
    /// (default one second). Zero means on every call (tests).
    pub fn set_reload_check_interval(&self, interval: Duration) {
        let ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        self.inner.interval_ms.store(ms, Ordering::Relaxed);
        self.inner.next_check_ms.store(0, Ordering::Relaxed);
    }

    /// The rule set in force.
    fn snapshot(&self) -> Arc<State> {
        self.inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn install(&self, mut state: State) {
        state.generation = GENERATIONS.fetch_add(1, Ordering::Relaxed);
        *self
            .inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(state);
    }

    /// Milliseconds since the enforcer was created.
    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The throttled change check on the hot path: at most one caller per
    /// interval stats the files, and only a change triggers a reload.
    fn maybe_reload(&self) {
        let now = self.now_ms();
        let due = self.inner.next_check_ms.load(Ordering::Relaxed);
        if now < due {
            return;
        }
        let interval = self.inner.interval_ms.load(Ordering::Relaxed);
        if self
            .inner
            .next_check_ms
            .compare_exchange(
                due,
                now.saturating_add(interval),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return;
        }
        let _guard = match self.inner.reload_lock.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            // Someone is reloading right now.
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        let state = self.snapshot();
        let opts = &self.inner.opts;
        let current = file::fingerprint(
            &opts.policy_file,
            &opts.policy_dirs,
            &opts.config_dirs,
            &state.dir_files,
        );
        if current != state.fingerprint {
            tracing::info!("policy files changed on disk; reloading");
            // Errors are logged and leave the enforcer failing closed.
            let _ = self.reload_locked();
        }
    }

    /// Reloads; the caller holds `reload_lock`.
    fn reload_locked(&self) -> Result<(), PolicyError> {
        match load_state(&self.inner.opts) {
            Ok(state) => {
                let recovered = self.snapshot().failure.is_some();
                self.install(state);
                if recovered {
                    tracing::info!("policy reloaded; the policy files are valid again");
                } else {
                    tracing::info!("policy reloaded");
                }
                Ok(())
            }
            Err((err, dir_files, fingerprint)) => {
                tracing::error!(
                    "policy reload failed; denying every request until the policy files are fixed: {err}"
                );
                let mut state = (*self.snapshot()).clone();
                state.failure = Some(err.to_string());
                state.dir_files = dir_files;
                state.fingerprint = fingerprint;
                self.install(state);
                Err(err)
            }
        }
    }
}

/// Reads and compiles the rules. The watched stamps are taken before any
/// file is read, so an edit racing with the load triggers another reload.
/// On error, also returns the watch list, so the broken state is re-checked
/// only once something changes again.
fn load_state(opts: &PolicyOptions) -> Result<State, (PolicyError, Vec<PathBuf>, Fingerprint)> {
    let dir_files = file::scan_dir_files(&opts.policy_dirs, &opts.config_dirs);
    let fingerprint = file::fingerprint(
        &opts.policy_file,
        &opts.policy_dirs,
        &opts.config_dirs,
        &dir_files,
    );
    match file::load(&opts.policy_file, &opts.policy_dirs, &opts.config_dirs) {
        Ok(overrides) => {
            let mut state = State::compile(&overrides.rules, &opts.default_rule);
            state.files = overrides.files;
            state.dir_files = dir_files;
            state.fingerprint = fingerprint;
            Ok(state)
        }
        Err(e) => Err((e, dir_files, fingerprint)),
    }
}

#[cfg(test)]
mod tests;
