//! # fse-cart
//!
//! Client for the FSE 2.0 national gateway as exposed by Regione Toscana's CART: mutual TLS,
//! the gateway's JWT pair, typed requests and problem+json errors, and journaled batches.
//!
//! Not implemented yet: see the project's open issues.
