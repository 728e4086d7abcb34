//! Unit tests of the schematron interpreter.

use super::*;

const SCH: &str = r#"<schema xmlns="http://purl.oclc.org/dsdl/schematron" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <title>test</title>
  <ns prefix="h" uri="urn:hl7-org:v3"/>
  <let name="g" value="count(//h:item)"/>
  <pattern id="p1">
    <rule context="h:item[@kind='special']">
      <assert test="@value" id="S1">special <name/> needs a value</assert>
    </rule>
    <rule context="h:item">
      <let name="v" value="@value"/>
      <let name="path"><xsl:for-each select="ancestor::*"><xsl:value-of select="concat('/', name())"/></xsl:for-each></let>
      <assert test="$v = ('a', 'b')" diagnostics="d1">ERRORE-7| item <value-of select="$v"/> of <value-of select="$g"/>
         bad at <value-of select="$path"/></assert>
      <report test="$v = 'b'">W1| b is discouraged</report>
      <extends rule="common"/>
    </rule>
    <rule abstract="true" id="common">
      <assert test="string-length(@value) &lt; 3">ERRORE-len| too long</assert>
    </rule>
  </pattern>
  <pattern abstract="true" id="has">
    <rule context="$ctx"><assert test="$what">ERRORE-has| <name/> lacks <value-of select="'$what'"/> ($what)</assert></rule>
  </pattern>
  <pattern is-a="has" id="p2">
    <param name="ctx" value="h:root"/>
    <param name="what" value="h:title"/>
  </pattern>
  <diagnostics><diagnostic id="d1">value was '<value-of select="@value"/>'</diagnostic></diagnostics>
</schema>"#;

const DOC: &str = r#"<root xmlns="urn:hl7-org:v3"><item value="a"/><item value="b"/><group><item value="zzzz"/></group><item kind="special"/></root>"#;

fn run(doc: &str) -> SchematronReport {
    let schema = Schema::from_bytes(SCH.as_bytes(), Path::new("test.sch")).unwrap();
    let d = crate::xml::parse(doc.as_bytes()).unwrap();
    schema.validate(&d).unwrap()
}

#[test]
fn first_matching_rule_per_pattern_and_messages() {
    let r = run(DOC);
    let ids: Vec<_> = r
        .failed_asserts
        .iter()
        .map(|f| f.id.clone().unwrap_or_default())
        .collect();
    // zzzz fails the value list and the length (extends); the special item only fires its own
    // rule; the root lacks a title (abstract pattern).
    assert_eq!(ids, ["ERRORE-7", "ERRORE-len", "S1", "ERRORE-has"]);
    let f = &r.failed_asserts[0];
    assert_eq!(f.text, "ERRORE-7| item zzzz of 4 bad at /root/group");
    assert_eq!(f.diagnostics, ["value was 'zzzz'"]);
    assert_eq!(
        f.location,
        "/*:root[namespace-uri()='urn:hl7-org:v3'][1]/*:group[namespace-uri()='urn:hl7-org:v3'][1]/*:item[namespace-uri()='urn:hl7-org:v3'][1]"
    );
    assert_eq!((f.line, f.column), (1, 71));
    assert_eq!(f.test, "$v = ('a', 'b')");
    assert_eq!(r.failed_asserts[2].text, "special item needs a value");
    assert_eq!(
        r.failed_asserts[3].text,
        "ERRORE-has| root lacks h:title ($what)"
    );
    assert_eq!(r.successful_reports.len(), 1);
    assert_eq!(r.successful_reports[0].id.as_deref(), Some("W1"));
    assert_eq!(
        r.successful_reports[0].location,
        "/*:root[namespace-uri()='urn:hl7-org:v3'][1]/*:item[namespace-uri()='urn:hl7-org:v3'][2]"
    );
}

#[test]
fn clean_document_has_no_findings() {
    let r = run(r#"<root xmlns="urn:hl7-org:v3"><title/><item value="a"/></root>"#);
    assert!(
        r.failed_asserts.is_empty() && r.successful_reports.is_empty(),
        "{r:?}"
    );
}

#[test]
fn dynamic_errors_stop_the_run() {
    let sch = r#"<schema xmlns="http://purl.oclc.org/dsdl/schematron"><pattern><rule context="a">
        <let name="unused" value="1 + 'x'"/>
        <assert test="@n = 1">n</assert></rule></pattern></schema>"#;
    let schema = Schema::from_bytes(sch.as_bytes(), Path::new("t.sch")).unwrap();
    let ok = crate::xml::parse(b"<a n='1'/>").unwrap();
    assert!(
        schema.validate(&ok).unwrap().failed_asserts.is_empty(),
        "unused failing let is harmless"
    );
    let bad = crate::xml::parse(b"<a n='one'/>").unwrap();
    assert!(matches!(
        schema.validate(&bad),
        Err(SchematronError::Evaluation { .. })
    ));
}

#[test]
fn include_and_compile_errors() {
    let dir = std::env::temp_dir().join(format!("fse-sch-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("inc.sch"),
        r#"<pattern xmlns="http://purl.oclc.org/dsdl/schematron"><rule context="a"><assert test="b">ERRORE-inc| no b</assert></rule></pattern>"#,
    )
    .unwrap();
    let main = r#"<schema xmlns="http://purl.oclc.org/dsdl/schematron"><include href="inc.sch"/></schema>"#;
    std::fs::write(dir.join("main.sch"), main).unwrap();
    let schema = Schema::load(&dir.join("main.sch")).unwrap();
    let d = crate::xml::parse(b"<a/>").unwrap();
    let r = schema.validate(&d).unwrap();
    assert_eq!(r.failed_asserts[0].id.as_deref(), Some("ERRORE-inc"));
    std::fs::remove_dir_all(&dir).unwrap();

    let bad = r#"<schema xmlns="http://purl.oclc.org/dsdl/schematron"><pattern><rule context="a"><assert test="count(">x</assert></rule></pattern></schema>"#;
    assert!(matches!(
        Schema::from_bytes(bad.as_bytes(), Path::new("b.sch")),
        Err(SchematronError::Compile { .. })
    ));
    assert!(matches!(
        Schema::from_bytes(b"<schema/>", Path::new("c.sch")),
        Err(SchematronError::Invalid(..))
    ));
}

#[test]
fn schema_is_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Schema>();
}
