//! The durable journal of batches: an embedded SQLite database (WAL, `synchronous=FULL`)
//! written before each gateway call (its *intent*) and after it (its *outcome*); every write
//! method returns only once its write is committed and on disk, so it is durable before the
//! next step starts. The one exception, [`Journal::identify_deferred`], records what no call
//! depends on (a document's identificativoDoc before its first call) and becomes durable with
//! the next durable write, at the latest that first call's intent.
//!
//! Group commit: writes of concurrent workers that arrive while a commit is being synced join
//! one transaction, committed (one `fsync`) by the last of them to arrive; each returns only
//! after that commit. Durability per write is unchanged, the number of syncs per document
//! shrinks with the number of workers (a sync costs milliseconds on a real disk, and the
//! journal is the one point all workers share).
//!
//! Operators can query it with the `sqlite3` tool. Schema (see also `crates/cart/JOURNAL.md`):
//!
//! ```sql
//! CREATE TABLE batch (
//!     id          INTEGER PRIMARY KEY,
//!     input_dir   TEXT NOT NULL,          -- the directory given to `fse batch publish`
//!     options     TEXT NOT NULL,          -- JSON: id policy, defaults, gateway, output_dir
//!     started_at  TEXT NOT NULL,          -- RFC 3339 UTC
//!     finished_at TEXT                    -- NULL while running or interrupted
//! );
//! CREATE TABLE document (
//!     id         INTEGER PRIMARY KEY,
//!     batch_id   INTEGER NOT NULL REFERENCES batch(id),
//!     name       TEXT NOT NULL,           -- path under input_dir without extension
//!     source     TEXT NOT NULL,           -- the .json or .xml file the CDA comes from
//!     pdf        TEXT,                    -- the NAME.pdf used, NULL when rendered
//!     id_doc     TEXT,                    -- identificativoDoc sent to the gateway
//!     state      TEXT NOT NULL,           -- pending|…|published|failed|skipped
//!     reason     TEXT,                    -- why it failed
//!     updated_at TEXT NOT NULL,
//!     UNIQUE (batch_id, name)
//! );
//! CREATE TABLE call (
//!     id                   INTEGER PRIMARY KEY,
//!     document_id          INTEGER NOT NULL REFERENCES document(id),
//!     operation            TEXT NOT NULL, -- validation|create|status|…
//!     started_at           TEXT NOT NULL, -- intent, written before the request is sent
//!     finished_at          TEXT,          -- outcome; NULL = no outcome recorded (crash)
//!     http_status          INTEGER,       -- NULL when no answer arrived
//!     x_cart_id            TEXT,
//!     trace_id             TEXT,
//!     span_id              TEXT,
//!     workflow_instance_id TEXT,
//!     problem_type         TEXT,          -- problem+json `type` of a refusal
//!     error                TEXT           -- detail of a refusal, or the transport error
//! );
//! CREATE INDEX call_document ON call(document_id);
//! CREATE INDEX document_id_doc ON document(id_doc);
//! ```
//!
//! Single gateway calls (`gateway_call`) and calls to other CART services (`cart_call`) have
//! tables of their own with the same outcome columns (see `JOURNAL.md`).

pub mod export;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

pub use export::{data_json, to_csv, DataJson, DataJsonResult};

/// The `error` of a status query that found the document published, also appended to the
/// `error` of the create it settled.
pub const SETTLED_PUBLISHED: &str = "settled: Published";

/// The `error` of a status query that found the document not published.
pub const SETTLED_NOT_PUBLISHED: &str = "settled: NotPublished";

/// Journal file name used when only a configuration file or directory is known.
pub const JOURNAL_FILE: &str = "fse-journal.sqlite";

/// Errors of the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// SQLite.
    #[error("journal {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// No such batch or document.
    #[error("{0}")]
    NotFound(String),
    /// Export encoding.
    #[error("export: {0}")]
    Export(String),
    /// The commit of a group of writes (this one among them) failed: nothing of it is durable.
    #[error("journal {path}: commit failed: {message}")]
    Commit {
        /// The database file.
        path: PathBuf,
        /// The cause.
        message: String,
    },
}

/// State of a document in the per-document pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocState {
    /// Registered, nothing done yet.
    Pending,
    /// CDA built (or read).
    Built,
    /// CDA injected into the PDF.
    Injected,
    /// Accepted by the gateway's validation.
    ValidatedRemote,
    /// PAdES-signed.
    Signed,
    /// Published (terminal).
    Published,
    /// Failed (terminal), with a reason.
    Failed,
    /// Not sent: an earlier batch published it to the same gateway (terminal; the reason
    /// names that batch).
    Skipped,
}

impl DocState {
    /// Every state.
    pub const ALL: [DocState; 8] = [
        DocState::Pending,
        DocState::Built,
        DocState::Injected,
        DocState::ValidatedRemote,
        DocState::Signed,
        DocState::Published,
        DocState::Failed,
        DocState::Skipped,
    ];

    /// The name stored in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            DocState::Pending => "pending",
            DocState::Built => "built",
            DocState::Injected => "injected",
            DocState::ValidatedRemote => "validated_remote",
            DocState::Signed => "signed",
            DocState::Published => "published",
            DocState::Failed => "failed",
            DocState::Skipped => "skipped",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<DocState> {
        DocState::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Whether no further step follows.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            DocState::Published | DocState::Failed | DocState::Skipped
        )
    }
}

