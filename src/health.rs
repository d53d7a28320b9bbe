//! `/healthz` and `/readyz` for the kubelet's probes and `/metrics` for
//! Prometheus: a few lines over a TCP listener rather than a web framework,
//! since that is all they need.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::metrics::Metrics;

const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Ready once every controller runs: AWS identity known and each one's CRD
/// found, so that a rollout waits for an operator that can do its work.
#[derive(Clone)]
pub struct Readiness(Arc<AtomicUsize>);

impl Readiness {
    /// Not ready until `controllers` have called `controller_running`.
    pub fn new(controllers: usize) -> Self {
        Readiness(Arc::new(AtomicUsize::new(controllers)))
    }

    pub fn controller_running(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }
}

pub async fn serve(
    address: SocketAddr,
    readiness: Readiness,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(address).await?;
    tracing::info!(%address, "health endpoints listening");
    loop {
        let (mut socket, _) = listener.accept().await?;
        let readiness = readiness.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buffer = [0u8; 1024];
            let Ok(read) = socket.read(&mut buffer).await else {
                return;
            };
            let request = String::from_utf8_lossy(&buffer[..read]);
            let request_line = request.lines().next().unwrap_or_default();
            let (code, content_type, body) =
                match request_line.split_whitespace().nth(1) == Some("/metrics") {
                    true => ("200 OK", METRICS_CONTENT_TYPE, metrics.render()),
                    false => {
                        let (code, body) = respond(request_line, readiness.is_ready());
                        (code, "text/plain", body.to_string())
                    }
                };
            let response = format!(
                "HTTP/1.1 {code}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        });
    }
}

fn respond(request_line: &str, ready: bool) -> (&'static str, &'static str) {
    match request_line.split_whitespace().nth(1) {
        Some("/healthz") => ("200 OK", "ok"),
        Some("/readyz") if ready => ("200 OK", "ready"),
        Some("/readyz") => ("503 Service Unavailable", "starting"),
        _ => ("404 Not Found", "not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::{Readiness, respond};

    #[test]
    fn ready_only_once_every_controller_runs() {
        let readiness = Readiness::new(2);
        assert!(!readiness.is_ready());
        readiness.controller_running();
        assert!(!readiness.is_ready());
        readiness.controller_running();
        assert!(readiness.is_ready());
        readiness.controller_running();
        assert!(readiness.is_ready());
    }

    #[test]
    fn probes_answer_by_path_and_readiness() {
        assert_eq!(respond("GET /healthz HTTP/1.1", false).0, "200 OK");
        assert_eq!(
            respond("GET /readyz HTTP/1.1", false).0,
            "503 Service Unavailable"
        );
        assert_eq!(respond("GET /readyz HTTP/1.1", true).0, "200 OK");
        assert_eq!(respond("GET / HTTP/1.1", true).0, "404 Not Found");
        assert_eq!(respond("", true).0, "404 Not Found");
    }
}
