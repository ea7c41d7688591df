//! The per-connection HTTP/1.1 engine: a thin async driver over any pair of byte streams.
//!
//! Two loops run side by side. The request loop reads request heads from the client, asks the
//! rules for a [`Plan`], and either queues a synthetic answer or forwards the request (head
//! and body) to the upstream. The response loop takes the queued exchanges in order, so
//! pipelined requests get their responses in order, synthetic or not, and forwards each
//! response as its plan says (delayed, edited, paced or cut). Bytes nothing touches are
//! forwarded as received. An accepted `Upgrade` (101) or `CONNECT` (2xx) turns both loops
//! into plain byte copies.

use super::head;
use super::parse::{self, BodyReader, Framing, Request};
use super::rules::{self, AbortPhase, Answer, Plan};
use super::shape::{BodyShaper, SseSplitter};
use crate::proxy::pipeline::Peer;
use crate::proxy::{Chain, Direction, Seeds};
use crate::toxics::Cut;
use bytes::{Bytes, BytesMut};
use std::io;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

const READ_SIZE: usize = 32 * 1024;
/// Requests read ahead of their responses (pipelining depth) before the client is paused.
const PIPELINE_DEPTH: usize = 64;

/// What the engine needs to know about its connection.
pub struct Context<'a> {
    /// The proxy's toxic chains, upstream then downstream; HTTP rules are read from both.
    pub chains: [watch::Receiver<Chain>; 2],
    pub peer: Peer,
    /// The proxy's seeded random sources: one per request, for its toxicity rolls.
    pub seeds: &'a Seeds,
    /// Told about every request some toxic applied to.
    pub report: &'a (dyn Fn(&Request, &Plan) + Send + Sync),
}

/// How an HTTP connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Either side closed, or asked to close, after a complete exchange.
    Closed,
    /// A toxic ended the connection.
    Cut(Cut),
    /// A peer broke the protocol or a socket failed: the client is reset.
    Failed,
}

/// One request the response loop must answer, in order.
enum Exchange {
    /// A synthetic response; `close` ends the connection after it.
    Answer { bytes: Bytes, close: bool },
    /// A request that went upstream.
    Forwarded {
        method: String,
        plan: Box<Plan>,
        /// Told whether the upstream accepted an upgrade or tunnel.
        switched: Option<oneshot::Sender<bool>>,
        close: bool,
    },
}

/// Runs HTTP between `client` and `upstream` until the connection ends.
pub async fn run<C, U>(client: C, upstream: U, context: Context<'_>) -> Outcome
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut upstream_read, mut upstream_write) = tokio::io::split(upstream);
    let outcome = {
        let (queue, exchanges) = mpsc::channel(PIPELINE_DEPTH);
        let requests = forward_requests(&mut client_read, &mut upstream_write, queue, context);
        let responses = forward_responses(&mut upstream_read, &mut client_write, exchanges);
        tokio::pin!(requests, responses);
        tokio::select! {
            outcome = &mut responses => outcome,
            ended = &mut requests => match ended {
                // The client sent all it will: its responses are still owed.
                Ok(()) => responses.await,
                Err(_) => Outcome::Failed,
            },
        }
    };
    if outcome == Outcome::Closed {
        let _ = client_write.shutdown().await;
    }
    outcome
}

/// Reads more from `src` into `buf`; `Ok(false)` at end-of-stream.
async fn fill<R: AsyncRead + Unpin>(src: &mut R, buf: &mut BytesMut) -> io::Result<bool> {
    buf.reserve(READ_SIZE);
    Ok(src.read_buf(buf).await? > 0)
}