impl std::fmt::Display for DocState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// HTTP status (`None`: no answer).
    pub http_status: Option<u16>,
    /// `X-CART-id`.
    pub x_cart_id: Option<String>,
    /// `traceID`.
    pub trace_id: Option<String>,
    /// `spanID`.
    pub span_id: Option<String>,
    /// `workflowInstanceId`.
    pub workflow_instance_id: Option<String>,
    /// problem+json `type`.
    pub problem_type: Option<String>,
    /// Refusal detail or transport error.
    pub error: Option<String>,
}

/// A batch row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchRow {
    /// Id.
    pub id: i64,
    /// Input directory.
    pub input_dir: String,
    /// Options (JSON text).
    pub options: String,
    /// Start.
    pub started_at: String,
    /// End, if finished.
    pub finished_at: Option<String>,
}

/// A document row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentRow {
    /// Id.
    pub id: i64,
    /// Batch.
    pub batch_id: i64,
    /// Name (path under the input directory, without extension).
    pub name: String,
    /// Source file.
    pub source: String,
    /// PDF file, if one was given.
    pub pdf: Option<String>,
    /// identificativoDoc.
    pub id_doc: Option<String>,
    /// State.
    pub state: DocState,
    /// Failure reason.
    pub reason: Option<String>,
    /// Last change.
    pub updated_at: String,
}

/// A call row joined with its document: the export record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    /// Call id.
    pub call_id: i64,
    /// Batch id.
    pub batch_id: i64,
    /// Document name.
    pub document: String,
    /// identificativoDoc.
    pub id_doc: Option<String>,
    /// Operation name (`validation`, `create`, `status`).
    pub operation: String,
    /// HTTP status.
    pub http_status: Option<u16>,
    /// `X-CART-id`.
    pub x_cart_id: Option<String>,
    /// `traceID`.
    pub trace_id: Option<String>,
    /// `spanID`.
    pub span_id: Option<String>,
    /// `workflowInstanceId`.
    pub workflow_instance_id: Option<String>,
    /// problem+json `type`.
    pub problem_type: Option<String>,
    /// Error detail.
    pub error: Option<String>,
    /// Intent time.
    pub started_at: String,
    /// Outcome time (`None`: no outcome recorded).
    pub finished_at: Option<String>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS batch (
    id INTEGER PRIMARY KEY,
    input_dir TEXT NOT NULL,
    options TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS document (
    id INTEGER PRIMARY KEY,
    batch_id INTEGER NOT NULL REFERENCES batch(id),
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    pdf TEXT,
    id_doc TEXT,
    state TEXT NOT NULL,
    reason TEXT,
    updated_at TEXT NOT NULL,
    UNIQUE (batch_id, name)
);
CREATE TABLE IF NOT EXISTS call (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES document(id),
    operation TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    http_status INTEGER,
    x_cart_id TEXT,
    trace_id TEXT,
    span_id TEXT,
    workflow_instance_id TEXT,
    problem_type TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS call_document ON call(document_id);
CREATE INDEX IF NOT EXISTS document_id_doc ON document(id_doc);
CREATE TABLE IF NOT EXISTS gateway_call (
    id INTEGER PRIMARY KEY,
    operation TEXT NOT NULL,
    id_doc TEXT,
    file TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    http_status INTEGER,
    x_cart_id TEXT,
    trace_id TEXT,
    span_id TEXT,
    workflow_instance_id TEXT,
    problem_type TEXT,
    error TEXT
);
CREATE TABLE IF NOT EXISTS cart_call (
    id INTEGER PRIMARY KEY,
    operation TEXT NOT NULL,
    api TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    http_status INTEGER,
    x_cart_id TEXT,
    trace_id TEXT,
    span_id TEXT,
    workflow_instance_id TEXT,
    problem_type TEXT,
    error TEXT
);
";

/// A single gateway call (`fse gateway …`), journaled like a batch call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayCallRecord {
    /// Id.
    pub id: i64,
    /// Operation name (`validation`, `create`, `replace`, `metadata`, `delete`, `status`,
    /// `status-search`).
    pub operation: String,
    /// The body's `identificativoDoc`, else the path's `idDoc` or queried id.
    pub id_doc: Option<String>,
    /// The PDF file sent.
    pub file: Option<String>,
    /// Intent time.
    pub started_at: String,
    /// Outcome time (`None`: no outcome recorded).
    pub finished_at: Option<String>,
    /// HTTP status.
    pub http_status: Option<u16>,
    /// `X-CART-id`.
    pub x_cart_id: Option<String>,
    /// `traceID`.
    pub trace_id: Option<String>,
    /// `spanID`.
    pub span_id: Option<String>,
    /// `workflowInstanceId`.
    pub workflow_instance_id: Option<String>,
    /// problem+json `type`.
    pub problem_type: Option<String>,
    /// Error detail.
    pub error: Option<String>,
}

/// A call to another CART service (`fse cart call`), journaled like a batch call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CartCallRecord {
    /// Id.
    pub id: i64,
    /// `cart-call`.
    pub operation: String,
    /// The API name (or base URL) called.
    pub api: String,
    /// HTTP method.
    pub method: String,
    /// Path under the API's base URL.
    pub path: String,
    /// Intent time.
    pub started_at: String,
    /// Outcome time (`None`: no outcome recorded).
    pub finished_at: Option<String>,
    /// HTTP status.
    pub http_status: Option<u16>,
    /// `X-CART-id`.
    pub x_cart_id: Option<String>,
    /// `traceID`.
    pub trace_id: Option<String>,
    /// `spanID`.
    pub span_id: Option<String>,
    /// `workflowInstanceId`.
    pub workflow_instance_id: Option<String>,
    /// problem+json `type`.
    pub problem_type: Option<String>,
    /// Error detail.
    pub error: Option<String>,
}

