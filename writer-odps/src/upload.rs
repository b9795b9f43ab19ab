//! Streaming one block as one chunked PUT (T2) while it is being encoded.
//!
//! The encoder hands chunks of a block to [`OpenBlock::push`]; each chunk goes to the
//! in-flight request through a small bounded channel, so memory stays the same
//! whatever the block size. Every chunk is also appended to an unlinked temporary
//! file (the spool): if the streamed request fails with a temporary error (or the
//! connection was closed while the source was slow), the block is sent again from
//! the spool, with backoff. Re-sending a block id overwrites it, so retries are safe.
//!
//! Spool files and chunk buffers are recycled ([`Recycled`]): a spool file is
//! overwritten by a later block instead of being created, grown and freed per block,
//! and a chunk's buffer comes back once the request has sent it, so neither costs
//! fresh pages (page faults, the file system's allocation) for every block and chunk.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use flate2::write::ZlibEncoder;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::OdpsClient;
use crate::error::OdpsError;
use crate::http::{Answer, Request};

/// Size of the chunks sent to the network and to the spool. 1 MiB rather than 256 KiB:
/// a quarter of the hand-overs, spool writes and socket sends per block, for 6–8 % less
/// CPU (`BENCHMARKS.md`, issue 19's seventh round) and about 4 MiB more of chunk buffers.
pub const CHUNK_BYTES: usize = 1024 * 1024;
/// Chunks queued for the request at most (bounds memory).
const QUEUED_CHUNKS: usize = 4;

type ChunkSender = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Capacity of a chunk buffer: a chunk plus the record that crosses its end.
pub const CHUNK_CAPACITY: usize = CHUNK_BYTES + 64 * 1024;
/// Chunk buffers kept for reuse at most: those queued, one being sent, one filling.
const KEPT_CHUNKS: usize = QUEUED_CHUNKS + 2;

/// Spool files and chunk buffers of finished blocks and sent chunks, for reuse.
#[derive(Default)]
pub struct Recycled {
    spools: Mutex<Vec<File>>,
    chunks: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Recycled {
    /// An empty buffer of [`CHUNK_CAPACITY`], reused when one is free.
    pub fn chunk(&self) -> Vec<u8> {
        let reused = self.chunks.lock().ok().and_then(|mut free| free.pop());
        reused.unwrap_or_else(|| Vec::with_capacity(CHUNK_CAPACITY))
    }

    /// `bytes` as a request body chunk whose buffer returns here once sent.
    fn body_chunk(&self, bytes: Vec<u8>) -> Bytes {
        if bytes.capacity() < CHUNK_CAPACITY {
            return Bytes::from(bytes);
        }
        Bytes::from_owner(PooledChunk {
            bytes,
            pool: Arc::clone(&self.chunks),
        })
    }

    fn spool(&self, request: &Request) -> Result<File, OdpsError> {
        if let Some(file) = self.spools.lock().ok().and_then(|mut free| free.pop()) {
            return Ok(file);
        }
        tempfile::tempfile().map_err(|e| OdpsError::Transport {
            operation: request.operation.clone(),
            message: format!("creating the block spool file: {e}"),
        })
    }

    fn keep_spool(&self, file: File) {
        if let Ok(mut free) = self.spools.lock() {
            free.push(file);
        }
    }
}

/// A chunk buffer lent to a request body; dropping it gives it back to the pool.
struct PooledChunk {
    bytes: Vec<u8>,
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl AsRef<[u8]> for PooledChunk {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for PooledChunk {
    fn drop(&mut self) {
        if let Ok(mut free) = self.pool.lock() {
            if free.len() < KEPT_CHUNKS {
                let mut bytes = std::mem::take(&mut self.bytes);
                bytes.clear();
                free.push(bytes);
            }
        }
    }
}

/// Where blocks of one upload session go.
pub struct BlockTarget<'a> {
    pub rt: &'a Runtime,
    pub client: &'a OdpsClient,
    pub table: &'a str,
    pub partition: &'a str,
    pub upload_id: &'a str,
    pub compress: bool,
    /// Time allowed for the answer after the last byte, and for a retried upload.
    pub write_timeout: Duration,
    /// Spool files and chunk buffers reused from block to block.
    pub recycled: Recycled,
}

/// A block being written.
pub struct OpenBlock {
    pub id: u32,
    request: Request,
    tx: Option<ChunkSender>,
    response: Option<JoinHandle<Result<Answer, OdpsError>>>,
    /// A temporary error of the streamed attempt, if it ended early.
    early_error: Option<OdpsError>,
    /// The block's bytes so far, from offset 0 (the file may be longer: a reused
    /// spool keeps an earlier block's bytes beyond `sent_bytes`). `None` once the
    /// block is answered and the file is back in the pool.
    spool: Option<File>,
    compressor: Option<ZlibEncoder<Vec<u8>>>,
    /// Bytes sent (after compression).
    pub sent_bytes: u64,
}

impl BlockTarget<'_> {
    /// Starts the PUT of block `id`.
    pub fn begin(&self, id: u32) -> Result<OpenBlock, OdpsError> {
        let request = self.client.block_request(
            self.table,
            self.partition,
            self.upload_id,
            id,
            self.compress,
        );
        let spool = self.recycled.spool(&request)?;
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(QUEUED_CHUNKS);
        let body = receiver_body(rx);
        let http = self.client.http.clone();
        let endpoint = self.client.tunnel_endpoint()?;
        let req = clone_request(&request);
        let response = self
            .rt
            .spawn(async move { http.send_once(&endpoint, &req, body, None).await });
        Ok(OpenBlock {
            id,
            request,
            tx: Some(tx),
            response: Some(response),
            early_error: None,
            spool: Some(spool),
            compressor: self
                .compress
                .then(|| ZlibEncoder::new(Vec::new(), flate2::Compression::fast())),
            sent_bytes: 0,
        })
    }

