//! A thin layer over quick-xml's writer: indented output (two spaces), attributes in the order
//! given, and the HL7 data types of the model (`II`, `CD`, `AD`, `TEL`, `PN`, `IVL_TS`).

use super::model::{Addr, Cd, Ii, Interval, Name, Telecom};
use super::node::{Child, Node};
use quick_xml::escape::partial_escape;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

/// An XML document being written.
pub struct Xml {
    inner: Writer<Vec<u8>>,
}

type Attrs<'a> = &'a [(&'a str, Option<&'a str>)];

impl Xml {
    /// A new document with its XML declaration.
    pub fn new() -> Xml {
        let mut inner = Writer::new_with_indent(Vec::new(), b' ', 2);
        // Writing into a Vec cannot fail.
        let _ = inner.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        Xml { inner }
    }

    /// The finished bytes (with a final newline).
    pub fn finish(self) -> Vec<u8> {
        let mut out = self.inner.into_inner();
        out.push(b'\n');
        out
    }

    fn tag<'a>(name: &'a str, attrs: Attrs<'a>) -> BytesStart<'a> {
        let mut start = BytesStart::new(name);
        for (k, v) in attrs {
            if let Some(v) = v {
                start.push_attribute((*k, *v));
            }
        }
        start
    }

    /// Opens an element; attributes whose value is `None` are left out.
    pub fn open(&mut self, name: &str, attrs: Attrs) {
        let _ = self.inner.write_event(Event::Start(Self::tag(name, attrs)));
    }

    /// Closes an element.
    pub fn close(&mut self, name: &str) {
        let _ = self.inner.write_event(Event::End(BytesEnd::new(name)));
    }

    /// An empty element.
    pub fn empty(&mut self, name: &str, attrs: Attrs) {
        let _ = self.inner.write_event(Event::Empty(Self::tag(name, attrs)));
    }

    /// An element holding only text.
    pub fn text_elem(&mut self, name: &str, attrs: Attrs, text: &str) {
        self.open(name, attrs);
        let _ = self
            .inner
            .write_event(Event::Text(BytesText::from_escaped(partial_escape(text))));
        self.close(name);
    }

    /// An element holding only text, when the text is present.
    pub fn opt_text(&mut self, name: &str, text: Option<&str>) {
        if let Some(t) = text {
            self.text_elem(name, &[], t);
        }
    }

    /// Raw character data (escaped).
    pub fn text(&mut self, text: &str) {
        let _ = self
            .inner
            .write_event(Event::Text(BytesText::from_escaped(partial_escape(text))));
    }

    /// An instance identifier.
    pub fn ii(&mut self, name: &str, ii: &Ii) {
        self.empty(
            name,
            &[
                ("root", ii.root.as_deref()),
                ("extension", ii.extension.as_deref()),
                (
                    "assigningAuthorityName",
                    ii.assigning_authority_name.as_deref(),
                ),
                ("nullFlavor", ii.null_flavor.as_deref()),
            ],
        );
    }

    /// Identifiers, one element each.
    pub fn iis(&mut self, name: &str, ids: &[Ii]) {
        for id in ids {
            self.ii(name, id);
        }
    }

    /// A coded value, with its original text reference and translations.
    pub fn cd(&mut self, name: &str, cd: &Cd) {
        self.cd_typed(name, None, cd);
    }

    /// A coded value with an `xsi:type`.
    pub fn cd_typed(&mut self, name: &str, xsi_type: Option<&str>, cd: &Cd) {
        let attrs = [
            ("xsi:type", xsi_type),
            ("code", cd.code.as_deref()),
            ("codeSystem", cd.code_system.as_deref()),
            ("codeSystemName", cd.code_system_name.as_deref()),
            ("codeSystemVersion", cd.code_system_version.as_deref()),
            ("displayName", cd.display_name.as_deref()),
            ("nullFlavor", cd.null_flavor.as_deref()),
        ];
        if cd.translations.is_empty() && cd.original_text_reference.is_none() {
            self.empty(name, &attrs);
            return;
        }
        self.open(name, &attrs);
        if let Some(r) = &cd.original_text_reference {
            self.open("originalText", &[]);
            self.empty("reference", &[("value", Some(r))]);
            self.close("originalText");
        }
        for t in &cd.translations {
            self.cd("translation", t);
        }
        self.close(name);
    }

    /// A coded value when present.
    pub fn opt_cd(&mut self, name: &str, cd: Option<&Cd>) {
        if let Some(cd) = cd {
            self.cd(name, cd);
        }
    }

    /// A point in time (`TS`).
    pub fn ts(&mut self, name: &str, value: &str) {
        self.empty(name, &[("value", Some(value))]);
    }

    /// An interval of time (`IVL_TS`), or a point in time.
    pub fn interval(&mut self, name: &str, ivl: &Interval) {
        if ivl.low.is_none() && ivl.high.is_none() {
            self.empty(name, &[("value", ivl.value.as_ref().map(|t| t.as_str()))]);
            return;
        }
        self.open(name, &[("value", ivl.value.as_ref().map(|t| t.as_str()))]);
        if let Some(low) = &ivl.low {
            self.ts("low", low.as_str());
        }
        if let Some(high) = &ivl.high {
            self.ts("high", high.as_str());
        }
        self.close(name);
    }

    /// Addresses.
    pub fn addrs(&mut self, addrs: &[Addr]) {
        for a in addrs {
            self.addr("addr", a);
        }
    }

    /// A postal address.
    pub fn addr(&mut self, name: &str, a: &Addr) {
        self.open(name, &[("use", a.use_.as_deref())]);
        self.opt_text("country", a.country.as_deref());
        self.opt_text("state", a.state.as_deref());
        self.opt_text("county", a.county.as_deref());
        self.opt_text("city", a.city.as_deref());
        self.opt_text("censusTract", a.census_tract.as_deref());
        self.opt_text("postalCode", a.postal_code.as_deref());
        self.opt_text("streetAddressLine", a.street_address_line.as_deref());
        self.close(name);
    }

    /// Telecoms.
    pub fn telecoms(&mut self, telecoms: &[Telecom]) {
        for t in telecoms {
            self.empty(
                "telecom",
                &[("use", t.use_.as_deref()), ("value", Some(&t.value))],
            );
        }
    }

    /// A person's name.
    pub fn name(&mut self, n: &Name) {
        self.open("name", &[]);
        self.opt_text("prefix", n.prefix.as_deref());
        self.opt_text("family", n.family.as_deref());
        self.opt_text("given", n.given.as_deref());
        self.opt_text("suffix", n.suffix.as_deref());
        self.close("name");
    }

    /// A generic element tree (statements, narrative).
    pub fn node(&mut self, node: &Node) {
        let attrs: Vec<(&str, Option<&str>)> = node
            .attrs
            .iter()
            .map(|(k, v)| (k.as_str(), Some(v.as_str())))
            .collect();
        if node.children.is_empty() {
            self.empty(&node.name, &attrs);
            return;
        }
        self.open(&node.name, &attrs);
        self.children(&node.children);
        self.close(&node.name);
    }

    /// The children of a generic element tree.
    pub fn children(&mut self, children: &[Child]) {
        for child in children {
            match child {
                Child::Element(n) => self.node(n),
                Child::Text(t) => self.text(t),
            }
        }
    }
}

impl Default for Xml {
    fn default() -> Self {
        Xml::new()
    }
}
