//! `kubectl explain` prints descriptions inside its own wrapping, so a line break the doc
//! comment's wrapping left in a sentence would split it. In the generated CRDs every line
//! break must separate paragraphs (`"\n\n"`) or start a list item.

use serde_yaml::Value;

fn descriptions<'a>(path: &str, value: &'a Value, found: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Mapping(map) => {
            for (key, child) in map {
                let key = key.as_str().unwrap_or("?");
                let here = format!("{path}.{key}");
                match (key, child) {
                    ("description", Value::String(text)) => found.push((here, text)),
                    _ => descriptions(&here, child, found),
                }
            }
        }
        Value::Sequence(items) => {
            for (i, child) in items.iter().enumerate() {
                descriptions(&format!("{path}[{i}]"), child, found);
            }
        }
        _ => {}
    }
}

fn starts_list_item(text: &str) -> bool {
    let text = text.trim_start_matches([' ', '\t']);
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    text.starts_with("- ")
        || text.starts_with("* ")
        || (digits > 0 && text[digits..].starts_with(". "))
}

/// The places in `text` where a single line break joins two parts of one sentence.
fn breaks_inside_sentences(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    text.match_indices('\n')
        .map(|(i, _)| i)
        .filter(|&i| {
            let paragraph = (i > 0 && bytes[i - 1] == b'\n') || bytes.get(i + 1) == Some(&b'\n');
            !paragraph && !starts_list_item(&text[i + 1..])
        })
        .map(|i| {
            let before = text[..i].rsplit(' ').next().unwrap_or_default();
            let after = text[i + 1..].split(' ').next().unwrap_or_default();
            format!("{before:?} \\n {after:?}")
        })
        .collect()
}

#[test]
fn descriptions_break_lines_only_between_paragraphs_and_list_items() {
    let mut broken = Vec::new();
    for (file, crd) in api::crds::all() {
        let yaml = api::crds::to_yaml(&crd).unwrap();
        let document: Value = serde_yaml::from_str(&yaml).unwrap();
        let mut found = Vec::new();
        descriptions(&file, &document, &mut found);
        assert!(!found.is_empty(), "{file} has no descriptions");
        for (path, text) in found {
            for place in breaks_inside_sentences(text) {
                broken.push(format!("{path}: {place}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "line breaks inside sentences:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_check_finds_a_wrapped_sentence() {
    assert_eq!(
        breaks_inside_sentences("A lowercase PostgreSQL\nidentifier."),
        [r#""PostgreSQL" \n "identifier.""#]
    );
    assert!(breaks_inside_sentences("One.\n\nTwo:\n- a\n* b\n10. c").is_empty());
}
