//! Export of the journal: call records as CSV or JSON, and the accreditation `data.json`
//! (`appVendor, appID, appVersion, results[{id, ts, traceId, workflowInstanceId, files}]`),
//! one result per publication.

use super::{CallRecord, JournalError, SETTLED_PUBLISHED};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Columns of the CSV export, in order.
pub const CSV_COLUMNS: [&str; 14] = [
    "call_id",
    "batch_id",
    "document",
    "id_doc",
    "operation",
    "http_status",
    "x_cart_id",
    "trace_id",
    "span_id",
    "workflow_instance_id",
    "problem_type",
    "error",
    "started_at",
    "finished_at",
];

fn csv_field(out: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// RFC 4180 CSV of `records`, with a header line.
pub fn to_csv(records: &[CallRecord]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    for r in records {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let fields = [
            r.call_id.to_string(),
            r.batch_id.to_string(),
            r.document.clone(),
            opt(&r.id_doc),
            r.operation.clone(),
            r.http_status.map(|s| s.to_string()).unwrap_or_default(),
            opt(&r.x_cart_id),
            opt(&r.trace_id),
            opt(&r.span_id),
            opt(&r.workflow_instance_id),
            opt(&r.problem_type),
            opt(&r.error),
            r.started_at.clone(),
            opt(&r.finished_at),
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_field(&mut out, f);
        }
        out.push_str("\r\n");
    }
    out
}

/// The accreditation submission file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataJson {
    /// Software vendor.
    pub app_vendor: String,
    /// Software id.
    #[serde(rename = "appID")]
    pub app_id: String,
    /// Software version.
    pub app_version: String,
    /// One entry per publication.
    pub results: Vec<DataJsonResult>,
}

/// One publication of `data.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataJsonResult {
    /// 1-based sequence.
    pub id: u64,
    /// Time of the answer, `YYYY-MM-DDTHH:MM:SSZ`.
    pub ts: String,
    /// `traceID` of the publication.
    pub trace_id: String,
    /// `workflowInstanceId` of the publication.
    pub workflow_instance_id: String,
    /// The PDF sent: `NAME.pdf`, NAME being the document's path under the input directory,
    /// as `fse batch publish --output DIR` writes it under DIR; empty when DIR does not hold
    /// it.
    pub files: Vec<String>,
}

/// Builds `data.json` from the journal's publications: creates accepted (2xx), and creates
/// settled as published by a status query (their error ends with [`SETTLED_PUBLISHED`], their
/// identifiers the gateway's publication event's), each with a trace id and workflow instance
/// id. `files` lists `NAME.pdf` only when it exists in the batch's output folder (`outputs`,
/// by batch id); a publication whose signed PDF was not kept has none.
pub fn data_json(
    records: &[CallRecord],
    outputs: &BTreeMap<i64, PathBuf>,
    app_vendor: &str,
    app_id: &str,
    app_version: &str,
) -> DataJson {
    let mut results = Vec::new();
    for r in records {
        let accepted = r.operation == "create"
            && (r.http_status.is_some_and(|s| s / 100 == 2)
                || r.error
                    .as_deref()
                    .is_some_and(|e| e.ends_with(SETTLED_PUBLISHED)));
        let (Some(trace), Some(wii)) = (&r.trace_id, &r.workflow_instance_id) else {
            continue;
        };
        if !accepted {
            continue;
        }
        let ts = r.finished_at.as_deref().unwrap_or(&r.started_at);
        // Drop the milliseconds: the template shows whole seconds.
        let ts = match (ts.get(..19), ts.ends_with('Z')) {
            (Some(head), true) => format!("{head}Z"),
            _ => ts.to_owned(),
        };
        let file = format!("{}.pdf", r.document);
        let kept = outputs
            .get(&r.batch_id)
            .is_some_and(|dir| dir.join(&file).is_file());
        results.push(DataJsonResult {
            id: results.len() as u64 + 1,
            ts,
            trace_id: trace.clone(),
            workflow_instance_id: wii.clone(),
            files: if kept { vec![file] } else { Vec::new() },
        });
    }
    DataJson {
        app_vendor: app_vendor.to_owned(),
        app_id: app_id.to_owned(),
        app_version: app_version.to_owned(),
        results,
    }
}

/// Pretty JSON of any export.
pub fn to_json<T: Serialize>(value: &T) -> Result<String, JournalError> {
    serde_json::to_string_pretty(value).map_err(|e| JournalError::Export(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(op: &str, status: Option<u16>, doc: &str) -> CallRecord {
        CallRecord {
            call_id: 1,
            batch_id: 1,
            document: doc.into(),
            id_doc: Some("1.2^x,y".into()),
            operation: op.into(),
            http_status: status,
            x_cart_id: Some("cart".into()),
            trace_id: Some("trace".into()),
            span_id: None,
            workflow_instance_id: Some("wii".into()),
            problem_type: None,
            error: Some("say \"no\"".into()),
            started_at: "2026-01-02T03:04:05.678Z".into(),
            finished_at: Some("2026-01-02T03:04:06.789Z".into()),
        }
    }

    #[test]
    fn csv_quotes_and_has_the_required_columns() {
        let csv = to_csv(&[record("create", Some(201), "LAB/a")]);
        let mut lines = csv.split("\r\n");
        let header = lines.next().unwrap();
        for col in [
            "document",
            "operation",
            "http_status",
            "x_cart_id",
            "trace_id",
            "workflow_instance_id",
            "started_at",
            "finished_at",
        ] {
            assert!(header.split(',').any(|h| h == col), "{col}");
        }
        assert_eq!(
            lines.next().unwrap(),
            "1,1,LAB/a,\"1.2^x,y\",create,201,cart,trace,,wii,,\"say \"\"no\"\"\",\
             2026-01-02T03:04:05.678Z,2026-01-02T03:04:06.789Z"
        );
    }

    #[test]
    fn data_json_lists_publications_with_the_files_that_exist() {
        let out = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(out.path().join("LAB")).unwrap();
        std::fs::write(out.path().join("LAB/a.pdf"), b"%PDF-").unwrap();
        let mut settled = record("create", None, "LAB/d");
        settled.error = Some(format!("no answer; {SETTLED_PUBLISHED}"));
        let records = [
            record("validation", Some(201), "LAB/a"),
            record("create", Some(201), "LAB/a"),
            record("create", Some(409), "LAB/b"),
            record("create", None, "LAB/c"),
            settled,
        ];
        let outputs = BTreeMap::from([(1, out.path().to_owned())]);
        let d = data_json(&records, &outputs, "v", "id", "1");
        let json: serde_json::Value = serde_json::from_str(&to_json(&d).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"appVendor":"v","appID":"id","appVersion":"1","results":[
                {"id":1,"ts":"2026-01-02T03:04:06Z","traceId":"trace","workflowInstanceId":"wii",
                 "files":["LAB/a.pdf"]},
                {"id":2,"ts":"2026-01-02T03:04:06Z","traceId":"trace","workflowInstanceId":"wii",
                 "files":[]}]})
        );
        // Without an output folder, no file is claimed.
        let d = data_json(&records, &BTreeMap::new(), "v", "id", "1");
        assert!(d.results.iter().all(|r| r.files.is_empty()));
    }
}
