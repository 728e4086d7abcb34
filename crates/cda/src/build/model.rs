//! The JSON input model, version `fse-cda-build/1`. These types ARE its documentation (see
//! also `crates/cda/MODEL.md` for a guide and a full example).
//!
//! Conventions: field names are snake_case; every object rejects unknown fields; lists may be
//! omitted when empty; HL7 data types keep their CDA meaning (`Ii` is an instance identifier,
//! `Cd` a coded value, `Ts` a timestamp). The header is fully typed; the clinical statements
//! of sections are a generic CDA element tree ([`Node`]), so any statement of the HL7 Italia
//! guides can be expressed.

use super::doctype::DocType;
use super::narrative::Narrative;
use super::node::Node;
pub use super::statement::Statement;
use super::types::{FiscalCode, ModelVersion, Ts};
use serde::Deserialize;

/// A whole report: the CDA header plus the body sections.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Always `"fse-cda-build/1"`.
    pub model: ModelVersion,
    /// The document type: `LAB`, `LAB_TRASF`, `LDO`, `RAD`, `RSA`, `VPS`, `PSS`, `RAP`,
    /// `SING_VACC`, `CERT_VACC`. It fixes the national templateId (written first), the LOINC
    /// document code and the required sections.
    #[serde(rename = "type")]
    pub doc_type: DocType,
    /// `templateId/@extension` of the national template; defaults to the IG version of the type.
    #[serde(default)]
    pub template_version: Option<String>,
    /// Unique id of this document version (`ClinicalDocument/id`).
    pub id: Ii,
    /// Overrides the document code (its `code` must still be the type's LOINC code), e.g. to
    /// change its displayName or add translations.
    #[serde(default)]
    pub code: Option<Cd>,
    /// Document title.
    #[serde(default)]
    pub title: Option<String>,
    /// `sdtc:statusCode/@code` of the document (e.g. `active`, `completed`), when wanted.
    #[serde(default)]
    pub status_code: Option<String>,
    /// Creation time of the document.
    pub effective_time: Ts,
    /// Confidentiality: `N` (normal), `R` (restricted) or `V` (very restricted).
    pub confidentiality: Confidentiality,
    /// Language (`languageCode`); default `it-IT`.
    #[serde(default)]
    pub language: Option<String>,
    /// Id shared by all versions of the document (`setId`).
    pub set_id: Ii,
    /// Version number, from 1.
    pub version_number: u32,
    /// The patient (`recordTarget/patientRole`).
    pub patient: Patient,
    /// Authors (at least one).
    pub authors: Vec<Author>,
    /// Who entered the data (`dataEnterer`).
    #[serde(default)]
    pub data_enterer: Option<DataEnterer>,
    /// Informants (`informant`).
    #[serde(default)]
    pub informants: Vec<Informant>,
    /// The organisation keeping the document (`custodian/assignedCustodian/
    /// representedCustodianOrganization`): at most one telecom and one address.
    pub custodian: Organization,
    /// Intended recipients (`informationRecipient`).
    #[serde(default)]
    pub information_recipients: Vec<Recipient>,
    /// Who signs the document (`legalAuthenticator`).
    pub legal_authenticator: Signer,
    /// Other authenticators (`authenticator`).
    #[serde(default)]
    pub authenticators: Vec<Signer>,
    /// Other participants (`participant`), e.g. the referring physician (`REF`).
    #[serde(default)]
    pub participants: Vec<Participant>,
    /// The orders this document fulfils (`inFulfillmentOf/order`).
    #[serde(default)]
    pub orders: Vec<Order>,
    /// Acts documented (`documentationOf/serviceEvent`).
    #[serde(default)]
    pub documentation_of: Vec<ServiceEvent>,
    /// Documents this one replaces or appends to (`relatedDocument`).
    #[serde(default)]
    pub related_documents: Vec<RelatedDocument>,
    /// The encounter (`componentOf/encompassingEncounter`).
    #[serde(default)]
    pub encounter: Option<Encounter>,
    /// The body: top-level sections, in order.
    pub sections: Vec<Section>,
}

/// An instance identifier (`II`).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ii {
    /// OID (or UUID) of the namespace.
    #[serde(default)]
    pub root: Option<String>,
    /// The id inside that namespace.
    #[serde(default)]
    pub extension: Option<String>,
    /// Human-readable name of the assigning authority.
    #[serde(default)]
    pub assigning_authority_name: Option<String>,
    /// Why the id is missing (`UNK`, `NI`, ...).
    #[serde(default)]
    pub null_flavor: Option<String>,
}

