//! # fse-cda
//!
//! HL7 CDA R2 documents for the Italian FSE 2.0.
//!
//! - [`build`]: turn a versioned JSON report model into a CDA R2 document that follows the
//!   HL7 Italia implementation guide of its document type.
//! - `validate` (coming): judge a CDA the way the national gateway does (XSD, schematron,
//!   terminology).
//!
//! Library code never prints and never panics on input.

pub mod build;
mod csv;
pub mod schematron;
pub mod terminology;
pub mod validate;
pub mod xml;
pub mod xpath;
