//! SARIF 2.1.0 (<https://docs.oasis-open.org/sarif/sarif/v2.1.0/>), for code scanning (GitHub,
//! GitLab). One run whose driver is image-manager; each result's location is the template line,
//! its related location the rendered Dockerfile line; the tags it applies to are a property.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::finding::{Finding, Level, Place, Report, Tool};
use crate::rules::{RULES, help_uri};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

#[derive(Serialize)]
pub struct Sarif {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<Value>,
}

fn level(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Info | Level::Style => "note",
    }
}

fn physical(place: &Place) -> Value {
    let mut location = json!({
        "artifactLocation": {"uri": place.file, "uriBaseId": "PROJECT"},
    });
    if let Some(line) = place.line {
        let mut region = json!({"startLine": line});
        if let Some(column) = place.column {
            region["startColumn"] = json!(column);
        }
        location["region"] = region;
    }
    location
}

/// The rule descriptors of the rules the findings use, in order of first use.
fn rules(findings: &[Finding]) -> (Vec<Value>, BTreeMap<&str, usize>) {
    let mut index = BTreeMap::new();
    let mut descriptors = Vec::new();
    for finding in findings {
        if index.contains_key(finding.rule.as_str()) {
            continue;
        }
        index.insert(finding.rule.as_str(), descriptors.len());
        let ours = RULES.iter().find(|rule| rule.id == finding.rule);
        let mut descriptor = json!({
            "id": finding.rule,
            "defaultConfiguration": {"level": level(finding.level)},
            "properties": {"tool": match finding.tool {
                Tool::Hadolint => "hadolint",
                Tool::ImageManager => "image-manager",
            }},
        });
        if let Some(rule) = ours {
            descriptor["name"] = json!(rule.name);
            descriptor["shortDescription"] = json!({"text": rule.summary});
        }
        if let Some(uri) = help_uri(&finding.rule) {
            descriptor["helpUri"] = json!(uri);
        }
        descriptors.push(descriptor);
    }
    (descriptors, index)
}

pub fn sarif(report: &Report) -> Sarif {
    let (descriptors, index) = rules(&report.findings);
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|finding| {
            let mut result = json!({
                "ruleId": finding.rule,
                "ruleIndex": index[finding.rule.as_str()],
                "level": level(finding.level),
                "message": {"text": finding.message},
                "locations": [{"physicalLocation": physical(&finding.location)}],
                "properties": {"tags": finding.tags, "hadolintLevel": finding.level.as_str()},
            });
            if let Some(rendered) = &finding.rendered {
                result["relatedLocations"] = json!([{
                    "id": 1,
                    "physicalLocation": physical(rendered),
                    "message": {"text": format!("the rendered Dockerfile of {}", finding.tags.first().map_or("", String::as_str))},
                }]);
            }
            result
        })
        .collect();
    Sarif {
        schema: SCHEMA,
        version: "2.1.0",
        runs: vec![json!({
            "tool": {"driver": {
                "name": "image-manager",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": descriptors,
                "properties": {"hadolint": report.hadolint.version},
            }},
            "originalUriBaseIds": {"PROJECT": {"description": {"text": "the project folder (the one holding images/)"}}},
            "results": results,
        })],
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_point_at_the_template_with_the_rendered_line_related() {
        let sarif = serde_json::to_value(super::sarif(&crate::format::tests::report())).unwrap();
        let result = &sarif["runs"][0]["results"][0];
        assert_eq!(result["ruleId"], "DL3008");
        assert_eq!(result["level"], "warning");
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(
            location["artifactLocation"]["uri"],
            "images/app/Dockerfile.jinja2"
        );
        assert_eq!(location["region"]["startLine"], 7);
        assert_eq!(
            result["relatedLocations"][0]["physicalLocation"]["region"]["startLine"],
            12
        );
        let second = &sarif["runs"][0]["results"][1];
        assert_eq!(second["level"], "error");
        assert!(
            second["locations"][0]["physicalLocation"]
                .get("region")
                .is_none()
        );
        assert_eq!(
            sarif["runs"][0]["tool"]["driver"]["rules"][1]["name"],
            "secret-in-rootfs"
        );
    }
}
