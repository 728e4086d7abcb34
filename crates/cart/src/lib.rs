//! # fse-cart
//!
//! Client for the FSE 2.0 national gateway as exposed by Regione Toscana's CART: mutual TLS,
//! the gateway's JWT pair, typed requests and problem+json errors, and a local sandbox that
//! behaves like CART + the gateway for offline tests.
//!
//! - [`api`]: the OpenAPI's request/response/problem types and the operations.
//! - [`jwt`]: the `Authorization` + `FSE-JWT-Signature` pair, signed RS256 with `x5c`, and its
//!   verification.
//! - [`tls`]: loading PEM / PKCS#12 identities and CA roots.
//! - [`client`]: blocking mTLS client for every endpoint.
//! - [`sandbox`]: the local gateway (`fse sandbox`).
//! - [`journal`]: the durable SQLite journal of every call (intent before, outcome after).
//! - [`batch`]: parallel, rate-limited, resumable publication of a directory of documents.

pub mod api;
pub mod batch;
pub mod client;
pub mod journal;
pub mod jwt;
pub mod sandbox;
pub mod tls;
