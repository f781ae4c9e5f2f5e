//! README's table of rich keys ("Rich messages and files") lists exactly the rich keys of
//! docs/webhook.schema.json, the single description of the contract: a key added to one
//! and not the other fails here. A row's "read" example is `—` exactly when the request
//! does not carry the key, its "written" example exactly when a reply cannot.

use std::collections::BTreeSet;

use serde_json::Value;

/// The fields that are not rich keys: the base fields of a request and a reply, and the
/// room fields (docs/contract.md).
const NOT_RICH: [&str; 10] = [
    "to",
    "from",
    "kind",
    "stanza",
    "body",
    "type",
    "id",
    "room",
    "occupant",
    "mentioned",
];

fn properties(schema: &Value, definition: &str) -> BTreeSet<String> {
    schema["$defs"][definition]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("$defs/{definition}/properties"))
        .keys()
        .filter(|key| !NOT_RICH.contains(&key.as_str()))
        .cloned()
        .collect()
}

/// The rows of the README section's table: (key, read example, written example).
fn readme_rows() -> Vec<(String, String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Rich messages and files\n")
        .nth(1)
        .expect("README has a section 'Rich messages and files'");
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut rows = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let [key, _xep, read, written] = cells[..] else {
            panic!("a row of four columns: {line}");
        };
        let key = key.trim_matches('`');
        rows.push((key.to_string(), read.to_string(), written.to_string()));
    }
    rows
}

#[test]
fn the_readme_table_lists_exactly_the_schemas_rich_keys() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/webhook.schema.json"
    ))
    .expect("docs/webhook.schema.json");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    let read = properties(&schema, "request");
    let written = properties(&schema, "reply");
    let rows = readme_rows();
    let in_readme: BTreeSet<String> = rows.iter().map(|(key, ..)| key.clone()).collect();
    assert_eq!(in_readme.len(), rows.len(), "a key twice in README's table");
    let in_schema: BTreeSet<String> = read.union(&written).cloned().collect();
    assert_eq!(
        in_readme, in_schema,
        "README's table and the schema's rich keys"
    );
    for (key, read_example, written_example) in &rows {
        assert_eq!(
            read_example != "—",
            read.contains(key),
            "{key}: read column"
        );
        assert_eq!(
            written_example != "—",
            written.contains(key),
            "{key}: written column"
        );
    }
}