    /// Appends encoded bytes to the block (`data` is drained).
    pub fn push(&self, block: &mut OpenBlock, data: &mut Vec<u8>) -> Result<(), OdpsError> {
        let bytes = match &mut block.compressor {
            Some(z) => {
                z.write_all(data)
                    .map_err(|e| io_error(&block.request, "compressing", e))?;
                data.clear();
                std::mem::take(z.get_mut())
            }
            None => std::mem::replace(data, self.recycled.chunk()),
        };
        self.send(block, bytes)
    }

    fn send(&self, block: &mut OpenBlock, bytes: Vec<u8>) -> Result<(), OdpsError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let spool = block.spool.as_ref().ok_or_else(|| {
            OdpsError::protocol(&block.request.operation, "block already answered")
        })?;
        spool
            .write_all_at(&bytes, block.sent_bytes)
            .map_err(|e| io_error(&block.request, "writing the block spool file", e))?;
        block.sent_bytes += bytes.len() as u64;
        let Some(tx) = &block.tx else {
            return Ok(());
        };
        let chunk = self.recycled.body_chunk(bytes);
        let sent = self
            .rt
            .block_on(tx.send_timeout(Ok(chunk), self.write_timeout));
        match sent {
            Ok(()) => {}
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                // The service stopped reading: give up this attempt, resend later.
                block.tx = None;
                if let Some(handle) = block.response.take() {
                    handle.abort();
                }
                block.early_error = Some(OdpsError::Transport {
                    operation: block.request.operation.clone(),
                    message: format!(
                        "the Tunnel accepted no data for writeTimeoutInMs ({} ms)",
                        self.write_timeout.as_millis()
                    ),
                });
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => {
                // The request ended before its body: find out why.
                block.tx = None;
                if let Some(handle) = block.response.take() {
                    match self.rt.block_on(handle) {
                        Ok(Err(e)) if !e.is_retryable() => return Err(e),
                        Ok(Err(e)) => block.early_error = Some(e),
                        Ok(Ok(_)) => {
                            block.early_error = Some(OdpsError::protocol(
                                &block.request.operation,
                                "the service answered before the block was complete",
                            ))
                        }
                        Err(join) => {
                            block.early_error = Some(OdpsError::Transport {
                                operation: block.request.operation.clone(),
                                message: format!("upload task failed: {join}"),
                            })
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Appends the last bytes (the trailer) and ends the request body; the answer is
    /// awaited by [`BlockTarget::wait`], so the next block can start meanwhile.
    pub fn end(&self, mut block: OpenBlock, mut data: Vec<u8>) -> Result<OpenBlock, OdpsError> {
        self.push(&mut block, &mut data)?;
        if let Some(z) = block.compressor.take() {
            let tail = z
                .finish()
                .map_err(|e| io_error(&block.request, "compressing", e))?;
            self.send(&mut block, tail)?;
        }
        block.tx = None; // ends the streamed body
        Ok(block)
    }

    /// Waits for the answer to an ended block; sends it again from the spool after a
    /// temporary failure. Returns the bytes of the block.
    pub fn wait(&self, mut block: OpenBlock) -> Result<u64, OdpsError> {
        let mut result = match (block.response.take(), block.early_error.take()) {
            (Some(handle), _) => {
                match self
                    .rt
                    .block_on(async { tokio::time::timeout(self.write_timeout, handle).await })
                {
                    Ok(Ok(r)) => r.map(drop),
                    Ok(Err(join)) => Err(OdpsError::Transport {
                        operation: block.request.operation.clone(),
                        message: format!("upload task failed: {join}"),
                    }),
                    Err(_) => Err(OdpsError::Transport {
                        operation: block.request.operation.clone(),
                        message: format!(
                            "no answer within writeTimeoutInMs ({} ms)",
                            self.write_timeout.as_millis()
                        ),
                    }),
                }
            }
            (None, Some(e)) => Err(e),
            (None, None) => Err(OdpsError::protocol(&block.request.operation, "no request")),
        };
        let mut backoff = self.client.http.backoff();
        loop {
            match result {
                Ok(()) => {
                    if let Some(spool) = block.spool.take() {
                        self.recycled.keep_spool(spool);
                    }
                    return Ok(block.sent_bytes);
                }
                Err(e) if e.is_retryable() => match backoff.next_delay() {
                    Some(wait) => {
                        tracing::warn!(
                            "{e}; sending block {} again from the spool in {} ms",
                            block.id,
                            wait.as_millis()
                        );
                        std::thread::sleep(wait);
                        result = self.resend(&mut block);
                    }
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends the spooled block again.
    fn resend(&self, block: &mut OpenBlock) -> Result<(), OdpsError> {
        let file = block
            .spool
            .as_ref()
            .ok_or_else(|| OdpsError::protocol(&block.request.operation, "block already answered"))?
            .try_clone()
            .map_err(|e| io_error(&block.request, "reading the block spool file", e))?;
        let len = block.sent_bytes;
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(QUEUED_CHUNKS);
        // Read the file on a plain thread; the request streams what it reads.
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; CHUNK_BYTES];
            let mut offset = 0u64;
            loop {
                let want = (len - offset).min(CHUNK_BYTES as u64) as usize;
                if want == 0 {
                    return;
                }
                match file.read_at(&mut buf[..want], offset) {
                    Ok(0) => {
                        let _ = tx.blocking_send(Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("the spool file ends at byte {offset} of {len}"),
                        )));
                        return;
                    }
                    Ok(n) => {
                        offset += n as u64;
                        if tx
                            .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        });
        let body = receiver_body(rx);
        let result = self
            .rt
            .block_on(self.client.http.send_once(
                &self.client.tunnel_endpoint()?,
                &block.request,
                body,
                Some(self.write_timeout),
            ))
            .map(drop);
        let _ = reader.join();
        result
    }
}

impl Drop for OpenBlock {
    fn drop(&mut self) {
        // An unfinished block must not be completed by accident: cancel its request.
        if let Some(handle) = self.response.take() {
            handle.abort();
        }
    }
}

fn io_error(req: &Request, what: &str, e: std::io::Error) -> OdpsError {
    OdpsError::Transport {
        operation: req.operation.clone(),
        message: format!("{what}: {e}"),
    }
}

fn clone_request(r: &Request) -> Request {
    Request {
        operation: r.operation.clone(),
        method: r.method.clone(),
        path: r.path.clone(),
        params: r.params.clone(),
        headers: r.headers.clone(),
        content_type: r.content_type,
    }
}

/// A request body streaming what the channel receives.
fn receiver_body(rx: mpsc::Receiver<Result<Bytes, std::io::Error>>) -> reqwest::Body {
    reqwest::Body::wrap_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}
