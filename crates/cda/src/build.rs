//! Building CDA documents from the JSON report model.
