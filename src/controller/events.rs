//! Events a person reads in `kubectl describe`: one per change made in AWS
//! and one per new failure reason. Publishing is best effort: an Event that
//! cannot be written must not fail the reconcile.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};

use super::Context;

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
        note: Some(truncate(note, 1000)),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, object).await {
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
