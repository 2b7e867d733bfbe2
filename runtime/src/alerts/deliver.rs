//! Delivery of one alert: a webhook POST (reqwest over Weir's TLS policy) or an e-mail over SMTP
//! (lettre on rustls).

use super::payload;
use crate::store::{AlertChannel, AlertRecord};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// Why an attempt failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Trying again later may work (network errors, timeouts, 5xx, SMTP 4xx).
    #[error("{0}")]
    Transient(String),
    /// Trying again cannot work (no SMTP server configured, a refused address, HTTP 4xx).
    #[error("{0}")]
    Permanent(String),
}

/// The SMTP settings of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// `smtp://[user:pass@]host:port[?tls=required|opportunistic]` or `smtps://...`.
    pub url: String,
    /// The `From:` address.
    pub from: String,
}

/// Errors in a node's alert settings (refused at start).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The SMTP URL is not one lettre understands.
    #[error("invalid --smtp-url {url:?}: {source}")]
    SmtpUrl {
        /// The URL, with any password removed.
        url: String,
        /// What lettre said.
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// The sender address does not parse.
    #[error("invalid --smtp-from {from:?}: {source}")]
    Sender {
        /// The address.
        from: String,
        /// What lettre said.
        #[source]
        source: lettre::address::AddressError,
    },
    /// `--smtp-url` without `--smtp-from`.
    #[error("--smtp-url needs --smtp-from (the From: address of alert e-mails)")]
    MissingFrom,
    /// The HTTP client could not be built.
    #[error("cannot build the webhook HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

/// Hides the password of a URL (`smtp://user:***@host`).
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// Sends alerts over their channels.
pub struct Senders {
    http: reqwest::Client,
    smtp: Option<Smtp>,
}

impl Senders {
    /// Builds the senders; `timeout` bounds each attempt (a receiver that hangs fails it).
    pub fn new(smtp: Option<&SmtpSettings>, timeout: Duration) -> Result<Senders, SettingsError> {
        let http = crate::tls::http_client()
            .timeout(timeout)
            .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(SettingsError::Http)?;
        let smtp = match smtp {
            None => None,
            Some(s) => {
                let from: Mailbox = s.from.parse().map_err(|source| SettingsError::Sender {
                    from: s.from.clone(),
                    source,
                })?;
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&s.url)
                    .map_err(|source| SettingsError::SmtpUrl {
                        url: redact(&s.url),
                        source,
                    })?
                    .timeout(Some(timeout))
                    .build();
                Some(Smtp { transport, from })
            }
        };
        Ok(Senders { http, smtp })
    }

    /// Delivers one alert.
    pub async fn deliver(&self, alert: &AlertRecord) -> Result<(), DeliveryError> {
        match alert.channel {
            AlertChannel::Webhook => self.webhook(alert).await,
            AlertChannel::Email => self.email(alert).await,
        }
    }

    async fn webhook(&self, alert: &AlertRecord) -> Result<(), DeliveryError> {
        let key = alert.payload["idempotency_key"]
            .as_str()
            .unwrap_or_default();
        let response = self
            .http
            .post(&alert.destination)
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .header("x-weir-alert-id", key)
            .header("x-weir-event", alert.event.as_str())
            .body(alert.payload.to_string())
            .send()
            .await
            .map_err(|e| {
                let what = if e.is_timeout() {
                    "timed out".to_string()
                } else if e.is_connect() {
                    format!("cannot connect: {}", error_chain(&e))
                } else {
                    error_chain(&e)
                };
                DeliveryError::Transient(format!("POST {}: {what}", alert.destination))
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        let message = format!(
            "POST {} answered {status}{}",
            alert.destination,
            if body.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", body.trim())
            }
        );
        if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            Err(DeliveryError::Transient(message))
        } else {
            Err(DeliveryError::Permanent(message))
        }
    }

    async fn email(&self, alert: &AlertRecord) -> Result<(), DeliveryError> {
        let Some(smtp) = &self.smtp else {
            return Err(DeliveryError::Permanent(
                "no SMTP server configured: start weir serve with --smtp-url and --smtp-from"
                    .into(),
            ));
        };
        let to: Mailbox = alert.destination.parse().map_err(|e| {
            DeliveryError::Permanent(format!("invalid address {:?}: {e}", alert.destination))
        })?;
        let (subject, text, html) = payload::email(&alert.payload);
        let key = alert.payload["idempotency_key"]
            .as_str()
            .unwrap_or_default();
        let message = Message::builder()
            .from(smtp.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{key}@weir.alerts>")))
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| DeliveryError::Permanent(format!("cannot build the e-mail: {e}")))?;
        smtp.transport.send(message).await.map_err(|e| {
            let message = format!("SMTP to {}: {}", alert.destination, error_chain(&e));
            if e.is_permanent() {
                DeliveryError::Permanent(message)
            } else {
                DeliveryError::Transient(message)
            }
        })?;
        Ok(())
    }
}

/// An error with its sources, `outer: inner: innermost`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("smtp://bob:secret@mail:587?tls=required"),
            "smtp://bob:***@mail:587?tls=required"
        );
        assert_eq!(redact("smtp://mail:25"), "smtp://mail:25");
        assert_eq!(redact("smtp://bob@mail:25"), "smtp://bob@mail:25");
    }

    #[test]
    fn bad_settings_are_refused() {
        crate::tls::install_crypto_provider();
        let bad_url = SmtpSettings {
            url: "http://mail".into(),
            from: "weir@example.com".into(),
        };
        let err = Senders::new(Some(&bad_url), Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("invalid --smtp-url"), "{err}");
        let bad_from = SmtpSettings {
            url: "smtp://127.0.0.1:2525".into(),
            from: "not an address".into(),
        };
        let err = Senders::new(Some(&bad_from), Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("invalid --smtp-from"), "{err}");
    }
}
