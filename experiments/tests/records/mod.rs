//! CSV outputs of the experiment binaries as header-keyed records, for the tests that read them
//! (`mod records;` in each such test file).

use std::collections::BTreeMap;
use std::path::Path;

/// One CSV record keyed by the header.
pub type Record = BTreeMap<String, String>;

/// The records of a CSV file as header-keyed maps (panics naming the file if it cannot be read).
pub fn records(path: &Path) -> Vec<Record> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let h = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            h.iter()
                .zip(rec.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The value of column `k` as a number (panics naming the column and the text if it is not one).
pub fn num(r: &Record, k: &str) -> f64 {
    r[k].parse()
        .unwrap_or_else(|_| panic!("{k} = {:?} is not a number", r[k]))
}

/// The records of a CSV file as `key=value,...` lines without the columns `skip` (the timings),
/// so that two runs can be compared exactly on everything else.
pub fn without(path: &Path, skip: &[&str]) -> Vec<String> {
    records(path)
        .into_iter()
        .map(|mut r| {
            for k in skip {
                r.remove(*k);
            }
            r.into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}
