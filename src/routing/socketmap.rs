//! The socketmap server: Postfix's `socketmap:unix:PATH:NAME` tables and Exim's
//! `${readsocket{PATH}{...}}` ask it whether an address is a list address.
//!
//! Protocol (Postfix's socketmap_table(5), from Sendmail): the client sends netstrings
//! `NAME KEY`, the server answers each with a netstring `OK VALUE`, `NOTFOUND `, or
//! `PERM REASON`, in order, on a connection the client may keep open. Every answer comes from
//! the registry current at the time of the question, so a reload is seen by the next lookup.
//!
//! SECURITY: the socket is local only (a unix socket, mode from the configuration) and answers
//! what sending mail would reveal anyway. A request longer than [`MAX_REQUEST`] bytes or not a
//! netstring gets `PERM` and the connection is closed (netstrings cannot be resynchronised);
//! connections are capped at [`MAX_CONNECTIONS`] and closed when idle for [`IDLE_TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::netstring::{encode, Decoder};
use super::{lookup, Answer};
use crate::registry::Registry;

/// Largest request payload (`NAME KEY`): far above any address (RFC 5321 allows 256
/// characters for a path), far below anything that costs memory.
pub const MAX_REQUEST: usize = 2048;
/// Connections served at once; further clients wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 64;
/// A connection with no request for this long is closed (Postfix reconnects when needed).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Accept connections on `listener` until `stop` turns true.
pub async fn serve(
    listener: UnixListener,
    registry: watch::Receiver<Arc<Registry>>,
    transport: Arc<str>,
    mut stop: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = JoinSet::new();
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (registry, transport, stop) =
                        (registry.clone(), transport.clone(), stop.clone());
                    conns.spawn(async move {
                        if let Err(e) = connection(stream, registry, &transport, stop).await {
                            tracing::debug!(error = %e, "socketmap connection ended");
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "socketmap accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next() => {}
        }
    }
    conns.abort_all();
}

/// Serve one client: answer each request in order until it closes, misbehaves, idles out, or
/// the server stops.
pub async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    registry: watch::Receiver<Arc<Registry>>,
    transport: &str,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut decoder = Decoder::new(MAX_REQUEST);
    let mut buf = [0u8; 1024];
    loop {
        loop {
            match decoder.next_payload() {
                Ok(Some(request)) => {
                    let reg = registry.borrow().clone();
                    let answer = answer(&reg, &request, transport);
                    stream.write_all(&encode(&answer.to_bytes())).await?;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "socketmap: bad request, connection closed");
                    let reply = Answer::Perm(format!("bad request: {e}"));
                    stream.write_all(&encode(&reply.to_bytes())).await?;
                    return stream.shutdown().await;
                }
            }
        }
        let n = tokio::select! {
            _ = stop.changed() => return Ok(()),
            r = tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut buf)) => match r {
                Ok(r) => r?,
                Err(_) => return Ok(()),
            },
        };
        if n == 0 {
            return Ok(());
        }
        decoder.feed(&buf[..n]);
    }
}

/// One request payload -> its answer.
fn answer(registry: &Registry, request: &[u8], transport: &str) -> Answer {
    let Ok(text) = std::str::from_utf8(request) else {
        // No list address has bytes that are not UTF-8.
        return Answer::NotFound;
    };
    let Some((map, key)) = text.split_once(' ') else {
        return Answer::Perm("a request is \"NAME KEY\"".into());
    };
    lookup(registry, map, key, transport)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> (
        tempfile::TempDir,
        watch::Receiver<Arc<Registry>>,
        watch::Sender<Arc<Registry>>,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("dev.toml"),
            "address = \"dev@lists.test\"\nowners = [\"o@example.org\"]\n",
        )
        .expect("write");
        let reg = Registry::load(dir.path(), '+', None);
        let (tx, rx) = watch::channel(Arc::new(reg));
        (dir, rx, tx)
    }

    /// Run a whole dialogue in memory: send `input`, return everything the server wrote.
    async fn dialogue(rx: watch::Receiver<Arc<Registry>>, input: &[u8]) -> Vec<u8> {
        let (mut client, server) = tokio::io::duplex(64);
        let (_stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(async move {
            let _ = connection(server, rx, "listkeeper:unix:/s", stop).await;
        });
        // Awkward splits: one byte at a time.
        // (The server may close early on bad input; the rest is then not written.)
        for b in input {
            if client.write_all(&[*b]).await.is_err() {
                break;
            }
        }
        let _ = client.shutdown().await;
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.expect("read");
        task.await.expect("join");
        out
    }

    #[tokio::test]
    async fn answers_postfix_lookups_in_order() {
        let (_d, rx, _tx) = registry();
        let mut input = Vec::new();
        for req in [
            "transport dev-confirm+abc@lists.test",
            "recipient nosuch@lists.test",
            "recipient @lists.test",
            "recipient dev-bounces+a=b.org@lists.test",
            "transport lists.test",
            "virtual dev@lists.test",
        ] {
            input.extend(encode(req.as_bytes()));
        }
        let out = dialogue(rx, &input).await;
        let expected = [
            "21:OK listkeeper:unix:/s,",
            "9:NOTFOUND ,",
            "9:NOTFOUND ,",
            "17:OK dev@lists.test,",
            "9:NOTFOUND ,",
        ]
        .concat();
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with(&expected), "{text}");
        assert!(
            text[expected.len()..].contains(":PERM unknown map \"virtual\""),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_new_list_is_found_at_the_next_lookup() {
        let (dir, rx, tx) = registry();
        let ask = encode(b"recipient news@lists.test");
        assert_eq!(dialogue(rx.clone(), &ask).await, b"9:NOTFOUND ,");
        std::fs::write(
            dir.path().join("news.toml"),
            "address = \"news@lists.test\"\nowners = [\"o@example.org\"]\n",
        )
        .expect("write");
        let prev = rx.borrow().clone();
        tx.send_replace(Arc::new(Registry::load(dir.path(), '+', Some(&prev))));
        assert_eq!(dialogue(rx, &ask).await, b"18:OK news@lists.test,");
    }

    #[tokio::test]
    async fn hostile_input_gets_perm_and_a_closed_connection() {
        let (_d, rx, _tx) = registry();
        for input in [
            &b"99999999:"[..],
            b"GET / HTTP/1.1\r\n\r\n",
            b"3:abc;4:more,",
            b"9:transport,",
        ] {
            let out = dialogue(rx.clone(), input).await;
            let text = String::from_utf8_lossy(&out);
            assert!(text.contains(":PERM "), "{input:?} -> {text}");
        }
        // A request over the limit is refused before its bytes are buffered.
        let mut huge = format!("{}:recipient ", MAX_REQUEST + 1).into_bytes();
        huge.extend(std::iter::repeat_n(b'a', MAX_REQUEST));
        let out = dialogue(rx.clone(), &huge).await;
        assert!(String::from_utf8_lossy(&out).contains(":PERM bad request"));
        // Bytes that are not UTF-8 are no list address.
        let out = dialogue(rx, &encode(b"recipient \xff\xfe@lists.test")).await;
        assert_eq!(out, b"9:NOTFOUND ,");
    }
}
