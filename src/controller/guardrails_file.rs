//! The guardrails document on disk (a ConfigMap mounted as a file): read at
//! start, where a bad document stops the operator with the reason, and
//! watched while running, where a bad edit is logged and the last good
//! guardrails stay in force, so a typo never opens the gates.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::watch;

use crate::policy::guardrails::Guardrails;

/// How often the file is read again. A mounted ConfigMap changes by a
/// symlink swap that file-change notifications miss, and reading a small
/// file every few seconds costs nothing.
pub const POLL_INTERVAL: Duration = Duration::from_secs(3);

pub fn load(path: &Path) -> Result<(String, Guardrails), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("guardrails file {}: {e}", path.display()))?;
    let guardrails =
        Guardrails::parse(&text).map_err(|e| format!("guardrails file {}: {e}", path.display()))?;
    Ok((text, guardrails))
}

/// The guardrails in force, and a channel that tells every change.
pub fn start(path: Option<PathBuf>) -> Result<watch::Receiver<Arc<Guardrails>>, String> {
    let Some(path) = path else {
        let (_, receiver) = watch::channel(Arc::new(Guardrails::default()));
        return Ok(receiver);
    };
    let (mut last_text, guardrails) = load(&path)?;
    tracing::info!(path = %path.display(), "guardrails loaded");
    let (sender, receiver) = watch::channel(Arc::new(guardrails));
    tokio::spawn(async move {
        let mut last_error = String::new();
        loop {
            tokio::time::sleep(POLL_INTERVAL).await;
            match std::fs::read_to_string(&path) {
                Ok(text) if text == last_text => continue,
                Ok(text) => match Guardrails::parse(&text) {
                    Ok(next) => {
                        tracing::info!(path = %path.display(), "guardrails changed; checking every object again");
                        last_text = text;
                        last_error.clear();
                        if sender.send(Arc::new(next)).is_err() {
                            return;
                        }
                    }
                    Err(e) => report_once(
                        &mut last_error,
                        format!("{e}; the previous guardrails stay in force"),
                    ),
                },
                Err(e) => report_once(
                    &mut last_error,
                    format!(
                        "guardrails file {}: {e}; the previous guardrails stay in force",
                        path.display()
                    ),
                ),
            }
        }
    });
    Ok(receiver)
}

fn report_once(last_error: &mut String, error: String) {
    if *last_error != error {
        tracing::error!("{error}");
        *last_error = error;
    }
}

/// One item per change of the guardrails, to reconcile every object again.
pub fn changes(receiver: watch::Receiver<Arc<Guardrails>>) -> impl Stream<Item = ()> {
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.changed().await.ok()?;
        Some(((), receiver))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_document_is_refused_with_the_file_named() {
        let dir = std::env::temp_dir().join(format!("guardrails-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.yaml");
        std::fs::write(&path, "roles:\n  path: no-slashes\n").unwrap();
        let error = load(&path).unwrap_err();
        assert!(
            error.contains("bad.yaml") && error.contains("roles.path"),
            "{error}"
        );
        let missing = load(&dir.join("missing.yaml")).unwrap_err();
        assert!(missing.contains("missing.yaml"), "{missing}");
    }

    #[tokio::test]
    async fn edits_are_picked_up_and_bad_edits_keep_the_last_good_guardrails() {
        let dir = std::env::temp_dir().join(format!("guardrails-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.yaml");
        std::fs::write(&path, "roles:\n  namePrefix: a-\n").unwrap();
        let mut receiver = start(Some(path.clone())).unwrap();
        assert_eq!(receiver.borrow().roles().name_prefix.as_deref(), Some("a-"));

        std::fs::write(&path, "roles:\n  namePrefix: b-\n").unwrap();
        tokio::time::timeout(POLL_INTERVAL * 3, receiver.changed())
            .await
            .expect("change seen")
            .unwrap();
        assert_eq!(receiver.borrow().roles().name_prefix.as_deref(), Some("b-"));

        std::fs::write(&path, "roles: [not, a, map]\n").unwrap();
        let unchanged = tokio::time::timeout(POLL_INTERVAL * 2, receiver.changed()).await;
        assert!(
            unchanged.is_err(),
            "a bad document must not replace the guardrails"
        );
        assert_eq!(receiver.borrow().roles().name_prefix.as_deref(), Some("b-"));
    }
}
