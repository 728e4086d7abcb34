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

pub mod api;
pub mod client;
pub mod jwt;
pub mod sandbox;
pub mod tls;
