//! `--name value` arguments.

use crate::Error;
use std::collections::BTreeMap;
use std::str::FromStr;

/// The flags a task was given, each a known `--name` followed by its value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Flags {
    values: BTreeMap<String, String>,
}

impl Flags {
    /// Parses `args` as `--name value` pairs; every name must be one of `known` (without the
    /// leading dashes).
    pub fn parse(args: &[String], known: &[&str]) -> Result<Flags, Error> {
        let expected = || {
            if known.is_empty() {
                "no arguments".to_string()
            } else {
                known
                    .iter()
                    .map(|k| format!("--{k} VALUE"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let mut values = BTreeMap::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let name = arg
                .strip_prefix("--")
                .filter(|name| known.contains(name))
                .ok_or_else(|| format!("unexpected argument {arg:?}: expected {}", expected()))?;
            let value = args
                .next()
                .ok_or_else(|| format!("argument {arg} needs a value"))?;
            values.insert(name.to_string(), value.clone());
        }
        Ok(Flags { values })
    }

    /// The value of `--name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value of `--name` parsed as `T`; `what` describes `T` for the error message.
    pub fn parse_value<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, Error> {
        self.get(name)
            .map(|value| {
                value
                    .parse()
                    .map_err(|_| format!("--{name} {value:?} is not valid: expected {what}").into())
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_known_flags() {
        let flags = Flags::parse(
            &args(&["--region", "eu", "--max-invalid-pct", "20"]),
            &["region", "max-invalid-pct"],
        )
        .unwrap();
        assert_eq!(flags.get("region"), Some("eu"));
        assert_eq!(flags.get("date"), None);
        assert_eq!(
            flags
                .parse_value::<f64>("max-invalid-pct", "a number")
                .unwrap(),
            Some(20.0)
        );
        assert_eq!(flags.parse_value::<f64>("date", "a number").unwrap(), None);
    }

    #[test]
    fn refuses_unknown_flags_and_missing_values() {
        let err = Flags::parse(&args(&["--regoin", "eu"]), &["region"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected argument \"--regoin\": expected --region VALUE"
        );
        let err = Flags::parse(&args(&["eu"]), &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected argument \"eu\": expected no arguments"
        );
        let err = Flags::parse(&args(&["--region"]), &["region"]).unwrap_err();
        assert_eq!(err.to_string(), "argument --region needs a value");
    }

    #[test]
    fn reports_unparseable_values() {
        let flags = Flags::parse(&args(&["--fail-attempts", "two"]), &["fail-attempts"]).unwrap();
        let err = flags
            .parse_value::<u32>("fail-attempts", "a whole number")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--fail-attempts \"two\" is not valid: expected a whole number"
        );
    }
}
