//! Spawn progress: typed events, the JSON objects of JupyterHub's progress stream
//! (compat §3.5), which the API sends as server-sent events and pages follow.

use serde::Serialize;

/// One progress event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgressEvent {
    /// 0 to 100.
    pub progress: u8,
    /// What is happening, as text.
    pub message: String,
    /// Set on the last event of a spawn that worked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// Set on the last event of a spawn that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<bool>,
    /// The message with a link, for pages that show HTML (escaped by a template).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html_message: Option<String>,
    /// Where the ready server is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl ProgressEvent {
    fn step(progress: u8, message: &str) -> Self {
        Self {
            progress,
            message: message.to_owned(),
            ready: None,
            failed: None,
            html_message: None,
            url: None,
        }
    }

    /// The first event of a spawn.
    pub fn requested() -> Self {
        Self::step(0, "Server requested")
    }

    /// The helper is starting the server.
    pub fn spawning() -> Self {
        Self::step(50, "Spawning server...")
    }

    /// A step of a start that takes long (a Slurm job waiting in the queue), in words.
    pub fn note(progress: u8, message: &str) -> Self {
        Self::step(progress, message)
    }

    /// The server answers at `url`: the last event.
    pub fn ready(url: &str) -> Self {
        let html = crate::templates::render("ready.html", serde_json::json!({ "url": url }));
        Self {
            ready: Some(true),
            html_message: html.ok().map(|h| h.trim().to_owned()),
            url: Some(url.to_owned()),
            ..Self::step(100, &format!("Server ready at {url}"))
        }
    }

    /// The spawn failed: the last event.
    pub fn failed(reason: &str) -> Self {
        Self {
            failed: Some(true),
            ..Self::step(100, &format!("Spawn failed: {reason}"))
        }
    }

    /// Whether this event ends the stream.
    pub fn is_last(&self) -> bool {
        self.ready.is_some() || self.failed.is_some()
    }
}

/// The events of the current or last spawn of one server.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Events so far.
    pub events: Vec<ProgressEvent>,
    /// Set once the spawn has succeeded or failed.
    pub done: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_jupyterhubs_shape() {
        let v = serde_json::to_value(ProgressEvent::requested()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"progress": 0, "message": "Server requested"})
        );
        let r = ProgressEvent::ready("/user/a&b/");
        assert!(r.is_last());
        assert_eq!(
            r.html_message.as_deref(),
            Some("Server ready at <a href=\"/user/a&amp;b/\">/user/a&amp;b/</a>")
        );
        let f = serde_json::to_value(ProgressEvent::failed("no")).unwrap();
        assert_eq!(f["failed"], true);
        assert_eq!(f["message"], "Spawn failed: no");
    }
}
