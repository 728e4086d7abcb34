//! Typed clinical statements: the common shape of CDA R2 `observation`, `act`, `organizer`,
//! `substanceAdministration`, `procedure`, `encounter` and `supply`, with HL7 data types for
//! their values. The builder writes the fields in the element order of the CDA schema and
//! refuses a field the kind of statement cannot carry. Anything beyond this shape is written
//! with the generic tree ([`super::node::Node`], the `statement` field of an entry).

use super::document::{author, performer, write_tree};
use super::model::{Addr, Author, Cd, Entry, Ii, Organization, Performer, Telecom};
use super::node::Node;
use super::types::Ts;
use super::writer::Xml;
use super::BuildError;
use serde::Deserialize;

/// The kind of a typed statement (the field of the entry that holds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `observation`.
    Observation,
    /// `act`.
    Act,
    /// `organizer`.
    Organizer,
    /// `substanceAdministration`.
    SubstanceAdministration,
    /// `procedure`.
    Procedure,
    /// `encounter`.
    Encounter,
    /// `supply`.
    Supply,
}

impl Kind {
    /// CDA element name.
    pub fn element(self) -> &'static str {
        match self {
            Kind::Observation => "observation",
            Kind::Act => "act",
            Kind::Organizer => "organizer",
            Kind::SubstanceAdministration => "substanceAdministration",
            Kind::Procedure => "procedure",
            Kind::Encounter => "encounter",
            Kind::Supply => "supply",
        }
    }

    /// JSON field name.
    pub fn field(self) -> &'static str {
        match self {
            Kind::SubstanceAdministration => "substance_administration",
            k => k.element(),
        }
    }

    fn default_class(self) -> Option<&'static str> {
        match self {
            Kind::Observation => Some("OBS"),
            Kind::Act => Some("ACT"),
            Kind::Organizer => None,
            Kind::SubstanceAdministration => Some("SBADM"),
            Kind::Procedure => Some("PROC"),
            Kind::Encounter => Some("ENC"),
            Kind::Supply => Some("SPLY"),
        }
    }
}

/// A typed clinical statement. Which fields a kind accepts follows CDA R2: e.g. `values` and
/// `reference_ranges` only on observations, `consumable` only on substance administrations,
/// `components` only on organizers.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// `@classCode`; default by kind (`OBS`, `ACT`, `SBADM`, `PROC`, `ENC`, `SPLY`); required
    /// for organizers (`BATTERY`, `CLUSTER`).
    #[serde(default)]
    pub class_code: Option<String>,
    /// `@moodCode`; default `EVN`.
    #[serde(default)]
    pub mood_code: Option<String>,
    /// `@negationInd`.
    #[serde(default)]
    pub negation: Option<bool>,
    /// templateIds, in order.
    #[serde(default)]
    pub template_ids: Vec<Ii>,
    /// Ids.
    #[serde(default)]
    pub ids: Vec<Ii>,
    /// Code.
    #[serde(default)]
    pub code: Option<Cd>,
    /// Reference to the narrative (`text/reference/@value`, e.g. `#glu-1`).
    #[serde(default)]
    pub text_reference: Option<String>,
    /// Free text of the statement (`text`), after the reference if both are given.
    #[serde(default)]
    pub text: Option<String>,
    /// `statusCode/@code`.
    #[serde(default)]
    pub status_code: Option<String>,
    /// When.
    #[serde(default)]
    pub effective_time: Option<Time>,
    /// Frequency of a substance administration or supply ("every 12 h"): a second
    /// `effectiveTime` of type `PIVL_TS` with `operator="A"`.
    #[serde(default)]
    pub period: Option<Period>,
    /// Route (substance administrations).
    #[serde(default)]
    pub route_code: Option<Cd>,
    /// Approach sites (substance administrations, procedures).
    #[serde(default)]
    pub approach_site_codes: Vec<Cd>,
    /// Dose (substance administrations): a quantity or a range.
    #[serde(default)]
    pub dose_quantity: Option<Dose>,
    /// Rate (substance administrations, e.g. infusions): a quantity or a range.
    #[serde(default)]
    pub rate_quantity: Option<Dose>,
    /// Unit of administration, e.g. tablet (substance administrations).
    #[serde(default)]
    pub administration_unit_code: Option<Cd>,
    /// Values (observations).
    #[serde(default)]
    pub values: Vec<Value>,
    /// Interpretations (observations): `N`, `H`, `L`...
    #[serde(default)]
    pub interpretation_codes: Vec<Cd>,
    /// Methods (observations, procedures).
    #[serde(default)]
    pub method_codes: Vec<Cd>,
    /// Target sites (observations, procedures).
    #[serde(default)]
    pub target_site_codes: Vec<Cd>,
    /// Quantity (supplies).
    #[serde(default)]
    pub quantity: Option<Pq>,
    /// Specimens: the code of each specimen (`specimen/specimenRole/specimenPlayingEntity/code`).
    #[serde(default)]
    pub specimens: Vec<Cd>,
    /// The product given (substance administrations: `consumable`; supplies: `product`).
    #[serde(default)]
    pub product: Option<Product>,
    /// Performers.
    #[serde(default)]
    pub performers: Vec<Performer>,
    /// Authors.
    #[serde(default)]
    pub authors: Vec<Author>,
    /// Participants (devices, locations, other roles).
    #[serde(default)]
    pub participants: Vec<EntryParticipant>,
    /// Related statements (`entryRelationship`): each needs a `type_code` (`COMP`, `SUBJ`,
    /// `REFR`, `RSON`, `CAUS`...).
    #[serde(default)]
    pub entry_relationships: Vec<Entry>,
    /// Reference ranges (observations).
    #[serde(default)]
    pub reference_ranges: Vec<ReferenceRange>,
    /// Components (organizers).
    #[serde(default)]
    pub components: Vec<Entry>,
}

