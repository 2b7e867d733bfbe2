//! Module references: `sha256:<hex>`, `name[@version]`, or a path to a `.wasm` file.

use std::fmt;

/// Where a `wasm_task` gets its module.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModuleRef {
    /// `sha256:<64 hex>`: one exact blob.
    Digest(String),
    /// `name` (latest version) or `name@3`.
    Named {
        /// The module name.
        name: String,
        /// The version, `None` for the latest.
        version: Option<u32>,
    },
    /// A path to a `.wasm` file, pushed by `weir deploy`.
    Path(String),
}

impl ModuleRef {
    /// Parses a `module:` value. Paths contain a `/` or end in `.wasm`.
    pub fn parse(s: &str) -> Result<ModuleRef, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("module is empty: expected a path, sha256:<hex> or name[@version]".into());
        }
        if let Some(hex) = s.strip_prefix("sha256:") {
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Ok(ModuleRef::Digest(s.to_string()));
            }
            return Err(format!(
                "module {s:?} is not a valid digest: expected sha256: and 64 lowercase hex digits"
            ));
        }
        if s.contains('/') || s.contains('\\') || s.ends_with(".wasm") {
            return Ok(ModuleRef::Path(s.to_string()));
        }
        let (name, version) = match s.split_once('@') {
            Some((name, v)) => {
                let version = v.parse::<u32>().ok().filter(|v| *v > 0).ok_or_else(|| {
                    format!("module {s:?}: version {v:?} is not a positive integer")
                })?;
                (name, Some(version))
            }
            None => (s, None),
        };
        check_module_name(name).map_err(|e| format!("module {s:?}: {e}"))?;
        Ok(ModuleRef::Named {
            name: name.to_string(),
            version,
        })
    }
}

/// Checks a module name: 1 to 128 of `A-Z a-z 0-9 _ - .`.
pub fn check_module_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {name:?} must be 1 to 128 characters of letters, digits, `_`, `-` and `.`"
        ))
    }
}

impl fmt::Display for ModuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModuleRef::Digest(d) => f.write_str(d),
            ModuleRef::Named {
                name,
                version: None,
            } => f.write_str(name),
            ModuleRef::Named {
                name,
                version: Some(v),
            } => write!(f, "{name}@{v}"),
            ModuleRef::Path(p) => f.write_str(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        let hex = "a".repeat(64);
        assert_eq!(
            ModuleRef::parse(&format!("sha256:{hex}")).unwrap(),
            ModuleRef::Digest(format!("sha256:{hex}"))
        );
        assert_eq!(
            ModuleRef::parse("ingest@3").unwrap(),
            ModuleRef::Named {
                name: "ingest".into(),
                version: Some(3)
            }
        );
        assert_eq!(
            ModuleRef::parse("ingest").unwrap(),
            ModuleRef::Named {
                name: "ingest".into(),
                version: None
            }
        );
        assert_eq!(
            ModuleRef::parse("../target/x.wasm").unwrap(),
            ModuleRef::Path("../target/x.wasm".into())
        );
        assert_eq!(
            ModuleRef::parse("x.wasm").unwrap(),
            ModuleRef::Path("x.wasm".into())
        );
    }

    #[test]
    fn refuses_bad_references() {
        assert!(ModuleRef::parse("sha256:abc").unwrap_err().contains("64"));
        assert!(
            ModuleRef::parse("ingest@0")
                .unwrap_err()
                .contains("positive")
        );
        assert!(ModuleRef::parse("ingest@x").is_err());
        assert!(ModuleRef::parse("in gest").unwrap_err().contains("letters"));
        assert!(ModuleRef::parse("").is_err());
    }
}
