//! The XSD stage: a document checked against the schema set chosen by its `typeId/@extension`
//! (`xsd/<extension>/CDA.xsd` of the rule folder), with the pure-Rust validator of the
//! `xsd-schema` crate. That crate's compiled sets are not `Sync`, so each thread compiles a set
//! (and prepares its validator, i.e. the content models) the first time it needs it (about
//! 0.2 s) and keeps both for the life of the thread.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use xsd_schema::validation::{
    drive_quick_xml_with, DriveWithError, SchemaValidator, ValidationError, ValidationEventHandler,
    ValidationFlags, ValidationSink, ValidationWarning,
};
use xsd_schema::{SchemaSet, SchemaSetBuilder};

type Validator<'a> = SchemaValidator<'a>;

self_cell::self_cell!(
    /// A compiled set and the validator prepared over it (content models built once).
    struct Prepared {
        owner: SchemaSet,
        #[not_covariant]
        dependent: Validator,
    }
);

thread_local! {
    static SETS: RefCell<HashMap<PathBuf, Rc<Prepared>>> = RefCell::new(HashMap::new());
}

fn prepare(set: SchemaSet) -> Prepared {
    Prepared::new(set, |s| SchemaValidator::new(s, ValidationFlags::default()))
}

/// An XSD set, named by its main file (`Send + Sync`; compiled per thread).
#[derive(Debug, Clone)]
pub struct XsdSet {
    main: PathBuf,
}

fn compile(cda_xsd: &Path) -> Result<SchemaSet, String> {
    let location = cda_xsd.to_string_lossy();
    let compiled = SchemaSetBuilder::new()
        .add("urn:hl7-org:v3", location.as_ref())
        .and_then(|b| b.compile())
        .map_err(|e| format!("{}: {e}", cda_xsd.display()))?;
    if let Some(f) = compiled.directive_failures().first() {
        return Err(format!(
            "{}: cannot read {:?} referenced by the schema",
            cda_xsd.display(),
            f.schema_location()
        ));
    }
    Ok(compiled.into_schema_set())
}

impl XsdSet {
    /// Compiles the schema rooted at `cda_xsd` (target namespace `urn:hl7-org:v3`) on this
    /// thread, checking that it loads; every included or imported file must be readable.
    pub fn load(cda_xsd: &Path) -> Result<XsdSet, String> {
        let set = compile(cda_xsd)?;
        SETS.with(|s| {
            s.borrow_mut()
                .insert(cda_xsd.to_path_buf(), Rc::new(prepare(set)))
        });
        Ok(XsdSet {
            main: cda_xsd.to_path_buf(),
        })
    }

    fn set(&self) -> Result<Rc<Prepared>, String> {
        if let Some(s) = SETS.with(|s| s.borrow().get(&self.main).cloned()) {
            return Ok(s);
        }
        let set = Rc::new(prepare(compile(&self.main)?));
        SETS.with(|s| s.borrow_mut().insert(self.main.clone(), set.clone()));
        Ok(set)
    }

    /// Validates a document; returns its errors as `line,column message` (empty when valid).
    /// `position` turns a byte offset of the input into a 1-based line and column.
    pub fn validate(
        &self,
        bytes: &[u8],
        position: &dyn Fn(usize) -> (u32, u32),
    ) -> Result<Vec<String>, String> {
        let prepared = self.set()?;
        prepared.with_dependent(|set, validator| Ok(run(set, validator, bytes, position)))
    }
}

fn run(
    set: &SchemaSet,
    validator: &SchemaValidator<'_>,
    bytes: &[u8],
    position: &dyn Fn(usize) -> (u32, u32),
) -> Vec<String> {
    let open: Rc<RefCell<Vec<usize>>> = Rc::default();
    let found: Rc<RefCell<Vec<Located>>> = Rc::default();
    let sink = Sink {
        open: open.clone(),
        found: found.clone(),
    };
    let mut tracker = Tracker { open };
    let mut runtime = validator.start_run(sink);
    let outcome = drive_quick_xml_with(bytes, &mut runtime, set, &mut tracker);
    let end = match outcome {
        Ok(_) => runtime
            .end_validation()
            .err()
            .map(|e| format!("FATAL: {e}")),
        Err(DriveWithError::Hook(never)) => match never {},
        Err(DriveWithError::Io(e)) => Some(format!("FATAL: {e}")),
        Err(DriveWithError::NotWellFormed(e)) => Some(format!("FATAL: {e}")),
        Err(DriveWithError::LimitExceeded(e)) => Some(format!("FATAL: {e}")),
        Err(_) => Some("FATAL: the XSD validator stopped".to_owned()),
    };
    drop(runtime);
    let mut out: Vec<String> = found
        .borrow()
        .iter()
        .map(|(at, msg)| match at {
            Some(p) => {
                let (l, c) = position(*p);
                format!("{l},{c} {msg}")
            }
            None => msg.clone(),
        })
        .collect();
    out.extend(end);
    out
}

/// Keeps the byte offsets of the open elements, so that each error can be placed.
struct Tracker {
    open: Rc<RefCell<Vec<usize>>>,
}

impl ValidationEventHandler for Tracker {
    type Error = std::convert::Infallible;

    fn on_element_start_offset(&mut self, byte_pos: usize) -> Result<(), Self::Error> {
        self.open.borrow_mut().push(byte_pos);
        Ok(())
    }

    fn on_element_end_offset(&mut self, _byte_pos: usize) -> Result<(), Self::Error> {
        self.open.borrow_mut().pop();
        Ok(())
    }
}

/// An error message and the byte offset of the element it is about.
type Located = (Option<usize>, String);

/// Collects errors with the offset of the element being validated.
struct Sink {
    open: Rc<RefCell<Vec<usize>>>,
    found: Rc<RefCell<Vec<Located>>>,
}

impl ValidationSink for Sink {
    fn on_error(&mut self, error: ValidationError) {
        let at = self.open.borrow().last().copied();
        let msg = format!("[{}] {}", error.constraint, error.message);
        self.found.borrow_mut().push((at, msg));
    }

    fn on_warning(&mut self, _warning: ValidationWarning) {}
}