/// A coded value (`CD`/`CE`/`CV`).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cd {
    /// The code.
    #[serde(default)]
    pub code: Option<String>,
    /// OID of the code system.
    #[serde(default)]
    pub code_system: Option<String>,
    /// Name of the code system.
    #[serde(default)]
    pub code_system_name: Option<String>,
    /// Version of the code system: leave it out unless you must set it (the gateway refuses
    /// any version but the current one).
    #[serde(default)]
    pub code_system_version: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Why the code is missing.
    #[serde(default)]
    pub null_flavor: Option<String>,
    /// Points at the narrative the code was chosen from (`originalText/reference/@value`,
    /// e.g. `#diag-1`).
    #[serde(default)]
    pub original_text_reference: Option<String>,
    /// Equivalent codes in other systems.
    #[serde(default)]
    pub translations: Vec<Cd>,
}

/// Confidentiality codes of HL7 (2.16.840.1.113883.5.25) accepted by the FSE schematron.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub enum Confidentiality {
    /// Normal.
    N,
    /// Restricted.
    R,
    /// Very restricted.
    V,
}

/// A postal address (`AD`); parts are written in the order of the fields.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Addr {
    /// Address use: `H` home, `HP` primary home, `WP` work, `TMP` temporary...
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    /// Country (ISTAT code, e.g. `100` for Italy, or a name).
    #[serde(default)]
    pub country: Option<String>,
    /// Region (ISTAT code).
    #[serde(default)]
    pub state: Option<String>,
    /// Province (e.g. `RM`).
    #[serde(default)]
    pub county: Option<String>,
    /// City.
    #[serde(default)]
    pub city: Option<String>,
    /// ISTAT code of the municipality.
    #[serde(default)]
    pub census_tract: Option<String>,
    /// Postal code.
    #[serde(default)]
    pub postal_code: Option<String>,
    /// Street and number.
    #[serde(default)]
    pub street_address_line: Option<String>,
}

/// A telecom address (`TEL`), e.g. `tel:+39...`, `mailto:...`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Telecom {
    /// The URL.
    pub value: String,
    /// Use: `HP`, `WP`, `MC`...
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
}

/// A person's name (`PN`).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Name {
    /// Prefix, e.g. `Dott.`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Family name.
    #[serde(default)]
    pub family: Option<String>,
    /// Given name(s).
    #[serde(default)]
    pub given: Option<String>,
    /// Suffix.
    #[serde(default)]
    pub suffix: Option<String>,
}

/// Administrative gender (HL7 2.16.840.1.113883.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub enum Gender {
    /// Male.
    M,
    /// Female.
    F,
    /// Undifferentiated.
    UN,
}

/// The patient (`recordTarget/patientRole`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Patient {
    /// Codice fiscale (written as id root 2.16.840.1.113883.2.9.4.3.2), checked incl. its
    /// check character.
    #[serde(default)]
    pub fiscal_code: Option<FiscalCode>,
    /// Other ids the guides allow (STP, ENI, TEAM, regional ids...). At least one id overall;
    /// the fiscal-code root is only accepted through `fiscal_code`.
    #[serde(default)]
    pub other_ids: Vec<Ii>,
    /// Addresses (residence `H`, domicile `HP`...).
    #[serde(default)]
    pub addresses: Vec<Addr>,
    /// Phone numbers, e-mail addresses.
    #[serde(default)]
    pub telecoms: Vec<Telecom>,
    /// Name.
    pub name: Name,
    /// Administrative gender.
    pub gender: Gender,
    /// Birth date.
    pub birth_time: Ts,
    /// Place of birth.
    #[serde(default)]
    pub birthplace: Option<Addr>,
}

/// An organisation.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    /// Ids (e.g. the ASL/AO code).
    #[serde(default)]
    pub ids: Vec<Ii>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Telecoms.
    #[serde(default)]
    pub telecoms: Vec<Telecom>,
    /// Addresses.
    #[serde(default)]
    pub addresses: Vec<Addr>,
    /// Ids of the organisation this one is part of (`asOrganizationPartOf/id`).
    #[serde(default)]
    pub part_of_ids: Vec<Ii>,
}

/// A person acting for an organisation (`assignedEntity`, `assignedAuthor`).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Assigned {
    /// Ids (fiscal code of the professional, regional ids...).
    #[serde(default)]
    pub ids: Vec<Ii>,
    /// Role code.
    #[serde(default)]
    pub code: Option<Cd>,
    /// Addresses.
    #[serde(default)]
    pub addresses: Vec<Addr>,
    /// Telecoms.
    #[serde(default)]
    pub telecoms: Vec<Telecom>,
    /// The person's name (`assignedPerson/name`).
    #[serde(default)]
    pub person: Option<Name>,
    /// The organisation (`representedOrganization`).
    #[serde(default)]
    pub organization: Option<Organization>,
}

