//! The gateway's correlation of document type and `tipoDocumentoLivAlto`, and its form of
//! `identificativoDoc`: the one table the client derives from, the batch refuses a
//! contradicting sidecar with, and the sandbox enforces.
//!
//! Source: the dispatcher's `release` branch (`validators/CorrelationDocumentTypeValidator`,
//! since January 2026; `CdaUtility.isValidMasterId`, delimiter mandatory since 19 March
//! 2026). A create, replace or metadata update whose `tipoDocumentoLivAlto` is not the one
//! the table gives for the LOINC code of the token's `resource_hl7_type` is refused 400
//! `/msg/validator` ("Non c'è correlazione tra tipo documento e tipo documento livello
//! alto"); a code the table lacks (e.g. 102033-8, listed among the document types but
//! correlated with no class) is refused the same way. The dispatcher's four placeholder
//! codes (`[LOINC_CODE]`: invito per vaccinazione, telemonitoraggio, teleassistenza) are not
//! real codes and are left out.

use super::enums::TipoDocumentoLivAlto;

/// `(LOINC code, document type, the one tipoDocumentoLivAlto the gateway accepts)`.
pub const DOCUMENT_CLASSES: &[(&str, &str, TipoDocumentoLivAlto)] = {
    use TipoDocumentoLivAlto::*;
    &[
        ("57833-6", "Prescrizione farmaceutica", Prs),
        ("60591-5", "Profilo Sanitario Sintetico", Sum),
        ("11502-2", "Referto di Laboratorio", Ref),
        (
            "57829-4",
            "Prescrizione per prodotto o apparecchiature mediche",
            Prs,
        ),
        ("34105-7", "Lettera di dimissione ospedaliera", Ldo),
        ("18842-5", "Lettera di dimissione non ospedaliera", Ldo),
        ("59258-4", "Verbale di pronto soccorso", Vrb),
        ("68604-8", "Referto di radiologia", Ref),
        ("11526-1", "Referto di anatomia patologica", Ref),
        ("59284-0", "Documento dei consensi", Con),
        ("104531-9", "Certificato di malattia", Crt),
        ("57832-8", "Prescrizione diagnostica o specialistica", Prs),
        ("29304-3", "Erogazione farmaceutica", Pre),
        ("11488-4", "Referto specialistico", Ref),
        ("57827-8", "Documento di esenzione", Ese),
        ("81223-0", "Erogazione specialistica", Pre),
        ("18776-5", "Piano terapeutico", Pdc),
        ("97500-3", "Certificazione verde Covid-19", Cer),
        ("87273-9", "Scheda singola vaccinazione", Vac),
        ("82593-5", "Certificato vaccinale", Vac),
        ("97499-8", "Certificato di guarigione da Covid-19", Cer),
        (
            "55750-4",
            "Resoconto relativo alla sicurezza del paziente",
            Sum,
        ),
        ("68814-3", "Bilanci di salute pediatrici", Cnt),
        ("103140-0", "Personal health attachment (taccuino)", Tac),
        ("103144-2", "Medical equipment dispensed.brief", Pre),
        ("103145-9", "Medical equipment dispensed.extended", Pre),
        ("103146-7", "Specialist care dispensed.brief", Pre),
        ("103147-5", "Specialist care dispensed.extended", Pre),
        ("101136-0", "Lettera di fine trattamento", Let),
        ("101134-5", "Promemoria di appuntamento", Pro),
        (
            "101133-7",
            "Consenso alla donazione di organo e/o tessuto",
            Con,
        ),
        ("53576-5", "Documento contenente dati Taccuino", Tac),
        ("100971-1", "Cartella clinica", Col),
        ("101881-1", "Tessera portatori di impianto", Sum),
        (
            "108276-7",
            "Lettera di invito per screening o altri percorsi di prevenzione",
            Let,
        ),
        ("75496-0", "Referto di Televisita", Ref),
        ("85208-7", "Referto di Teleconsulto", Ref),
    ]
};

/// The gateway's `detail` for a `tipoDocumentoLivAlto` that does not correlate.
pub const NO_CORRELATION: &str =
    "Non c'è correlazione tra tipo documento e tipo documento livello alto";

/// The gateway's `detail` for a body `identificativoDoc` (or a delete / metadata path id)
/// without `^` and a non-empty part after its last `^`.
pub const INVALID_ID_DOC: &str = "L'identificativo documento non è valido";

/// The gateway's `detail` for a replace whose path `idDoc` has that defect.
pub const INVALID_REQUEST_ID_DOC: &str =
    "L'identificativo documento fornito in richiesta non è valido";