/// A time: a point (`value`), an interval (`low`/`high`) or unknown (`null_flavor`).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Time {
    /// A point in time.
    #[serde(default)]
    pub value: Option<Ts>,
    /// Start.
    #[serde(default)]
    pub low: Option<Ts>,
    /// End.
    #[serde(default)]
    pub high: Option<Ts>,
    /// `UNK`, `NA`...
    #[serde(default)]
    pub null_flavor: Option<String>,
}

/// A period of a periodic time (`PIVL_TS/period`).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// The length of the period, e.g. `"12"`.
    pub value: String,
    /// UCUM unit, e.g. `h`, `d`.
    pub unit: String,
    /// `institutionSpecified`: the institution chooses the times (e.g. twice a day).
    #[serde(default)]
    pub institution_specified: Option<bool>,
}

/// A dose (`IVL_PQ`): `value` and `unit`, or a range `low`/`high`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dose {
    /// The number, as written.
    #[serde(default)]
    pub value: Option<String>,
    /// UCUM unit of `value`.
    #[serde(default)]
    pub unit: Option<String>,
    /// Lowest dose.
    #[serde(default)]
    pub low: Option<Pq>,
    /// Highest dose.
    #[serde(default)]
    pub high: Option<Pq>,
}

/// A physical quantity (`PQ`): a decimal number and a UCUM unit.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pq {
    /// The number, as written (e.g. `"0.5"`).
    pub value: String,
    /// UCUM unit; `1` when absent.
    #[serde(default)]
    pub unit: Option<String>,
}

/// An observation value, by HL7 data type.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Value {
    /// Physical quantity.
    Pq(Pq),
    /// Interval of physical quantities.
    IvlPq {
        /// Low bound.
        #[serde(default)]
        low: Option<Pq>,
        /// High bound.
        #[serde(default)]
        high: Option<Pq>,
    },
    /// Coded value (`CD`).
    Cd(Cd),
    /// Coded value (`CE`).
    Ce(Cd),
    /// Coded value (`CO`).
    Co(Cd),
    /// String.
    St(String),
    /// Integer.
    Int(i64),
    /// Decimal number, as written (`REAL`).
    Real(String),
    /// Boolean.
    Bl(bool),
    /// Point in time.
    Ts(Ts),
    /// Interval of time.
    IvlTs {
        /// Start.
        #[serde(default)]
        low: Option<Ts>,
        /// End.
        #[serde(default)]
        high: Option<Ts>,
    },
    /// Encapsulated data: text and/or a reference to the narrative.
    Ed {
        /// Inline text.
        #[serde(default)]
        text: Option<String>,
        /// Reference (`#id`).
        #[serde(default)]
        reference: Option<String>,
    },
}

