//! Descriptions as `kubectl explain` should print them.
//!
//! A description is the doc comment of a field, wrapped at the source's line width. The
//! API server keeps those line breaks and `kubectl explain` prints them inside its own
//! wrapping, which breaks sentences in the middle. So wrapped lines are joined into
//! paragraphs; blank lines still separate paragraphs and list items keep their own lines.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool, JSONSchemaPropsOrStringArray,
};

/// Rewrites the description of `schema` and of every schema nested in it.
pub fn unwrap_schema(schema: &mut JSONSchemaProps) {
    if let Some(description) = &mut schema.description {
        *description = unwrap_lines(description);
    }
    let maps = [
        &mut schema.properties,
        &mut schema.pattern_properties,
        &mut schema.definitions,
    ];
    for map in maps.into_iter().flatten() {
        map.values_mut().for_each(unwrap_schema);
    }
    let lists = [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of];
    for list in lists.into_iter().flatten() {
        list.iter_mut().for_each(unwrap_schema);
    }
    if let Some(not) = &mut schema.not {
        unwrap_schema(not);
    }
    match &mut schema.items {
        Some(JSONSchemaPropsOrArray::Schema(items)) => unwrap_schema(items),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => items.iter_mut().for_each(unwrap_schema),
        None => {}
    }
    for extra in [
        &mut schema.additional_items,
        &mut schema.additional_properties,
    ] {
        if let Some(JSONSchemaPropsOrBool::Schema(extra)) = extra {
            unwrap_schema(extra);
        }
    }
    for dependency in schema.dependencies.iter_mut().flat_map(|d| d.values_mut()) {
        if let JSONSchemaPropsOrStringArray::Schema(dependency) = dependency {
            unwrap_schema(dependency);
        }
    }
}

/// `text` with wrapped lines joined by a space. Paragraphs stay apart as `"\n\n"`; a line
/// that starts a list item (`- `, `* `, `1. `) stays on its own line.
pub fn unwrap_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut after_blank = false;
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            after_blank = true;
            continue;
        }
        if !out.is_empty() {
            if after_blank {
                out.push_str("\n\n");
            } else if starts_list_item(line) {
                out.push('\n');
            } else {
                out.push(' ');
                out.push_str(line.trim_start());
                continue;
            }
        }
        // The first line of a paragraph or item keeps its indentation.
        out.push_str(line);
        after_blank = false;
    }
    out
}

fn starts_list_item(line: &str) -> bool {
    let line = line.trim_start();
    if line.starts_with("- ") || line.starts_with("* ") {
        return true;
    }
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    digits > 0 && line[digits..].starts_with(". ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_lines_become_paragraphs() {
        let rows = [
            (
                "A lowercase PostgreSQL\nidentifier; reserved names\nare refused.",
                "A lowercase PostgreSQL identifier; reserved names are refused.",
            ),
            (
                "First paragraph\nwrapped.\n\nSecond\nparagraph.",
                "First paragraph wrapped.\n\nSecond paragraph.",
            ),
            (
                "Values:\n- `Retain` keeps\n  them\n* `Delete` removes\n1. numbered\n12. too",
                "Values:\n- `Retain` keeps them\n* `Delete` removes\n1. numbered\n12. too",
            ),
            ("Blank lines\n\n\n\ncollapse.\n", "Blank lines\n\ncollapse."),
            // Not list items: a dash or a number without the space after it.
            (
                "A range 1\n-3, and\n2024.\nends",
                "A range 1 -3, and 2024. ends",
            ),
            ("One line.", "One line."),
            ("", ""),
        ];
        for (text, want) in rows {
            assert_eq!(unwrap_lines(text), want, "{text:?}");
        }
    }

    #[test]
    fn nested_schemas_are_rewritten() {
        let leaf = || JSONSchemaProps {
            description: Some("wrapped\nline".into()),
            ..JSONSchemaProps::default()
        };
        let mut schema = JSONSchemaProps {
            description: Some("top\nlevel".into()),
            properties: Some([("a".to_string(), leaf())].into()),
            items: Some(JSONSchemaPropsOrArray::Schema(Box::new(leaf()))),
            additional_properties: Some(JSONSchemaPropsOrBool::Schema(Box::new(leaf()))),
            one_of: Some(vec![leaf()]),
            ..JSONSchemaProps::default()
        };
        unwrap_schema(&mut schema);
        let text = serde_json::to_string(&schema).unwrap_or_default();
        assert!(
            text.contains("top level") && !text.contains("\\n"),
            "{text}"
        );
        assert_eq!(text.matches("wrapped line").count(), 4, "{text}");
    }
}
