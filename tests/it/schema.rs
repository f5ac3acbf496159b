//! `gatehouse schema`: the committed `gatehouse.schema.json` is what the command prints,
//! the example and test configs (TOML and YAML) validate against it, and a typo'd key,
//! a wrong type or an unknown grant type does not.

use serde_json::Value;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn printed_schema() -> String {
    printed(&[])
}

fn printed(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("schema")
        .args(args)
        .output()
        .expect("schema runs");
    assert!(out.status.success(), "gatehouse schema exits 0");
    String::from_utf8(out.stdout).expect("utf8")
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&printed_schema()).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

fn toml_value(text: &str) -> Value {
    let value: toml::Value = toml::from_str(text).expect("TOML");
    serde_json::to_value(value).expect("as JSON")
}

/// Every error the schema finds, as `instance path: message`.
fn errors(validator: &jsonschema::Validator, config: &Value) -> Vec<String> {
    validator
        .iter_errors(config)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn the_committed_schema_is_what_the_command_prints() {
    let committed = std::fs::read_to_string(format!("{ROOT}/gatehouse.schema.json"))
        .expect("gatehouse.schema.json at the repository root");
    assert!(
        committed == printed_schema(),
        "gatehouse.schema.json is stale: run `gatehouse schema > gatehouse.schema.json`"
    );
}

#[test]
fn the_committed_included_schema_is_what_the_command_prints_and_is_narrower() {
    let committed = std::fs::read_to_string(format!("{ROOT}/gatehouse.included.schema.json"))
        .expect("gatehouse.included.schema.json at the repository root");
    let printed = printed(&["--included"]);
    assert!(
        committed == printed,
        "gatehouse.included.schema.json is stale: run `gatehouse schema --included > gatehouse.included.schema.json`"
    );
    let schema: Value = serde_json::from_str(&printed).expect("JSON");
    let included = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let team = "[[clients]]\nid = \"spa\"\npublic = true\nredirect_uris = [\"http://127.0.0.1/cb\"]\n[[scopes]]\nname = \"a:read\"\n";
    assert!(errors(&included, &toml_value(team)).is_empty());
    for misplaced in [
        "issuer = \"http://127.0.0.1:9\"\n",
        "include = [\"x.toml\"]\n",
        "[tokens]\n",
    ] {
        assert!(
            !errors(&included, &toml_value(&format!("{misplaced}{team}"))).is_empty(),
            "{misplaced}"
        );
    }
    // The main file's schema knows `include`.
    let found = errors(
        &validator(),
        &toml_value("include = [\"clients.d/*.toml\"]\nissuer = \"http://127.0.0.1:9\"\n"),
    );
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn the_example_and_test_configs_validate() {
    let validator = validator();
    let example = std::fs::read_to_string(format!("{ROOT}/config.example.toml")).expect("read");
    for (name, text) in [
        ("config.example.toml", example),
        (
            "crate::support::service_config",
            crate::support::service_config(),
        ),
    ] {
        let found = errors(&validator, &toml_value(&text));
        assert!(found.is_empty(), "{name}: {found:?}");
    }
    // The config inside each Kubernetes manifest's ConfigMap.
    for manifest in ["gatehouse.yaml", "gatehouse-single.yaml"] {
        let text =
            std::fs::read_to_string(format!("{ROOT}/deploy/kubernetes/{manifest}")).expect("read");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("YAML");
        let embedded = docs
            .iter()
            .find(|d| d["kind"] == "ConfigMap")
            .and_then(|d| d["data"]["gatehouse.toml"].as_str())
            .expect("data.gatehouse.toml");
        let found = errors(&validator, &toml_value(embedded));
        assert!(found.is_empty(), "{manifest} ConfigMap: {found:?}");
    }
    // A YAML config is checked by the same schema.
    let yaml: Value = serde_saphyr::from_str(
        "issuer: http://127.0.0.1:9\ntokens:\n  access_token_ttl: 5m\nclients:\n  - id: spa\n    public: true\n    redirect_uris: [\"http://127.0.0.1/cb\"]\n",
    )
    .expect("YAML");
    let found = errors(&validator, &yaml);
    assert!(found.is_empty(), "YAML: {found:?}");
}

#[test]
fn typos_and_wrong_types_do_not_validate() {
    let validator = validator();
    for (text, at) in [
        (
            "issuer = \"http://127.0.0.1:9\"\n[[clients]]\nid = \"a\"\nredirect_uri = [\"x\"]\n",
            "/clients/0",
        ),
        ("issuer = \"http://127.0.0.1:9\"\n[tokenz]\n", ""),
        (
            "issuer = \"http://127.0.0.1:9\"\n[tokens]\naccess_token_ttl = 600\n",
            "/tokens/access_token_ttl",
        ),
        (
            "issuer = \"http://127.0.0.1:9\"\n[[clients]]\nid = \"a\"\ngrant_types = [\"password\"]\n",
            "/clients/0/grant_types/0",
        ),
        ("[server]\nbind = \"127.0.0.1:8080\"\n", ""),
    ] {
        let found = errors(&validator, &toml_value(text));
        assert!(
            found.iter().any(|e| e.starts_with(&format!("{at}: "))),
            "{text}: {found:?}"
        );
    }
}