/// Current time, RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&format).unwrap_or_default()
}

/// The journal: one SQLite connection behind a mutex, written in group commits (see the
/// module documentation).
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    inner: Mutex<Inner>,
    /// Writers waiting for the connection (they will join the open transaction).
    queued: AtomicUsize,
    /// Signalled after each commit (or failed commit).
    committed: Condvar,
}

/// The connection and the state of the shared write transaction.
#[derive(Debug)]
struct Inner {
    conn: Connection,
    /// Whether a transaction holding uncommitted writes is open.
    open: bool,
    /// Generation of the open (or last) transaction.
    generation: u64,
    /// Highest generation committed and synced.
    durable: u64,
    /// The last generation whose commit failed, with the cause.
    failed: Option<(u64, String)>,
}

impl Inner {
    /// Runs `f` inside the open transaction (opening one if needed), in a savepoint so that
    /// its failure undoes only its own statements. Afterwards `self.open` is false only when
    /// no transaction could be opened.
    fn join<T>(
        &mut self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        if !self.open {
            self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
            self.open = true;
            self.generation += 1;
        }
        self.conn
            .prepare_cached("SAVEPOINT journal_write")?
            .execute([])?;
        let result = f(&self.conn);
        if result.is_err() {
            self.conn
                .prepare_cached("ROLLBACK TO journal_write")?
                .execute([])?;
        }
        self.conn
            .prepare_cached("RELEASE journal_write")?
            .execute([])?;
        result
    }

