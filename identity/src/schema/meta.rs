//! Kratos's identity meta-schema checks (`embedx/identity_meta.schema.json`
//! and `embedx/identity_extension.schema.json`), run on every identity
//! schema when it is loaded.

use std::sync::OnceLock;

use serde_json::Value;

/// The identity meta-schema, minus its `$ref` to the draft-07 meta-schema
/// (each schema is checked against the meta-schema of its own draft when it
/// is compiled), with the extension schema inlined under `definitions`.
const IDENTITY_META: &str = r##"{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "definitions": {
    "extension": {
      "properties": {
        "ory.sh/kratos": {
          "type": "object",
          "additionalProperties": false,
          "properties": {
            "credentials": {
              "type": "object",
              "additionalProperties": false,
              "properties": {
                "password": {
                  "type": "object",
                  "additionalProperties": false,
                  "properties": { "identifier": { "type": "boolean" } }
                },
                "webauthn": {
                  "type": "object",
                  "additionalProperties": false,
                  "properties": { "identifier": { "type": "boolean" } }
                },
                "passkey": {
                  "type": "object",
                  "additionalProperties": false,
                  "properties": { "display_name": { "type": "boolean" } }
                },
                "totp": {
                  "type": "object",
                  "additionalProperties": false,
                  "properties": { "account_name": { "type": "boolean" } }
                },
                "code": {
                  "type": "object",
                  "additionalProperties": false,
                  "properties": {
                    "identifier": { "type": "boolean" },
                    "via": { "type": "string", "enum": ["email", "sms"] }
                  }
                }
              }
            },
            "verification": {
              "type": "object",
              "additionalProperties": false,
              "properties": {
                "via": { "type": "string", "enum": ["email", "sms"] }
              }
            },
            "recovery": {
              "type": "object",
              "additionalProperties": false,
              "properties": {
                "via": { "type": "string", "enum": ["email", "sms"] }
              }
            },
            "organizations": {
              "type": "object",
              "additionalProperties": false,
              "properties": {
                "matcher": { "type": "string", "enum": ["email_domain"] }
              }
            }
          }
        }
      },
      "patternProperties": {
        ".*": { "$ref": "#/definitions/extension" }
      }
    }
  },
  "type": "object",
  "required": ["properties"],
  "properties": {
    "properties": {
      "type": "object",
      "required": ["traits"],
      "properties": {
        "traits": {
          "type": "object",
          "required": ["properties"],
          "properties": {
            "type": { "const": "object" },
            "properties": {
              "type": "object",
              "minProperties": 1,
              "patternProperties": {
                ".*": {
                  "type": "object",
                  "if": {
                    "properties": {
                      "ory.sh/kratos": {
                        "type": "object",
                        "properties": { "verification": {} },
                        "required": ["verification"]
                      }
                    },
                    "required": ["ory.sh/kratos"]
                  },
                  "then": {
                    "properties": {
                      "format": {
                        "enum": ["email", "tel", "date", "time", "date-time", "no-validate"]
                      }
                    }
                  },
                  "allOf": [{ "$ref": "#/definitions/extension" }]
                }
              }
            }
          }
        }
      }
    }
  }
}"##;

/// At most this many meta-schema violations are reported.
const MAX_REPORTED: usize = 5;

fn meta_validator() -> Result<&'static jsonschema::Validator, String> {
    static META: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    META.get_or_init(|| {
        let raw: Value = serde_json::from_str(IDENTITY_META)
            .map_err(|e| format!("internal error: identity meta-schema: {e}"))?;
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .with_retriever(super::NoRemoteRetriever)
            .build(&raw)
            .map_err(|e| format!("internal error: identity meta-schema: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Checks that `raw` is an identity schema as Kratos requires: an object
/// whose `properties.traits` is an object schema with at least one property,
/// each property an object schema, with well-formed `ory.sh/kratos`
/// extension blocks. Returns the reason when it is not.
pub(crate) fn check_identity_schema(raw: &Value) -> Result<(), String> {
    let Some(root) = raw.as_object() else {
        return Err("an identity schema must be a JSON object".to_owned());
    };
    let Some(properties) = root.get("properties") else {
        return Err(
            "the schema has no \"properties\"; an identity schema must declare \"properties.traits\""
                .to_owned(),
        );
    };
    let Some(properties) = properties.as_object() else {
        return Err("\"properties\" must be an object".to_owned());
    };
    let Some(traits) = properties.get("traits") else {
        return Err(
            "\"properties.traits\" is missing; an identity schema must declare its traits there"
                .to_owned(),
        );
    };
    let Some(traits) = traits.as_object() else {
        return Err("\"properties.traits\" must be an object schema".to_owned());
    };
    if let Some(kind) = traits.get("type") {
        if kind != "object" {
            return Err(format!(
                "\"properties.traits.type\" must be \"object\", found {kind}"
            ));
        }
    }
    match traits.get("properties") {
        Some(Value::Object(props)) if !props.is_empty() => {}
        Some(Value::Object(_)) => {
            return Err(
                "\"properties.traits.properties\" must declare at least one trait".to_owned(),
            )
        }
        Some(_) => return Err("\"properties.traits.properties\" must be an object".to_owned()),
        None => return Err("\"properties.traits.properties\" is missing".to_owned()),
    }

    let validator = meta_validator()?;
    let problems: Vec<String> = validator
        .iter_errors(raw)
        .take(MAX_REPORTED)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{e} (at {at})")
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "not a valid Kratos identity schema: {}",
            problems.join("; ")
        ))
    }
}