/// The request loop. Returns when the client has nothing more to send (or closed).
async fn forward_requests<R, W>(
    client: &mut R,
    upstream: &mut W,
    queue: mpsc::Sender<Exchange>,
    context: Context<'_>,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = BytesMut::new();
    loop {
        let request = loop {
            match parse::request(&mut buf) {
                Ok(Some(request)) => break request,
                Ok(None) => {
                    if !fill(client, &mut buf).await? {
                        let _ = upstream.shutdown().await;
                        return Ok(());
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "unparsable request");
                    let bad = Answer {
                        status: 400,
                        headers: Vec::new(),
                        body: format!("faultline: {error}\n"),
                    };
                    let bytes = head::answer(&bad, true);
                    let _ = queue.send(Exchange::Answer { bytes, close: true }).await;
                    return Ok(());
                }
            }
        };
        let chains = [
            context.chains[0].borrow().clone(),
            context.chains[1].borrow().clone(),
        ];
        let mut plan = rules::plan(
            [&chains[0], &chains[1]],
            &request,
            context.peer,
            &mut context.seeds.next_request_rng(),
        );
        if plan.is_faulted() {
            (context.report)(&request, &plan);
        }
        let mut body = BodyReader::new(request.framing);
        let close = request.head.wants_close();

        if let Some(answer) = plan.answer.take() {
            // A client waiting for 100 Continue, or about to switch protocols, cannot be
            // told where its next request starts: the answer closes the connection.
            let close =
                close || request.wants_upgrade() || (request.expects_continue() && !body.is_done());
            let bytes = head::answer(&answer, close);
            if queue.send(Exchange::Answer { bytes, close }).await.is_err() || close {
                return Ok(());
            }
            if !pass_body(client, None::<&mut W>, &mut buf, &mut body).await? {
                return Ok(());
            }
            continue;
        }

        if !plan.request_delay.is_zero() {
            tokio::time::sleep(plan.request_delay).await;
        }
        let head = head::edit(&request.head, &plan.request_edits);
        let upgrade = request.wants_upgrade();
        let (switched, verdict) = match upgrade {
            true => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
            false => (None, None),
        };
        let exchange = Exchange::Forwarded {
            method: request.method.clone(),
            plan: Box::new(plan),
            switched,
            close,
        };
        if queue.send(exchange).await.is_err() {
            return Ok(());
        }
        upstream.write_all(&head).await?;
        if !pass_body(client, Some(&mut *upstream), &mut buf, &mut body).await? {
            let _ = upstream.shutdown().await;
            return Ok(());
        }
        upstream.flush().await?;
        if let Some(verdict) = verdict {
            if verdict.await.unwrap_or(false) {
                upstream.write_all(&buf).await?;
                tokio::io::copy(client, upstream).await?;
                let _ = upstream.shutdown().await;
                return Ok(());
            }
        }
        if close {
            return Ok(());
        }
    }
}

/// Moves one request body from `client` to `upstream` (or discards it when `upstream` is
/// `None`). Returns false if the client closed before the body ended.
async fn pass_body<R, W>(
    client: &mut R,
    mut upstream: Option<&mut W>,
    buf: &mut BytesMut,
    body: &mut BodyReader,
) -> io::Result<bool>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if body.is_done() {
        return Ok(true);
    }
    loop {
        let step = body.next(buf).map_err(io::Error::other)?;
        let data = buf.split_to(step.consumed);
        if let Some(upstream) = upstream.as_mut() {
            if !data.is_empty() {
                upstream.write_all(&data).await?;
            }
        }
        if step.done {
            return Ok(true);
        }
        if (step.consumed == 0 || buf.is_empty()) && !fill(client, buf).await? {
            return Ok(false);
        }
    }
}

/// The response loop: answers each exchange in order.
async fn forward_responses<R, W>(
    upstream: &mut R,
    client: &mut W,
    mut exchanges: mpsc::Receiver<Exchange>,
) -> Outcome
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = BytesMut::new();
    loop {
        // While idle, watch the upstream too: if it closes, so does the client.
        let exchange = tokio::select! {
            exchange = exchanges.recv() => exchange,
            read = fill(upstream, &mut buf), if buf.is_empty() => match read {
                Ok(true) => continue,
                Ok(false) => return Outcome::Closed,
                Err(_) => return Outcome::Failed,
            },
        };
        let result = match exchange {
            None => return Outcome::Closed,
            Some(Exchange::Answer { bytes, close }) => {
                match client.write_all(&bytes).await.and(client.flush().await) {
                    Ok(()) if close => return Outcome::Closed,
                    Ok(()) => continue,
                    Err(_) => return Outcome::Failed,
                }
            }
            Some(Exchange::Forwarded {
                method,
                plan,
                switched,
                close,
            }) => respond(upstream, client, &mut buf, &method, *plan, switched, close).await,
        };
        match result {
            Ok(Next::Continue) => {}
            Ok(Next::End(outcome)) => return outcome,
            Err(error) => {
                tracing::debug!(%error, "response failed");
                return Outcome::Failed;
            }
        }
    }
}

enum Next {
    Continue,
    End(Outcome),
}