    /// Commits the open transaction (one sync); on failure rolls it back and records why.
    fn commit(&mut self) {
        let generation = self.generation;
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => self.durable = generation,
            Err(e) => {
                // After a failed COMMIT the transaction may still be open: undo it.
                let _ = self.conn.execute_batch("ROLLBACK");
                self.failed = Some((generation, e.to_string()));
            }
        }
        self.open = false;
    }
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let err = |source| JournalError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Journal {
            path: path.to_owned(),
            inner: Mutex::new(Inner {
                conn,
                open: false,
                generation: 0,
                durable: 0,
                failed: None,
            }),
            queued: AtomicUsize::new(0),
            committed: Condvar::new(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sqlite(&self, source: rusqlite::Error) -> JournalError {
        JournalError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Reads (or, single-threaded, writes in autocommit) on the connection. A read sees the
    /// writes of a group not yet committed.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let inner = match self.inner.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&inner.conn).map_err(|e| self.sqlite(e))
    }

    /// The connection, taken as a writer: counted in `queued` while it waits for the lock,
    /// so that the writer committing a group knows whether another will join.
    fn enter(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let inner = match self.inner.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        self.queued.fetch_sub(1, Ordering::SeqCst);
        inner
    }

    /// A durable write: `f` runs in the shared transaction; returns once that transaction is
    /// committed and synced (by this writer, when no other is waiting to join, else by the
    /// last to join). `f`'s own failure undoes only its statements.
    fn write<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let mut inner = self.enter();
        let result = inner.join(f);
        if !inner.open {
            // No transaction could be opened: nothing to commit, nobody waits on this one.
            return result.map_err(|e| self.sqlite(e));
        }
        // Whatever `f` gave, this writer joined the transaction and takes part in its commit.
        let generation = inner.generation;
        loop {
            if inner.durable >= generation {
                return result.map_err(|e| self.sqlite(e));
            }
            if let Some((failed, message)) = &inner.failed {
                if *failed == generation {
                    return Err(JournalError::Commit {
                        path: self.path.clone(),
                        message: message.clone(),
                    });
                }
            }
            if self.queued.load(Ordering::SeqCst) == 0 {
                // The last writer in commits for the whole group.
                inner.commit();
                self.committed.notify_all();
                continue;
            }
            inner = match self.committed.wait(inner) {
                Ok(c) => c,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
    }

    /// A deferred write: `f` runs in the shared transaction (opening one if needed) and this
    /// returns without waiting for its commit. It becomes durable with the next durable write
    /// of any writer (SQLite commits the transaction as a whole, in order), and is lost, as
    /// if never made, on a crash before that. Only for records that no gateway call depends
    /// on: every call's intent is a durable write made after it, so it is durable before
    /// the call is sent.
    fn write_deferred<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let mut inner = self.enter();
        let result = inner.join(f);
        drop(inner);
        // A durable writer of this transaction may be waiting for the queue (this writer)
        // to drain before it commits: wake it.
        self.committed.notify_all();
        result.map_err(|e| self.sqlite(e))
    }

    /// Records a new batch; returns its id.
    pub fn start_batch(&self, input_dir: &str, options: &str) -> Result<i64, JournalError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO batch (input_dir, options, started_at) VALUES (?1, ?2, ?3)",
                params![input_dir, options, now()],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Marks a batch finished.
    pub fn finish_batch(&self, batch_id: i64) -> Result<(), JournalError> {
        self.write(|c| {
            c.execute(
                "UPDATE batch SET finished_at = ?2 WHERE id = ?1",
                params![batch_id, now()],
            )
            .map(|_| ())
        })
    }

    /// Registers a document of a batch (state `pending`); returns its id. Registering the same
    /// name twice returns the existing id.
    pub fn add_document(
        &self,
        batch_id: i64,
        name: &str,
        source: &str,
        pdf: Option<&str>,
    ) -> Result<i64, JournalError> {
        self.write(|c| insert_document(c, batch_id, name, source, pdf, &now()))
    }

    /// Registers the documents `(name, source, pdf)` of a batch in one durable write (state
    /// `pending`; names already registered are kept); returns their ids in order.
    pub fn add_documents(
        &self,
        batch_id: i64,
        documents: &[(&str, &str, Option<&str>)],
    ) -> Result<Vec<i64>, JournalError> {
        let at = now();
        self.write(|c| {
            documents
                .iter()
                .map(|&(name, source, pdf)| insert_document(c, batch_id, name, source, pdf, &at))
                .collect()
        })
    }

    /// Records the identificativoDoc of a document.
    pub fn set_id_doc(&self, document_id: i64, id_doc: &str) -> Result<(), JournalError> {
        self.write(|c| {
            c.prepare_cached("UPDATE document SET id_doc = ?2, updated_at = ?3 WHERE id = ?1")?
                .execute(params![document_id, id_doc, now()])
                .map(|_| ())
        })
    }

    /// Records the identificativoDoc of a document and moves it to `state`, in one write.
    pub fn identify(
        &self,
        document_id: i64,
        id_doc: &str,
        state: DocState,
    ) -> Result<(), JournalError> {
        self.write(|c| identify_row(c, document_id, id_doc, state))
    }

    /// [`Journal::identify`] as a deferred write: returns without waiting for a sync; the
    /// record becomes durable with the next durable write (at the latest the intent of the
    /// document's first call), and a crash before that leaves the document as it was (to be
    /// built again). Saves one sync per document in batches.
    pub fn identify_deferred(
        &self,
        document_id: i64,
        id_doc: &str,
        state: DocState,
    ) -> Result<(), JournalError> {
        self.write_deferred(|c| identify_row(c, document_id, id_doc, state))
    }

    /// Moves a document to `state` (with a reason for `failed`).
    pub fn set_state(
        &self,
        document_id: i64,
        state: DocState,
        reason: Option<&str>,
    ) -> Result<(), JournalError> {
        self.write(|c| update_state(c, document_id, state, reason, &now()))
    }

    /// The current state of a document.
    pub fn state(&self, document_id: i64) -> Result<DocState, JournalError> {
        let state: Option<String> = self.with(|c| {
            c.query_row(
                "SELECT state FROM document WHERE id = ?1",
                [document_id],
                |r| r.get(0),
            )
            .optional()
        })?;
        state
            .and_then(|s| DocState::parse(&s))
            .ok_or_else(|| JournalError::NotFound(format!("no document {document_id}")))
    }

    /// Writes the intent of a call; returns the call id. Durable when this returns.
    pub fn intent(&self, document_id: i64, operation: &str) -> Result<i64, JournalError> {
        self.intent_in_state(document_id, operation, None)
    }

    /// Writes the intent of a call and, in the same write, moves its document to `state`
    /// (the step the call starts from); returns the call id. Durable when this returns.
    pub fn intent_in_state(
        &self,
        document_id: i64,
        operation: &str,
        state: Option<DocState>,
    ) -> Result<i64, JournalError> {
        let at = now();
        self.write(|c| {
            if let Some(state) = state {
                update_state(c, document_id, state, None, &at)?;
            }
            c.prepare_cached(
                "INSERT INTO call (document_id, operation, started_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![document_id, operation, at])?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Writes the outcome of a call. Durable when this returns.
    pub fn outcome(&self, call_id: i64, o: &Outcome) -> Result<(), JournalError> {
        self.write(|c| update_outcome(c, "call", call_id, o, &now()))
    }

    /// Writes the outcome of a call and, in the same write, moves document `state.0` to
    /// `state.1` (the step the answer reached). Durable when this returns.
    pub fn outcome_in_state(
        &self,
        call_id: i64,
        o: &Outcome,
        state: Option<(i64, DocState)>,
    ) -> Result<(), JournalError> {
        let at = now();
        self.write(|c| {
            update_outcome(c, "call", call_id, o, &at)?;
            if let Some((document_id, state)) = state {
                update_state(c, document_id, state, None, &at)?;
            }
            Ok(())
        })
    }

    /// Writes the intent of a single gateway call; returns its id. Durable when this returns.
    pub fn gateway_intent(
        &self,
        operation: &str,
        id_doc: Option<&str>,
        file: Option<&str>,
    ) -> Result<i64, JournalError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO gateway_call (operation, id_doc, file, started_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![operation, id_doc, file, now()],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Writes the outcome of a single gateway call. Durable when this returns.
    pub fn gateway_outcome(&self, id: i64, o: &Outcome) -> Result<(), JournalError> {
        self.write(|c| update_outcome(c, "gateway_call", id, o, &now()))
    }

    /// Single gateway calls, oldest first.
    pub fn gateway_calls(&self) -> Result<Vec<GatewayCallRecord>, JournalError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, operation, id_doc, file, started_at, finished_at, http_status,
                        x_cart_id, trace_id, span_id, workflow_instance_id, problem_type, error
                 FROM gateway_call ORDER BY id",
            )?;
            let rows = st.query_map([], |r| {
                Ok(GatewayCallRecord {
                    id: r.get(0)?,
                    operation: r.get(1)?,
                    id_doc: r.get(2)?,
                    file: r.get(3)?,
                    started_at: r.get(4)?,
                    finished_at: r.get(5)?,
                    http_status: r.get(6)?,
                    x_cart_id: r.get(7)?,
                    trace_id: r.get(8)?,
                    span_id: r.get(9)?,
                    workflow_instance_id: r.get(10)?,
                    problem_type: r.get(11)?,
                    error: r.get(12)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Writes the intent of a call to another CART service; returns its id.
    pub fn cart_intent(&self, api: &str, method: &str, path: &str) -> Result<i64, JournalError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO cart_call (operation, api, method, path, started_at)
                 VALUES ('cart-call', ?1, ?2, ?3, ?4)",
                params![api, method, path, now()],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Writes the outcome of a call to another CART service.
    pub fn cart_outcome(&self, id: i64, o: &Outcome) -> Result<(), JournalError> {
        self.write(|c| update_outcome(c, "cart_call", id, o, &now()))
    }

    /// Calls to other CART services, oldest first.
    pub fn cart_calls(&self) -> Result<Vec<CartCallRecord>, JournalError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, operation, api, method, path, started_at, finished_at, http_status,
                        x_cart_id, trace_id, span_id, workflow_instance_id, problem_type, error
                 FROM cart_call ORDER BY id",
            )?;
            let rows = st.query_map([], |r| {
                Ok(CartCallRecord {
                    id: r.get(0)?,
                    operation: r.get(1)?,
                    api: r.get(2)?,
                    method: r.get(3)?,
                    path: r.get(4)?,
                    started_at: r.get(5)?,
                    finished_at: r.get(6)?,
                    http_status: r.get(7)?,
                    x_cart_id: r.get(8)?,
                    trace_id: r.get(9)?,
                    span_id: r.get(10)?,
                    workflow_instance_id: r.get(11)?,
                    problem_type: r.get(12)?,
                    error: r.get(13)?,
                })
            })?;
            rows.collect()
        })
    }

    /// A document of another batch than `batch_id`, sent to the same gateway (the batches'
    /// `options.gateway`; a batch that recorded none counts as the same), with this
    /// identificativoDoc that is published, or whose create was accepted, never answered or
    /// answered 5xx (possibly published): `(batch id, name, state)`, a published one first.
    pub fn published_elsewhere(
        &self,
        id_doc: &str,
        batch_id: i64,
    ) -> Result<Option<(i64, String, DocState)>, JournalError> {
        let found: Option<(i64, String, String)> = self.with(|c| {
            c.prepare_cached(
                "SELECT d.batch_id, d.name, d.state FROM document d JOIN batch b ON b.id = d.batch_id
                 WHERE d.id_doc = ?1 AND d.batch_id != ?2
                 AND (json_extract(b.options, '$.gateway') IS NULL
                      OR json_extract((SELECT options FROM batch WHERE id = ?2), '$.gateway') IS NULL
                      OR json_extract(b.options, '$.gateway')
                         = json_extract((SELECT options FROM batch WHERE id = ?2), '$.gateway'))
                 AND (d.state = 'published' OR EXISTS (
                     SELECT 1 FROM call WHERE call.document_id = d.id
                     AND call.operation = 'create'
                     AND (call.http_status IS NULL OR call.http_status / 100 = 2
                          OR call.http_status >= 500)))
                 ORDER BY d.state != 'published', d.batch_id LIMIT 1",
            )?
            .query_row(params![id_doc, batch_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
        })?;
        Ok(found.map(|(batch, name, state)| {
            (
                batch,
                name,
                DocState::parse(&state).unwrap_or(DocState::Failed),
            )
        }))
    }

    /// Writes the outcome of a status query that found the document published and, in the
    /// same write: the document's latest create gets the publication's `trace_id` and
    /// `workflow_instance_id` from the gateway's event (where it has them) and
    /// [`SETTLED_PUBLISHED`] appended to its `error` (its `http_status` stays as answered,
    /// NULL when no answer came), and the document moves to `published`. Durable when this
    /// returns.
    pub fn settled_published(
        &self,
        status_call: i64,
        o: &Outcome,
        document_id: i64,
        trace_id: Option<&str>,
        workflow_instance_id: Option<&str>,
    ) -> Result<(), JournalError> {
        let at = now();
        self.write(|c| {
            update_outcome(c, "call", status_call, o, &at)?;
            c.prepare_cached(
                "UPDATE call SET trace_id = COALESCE(?2, trace_id),
                   workflow_instance_id = COALESCE(?3, workflow_instance_id),
                   error = COALESCE(error || '; ', '') || ?4
                 WHERE id = (SELECT max(id) FROM call
                             WHERE document_id = ?1 AND operation = 'create')",
            )?
            .execute(params![
                document_id,
                trace_id,
                workflow_instance_id,
                SETTLED_PUBLISHED
            ])?;
            update_state(c, document_id, DocState::Published, None, &at)
        })
    }

    /// Marks a batch unfinished again (its failed documents are being retried).
    pub fn reopen_batch(&self, batch_id: i64) -> Result<(), JournalError> {
        self.write(|c| {
            c.execute(
                "UPDATE batch SET finished_at = NULL WHERE id = ?1",
                params![batch_id],
            )
            .map(|_| ())
        })
    }

    /// The output folder (`options.output_dir`) of each batch that kept its signed PDFs.
    pub fn output_dirs(&self) -> Result<std::collections::BTreeMap<i64, PathBuf>, JournalError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, json_extract(options, '$.output_dir') FROM batch
                 WHERE json_valid(options) AND json_extract(options, '$.output_dir') IS NOT NULL",
            )?;
            let rows = st.query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, PathBuf::from(r.get::<_, String>(1)?)))
            })?;
            rows.collect()
        })
    }

    /// Every batch, oldest first.
    pub fn batches(&self) -> Result<Vec<BatchRow>, JournalError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, input_dir, options, started_at, finished_at FROM batch ORDER BY id",
            )?;
            let rows = st.query_map([], |r| {
                Ok(BatchRow {
                    id: r.get(0)?,
                    input_dir: r.get(1)?,
                    options: r.get(2)?,
                    started_at: r.get(3)?,
                    finished_at: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }

    /// One batch.
    pub fn batch(&self, batch_id: i64) -> Result<BatchRow, JournalError> {
        self.batches()?
            .into_iter()
            .find(|b| b.id == batch_id)
            .ok_or_else(|| JournalError::NotFound(format!("no batch {batch_id} in the journal")))
    }

    /// The most recent batch, if any.
    pub fn last_batch(&self) -> Result<Option<BatchRow>, JournalError> {
        Ok(self.batches()?.pop())
    }

    /// Documents of a batch, by name.
    pub fn documents(&self, batch_id: i64) -> Result<Vec<DocumentRow>, JournalError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, batch_id, name, source, pdf, id_doc, state, reason, updated_at
                 FROM document WHERE batch_id = ?1 ORDER BY name",
            )?;
            let rows = st.query_map([batch_id], |r| {
                let state: String = r.get(6)?;
                Ok(DocumentRow {
                    id: r.get(0)?,
                    batch_id: r.get(1)?,
                    name: r.get(2)?,
                    source: r.get(3)?,
                    pdf: r.get(4)?,
                    id_doc: r.get(5)?,
                    state: DocState::parse(&state).unwrap_or(DocState::Failed),
                    reason: r.get(7)?,
                    updated_at: r.get(8)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Calls, oldest first: of one batch, or of every batch.
    pub fn calls(&self, batch_id: Option<i64>) -> Result<Vec<CallRecord>, JournalError> {
        self.query_calls("?1 IS NULL OR document.batch_id = ?1", batch_id)
    }

    /// Calls of one document, oldest first.
    pub fn document_calls(&self, document_id: i64) -> Result<Vec<CallRecord>, JournalError> {
        self.query_calls("call.document_id = ?1", Some(document_id))
    }

    fn query_calls(
        &self,
        condition: &str,
        param: Option<i64>,
    ) -> Result<Vec<CallRecord>, JournalError> {
        let sql = format!(
            "SELECT call.id, document.batch_id, document.name, document.id_doc,
                    call.operation, call.http_status, call.x_cart_id, call.trace_id,
                    call.span_id, call.workflow_instance_id, call.problem_type, call.error,
                    call.started_at, call.finished_at
             FROM call JOIN document ON document.id = call.document_id
             WHERE {condition}
             ORDER BY call.id"
        );
        self.with(|c| {
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map([param], |r| {
                Ok(CallRecord {
                    call_id: r.get(0)?,
                    batch_id: r.get(1)?,
                    document: r.get(2)?,
                    id_doc: r.get(3)?,
                    operation: r.get(4)?,
                    http_status: r.get(5)?,
                    x_cart_id: r.get(6)?,
                    trace_id: r.get(7)?,
                    span_id: r.get(8)?,
                    workflow_instance_id: r.get(9)?,
                    problem_type: r.get(10)?,
                    error: r.get(11)?,
                    started_at: r.get(12)?,
                    finished_at: r.get(13)?,
                })
            })?;
            rows.collect()
        })
    }
}

fn insert_document(
    c: &Connection,
    batch_id: i64,
    name: &str,
    source: &str,
    pdf: Option<&str>,
    at: &str,
) -> rusqlite::Result<i64> {
    c.prepare_cached(
        "INSERT OR IGNORE INTO document (batch_id, name, source, pdf, state, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
    )?
    .execute(params![batch_id, name, source, pdf, at])?;
    c.prepare_cached("SELECT id FROM document WHERE batch_id = ?1 AND name = ?2")?
        .query_row(params![batch_id, name], |r| r.get(0))
}

fn update_state(
    c: &Connection,
    document_id: i64,
    state: DocState,
    reason: Option<&str>,
    at: &str,
) -> rusqlite::Result<()> {
    c.prepare_cached("UPDATE document SET state = ?2, reason = ?3, updated_at = ?4 WHERE id = ?1")?
        .execute(params![document_id, state.as_str(), reason, at])
        .map(|_| ())
}

/// Writes an outcome into `table` (`call`, `gateway_call` or `cart_call`, which share the
/// outcome columns).
fn update_outcome(
    c: &Connection,
    table: &'static str,
    id: i64,
    o: &Outcome,
    at: &str,
) -> rusqlite::Result<()> {
    c.prepare_cached(&format!(
        "UPDATE {table} SET finished_at = ?2, http_status = ?3, x_cart_id = ?4,
         trace_id = ?5, span_id = ?6, workflow_instance_id = ?7, problem_type = ?8,
         error = ?9 WHERE id = ?1"
    ))?
    .execute(params![
        id,
        at,
        o.http_status,
        o.x_cart_id,
        o.trace_id,
        o.span_id,
        o.workflow_instance_id,
        o.problem_type,
        o.error
    ])
    .map(|_| ())
}

/// Sets a document's identificativoDoc and state (clearing its reason).
fn identify_row(
    c: &Connection,
    document_id: i64,
    id_doc: &str,
    state: DocState,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE document SET id_doc = ?2, state = ?3, reason = NULL, updated_at = ?4
         WHERE id = ?1",
    )?
    .execute(params![document_id, id_doc, state.as_str(), now()])
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intent_and_outcome_survive_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("j.sqlite");
        let (doc, open_call) = {
            let j = Journal::open(&path).unwrap();
            let b = j.start_batch("in", "{}").unwrap();
            let d = j.add_document(b, "LAB/a", "LAB/a.json", None).unwrap();
            assert_eq!(j.add_document(b, "LAB/a", "LAB/a.json", None).unwrap(), d);
            j.set_id_doc(d, "1.2^3").unwrap();
            let c1 = j.intent(d, "validation").unwrap();
            j.outcome(
                c1,
                &Outcome {
                    http_status: Some(201),
                    x_cart_id: Some("cart-1".into()),
                    trace_id: Some("t1".into()),
                    workflow_instance_id: Some("w1".into()),
                    ..Outcome::default()
                },
            )
            .unwrap();
            j.set_state(d, DocState::ValidatedRemote, None).unwrap();
            let c2 = j.intent(d, "create").unwrap();
            // Dropped without outcome: as after a crash.
            (d, c2)
        };
        let j = Journal::open(&path).unwrap();
        let docs = j.documents(1).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].id, doc);
        assert_eq!(docs[0].state, DocState::ValidatedRemote);
        assert_eq!(docs[0].id_doc.as_deref(), Some("1.2^3"));
        let calls = j.document_calls(doc).unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].x_cart_id.as_deref(), Some("cart-1"));
        assert_eq!(calls[0].http_status, Some(201));
        assert!(calls[0].finished_at.is_some());
        assert_eq!(calls[1].call_id, open_call);
        assert_eq!(calls[1].operation, "create");
        assert_eq!(calls[1].finished_at, None);
        assert_eq!(calls[1].http_status, None);
        let mode: String = j
            .with(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = j
            .with(|c| c.query_row("PRAGMA synchronous", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
    }

    /// Writers that queue while the connection is busy (a commit syncing) join one
    /// transaction, committed once; each returns only after it, and a failing writer undoes
    /// only its own statements.
    #[test]
    fn concurrent_writes_are_group_committed_and_durable_on_return() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("j.sqlite");
        let j = Journal::open(&path).unwrap();
        let b = j.start_batch("in", "{}").unwrap();
        let d = j.add_document(b, "LAB/a", "LAB/a.json", None).unwrap();
        let generation_before = j.inner.lock().unwrap().generation;
        let visible = |call: i64| {
            let other = Connection::open(&path).unwrap();
            other
                .query_row("SELECT count(*) FROM call WHERE id = ?1", [call], |r| {
                    r.get::<_, i64>(0)
                })
                .unwrap()
        };
        std::thread::scope(|s| {
            // Hold the connection as a syncing commit would, until three writers queue.
            let held = j.inner.lock().unwrap();
            let writers: Vec<_> = (0..3)
                .map(|i| {
                    let j = &j;
                    s.spawn(move || {
                        if i == 1 {
                            j.write(|c| c.execute("INSERT INTO nope VALUES (1)", []))
                                .map(|_| 0)
                        } else {
                            j.intent(d, "validation")
                        }
                    })
                })
                .collect();
            while j.queued.load(Ordering::SeqCst) < 3 {
                std::thread::yield_now();
            }
            drop(held);
            let results: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
            assert!(results[1].is_err(), "the failing writer sees its error");
            for call in [&results[0], &results[2]] {
                // Committed (visible to another connection) when the writer returned.
                assert_eq!(visible(*call.as_ref().unwrap()), 1);
            }
        });
        let inner = j.inner.lock().unwrap();
        assert_eq!(inner.generation, generation_before + 1, "one transaction");
        assert_eq!(inner.durable, inner.generation);
        assert!(!inner.open);
        drop(inner);
        // Many writers, no grouping forced: every write durable on return, none lost.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..25 {
                        let call = j.intent(d, "create").unwrap();
                        assert_eq!(visible(call), 1);
                        j.outcome_in_state(
                            call,
                            &Outcome {
                                http_status: Some(201),
                                ..Outcome::default()
                            },
                            Some((d, DocState::Published)),
                        )
                        .unwrap();
                    }
                });
            }
        });
        let calls = j.document_calls(d).unwrap();
        assert_eq!(calls.len(), 102);
        assert_eq!(
            calls
                .iter()
                .filter(|c| c.operation == "create" && c.http_status == Some(201))
                .count(),
            100
        );
        assert_eq!(j.state(d).unwrap(), DocState::Published);
    }

    #[test]
    fn documents_register_in_one_write_and_keep_existing_ids() {
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::open(&tmp.path().join("j.sqlite")).unwrap();
        let b = j.start_batch("in", "{}").unwrap();
        let a = j.add_document(b, "a", "a.json", None).unwrap();
        let ids = j
            .add_documents(b, &[("b", "b.xml", Some("b.pdf")), ("a", "a.json", None)])
            .unwrap();
        assert_eq!(ids[1], a);
        let docs = j.documents(b).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].pdf.as_deref(), Some("b.pdf"));
        assert!(docs.iter().all(|d| d.state == DocState::Pending));
        // identificativoDoc lookups use an index, not a scan of every document.
        let plan: String = j
            .with(|c| {
                c.query_row(
                    "EXPLAIN QUERY PLAN SELECT id FROM document WHERE id_doc = 'x'",
                    [],
                    |r| r.get(3),
                )
            })
            .unwrap();
        assert!(plan.contains("document_id_doc"), "{plan}");
        j.identify(a, "1.2^3", DocState::Built).unwrap();
        let call = j
            .intent_in_state(a, "validation", Some(DocState::Injected))
            .unwrap();
        assert_eq!(j.state(a).unwrap(), DocState::Injected);
        j.outcome_in_state(
            call,
            &Outcome::default(),
            Some((a, DocState::ValidatedRemote)),
        )
        .unwrap();
        let docs = j.documents(b).unwrap();
        assert_eq!(docs[0].state, DocState::ValidatedRemote);
        assert_eq!(docs[0].id_doc.as_deref(), Some("1.2^3"));
    }

    /// A deferred write is durable with the next durable write, lost without one, and never
    /// leaves a durable writer of its transaction waiting.
    #[test]
    fn deferred_writes_become_durable_with_the_next_durable_write() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("j.sqlite");
        let id_doc_elsewhere = |doc: i64| -> Option<String> {
            let other = Connection::open(&path).unwrap();
            other
                .query_row("SELECT id_doc FROM document WHERE id = ?1", [doc], |r| {
                    r.get(0)
                })
                .unwrap()
        };
        let (a, b) = {
            let j = Journal::open(&path).unwrap();
            let batch = j.start_batch("in", "{}").unwrap();
            let ids = j
                .add_documents(batch, &[("a", "a.json", None), ("b", "b.json", None)])
                .unwrap();
            let (a, b) = (ids[0], ids[1]);
            j.identify_deferred(a, "1.2^a", DocState::Built).unwrap();
            // Not committed yet (another connection does not see it), but readable here.
            assert_eq!(id_doc_elsewhere(a), None);
            assert_eq!(j.state(a).unwrap(), DocState::Built);
            j.intent_in_state(a, "validation", Some(DocState::Injected))
                .unwrap();
            assert_eq!(id_doc_elsewhere(a).as_deref(), Some("1.2^a"));
            // A deferred write with no durable write after it: lost, as in a crash.
            j.identify_deferred(b, "1.2^b", DocState::Built).unwrap();
            (a, b)
        };
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.state(a).unwrap(), DocState::Injected);
        assert_eq!(j.state(b).unwrap(), DocState::Pending);
        assert_eq!(id_doc_elsewhere(b), None);
        // A durable writer that joined first commits even when a deferred writer queued
        // behind it is the last to join.
        std::thread::scope(|s| {
            let held = j.inner.lock().unwrap();
            let durable = s.spawn(|| j.intent(a, "create"));
            while j.queued.load(Ordering::SeqCst) < 1 {
                std::thread::yield_now();
            }
            let deferred = s.spawn(|| j.identify_deferred(b, "1.2^b", DocState::Built));
            while j.queued.load(Ordering::SeqCst) < 2 {
                std::thread::yield_now();
            }
            drop(held);
            let call = durable.join().unwrap().unwrap();
            deferred.join().unwrap().unwrap();
            let other = Connection::open(&path).unwrap();
            let seen: i64 = other
                .query_row("SELECT count(*) FROM call WHERE id = ?1", [call], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(seen, 1, "the durable write is committed when it returns");
        });
    }

    #[test]
    fn states_round_trip() {
        for s in DocState::ALL {
            assert_eq!(DocState::parse(s.as_str()), Some(s));
        }
        assert_eq!(DocState::parse("nope"), None);
        assert!(DocState::Published.is_terminal() && !DocState::Signed.is_terminal());
    }
}
