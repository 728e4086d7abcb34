//! The sandbox's durable state in SQLite (`DIR/sandbox.sqlite`): every `X-CART-id` sent,
//! remembered validations, published documents and transaction events.

use crate::api::StatusEvent;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;

/// Database file name inside the sandbox directory.
pub const DB_FILE: &str = "sandbox.sqlite";

/// How long a `VALIDATION` stays usable for a publication (the gateway's 5 days).
pub const VALIDATION_TTL_SECONDS: i64 = 5 * 24 * 3600;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[error("sandbox database: {0}")]
pub struct StoreError(#[from] rusqlite::Error);

/// One response the sandbox sent, as `fse sandbox log` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLogEntry {
    /// The `X-CART-id` header value.
    pub x_cart_id: String,
    /// RFC 3339 time.
    pub at: String,
    /// Operation name (see [`Operation::name`](crate::api::Operation::name)), or `unknown`.
    pub operation: String,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// HTTP status sent.
    pub status: u16,
    /// Problem `type` for errors.
    pub problem_type: Option<String>,
    /// Document id (path or body).
    pub identificativo_doc: Option<String>,
    /// `traceID` sent.
    pub trace_id: Option<String>,
    /// `workflowInstanceId` sent.
    pub workflow_instance_id: Option<String>,
}

/// A published document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRecord {
    /// `identificativoDoc`.
    pub id_doc: String,
    /// CDA hash.
    pub cda_hash: Option<String>,
    /// Workflow instance id of its publication.
    pub workflow_instance_id: String,
    /// `PUBLISHED`, `REPLACED` or `DELETED`.
    pub state: String,
}

/// The sandbox database.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS cart_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  x_cart_id TEXT NOT NULL UNIQUE,
  at TEXT NOT NULL,
  operation TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  status INTEGER NOT NULL,
  problem_type TEXT,
  id_doc TEXT,
  trace_id TEXT,
  workflow_instance_id TEXT
);
CREATE TABLE IF NOT EXISTS validations (
  cda_hash TEXT PRIMARY KEY,
  workflow_instance_id TEXT NOT NULL,
  validated_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
  id_doc TEXT PRIMARY KEY,
  cda_hash TEXT,
  workflow_instance_id TEXT NOT NULL,
  state TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  workflow_instance_id TEXT NOT NULL,
  trace_id TEXT NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_wii ON events(workflow_instance_id);
CREATE INDEX IF NOT EXISTS events_trace ON events(trace_id);
";

impl Store {
    /// Opens (creating if needed) the database of sandbox directory `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(dir.join(DB_FILE))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(f(&conn)?)
    }

    /// Records one sent response.
    pub fn log_response(&self, e: &CartLogEntry) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO cart_log (x_cart_id, at, operation, method, path, status, problem_type, id_doc, trace_id, workflow_instance_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![e.x_cart_id, e.at, e.operation, e.method, e.path, e.status, e.problem_type, e.identificativo_doc, e.trace_id, e.workflow_instance_id],
            )
            .map(|_| ())
        })
    }

    /// Every recorded response, oldest first.
    pub fn cart_log(&self) -> Result<Vec<CartLogEntry>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT x_cart_id, at, operation, method, path, status, problem_type, id_doc, trace_id, workflow_instance_id
                 FROM cart_log ORDER BY seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(CartLogEntry {
                    x_cart_id: r.get(0)?,
                    at: r.get(1)?,
                    operation: r.get(2)?,
                    method: r.get(3)?,
                    path: r.get(4)?,
                    status: r.get(5)?,
                    problem_type: r.get(6)?,
                    identificativo_doc: r.get(7)?,
                    trace_id: r.get(8)?,
                    workflow_instance_id: r.get(9)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Remembers a `VALIDATION` of `cda_hash` at `now` (seconds) for `ttl` seconds (the
    /// gateway's [`VALIDATION_TTL_SECONDS`]).
    pub fn remember_validation(
        &self,
        cda_hash: &str,
        wii: &str,
        now: i64,
        ttl: i64,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO validations (cda_hash, workflow_instance_id, validated_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![cda_hash, wii, now, now.saturating_add(ttl)],
            )
            .map(|_| ())
        })
    }

    /// The workflow instance id of a still-valid `VALIDATION` of `cda_hash`.
    pub fn validation(&self, cda_hash: &str, now: i64) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT workflow_instance_id FROM validations WHERE cda_hash = ?1 AND expires_at > ?2",
                params![cda_hash, now],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// The document with this id, whatever its state.
    pub fn document(&self, id_doc: &str) -> Result<Option<DocumentRecord>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT id_doc, cda_hash, workflow_instance_id, state FROM documents WHERE id_doc = ?1",
                params![id_doc],
                |r| Ok(DocumentRecord { id_doc: r.get(0)?, cda_hash: r.get(1)?, workflow_instance_id: r.get(2)?, state: r.get(3)? }),
            )
            .optional()
        })
    }

    /// Inserts or updates a document.
    pub fn put_document(&self, d: &DocumentRecord, now: i64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO documents (id_doc, cda_hash, workflow_instance_id, state, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![d.id_doc, d.cda_hash, d.workflow_instance_id, d.state, now],
            )
            .map(|_| ())
        })
    }

    /// Appends a transaction event.
    pub fn add_event(&self, event: &StatusEvent) -> Result<(), StoreError> {
        let body = serde_json::to_string(event).unwrap_or_default();
        self.with(|c| {
            c.execute(
                "INSERT INTO events (workflow_instance_id, trace_id, body) VALUES (?1, ?2, ?3)",
                params![
                    event.workflow_instance_id.as_deref().unwrap_or(""),
                    event.trace_id.as_deref().unwrap_or(""),
                    body
                ],
            )
            .map(|_| ())
        })
    }

    fn events_where(&self, column: &str, value: &str) -> Result<Vec<StatusEvent>, StoreError> {
        let sql = format!("SELECT body FROM events WHERE {column} = ?1 ORDER BY seq");
        self.with(|c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(params![value], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for body in rows {
                if let Ok(event) = serde_json::from_str(&body?) {
                    out.push(event);
                }
            }
            Ok(out)
        })
    }

    /// Events of a workflow instance.
    pub fn events_by_workflow(&self, wii: &str) -> Result<Vec<StatusEvent>, StoreError> {
        self.events_where("workflow_instance_id", wii)
    }

    /// Events of a trace id.
    pub fn events_by_trace(&self, trace_id: &str) -> Result<Vec<StatusEvent>, StoreError> {
        self.events_where("trace_id", trace_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_validation_expires_after_its_ttl() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let t0 = 1_700_000_000;
        store
            .remember_validation("h", "wii", t0, VALIDATION_TTL_SECONDS)
            .unwrap();
        let last = t0 + VALIDATION_TTL_SECONDS - 1;
        assert_eq!(store.validation("h", last).unwrap().as_deref(), Some("wii"));
        assert_eq!(store.validation("h", last + 1).unwrap(), None);
        assert_eq!(store.validation("other", t0).unwrap(), None);
        // A new VALIDATION of the same CDA starts a fresh period.
        store
            .remember_validation("h", "wii2", last + 1, VALIDATION_TTL_SECONDS)
            .unwrap();
        assert_eq!(
            store.validation("h", last + 2).unwrap().as_deref(),
            Some("wii2")
        );
    }
}
