//! S3-compatible object stores: `s3://bucket/prefix` URLs and the client built from the standard
//! AWS settings.
//!
//! Settings come from the environment as every AWS tool reads them (`AWS_ENDPOINT_URL`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint, `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`), and
//! `weir serve` flags or `weir.toml` keys ([`S3Settings`]) override the endpoint, the region,
//! plain HTTP and the addressing style. Requests are path-style (`endpoint/bucket/key`) unless
//! virtual-hosted style is asked for, which is what MinIO, Ceph, moto and s3s expect.
//! Credentials are read from the environment only, never from flags (which other users of the
//! machine can read in the process list) or from the config file.

use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::{BackoffConfig, ClientConfigKey, RetryConfig};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Overrides of the AWS environment for every `s3://` URL of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// Endpoint URL (`http://127.0.0.1:9000`); default: `AWS_ENDPOINT_URL`, else AWS itself.
    pub endpoint: Option<String>,
    /// Region; default: `AWS_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Allow a plain-HTTP endpoint; default: `AWS_ALLOW_HTTP`, else false.
    pub allow_http: Option<bool>,
    /// Virtual-hosted-style requests (`bucket.endpoint/key`) instead of path-style; default:
    /// `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`, else false (path-style).
    pub virtual_hosted_style: Option<bool>,
}

impl S3Settings {
    /// These settings over `other` (each field that is set here wins).
    pub fn or(self, other: S3Settings) -> S3Settings {
        S3Settings {
            endpoint: self.endpoint.or(other.endpoint),
            region: self.region.or(other.region),
            allow_http: self.allow_http.or(other.allow_http),
            virtual_hosted_style: self.virtual_hosted_style.or(other.virtual_hosted_style),
        }
    }
}

/// A bucket and a key prefix, from `s3://bucket/prefix/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    /// The bucket name.
    pub bucket: String,
    /// The key prefix without leading or trailing `/` (empty: the whole bucket).
    pub prefix: String,
}

/// A URL that is not `s3://bucket[/prefix]`.
#[derive(Debug, thiserror::Error)]
#[error("{url:?} is not an S3 URL: expected s3://bucket/prefix/ ({reason})")]
pub struct S3UrlError {
    /// The URL as given.
    pub url: String,
    /// What was wrong.
    pub reason: &'static str,
}

impl S3Url {
    /// Parses `s3://bucket`, `s3://bucket/`, `s3://bucket/a/b/`.
    pub fn parse(url: &str) -> Result<S3Url, S3UrlError> {
        let err = |reason| S3UrlError {
            url: url.to_string(),
            reason,
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| err("no s3:// scheme"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(err("no bucket name"));
        }
        if !bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
        {
            return Err(err(
                "a bucket name has lowercase letters, digits, '-', '.' and '_' only",
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
            return Err(err("the prefix has an empty, '.' or '..' segment"));
        }
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// `s3://bucket/prefix/` (or `s3://bucket/`), the canonical form.
    pub fn to_url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}/", self.bucket)
        } else {
            format!("s3://{}/{}/", self.bucket, self.prefix)
        }
    }
}

/// How hard a client retries a failing request before the error surfaces.
#[derive(Debug, Clone, Copy)]
pub enum Retries {
    /// Object store reads and writes of modules and artifacts: object_store's defaults (up to
    /// 10 retries within 3 minutes).
    Patient,
    /// Listings that are repeated anyway (file arrival): 2 retries within 5 seconds, so an
    /// outage is reported promptly and retried by the caller's own backoff.
    Brief,
}

/// A client for one bucket with the environment and `settings`.
pub fn bucket(
    bucket: &str,
    settings: &S3Settings,
    retries: Retries,
) -> Result<Arc<AmazonS3>, object_store::Error> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(region) = &settings.region {
        builder = builder.with_region(region);
    }
    if let Some(virtual_hosted) = settings.virtual_hosted_style {
        builder = builder.with_virtual_hosted_style_request(virtual_hosted);
    }
    if let Some(allow) = settings.allow_http {
        builder = builder.with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp),
            allow.to_string(),
        );
    }
    if let Retries::Brief = retries {
        builder = builder.with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                base: 2.0,
            },
            max_retries: 2,
            retry_timeout: Duration::from_secs(5),
        });
    }
    Ok(Arc::new(builder.build()?))
}

/// A client for one bucket as a shared [`ObjectStore`].
pub fn store(
    bucket_name: &str,
    settings: &S3Settings,
    retries: Retries,
) -> Result<Arc<dyn ObjectStore>, object_store::Error> {
    Ok(bucket(bucket_name, settings, retries)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_buckets_and_prefixes() {
        let u = S3Url::parse("s3://landing/orders/2024/").unwrap();
        assert_eq!(u.bucket, "landing");
        assert_eq!(u.prefix, "orders/2024");
        assert_eq!(u.to_url(), "s3://landing/orders/2024/");
        let u = S3Url::parse("s3://landing").unwrap();
        assert_eq!(u.prefix, "");
        assert_eq!(u.to_url(), "s3://landing/");
        for (bad, why) in [
            ("s3:///x", "no bucket"),
            ("gs://b/x", "no s3://"),
            ("s3://Bucket/x", "lowercase"),
            ("s3://b/a//c", "empty"),
            ("s3://b/a/../c", "'..'"),
        ] {
            let err = S3Url::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn explicit_settings_win_field_by_field() {
        let flags = S3Settings {
            endpoint: Some("http://a".into()),
            ..Default::default()
        };
        let file = S3Settings {
            endpoint: Some("http://b".into()),
            region: Some("eu-west-3".into()),
            ..Default::default()
        };
        let s = flags.or(file);
        assert_eq!(s.endpoint.as_deref(), Some("http://a"));
        assert_eq!(s.region.as_deref(), Some("eu-west-3"));
        assert_eq!(s.allow_http, None);
    }
}