/// A reference range of an observation.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceRange {
    /// Text of the range.
    #[serde(default)]
    pub text: Option<String>,
    /// Low bound.
    #[serde(default)]
    pub low: Option<Pq>,
    /// High bound.
    #[serde(default)]
    pub high: Option<Pq>,
    /// The interpretation the range stands for (usually `N`).
    #[serde(default)]
    pub interpretation_code: Option<Cd>,
}

/// A medicinal product or material (`manufacturedProduct`).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// templateIds of `manufacturedProduct`.
    #[serde(default)]
    pub template_ids: Vec<Ii>,
    /// templateIds of `manufacturedMaterial`.
    #[serde(default)]
    pub material_template_ids: Vec<Ii>,
    /// Code of the material (AIC, ATC, vaccine codes...).
    pub code: Cd,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Lot number.
    #[serde(default)]
    pub lot_number: Option<String>,
    /// Manufacturer.
    #[serde(default)]
    pub manufacturer: Option<Organization>,
}

/// A participant of a statement (`participant/participantRole`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryParticipant {
    /// Participation type (`LOC`, `DEV`, `CSM`...).
    pub type_code: String,
    /// When.
    #[serde(default)]
    pub time: Option<Time>,
    /// `participantRole/@classCode`.
    #[serde(default)]
    pub class_code: Option<String>,
    /// templateIds of the role.
    #[serde(default)]
    pub template_ids: Vec<Ii>,
    /// Ids of the role.
    #[serde(default)]
    pub ids: Vec<Ii>,
    /// Code of the role.
    #[serde(default)]
    pub code: Option<Cd>,
    /// Addresses.
    #[serde(default)]
    pub addresses: Vec<Addr>,
    /// Telecoms.
    #[serde(default)]
    pub telecoms: Vec<Telecom>,
    /// `playingEntity/@classCode` (`MMAT`, `PLC`...).
    #[serde(default)]
    pub entity_class_code: Option<String>,
    /// Code of the playing entity.
    #[serde(default)]
    pub entity_code: Option<Cd>,
    /// Name of the playing entity (a thing or a place).
    #[serde(default)]
    pub entity_name: Option<String>,
    /// Name of the playing entity when it is a person.
    #[serde(default)]
    pub entity_person: Option<super::model::Name>,
}

/// The statement an entry (or relationship, or component) holds.
pub enum Chosen<'a> {
    /// A generic tree.
    Tree(&'a Node),
    /// A typed statement.
    Typed(Kind, &'a Statement),
}

impl Entry {
    /// The one statement this entry holds.
    pub fn chosen(&self) -> Result<Chosen<'_>, String> {
        let typed = [
            (Kind::Observation, &self.observation),
            (Kind::Act, &self.act),
            (Kind::Organizer, &self.organizer),
            (
                Kind::SubstanceAdministration,
                &self.substance_administration,
            ),
            (Kind::Procedure, &self.procedure),
            (Kind::Encounter, &self.encounter),
            (Kind::Supply, &self.supply),
        ];
        let mut found: Vec<Chosen> = typed
            .into_iter()
            .filter_map(|(k, s)| s.as_deref().map(|s| Chosen::Typed(k, s)))
            .collect();
        if let Some(n) = &self.statement {
            found.push(Chosen::Tree(n));
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err("needs one statement: `observation`, `act`, `organizer`, \
                 `substance_administration`, `procedure`, `encounter`, `supply` or `statement`"
                .into()),
            _ => Err("holds more than one statement".into()),
        }
    }
}

fn err(path: &str, message: impl Into<String>) -> BuildError {
    BuildError::Field {
        path: path.to_string(),
        message: message.into(),
    }
}