/// An author.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Author {
    /// When the author wrote.
    pub time: Ts,
    /// Who.
    pub assigned_author: Assigned,
}

/// The data enterer.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataEnterer {
    /// When.
    #[serde(default)]
    pub time: Option<Ts>,
    /// Who.
    pub assigned_entity: Assigned,
}

/// A legal authenticator or an authenticator.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// When the document was signed.
    pub time: Ts,
    /// `signatureCode/@code`; default `S`.
    #[serde(default)]
    pub signature_code: Option<String>,
    /// Who.
    pub assigned_entity: Assigned,
}

/// An informant: either a professional or a related person.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Informant {
    /// A professional (`assignedEntity`).
    AssignedEntity(Assigned),
    /// A relative or other person (`relatedEntity`).
    RelatedEntity(RelatedEntity),
}

/// A related person (`relatedEntity`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelatedEntity {
    /// Relationship class: `PRS` personal, `CAREGIVER`, `AGNT`...
    pub class_code: String,
    /// Relationship code.
    #[serde(default)]
    pub code: Option<Cd>,
    /// Addresses.
    #[serde(default)]
    pub addresses: Vec<Addr>,
    /// Telecoms.
    #[serde(default)]
    pub telecoms: Vec<Telecom>,
    /// Name (`relatedPerson/name`).
    #[serde(default)]
    pub person: Option<Name>,
}

/// An intended recipient.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    /// Ids.
    #[serde(default)]
    pub ids: Vec<Ii>,
    /// Addresses.
    #[serde(default)]
    pub addresses: Vec<Addr>,
    /// Telecoms.
    #[serde(default)]
    pub telecoms: Vec<Telecom>,
    /// Name (`informationRecipient/name`).
    #[serde(default)]
    pub person: Option<Name>,
    /// Organisation (`receivedOrganization`).
    #[serde(default)]
    pub organization: Option<Organization>,
}

/// A participant of the document (`participant`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Participant {
    /// Participation type: `REF` referrer, `IND` indirect...
    pub type_code: String,
    /// Function code.
    #[serde(default)]
    pub function_code: Option<Cd>,
    /// Time of the participation.
    #[serde(default)]
    pub time: Option<Ts>,
    /// The participant (`associatedEntity`).
    pub associated_entity: AssociatedEntity,
}

/// The entity of a participant (`associatedEntity`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssociatedEntity {
    /// Class: `PROV` provider, `ECON` emergency contact, `NOK`, `GUARD`...
    pub class_code: String,
    /// Ids.
    #[serde(default)]
    pub ids: Vec<Ii>,
    /// Code.
    #[serde(default)]
    pub code: Option<Cd>,
    /// Addresses.
    #[serde(default)]
    pub addresses: Vec<Addr>,
    /// Telecoms.
    #[serde(default)]
    pub telecoms: Vec<Telecom>,
    /// Name (`associatedPerson/name`).
    #[serde(default)]
    pub person: Option<Name>,
    /// Organisation (`scopingOrganization`).
    #[serde(default)]
    pub organization: Option<Organization>,
}

/// An order fulfilled by the document (`inFulfillmentOf/order`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// Ids (e.g. the NRE of the prescription).
    pub ids: Vec<Ii>,
    /// Priority (`R` routine, `UR` urgent...).
    #[serde(default)]
    pub priority_code: Option<Cd>,
}

/// An interval of time, or a single point in time.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    /// A point in time (alone).
    #[serde(default)]
    pub value: Option<Ts>,
    /// Start.
    #[serde(default)]
    pub low: Option<Ts>,
    /// End.
    #[serde(default)]
    pub high: Option<Ts>,
}

/// A documented act (`documentationOf/serviceEvent`).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceEvent {
    /// Ids.
    #[serde(default)]
    pub ids: Vec<Ii>,
    /// Code.
    #[serde(default)]
    pub code: Option<Cd>,
    /// `statusCode/@code`.
    #[serde(default)]
    pub status_code: Option<String>,
    /// When.
    #[serde(default)]
    pub effective_time: Option<Interval>,
    /// Performers.
    #[serde(default)]
    pub performers: Vec<Performer>,
}

/// A performer (`performer`, `encounterParticipant`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Performer {
    /// Participation type (`PRF`, `ATND`...).
    pub type_code: String,
    /// When.
    #[serde(default)]
    pub time: Option<Interval>,
    /// Who.
    pub assigned_entity: Assigned,
}

