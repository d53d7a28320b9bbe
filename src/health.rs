//! `/healthz` and `/readyz` for the kubelet's probes: a few lines over a TCP
//! listener rather than a web framework, since that is all they need.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Ready once the controllers run (CRDs found, AWS identity known).
#[derive(Default, Clone)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

pub async fn serve(address: SocketAddr, readiness: Readiness) -> std::io::Result<()> {
    let listener = TcpListener::bind(address).await?;
    tracing::info!(%address, "health endpoints listening");
    loop {
        let (mut socket, _) = listener.accept().await?;
        let readiness = readiness.clone();
        tokio::spawn(async move {
            let mut buffer = [0u8; 1024];
            let Ok(read) = socket.read(&mut buffer).await else {
                return;
            };
            let request = String::from_utf8_lossy(&buffer[..read]);
            let (code, body) = respond(
                request.lines().next().unwrap_or_default(),
                readiness.is_ready(),
            );
            let response = format!(
                "HTTP/1.1 {code}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
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
    use super::respond;

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
