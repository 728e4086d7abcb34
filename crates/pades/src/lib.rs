//! # fse-pades
//!
//! The PDF side of FSE 2.0 documents: embed the CDA as the `cda.xml` attachment, sign with a
//! PAdES baseline B-B signature by incremental update, and verify signed PDFs the way the
//! gateway and independent verifiers do.
//!
//! Not implemented yet: see the project's open issues.
