//! An object store URL (`s3://bucket/prefix/`): listed every interval. An object counts when
//! its key is new or its ETag changed (a rewritten object is a new arrival); objects are
//! complete by construction (a PUT or a multipart upload becomes visible whole).

use super::FileArrivalError;
use super::batch::{Batcher, Observed};
use crate::s3::{self, Retries, S3Settings, S3Url};
use crate::store::Millis;
use futures::TryStreamExt as _;
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use std::collections::HashSet;
use std::sync::Arc;

/// The listing state of one job's S3 URL.
pub struct S3Source {
    url: String,
    location: S3Url,
    store: Arc<dyn ObjectStore>,
    interval_ms: Millis,
    next_list: Millis,
}

impl S3Source {
    /// A lister for `url`, listing every `interval_ms` (the first listing at once).
    pub fn open(
        url: &str,
        settings: &S3Settings,
        interval_ms: Millis,
    ) -> Result<S3Source, FileArrivalError> {
        let location = S3Url::parse(url).map_err(|e| FileArrivalError::Unreadable {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let store = s3::store(&location.bucket, settings, Retries::Brief).map_err(|e| {
            FileArrivalError::Listing {
                url: url.to_string(),
                source: e,
            }
        })?;
        Ok(S3Source {
            url: url.to_string(),
            location,
            store,
            interval_ms,
            next_list: Millis::MIN,
        })
    }

    /// When the next listing is due.
    pub fn next_tick(&self) -> Option<Millis> {
        Some(self.next_list)
    }

    /// Lists the URL when due and offers every new or rewritten object.
    pub async fn tick(
        &mut self,
        batcher: &mut Batcher,
        now: Millis,
    ) -> Result<(), FileArrivalError> {
        if now < self.next_list {
            return Ok(());
        }
        let objects = self.list().await?;
        let present: HashSet<&str> = objects.iter().map(|o| o.path.as_str()).collect();
        batcher.retain_pending(|p| present.contains(p));
        for object in objects {
            batcher.offer(object, now);
        }
        self.next_list = now.saturating_add(self.interval_ms);
        Ok(())
    }

    /// Every object under the URL (keys that cannot be a path under `/input`, with empty,
    /// `.` or `..` segments, are skipped).
    pub async fn list(&self) -> Result<Vec<Observed>, FileArrivalError> {
        let prefix = (!self.location.prefix.is_empty())
            .then(|| ObjectPath::from(self.location.prefix.as_str()));
        let strip = if self.location.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.location.prefix)
        };
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(prefix.as_ref())
            .try_collect()
            .await
            .map_err(|e| FileArrivalError::Listing {
                url: self.url.clone(),
                source: e,
            })?;
        let mut found: Vec<Observed> = metas
            .into_iter()
            .filter_map(|m| {
                let key = m.location.as_ref();
                let rel = key.strip_prefix(&strip)?;
                if rel
                    .split('/')
                    .any(|s| s.is_empty() || s == "." || s == "..")
                {
                    return None;
                }
                let modification_time = m.last_modified.timestamp_millis();
                let fingerprint = match &m.e_tag {
                    Some(etag) => format!("etag:{etag}"),
                    None => format!("{}-{modification_time}", m.size),
                };
                Some(Observed {
                    path: rel.to_string(),
                    size: m.size,
                    modification_time,
                    arrived_at: modification_time,
                    etag: m.e_tag,
                    fingerprint,
                })
            })
            .collect();
        found.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(found)
    }

    /// Lists the first page only: whether the bucket exists and may be listed.
    pub async fn probe(&self) -> Result<(), FileArrivalError> {
        let prefix = (!self.location.prefix.is_empty())
            .then(|| ObjectPath::from(self.location.prefix.as_str()));
        self.store
            .list(prefix.as_ref())
            .try_next()
            .await
            .map(|_| ())
            .map_err(|e| FileArrivalError::Listing {
                url: self.url.clone(),
                source: e,
            })
    }

    /// The object at `rel` under the URL.
    pub fn key(&self, rel: &str) -> ObjectPath {
        if self.location.prefix.is_empty() {
            ObjectPath::from(rel)
        } else {
            ObjectPath::from(format!("{}/{rel}", self.location.prefix))
        }
    }

    /// The client.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }
}