/// Forwards the upstream's response to one request, as its plan says.
async fn respond<R, W>(
    upstream: &mut R,
    client: &mut W,
    buf: &mut BytesMut,
    method: &str,
    mut plan: Plan,
    switched: Option<oneshot::Sender<bool>>,
    close: bool,
) -> io::Result<Next>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let response = loop {
        let response = match parse::response(buf).map_err(io::Error::other)? {
            Some(response) => response,
            None => {
                if !fill(upstream, buf).await? {
                    // The upstream closed without answering: so does the proxy.
                    return Ok(Next::End(Outcome::Closed));
                }
                continue;
            }
        };
        if let Some((AbortPhase::BeforeResponse, cut)) = plan.abort {
            return Ok(Next::End(Outcome::Cut(cut)));
        }
        if (100..200).contains(&response.status) && response.status != 101 {
            // Interim responses (100 Continue) pass as they are; the final one follows.
            client.write_all(&response.head.raw).await?;
            client.flush().await?;
            continue;
        }
        break response;
    };
    let framing = response.framing(method).map_err(io::Error::other)?;
    if !plan.headers_delay.is_zero() {
        tokio::time::sleep(plan.headers_delay).await;
    }
    client
        .write_all(&head::edit(&response.head, &plan.response_edits))
        .await?;
    client.flush().await?;

    if let Some(switched) = switched {
        let accepted = response.status == 101
            || (method.eq_ignore_ascii_case("CONNECT") && (200..300).contains(&response.status));
        let _ = switched.send(accepted);
        if accepted {
            client.write_all(buf).await?;
            tokio::io::copy(upstream, client).await?;
            return Ok(Next::End(Outcome::Closed));
        }
    }
    let mut shaper = BodyShaper::new(match plan.abort {
        Some((AbortPhase::AfterHeaders, cut)) => Some((0, cut)),
        Some((AbortPhase::MidBody(bytes), cut)) => Some((bytes, cut)),
        _ => None,
    });
    if let Some(cut) = shaper.cut_now() {
        return Ok(Next::End(Outcome::Cut(cut)));
    }

    let mut body = BodyReader::new(framing);
    // With a body delay, an event stream is released one event at a time.
    let mut sse = (plan.body_delay.is_some() && response.head.is_event_stream())
        .then(|| SseSplitter::new(framing == Framing::Chunked));
    let mut chunk = BytesMut::new();
    while !body.is_done() {
        if buf.is_empty() && !fill(upstream, buf).await? {
            if framing == Framing::UntilClose {
                if let Some(rest) = sse.as_mut().and_then(SseSplitter::finish) {
                    if let Some(cut) = release(client, &mut shaper, &mut plan, rest).await? {
                        return Ok(Next::End(Outcome::Cut(cut)));
                    }
                }
                break;
            }
            // The upstream cut its own body short: the client sees the same.
            return Ok(Next::End(Outcome::Closed));
        }
        let step = body.next(buf).map_err(io::Error::other)?;
        chunk.unsplit(buf.split_to(step.consumed));
        if step.chunk_end || step.done || (step.consumed > 0 && plan.body_delay.is_none()) {
            let data = chunk.split().freeze();
            let runs = match sse.as_mut() {
                Some(sse) => sse.split(data, step.done).map_err(io::Error::other)?,
                None => vec![data],
            };
            for run in runs {
                if let Some(cut) = release(client, &mut shaper, &mut plan, run).await? {
                    return Ok(Next::End(Outcome::Cut(cut)));
                }
            }
        }
        if step.done {
            break;
        }
        if step.consumed == 0 && !fill(upstream, buf).await? {
            return Ok(Next::End(Outcome::Closed));
        }
    }
    if close || response.head.wants_close() || framing == Framing::UntilClose {
        return Ok(Next::End(Outcome::Closed));
    }
    Ok(Next::Continue)
}

/// Writes one run of body bytes when the shaper lets it go; returns the cut, if it cuts.
async fn release<W: AsyncWrite + Unpin>(
    client: &mut W,
    shaper: &mut BodyShaper,
    plan: &mut Plan,
    data: Bytes,
) -> io::Result<Option<Cut>> {
    let release = shaper.on_chunk(data, Instant::now(), plan);
    tokio::time::sleep_until(release.at.into()).await;
    client.write_all(&release.data).await?;
    client.flush().await?;
    Ok(release.cut)
}

/// The chain receivers of a proxy, in the order [`Context::chains`] wants them.
pub fn chains_of(chains: &crate::proxy::Chains) -> [watch::Receiver<Chain>; 2] {
    [
        chains.subscribe(Direction::Upstream),
        chains.subscribe(Direction::Downstream),
    ]
}
