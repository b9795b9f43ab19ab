//! Part buffers recycled between uploads. A fresh buffer of a 10 MiB part is 2,560
//! page faults, each page zeroed by the kernel, and its unmapping when the upload is
//! done; once a part's upload is done, its buffer holds a later part instead.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Buffers of finished part uploads, shared by the writers that share a task's
/// `partsInFlight` (a partitioned task's partitions), at most `keep` of them.
///
/// Memory stays within what the writers use without it: a buffer comes back only when
/// its upload is done and goes out again only for a part, so the buffers alive are
/// never more than the parts being filled, the parts in flight and `keep`, which is
/// `partsInFlight` + 2: an unpartitioned task's parts in flight, the one waiting for a
/// slot and the one filling, so that none of its buffers is ever freed and mapped again.
#[derive(Clone, Debug)]
pub(crate) struct PartBuffers {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    keep: usize,
    /// A kept buffer has at least this room (smaller ones, a last part's, are freed).
    min_capacity: usize,
}

impl PartBuffers {
    pub(crate) fn new(keep: usize, min_capacity: usize) -> Self {
        Self {
            free: Arc::new(Mutex::new(Vec::with_capacity(keep))),
            keep,
            min_capacity,
        }
    }

    /// An empty buffer: a recycled one, else a new one with `capacity` room.
    pub(crate) fn take(&self, capacity: usize) -> Vec<u8> {
        self.free
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_else(|| Vec::with_capacity(capacity))
    }

    /// Keeps the buffer of an uploaded part for a later part, when nothing else holds
    /// it any more (the HTTP client has dropped its handle once the answer came).
    pub(crate) fn recycle(&self, part: Bytes) {
        let Ok(mut buffer) = part.try_into_mut() else {
            return;
        };
        if buffer.capacity() < self.min_capacity {
            return;
        }
        // Emptied first: the conversion then moves no bytes.
        buffer.clear();
        let buffer = Vec::from(buffer);
        if let Ok(mut free) = self.free.lock() {
            if free.len() < self.keep {
                free.push(buffer);
            }
        }
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        self.free.lock().map_or(0, |free| free.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_buffer_comes_back_empty_with_its_room() {
        let buffers = PartBuffers::new(2, 1024);
        let mut part = buffers.take(4096);
        part.extend_from_slice(&[7; 3000]);
        let at = part.as_ptr();
        buffers.recycle(Bytes::from(part));
        assert_eq!(buffers.kept(), 1);
        let again = buffers.take(4096);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), at, "the same allocation");
        assert!(again.capacity() >= 4096);
    }

    #[test]
    fn a_shared_small_or_surplus_buffer_is_not_kept() {
        let buffers = PartBuffers::new(1, 1024);
        let shared = Bytes::from(vec![1u8; 2048]);
        let other = shared.clone();
        buffers.recycle(shared);
        assert_eq!(buffers.kept(), 0, "still held elsewhere");
        drop(other);
        buffers.recycle(Bytes::from(vec![1u8; 100]));
        assert_eq!(buffers.kept(), 0, "under the room of a part");
        buffers.recycle(Bytes::from(vec![2u8; 2048]));
        buffers.recycle(Bytes::from(vec![3u8; 2048]));
        assert_eq!(buffers.kept(), 1, "at most `keep`");
    }
}
