//! Who may do what, durably: principals (users, groups, service principals), API tokens (stored
//! as hashes only), job permissions and the append-only audit log. [`AccessStore`] is part of
//! every [`Store`](super::Store), so every node sharing a store shares them.

use super::StoreResult;
use super::model::{JobId, Millis, RunId};
use async_trait::async_trait;

/// The group whose members may do everything.
pub const ADMINS: &str = "admins";
/// The principal the node's admin token (`<data-dir>/admin-token`) belongs to.
pub const ADMIN: &str = "admin";

/// What a principal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A person.
    User,
    /// A set of users and service principals.
    Group,
    /// A program (CI, another service).
    ServicePrincipal,
}

impl PrincipalKind {
    /// The stored and API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::Group => "GROUP",
            Self::ServicePrincipal => "SERVICE_PRINCIPAL",
        }
    }

    /// Parses the stored and API spelling (also lower case, `-` for `_`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().replace('-', "_").as_str() {
            "USER" => Self::User,
            "GROUP" => Self::Group,
            "SERVICE_PRINCIPAL" => Self::ServicePrincipal,
            _ => return None,
        })
    }
}

/// A principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalRecord {
    /// Unique name (a user name, a group name, a service principal's name).
    pub name: String,
    /// What it is.
    pub kind: PrincipalKind,
    /// When it was created.
    pub created_time: Millis,
    /// The groups it belongs to directly (empty for groups).
    pub groups: Vec<String>,
}

/// An API token: only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Public id, shown by `tokens list` and used to revoke it.
    pub token_id: String,
    /// The principal it authenticates.
    pub principal: String,
    /// Hex SHA-256 of the token.
    pub hash: String,
    /// Free text.
    pub comment: String,
    /// When it was created.
    pub created_time: Millis,
    /// When it stops working (`None`: never).
    pub expiry_time: Option<Millis>,
    /// When it was revoked.
    pub revoked_time: Option<Millis>,
}

impl TokenRecord {
    /// Whether it authenticates at `now`.
    pub fn is_valid(&self, now: Millis) -> bool {
        self.revoked_time.is_none() && self.expiry_time.is_none_or(|e| now < e)
    }
}

/// A job permission level, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PermissionLevel {
    /// See the job and its runs.
    CanView,
    /// Also run, cancel and repair.
    CanManageRun,
    /// Also change and delete the job, and its permissions.
    CanManage,
    /// The owner: everything `CAN_MANAGE` may; exactly one per job.
    IsOwner,
}

impl PermissionLevel {
    /// Every level, least first.
    pub const ALL: [PermissionLevel; 4] = [
        Self::CanView,
        Self::CanManageRun,
        Self::CanManage,
        Self::IsOwner,
    ];

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CanView => "CAN_VIEW",
            Self::CanManageRun => "CAN_MANAGE_RUN",
            Self::CanManage => "CAN_MANAGE",
            Self::IsOwner => "IS_OWNER",
        }
    }

    /// Parses the API spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// What the level allows, for `permissionLevels`.
    pub fn description(self) -> &'static str {
        match self {
            Self::CanView => "Can view the job and its runs",
            Self::CanManageRun => "Can view, run, cancel and repair runs of the job",
            Self::CanManage => "Can view, run and change the job, its runs and its permissions",
            Self::IsOwner => "Owns the job: can do everything CAN_MANAGE can",
        }
    }
}

/// One entry of a job's access control list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    /// The principal (user, group or service principal name).
    pub principal: String,
    /// Its level on the job.
    pub level: PermissionLevel,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    /// Increasing sequence number (0 before it is appended).
    pub seq: i64,
    /// When.
    pub time: Millis,
    /// Who (a principal name, or `system` for run state changes).
    pub principal: String,
    /// What, e.g. `jobs.create`, `runs.state`.
    pub action: String,
    /// On what, e.g. `job:3`, `run:17`, `token:ab12`.
    pub target: String,
    /// The client's address (empty for the node itself).
    pub source: String,
    /// `ok`, or the error code of a refused or failed call.
    pub outcome: String,
    /// More about it (the new run state, the HTTP path, ...).
    pub detail: String,
}

/// Filter of [`AccessStore::list_audit`]; entries come newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only entries of this principal.
    pub principal: Option<String>,
    /// Only entries whose action starts with this.
    pub action: Option<String>,
    /// Only entries on this target.
    pub target: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<Millis>,
    /// Only entries at or before this time.
    pub until: Option<Millis>,
    /// Only entries with a sequence number below this (paging backwards).
    pub before_seq: Option<i64>,
    /// At most this many (0: 100).
    pub limit: u32,
}

/// The durable side of access control.
///
/// # Contract
/// - Principal names are unique across kinds; deleting a principal deletes its tokens, its
///   group memberships and its job permissions.
/// - Tokens are looked up by hash; a token's secret is never stored.
/// - A job's access control list is replaced as a whole; the API keeps exactly one `IS_OWNER`.
/// - The audit log is append-only: no method changes or deletes an entry.
#[async_trait]
pub trait AccessStore: Send + Sync {
    /// Creates a principal; `Conflict` if the name is taken.
    async fn create_principal(
        &self,
        name: &str,
        kind: PrincipalKind,
        now: Millis,
    ) -> StoreResult<()>;
    /// A principal with its groups.
    async fn get_principal(&self, name: &str) -> StoreResult<Option<PrincipalRecord>>;
    /// Every principal, by name.
    async fn list_principals(&self) -> StoreResult<Vec<PrincipalRecord>>;
    /// Deletes a principal, its tokens, memberships and job permissions; `NotFound`.
    async fn delete_principal(&self, name: &str) -> StoreResult<()>;
    /// Adds a user or service principal to a group (idempotent); `NotFound`, or `InvalidState`
    /// when `group` is not a group or `member` is one.
    async fn add_member(&self, group: &str, member: &str) -> StoreResult<()>;
    /// Removes a member from a group; `NotFound` when it was not a member.
    async fn remove_member(&self, group: &str, member: &str) -> StoreResult<()>;

    /// Stores a token; `NotFound` if its principal does not exist.
    async fn create_token(&self, token: &TokenRecord) -> StoreResult<()>;
    /// The token with this hash (valid or not).
    async fn find_token(&self, hash: &str) -> StoreResult<Option<TokenRecord>>;
    /// Tokens, optionally of one principal, newest first.
    async fn list_tokens(&self, principal: Option<&str>) -> StoreResult<Vec<TokenRecord>>;
    /// Revokes a token; `NotFound`. Revoking twice keeps the first time.
    async fn revoke_token(&self, token_id: &str, now: Millis) -> StoreResult<()>;

    /// A job's access control list (empty for a job created before permissions existed).
    async fn get_job_acl(&self, job_id: JobId) -> StoreResult<Vec<AclEntry>>;
    /// Replaces a job's access control list; `NotFound` for an unknown principal.
    async fn put_job_acl(&self, job_id: JobId, acl: &[AclEntry]) -> StoreResult<()>;
    /// The jobs on which any of `principals` has a level of at least `CAN_VIEW`.
    async fn jobs_visible_to(&self, principals: &[String]) -> StoreResult<Vec<JobId>>;

    /// Records who a run runs as and who created it (kept with the run).
    async fn put_run_identity(&self, run_id: RunId, run_as: &str, creator: &str)
    -> StoreResult<()>;
    /// Who a run runs as and who created it, when recorded.
    async fn get_run_identity(&self, run_id: RunId) -> StoreResult<Option<(String, String)>>;

    /// Appends to the audit log; returns the entry's sequence number.
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<i64>;
    /// Audit entries, newest first.
    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>>;
}