fn check_pq(path: &str, pq: &Pq) -> Result<(), BuildError> {
    let v = pq.value.strip_prefix('-').unwrap_or(&pq.value);
    let (int, frac) = v.split_once('.').unwrap_or((v, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) {
        return Err(err(
            &format!("{path}.value"),
            format!("invalid number {:?}", pq.value),
        ));
    }
    Ok(())
}

fn check_dose(here: &str, d: &Dose) -> Result<(), BuildError> {
    match (&d.value, d.low.is_some() || d.high.is_some()) {
        (Some(v), false) => check_pq(
            here,
            &Pq {
                value: v.clone(),
                unit: None,
            },
        ),
        (None, true) => {
            for (name, pq) in [("low", &d.low), ("high", &d.high)] {
                if let Some(pq) = pq {
                    check_pq(&format!("{here}.{name}"), pq)?;
                }
            }
            Ok(())
        }
        _ => Err(err(here, "give `value` (and `unit`) or `low`/`high`")),
    }
}

fn check_time(path: &str, t: &Time) -> Result<(), BuildError> {
    if t.value.is_some() && (t.low.is_some() || t.high.is_some()) {
        return Err(err(path, "give `value` or `low`/`high`, not both"));
    }
    Ok(())
}

/// Checks an entry (at `path`) and everything below it.
pub fn check_entry(path: &str, entry: &Entry, needs_type_code: bool) -> Result<(), BuildError> {
    if needs_type_code && entry.type_code.is_none() {
        return Err(err(
            &format!("{path}.type_code"),
            "an entry relationship needs a type_code",
        ));
    }
    let chosen = entry.chosen().map_err(|m| err(path, m))?;
    let Chosen::Typed(kind, st) = chosen else {
        return Ok(());
    };
    let path = format!("{path}.{}", kind.field());
    let not_on = |field: &str, present: bool| -> Result<(), BuildError> {
        if present {
            Err(err(
                &format!("{path}.{field}"),
                format!("not allowed on {}", kind.element()),
            ))
        } else {
            Ok(())
        }
    };
    use Kind::*;
    let obs = kind == Observation;
    not_on("values", !obs && !st.values.is_empty())?;
    not_on(
        "interpretation_codes",
        !obs && !st.interpretation_codes.is_empty(),
    )?;
    not_on("reference_ranges", !obs && !st.reference_ranges.is_empty())?;
    not_on(
        "method_codes",
        !matches!(kind, Observation | Procedure) && !st.method_codes.is_empty(),
    )?;
    not_on(
        "target_site_codes",
        !matches!(kind, Observation | Procedure) && !st.target_site_codes.is_empty(),
    )?;
    not_on(
        "approach_site_codes",
        !matches!(kind, SubstanceAdministration | Procedure) && !st.approach_site_codes.is_empty(),
    )?;
    not_on(
        "route_code",
        kind != SubstanceAdministration && st.route_code.is_some(),
    )?;
    not_on(
        "dose_quantity",
        kind != SubstanceAdministration && st.dose_quantity.is_some(),
    )?;
    not_on("quantity", kind != Supply && st.quantity.is_some())?;
    not_on(
        "product",
        !matches!(kind, SubstanceAdministration | Supply) && st.product.is_some(),
    )?;
    not_on("components", kind != Organizer && !st.components.is_empty())?;
    not_on(
        "text_reference",
        kind == Organizer && st.text_reference.is_some(),
    )?;
    not_on(
        "entry_relationships",
        kind == Organizer && !st.entry_relationships.is_empty(),
    )?;
    if kind == Organizer && st.class_code.is_none() {
        return Err(err(
            &format!("{path}.class_code"),
            "an organizer needs a class_code (BATTERY or CLUSTER)",
        ));
    }
    if kind == SubstanceAdministration && st.product.is_none() {
        return Err(err(
            &format!("{path}.product"),
            "a substance administration needs the product given (consumable)",
        ));
    }
    if let Some(t) = &st.effective_time {
        check_time(&format!("{path}.effective_time"), t)?;
    }
    for (name, dose) in [
        ("dose_quantity", &st.dose_quantity),
        ("rate_quantity", &st.rate_quantity),
    ] {
        if let Some(d) = dose {
            check_dose(&format!("{path}.{name}"), d)?;
        }
    }
    if let Some(pq) = &st.quantity {
        check_pq(&format!("{path}.quantity"), pq)?;
    }
    for (i, v) in st.values.iter().enumerate() {
        let here = format!("{path}.values[{i}]");
        match v {
            Value::Pq(pq) => check_pq(&format!("{here}.pq"), pq)?,
            Value::Real(r) => check_pq(
                &format!("{here}.real"),
                &Pq {
                    value: r.clone(),
                    unit: None,
                },
            )?,
            Value::IvlPq { low, high } => {
                for (name, pq) in [("low", low), ("high", high)] {
                    if let Some(pq) = pq {
                        check_pq(&format!("{here}.ivl_pq.{name}"), pq)?;
                    }
                }
            }
            _ => {}
        }
    }
    for (i, r) in st.reference_ranges.iter().enumerate() {
        for (name, pq) in [("low", &r.low), ("high", &r.high)] {
            if let Some(pq) = pq {
                check_pq(&format!("{path}.reference_ranges[{i}].{name}"), pq)?;
            }
        }
    }
    for (i, e) in st.entry_relationships.iter().enumerate() {
        check_entry(&format!("{path}.entry_relationships[{i}]"), e, true)?;
    }
    for (i, e) in st.components.iter().enumerate() {
        check_entry(&format!("{path}.components[{i}]"), e, false)?;
    }
    Ok(())
}

fn write_time(x: &mut Xml, name: &str, t: &Time, xsi_type: Option<&str>) {
    let value = t.value.as_ref().map(Ts::as_str);
    let attrs = [
        ("xsi:type", xsi_type),
        ("value", value),
        ("nullFlavor", t.null_flavor.as_deref()),
    ];
    if t.low.is_none() && t.high.is_none() {
        x.empty(name, &attrs);
        return;
    }
    x.open(name, &attrs);
    if let Some(low) = &t.low {
        x.ts("low", low.as_str());
    }
    if let Some(high) = &t.high {
        x.ts("high", high.as_str());
    }
    x.close(name);
}

fn write_pq(x: &mut Xml, name: &str, pq: &Pq, xsi_type: Option<&str>) {
    x.empty(
        name,
        &[
            ("xsi:type", xsi_type),
            ("value", Some(&pq.value)),
            ("unit", pq.unit.as_deref()),
        ],
    );
}

fn write_dose(x: &mut Xml, name: &str, d: &Dose) {
    match &d.value {
        Some(v) => x.empty(name, &[("value", Some(v)), ("unit", d.unit.as_deref())]),
        None => {
            x.open(name, &[]);
            if let Some(l) = &d.low {
                write_pq(x, "low", l, None);
            }
            if let Some(h) = &d.high {
                write_pq(x, "high", h, None);
            }
            x.close(name);
        }
    }
}

fn write_ivl_pq(x: &mut Xml, low: Option<&Pq>, high: Option<&Pq>) {
    x.open("value", &[("xsi:type", Some("IVL_PQ"))]);
    if let Some(l) = low {
        write_pq(x, "low", l, None);
    }
    if let Some(h) = high {
        write_pq(x, "high", h, None);
    }
    x.close("value");
}

fn write_value(x: &mut Xml, v: &Value) {
    match v {
        Value::Pq(pq) => write_pq(x, "value", pq, Some("PQ")),
        Value::IvlPq { low, high } => write_ivl_pq(x, low.as_ref(), high.as_ref()),
        Value::Cd(cd) => x.cd_typed("value", Some("CD"), cd),
        Value::Ce(cd) => x.cd_typed("value", Some("CE"), cd),
        Value::Co(cd) => x.cd_typed("value", Some("CO"), cd),
        Value::St(s) => x.text_elem("value", &[("xsi:type", Some("ST"))], s),
        Value::Int(i) => {
            let v = i.to_string();
            x.empty("value", &[("xsi:type", Some("INT")), ("value", Some(&v))]);
        }
        Value::Real(r) => x.empty("value", &[("xsi:type", Some("REAL")), ("value", Some(r))]),
        Value::Bl(b) => x.empty(
            "value",
            &[
                ("xsi:type", Some("BL")),
                ("value", Some(if *b { "true" } else { "false" })),
            ],
        ),
        Value::Ts(ts) => x.empty(
            "value",
            &[("xsi:type", Some("TS")), ("value", Some(ts.as_str()))],
        ),
        Value::IvlTs { low, high } => {
            x.open("value", &[("xsi:type", Some("IVL_TS"))]);
            if let Some(l) = low {
                x.ts("low", l.as_str());
            }
            if let Some(h) = high {
                x.ts("high", h.as_str());
            }
            x.close("value");
        }
        Value::Ed { text, reference } => {
            x.open("value", &[("xsi:type", Some("ED"))]);
            if let Some(r) = reference {
                x.empty("reference", &[("value", Some(r))]);
            }
            if let Some(t) = text {
                x.text(t);
            }
            x.close("value");
        }
    }
}

fn write_product(x: &mut Xml, wrapper: &str, p: &Product) {
    let type_code = if wrapper == "product" { "PRD" } else { "CSM" };
    x.open(wrapper, &[("typeCode", Some(type_code))]);
    x.open("manufacturedProduct", &[("classCode", Some("MANU"))]);
    x.iis("templateId", &p.template_ids);
    x.open("manufacturedMaterial", &[]);
    x.iis("templateId", &p.material_template_ids);
    x.cd("code", &p.code);
    x.opt_text("name", p.name.as_deref());
    x.opt_text("lotNumberText", p.lot_number.as_deref());
    x.close("manufacturedMaterial");
    if let Some(m) = &p.manufacturer {
        super::document::organization(x, "manufacturerOrganization", m);
    }
    x.close("manufacturedProduct");
    x.close(wrapper);
}

fn write_participant(x: &mut Xml, p: &EntryParticipant) {
    x.open("participant", &[("typeCode", Some(&p.type_code))]);
    if let Some(t) = &p.time {
        write_time(x, "time", t, None);
    }
    x.open("participantRole", &[("classCode", p.class_code.as_deref())]);
    x.iis("templateId", &p.template_ids);
    x.iis("id", &p.ids);
    x.opt_cd("code", p.code.as_ref());
    x.addrs(&p.addresses);
    x.telecoms(&p.telecoms);
    if p.entity_code.is_some()
        || p.entity_name.is_some()
        || p.entity_person.is_some()
        || p.entity_class_code.is_some()
    {
        x.open(
            "playingEntity",
            &[("classCode", p.entity_class_code.as_deref())],
        );
        x.opt_cd("code", p.entity_code.as_ref());
        x.opt_text("name", p.entity_name.as_deref());
        if let Some(n) = &p.entity_person {
            x.name(n);
        }
        x.close("playingEntity");
    }
    x.close("participantRole");
    x.close("participant");
}

/// Writes the statement an entry, relationship or component holds (which passed
/// [`check_entry`]).
pub fn write_chosen(x: &mut Xml, entry: &Entry) {
    match entry.chosen() {
        Ok(Chosen::Tree(node)) => write_tree(x, node),
        Ok(Chosen::Typed(kind, st)) => write_statement(x, kind, st),
        Err(_) => {}
    }
}

fn write_statement(x: &mut Xml, kind: Kind, st: &Statement) {
    use Kind::*;
    let name = kind.element();
    let negation = st.negation.map(|b| if b { "true" } else { "false" });
    x.open(
        name,
        &[
            (
                "classCode",
                st.class_code.as_deref().or(kind.default_class()),
            ),
            ("moodCode", Some(st.mood_code.as_deref().unwrap_or("EVN"))),
            ("negationInd", negation),
        ],
    );
    x.iis("templateId", &st.template_ids);
    x.iis("id", &st.ids);
    x.opt_cd("code", st.code.as_ref());
    match (&st.text_reference, &st.text) {
        (None, None) => {}
        (None, Some(t)) => x.text_elem("text", &[], t),
        (reference, text) => {
            x.open("text", &[]);
            if let Some(r) = reference {
                x.empty("reference", &[("value", Some(r))]);
            }
            if let Some(t) = text {
                x.text(t);
            }
            x.close("text");
        }
    }
    if let Some(s) = &st.status_code {
        x.empty("statusCode", &[("code", Some(s))]);
    }
    if let Some(t) = &st.effective_time {
        let ivl = t.low.is_some() || t.high.is_some();
        let xsi = (matches!(kind, SubstanceAdministration | Supply) && ivl).then_some("IVL_TS");
        write_time(x, "effectiveTime", t, xsi);
    }
    if let Some(p) = &st.period {
        let institution = p
            .institution_specified
            .map(|b| if b { "true" } else { "false" });
        x.open(
            "effectiveTime",
            &[
                ("xsi:type", Some("PIVL_TS")),
                ("institutionSpecified", institution),
                ("operator", Some("A")),
            ],
        );
        x.empty(
            "period",
            &[("value", Some(&p.value)), ("unit", Some(&p.unit))],
        );
        x.close("effectiveTime");
    }
    match kind {
        SubstanceAdministration => {
            x.opt_cd("routeCode", st.route_code.as_ref());
            for c in &st.approach_site_codes {
                x.cd("approachSiteCode", c);
            }
            for (name, dose) in [
                ("doseQuantity", &st.dose_quantity),
                ("rateQuantity", &st.rate_quantity),
            ] {
                if let Some(d) = dose {
                    write_dose(x, name, d);
                }
            }
            x.opt_cd(
                "administrationUnitCode",
                st.administration_unit_code.as_ref(),
            );
        }
        Observation => {
            for v in &st.values {
                write_value(x, v);
            }
            for c in &st.interpretation_codes {
                x.cd("interpretationCode", c);
            }
            for c in &st.method_codes {
                x.cd("methodCode", c);
            }
            for c in &st.target_site_codes {
                x.cd("targetSiteCode", c);
            }
        }
        Procedure => {
            for c in &st.method_codes {
                x.cd("methodCode", c);
            }
            for c in &st.approach_site_codes {
                x.cd("approachSiteCode", c);
            }
            for c in &st.target_site_codes {
                x.cd("targetSiteCode", c);
            }
        }
        Supply => {
            if let Some(q) = &st.quantity {
                write_pq(x, "quantity", q, None);
            }
        }
        _ => {}
    }
    for s in &st.specimens {
        x.open("specimen", &[("typeCode", Some("SPC"))]);
        x.open("specimenRole", &[("classCode", Some("SPEC"))]);
        x.open("specimenPlayingEntity", &[]);
        x.cd("code", s);
        x.close("specimenPlayingEntity");
        x.close("specimenRole");
        x.close("specimen");
    }
    if let Some(p) = &st.product {
        let wrapper = if kind == Supply {
            "product"
        } else {
            "consumable"
        };
        write_product(x, wrapper, p);
    }
    for p in &st.performers {
        performer(x, "performer", p);
    }
    for a in &st.authors {
        author(x, a);
    }
    for p in &st.participants {
        write_participant(x, p);
    }
    for e in &st.entry_relationships {
        let inversion = e.inversion.map(|b| if b { "true" } else { "false" });
        x.open(
            "entryRelationship",
            &[
                ("typeCode", e.type_code.as_deref()),
                ("inversionInd", inversion),
            ],
        );
        write_chosen(x, e);
        x.close("entryRelationship");
    }
    for r in &st.reference_ranges {
        x.open("referenceRange", &[("typeCode", Some("REFV"))]);
        x.open(
            "observationRange",
            &[("classCode", Some("OBS")), ("moodCode", Some("EVN.CRT"))],
        );
        x.opt_text("text", r.text.as_deref());
        if r.low.is_some() || r.high.is_some() {
            write_ivl_pq(x, r.low.as_ref(), r.high.as_ref());
        }
        x.opt_cd("interpretationCode", r.interpretation_code.as_ref());
        x.close("observationRange");
        x.close("referenceRange");
    }
    for c in &st.components {
        x.open("component", &[("typeCode", c.type_code.as_deref())]);
        write_chosen(x, c);
        x.close("component");
    }
    x.close(name);
}
