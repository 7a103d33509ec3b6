//! At most `--max-connections` client connections at once. Each holds a file descriptor,
//! a task and buffers, and the request-level limits (`--max-concurrent`, the client timeout)
//! only start once a request arrives; so a client opening thousands of idle connections is
//! stopped here. A connection over the limit is answered at once with a 503 in the API's
//! JSON error shape (plain HTTP; over TLS it is closed) and never reaches the router.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The answer to a connection over the limit, before it has been read.
fn refusal() -> Vec<u8> {
    let body = serde_json::json!({"error": {
        "code": "too_many_connections",
        "message": "the server's connection limit is reached; retry shortly",
    }})
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// How long a refused connection is given to send its request before it is closed (closing
/// with the request unread would reset the connection and lose the 503).
const REFUSAL_LINGER: Duration = Duration::from_millis(500);

/// Counts and caps open connections; the innermost acceptor (TLS wraps it).
#[derive(Clone, Debug)]
pub struct ConnectionLimit {
    permits: Arc<Semaphore>,
    answer_refusals: bool,
    open: Gauge,
    refused: Counter,
}

impl ConnectionLimit {
    /// Up to `max` connections (at least 1). `answer_refusals`: write the 503 to a refused
    /// connection (plain HTTP only).
    pub fn new(max: usize, answer_refusals: bool, open: Gauge, refused: Counter) -> Self {
        ConnectionLimit {
            permits: Arc::new(Semaphore::new(max.max(1))),
            answer_refusals,
            open,
            refused,
        }
    }
}

/// A connection holding its place under the limit until it is dropped.
pub struct Counted<S> {
    inner: S,
    _permit: OwnedSemaphorePermit,
    open: Gauge,
}

impl<S> Drop for Counted<S> {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl<S> Accept<TcpStream, S> for ConnectionLimit {
    type Stream = Counted<TcpStream>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                self.open.inc();
                std::future::ready(Ok((
                    Counted {
                        inner: stream,
                        _permit: permit,
                        open: self.open.clone(),
                    },
                    service,
                )))
            }
            Err(_) => {
                self.refused.inc();
                if self.answer_refusals {
                    tokio::spawn(refuse(stream));
                }
                std::future::ready(Err(io::Error::other("connection limit reached")))
            }
        }
    }
}

/// Write the 503, then read (and drop) what the client sends for a moment, so the close
/// does not reset the connection before the client has read the answer.
async fn refuse(mut stream: TcpStream) {
    let _ = stream.write_all(&refusal()).await;
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn the_refusal_is_a_well_formed_response_in_the_error_shape() {
        let bytes = refusal();
        let text = std::str::from_utf8(&bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let declared: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(declared, body.len());
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "too_many_connections");
    }
}