/// The `tipoDocumentoLivAlto` the gateway accepts for a document of LOINC `loinc`; `None` when
/// it accepts none.
pub fn high_level_type(loinc: &str) -> Option<TipoDocumentoLivAlto> {
    DOCUMENT_CLASSES
        .iter()
        .find(|(code, _, _)| *code == loinc)
        .map(|(_, _, class)| *class)
}

/// Whether the gateway accepts `class` for a document of LOINC `loinc`.
pub fn correlates(loinc: &str, class: TipoDocumentoLivAlto) -> bool {
    high_level_type(loinc) == Some(class)
}

/// Why a document's `tipoDocumentoLivAlto` would be refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorrelationError {
    /// The value given is not the table's for the document type.
    #[error(
        "tipoDocumentoLivAlto {given} does not correlate with the document type {loinc} \
         ({name}): the gateway accepts only {expected} (it answers 400 \"{NO_CORRELATION}\")"
    )]
    Contradicts {
        /// The LOINC code.
        loinc: String,
        /// Its document type's name.
        name: &'static str,
        /// The value given.
        given: TipoDocumentoLivAlto,
        /// The one the gateway accepts.
        expected: TipoDocumentoLivAlto,
    },
    /// No value correlates with this document type.
    #[error(
        "the gateway correlates no tipoDocumentoLivAlto with the document type {loinc}: it \
         refuses the publication (400 \"{NO_CORRELATION}\")"
    )]
    Uncorrelated {
        /// The LOINC code.
        loinc: String,
    },
}

/// The `tipoDocumentoLivAlto` to send for a document of LOINC `loinc`: the table's, when
/// `given` is `None` or agrees with it; an error when the gateway would refuse.
pub fn resolve_high_level_type(
    loinc: &str,
    given: Option<TipoDocumentoLivAlto>,
) -> Result<TipoDocumentoLivAlto, CorrelationError> {
    let Some((_, name, expected)) = DOCUMENT_CLASSES.iter().find(|(code, _, _)| *code == loinc)
    else {
        return Err(CorrelationError::Uncorrelated {
            loinc: loinc.to_owned(),
        });
    };
    match given {
        Some(given) if given != *expected => Err(CorrelationError::Contradicts {
            loinc: loinc.to_owned(),
            name,
            given,
            expected: *expected,
        }),
        _ => Ok(*expected),
    }
}

/// The gateway's form of an `identificativoDoc` (and of a path `idDoc`): not blank, with a
/// `^` and a non-empty part after the last one (`root^extension`).
pub fn is_valid_document_id(id: &str) -> bool {
    if id.trim().is_empty() {
        return false;
    }
    id.rfind('^').is_some_and(|at| at + 1 < id.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_s_examples() {
        assert_eq!(high_level_type("82593-5"), Some(TipoDocumentoLivAlto::Vac));
        assert_eq!(high_level_type("101881-1"), Some(TipoDocumentoLivAlto::Sum));
        assert_eq!(high_level_type("100971-1"), Some(TipoDocumentoLivAlto::Col));
        assert_eq!(high_level_type("101136-0"), Some(TipoDocumentoLivAlto::Let));
        assert_eq!(high_level_type("11502-2"), Some(TipoDocumentoLivAlto::Ref));
        assert!(!correlates("82593-5", TipoDocumentoLivAlto::Cer));
        assert_eq!(high_level_type("102033-8"), None);
        use TipoDocumentoLivAlto as T;
        assert_eq!(resolve_high_level_type("82593-5", None), Ok(T::Vac));
        assert_eq!(resolve_high_level_type("82593-5", Some(T::Vac)), Ok(T::Vac));
        let e = resolve_high_level_type("82593-5", Some(T::Cer)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tipoDocumentoLivAlto CER does not correlate with the document type 82593-5 \
             (Certificato vaccinale): the gateway accepts only VAC (it answers 400 \
             \"Non c'è correlazione tra tipo documento e tipo documento livello alto\")"
        );
        assert!(matches!(
            resolve_high_level_type("102033-8", None),
            Err(CorrelationError::Uncorrelated { .. })
        ));
        assert_eq!(DOCUMENT_CLASSES.len(), 37);
        let mut codes: Vec<&str> = DOCUMENT_CLASSES.iter().map(|r| r.0).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), DOCUMENT_CLASSES.len(), "one row per code");
    }

    #[test]
    fn document_ids_need_a_non_empty_part_after_the_last_caret() {
        for ok in ["1.2.3^X1", "SKIP_VALIDATION_1.2^a", "^x", "a^b^c"] {
            assert!(is_valid_document_id(ok), "{ok}");
        }
        for bad in [
            "",
            "  ",
            "NOTFOUND",
            "1.2.3^",
            "a^b^",
            "SKIP_VALIDATION_123",
        ] {
            assert!(!is_valid_document_id(bad), "{bad}");
        }
    }
}
