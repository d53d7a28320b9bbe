//! Events a person reads in `kubectl describe`: one per reconcile that
//! changed something, and one per new failure reason. Publishing is best effort: an Event that
//! cannot be written must not fail the reconcile.
//!
//! Each Event is published by a recorder of its own. kube's recorder keeps
//! every Event it published for six minutes, to fold repeats into a series,
//! in a table that never shrinks: after a thousand objects were created that
//! table alone held 24 MiB (heaptrack), most of the operator's heap. Our
//! Events hardly repeat (a failure is published when its reason changes, a
//! change when it is made), so the series are not worth that.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};

use super::Context;

/// The longest note the API server takes (events.k8s.io: 1 KiB).
pub const NOTE_MAX: usize = 1000;

pub async fn changed(ctx: &Context, object: &ObjectReference, reason: &str, note: String) {
    publish(ctx, object, EventType::Normal, reason, note).await;
}

pub async fn failed(ctx: &Context, object: &ObjectReference, reason: &str, note: String) {
    publish(ctx, object, EventType::Warning, reason, note).await;
}

async fn publish(
    ctx: &Context,
    object: &ObjectReference,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(truncate(note, NOTE_MAX)),
        action: "Reconcile".into(),
        secondary: None,
    };
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    if let Err(e) = recorder.publish(&event, object).await {
        tracing::warn!(error = %e, reason, "could not publish Event");
    }
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(super::truncate("héllo".into(), 2), "h");
        assert_eq!(super::truncate("abc".into(), 10), "abc");
    }
}