/// A related document (`relatedDocument/parentDocument`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelatedDocument {
    /// `RPLC` (replaces), `APND` (appends), `XFRM` (transforms).
    pub type_code: String,
    /// Ids of the parent document.
    pub ids: Vec<Ii>,
    /// Set id of the parent.
    #[serde(default)]
    pub set_id: Option<Ii>,
    /// Version number of the parent.
    #[serde(default)]
    pub version_number: Option<u32>,
}

/// The encounter (`componentOf/encompassingEncounter`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Encounter {
    /// Ids (e.g. the admission number).
    #[serde(default)]
    pub ids: Vec<Ii>,
    /// Encounter code.
    #[serde(default)]
    pub code: Option<Cd>,
    /// When (required by CDA; use `{}` only with a null flavor you set elsewhere).
    pub effective_time: Interval,
    /// The responsible party (`responsibleParty/assignedEntity`).
    #[serde(default)]
    pub responsible_party: Option<Assigned>,
    /// Participants (`encounterParticipant`).
    #[serde(default)]
    pub participants: Vec<Performer>,
    /// Where (`location/healthCareFacility`).
    #[serde(default)]
    pub facility: Option<Facility>,
}

/// A health care facility.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Facility {
    /// Ids (e.g. HSP.11 / STS.11 codes).
    #[serde(default)]
    pub ids: Vec<Ii>,
    /// Facility code.
    #[serde(default)]
    pub code: Option<Cd>,
    /// Name of the place (`location/name`).
    #[serde(default)]
    pub location_name: Option<String>,
    /// Address of the place (`location/addr`).
    #[serde(default)]
    pub location_address: Option<Addr>,
    /// The organisation providing the service (`serviceProviderOrganization`).
    #[serde(default)]
    pub service_provider: Option<Organization>,
}

/// A section of the body.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// XML `ID` attribute of the section element (a target for references).
    #[serde(default)]
    pub xml_id: Option<String>,
    /// Section id.
    #[serde(default)]
    pub id: Option<Ii>,
    /// Section templateIds, in order. When absent, the builder writes the templateId the
    /// implementation guide of the type gives to this section code (see `doctype`), if any;
    /// `[]` writes none.
    #[serde(default)]
    pub template_ids: Option<Vec<Ii>>,
    /// Section code (LOINC).
    pub code: Cd,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Narrative text (what the reader sees).
    #[serde(default)]
    pub text: Option<Narrative>,
    /// Section authors.
    #[serde(default)]
    pub authors: Vec<Author>,
    /// Coded entries.
    #[serde(default)]
    pub entries: Vec<Entry>,
    /// Nested sections.
    #[serde(default)]
    pub sections: Vec<Section>,
}

/// A coded entry of a section: one clinical statement, written either in the typed form
/// (`observation`, `act`, `organizer`, `substance_administration`, `procedure`, `encounter`,
/// `supply`; see [`Statement`]) or as a generic CDA tree (`statement`, see [`Node`]), which
/// expresses anything the guides allow. Exactly one of them.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// `entry/@typeCode` (`COMP`, `DRIV`); CDA's default when absent. Required in
    /// `entry_relationships` (`COMP`, `SUBJ`, `REFR`, `RSON`, `CAUS`...).
    #[serde(default)]
    pub type_code: Option<String>,
    /// `entryRelationship/@inversionInd` (entry relationships only).
    #[serde(default)]
    pub inversion: Option<bool>,
    /// A generic statement tree: an `observation`, `act`, `organizer`,
    /// `substanceAdministration`, `procedure`, `encounter`, `supply`, `observationMedia` or
    /// `regionOfInterest` element in JsonML.
    #[serde(default)]
    pub statement: Option<Node>,
    /// A typed observation.
    #[serde(default)]
    pub observation: Option<Box<Statement>>,
    /// A typed act.
    #[serde(default)]
    pub act: Option<Box<Statement>>,
    /// A typed organizer (`class_code` required: `BATTERY` or `CLUSTER`).
    #[serde(default)]
    pub organizer: Option<Box<Statement>>,
    /// A typed substance administration.
    #[serde(default)]
    pub substance_administration: Option<Box<Statement>>,
    /// A typed procedure.
    #[serde(default)]
    pub procedure: Option<Box<Statement>>,
    /// A typed encounter.
    #[serde(default)]
    pub encounter: Option<Box<Statement>>,
    /// A typed supply.
    #[serde(default)]
    pub supply: Option<Box<Statement>>,
}
