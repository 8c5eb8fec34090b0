//! Which source rows a model's monitor has counted, so that a corrected label (a row whose
//! label and `labeled_at` were rewritten, and so polled again) is known for what it is.
//!
//! Stored as `driftd.counted_ids`: one Roaring bitmap (the portable format, written and
//! read by the `roaring` crate) per model and per 2^20 ids. A batch reads the chunks its
//! rows fall in and writes back those it changed, so its cost follows the chunks touched,
//! not the rows; a bitmap holds about one bit per id where ids are dense and two bytes per id
//! where they are sparse. The chunk size weighs the two: where 10 000 models share a table of
//! 2 M rows, each model's 200 ids fall in 2 chunks (31 at 2^16 ids a chunk, which made the
//! ledger's upsert a third of PostgreSQL's time); where one model has the table, a chunk is
//! at most 128 KiB. Pure: `store.rs` does the I/O.

use roaring::RoaringBitmap;

/// Source ids per chunk: `2^CHUNK_BITS`.
const CHUNK_BITS: u32 = 20;

/// The chunk an id falls in, and its place in the chunk.
fn split(id: i64) -> (i64, u32) {
    (id >> CHUNK_BITS, (id & ((1 << CHUNK_BITS) - 1)) as u32)
}

/// The chunks of some ids, sorted, each once.
pub fn chunks_of(ids: impl IntoIterator<Item = i64>) -> Vec<i64> {
    let mut chunks: Vec<i64> = ids.into_iter().map(|id| split(id).0).collect();
    chunks.sort_unstable();
    chunks.dedup();
    chunks
}

/// The counted ids of some chunks (those a batch's rows fall in), with what changed.
#[derive(Debug, Default)]
pub struct CountedIds {
    /// Sorted by chunk: a batch touches a handful.
    chunks: Vec<Chunk>,
}

#[derive(Debug)]
struct Chunk {
    key: i64,
    ids: RoaringBitmap,
    changed: bool,
}

/// A stored chunk that is not a Roaring bitmap.
#[derive(Debug, thiserror::Error)]
#[error("chunk {chunk} of the counted ids is unreadable: {source}")]
pub struct CorruptChunk {
    pub chunk: i64,
    #[source]
    pub source: std::io::Error,
}

impl CountedIds {
    /// `wanted` chunks (sorted, as [`chunks_of`] gives them), from the `stored` ones among
    /// them (`(chunk, bytes)`); a chunk not stored has no counted id yet.
    pub fn from_stored(wanted: &[i64], stored: &[(i64, Vec<u8>)]) -> Result<Self, CorruptChunk> {
        let mut chunks = Vec::with_capacity(wanted.len());
        for &key in wanted {
            let ids = match stored.iter().find(|(k, _)| *k == key) {
                Some((_, bytes)) => RoaringBitmap::deserialize_from(&bytes[..])
                    .map_err(|source| CorruptChunk { chunk: key, source })?,
                None => RoaringBitmap::new(),
            };
            chunks.push(Chunk {
                key,
                ids,
                changed: false,
            });
        }
        Ok(CountedIds { chunks })
    }

    /// `wanted` chunks: those `cached` holds (as the last batch committed them: this loop is
    /// the model's only writer, so they are current), and `stored` ones for the rest (read
    /// for [`CountedIds::missing`]).
    pub fn assemble(
        wanted: &[i64],
        cached: Option<CountedIds>,
        stored: &[(i64, Vec<u8>)],
    ) -> Result<Self, CorruptChunk> {
        let mut from_cache: Vec<Chunk> = cached
            .map(|c| c.chunks)
            .unwrap_or_default()
            .into_iter()
            .filter(|c| wanted.binary_search(&c.key).is_ok())
            .collect();
        let rest: Vec<i64> = wanted
            .iter()
            .copied()
            .filter(|k| from_cache.binary_search_by_key(k, |c| c.key).is_err())
            .collect();
        let mut chunks = CountedIds::from_stored(&rest, stored)?.chunks;
        chunks.append(&mut from_cache);
        chunks.sort_unstable_by_key(|c| c.key);
        Ok(CountedIds { chunks })
    }

    /// Of `wanted` chunks, those `cached` does not hold: the ones to read.
    pub fn missing(wanted: &[i64], cached: Option<&CountedIds>) -> Vec<i64> {
        wanted
            .iter()
            .copied()
            .filter(|&k| cached.and_then(|c| c.chunk(k)).is_none())
            .collect()
    }

    /// The same chunks, as committed (nothing changed since).
    pub fn committed(mut self) -> Self {
        for c in &mut self.chunks {
            c.changed = false;
        }
        self
    }

    fn chunk(&self, key: i64) -> Option<&Chunk> {
        let i = self.chunks.binary_search_by_key(&key, |c| c.key).ok()?;
        Some(&self.chunks[i])
    }

    /// Whether `id` was counted (in a chunk this set holds).
    pub fn contains(&self, id: i64) -> bool {
        let (key, low) = split(id);
        self.chunk(key).is_some_and(|c| c.ids.contains(low))
    }

    /// Counts `id`. Its chunk must be one this set was read with.
    pub fn insert(&mut self, id: i64) {
        let (key, low) = split(id);
        // A chunk not read would be written back without its stored ids: refuse loudly.
        let i = self
            .chunks
            .binary_search_by_key(&key, |c| c.key)
            .unwrap_or_else(|_| panic!("chunk {key} of id {id} was not read"));
        let c = &mut self.chunks[i];
        c.changed |= c.ids.insert(low);
    }

    /// The chunks that changed, serialised: `(chunks, bytes)` for one multi-row upsert.
    pub fn changed(&self) -> (Vec<i64>, Vec<Vec<u8>>) {
        self.chunks
            .iter()
            .filter(|c| c.changed)
            .map(|c| {
                let mut bytes = Vec::with_capacity(c.ids.serialized_size());
                c.ids
                    .serialize_into(&mut bytes)
                    .expect("writing to a Vec cannot fail");
                (c.key, bytes)
            })
            .unzip()
    }

    /// The number of counted ids in the chunks held (the tests check it).
    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.chunks.iter().map(|c| c.ids.len()).sum()
    }
}

/// The batch's corrected rows: counted before, back with a new `labeled_at`.
#[derive(Debug, Default)]
pub struct Corrections {
    pub ids: Vec<i64>,
    pub labeled_at: Vec<chrono::DateTime<chrono::Utc>>,
}

impl Corrections {
    pub fn push(&mut self, id: i64, at: chrono::DateTime<chrono::Utc>) {
        self.ids.push(id);
        self.labeled_at.push(at);
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_the_stored_chunks() {
        // Dense ids, sparse ones far away, negative ones, and the edges of a chunk.
        const C: i64 = 1 << CHUNK_BITS;
        let ids: Vec<i64> = (0..70_000)
            .chain((0..50).map(|k| 10_000_000_000 + 977 * k))
            .chain([-1, -C, -C - 1, 2 * C - 1, 2 * C])
            .collect();
        let wanted = chunks_of(ids.iter().copied());
        let mut counted = CountedIds::from_stored(&wanted, &[]).unwrap();
        for &id in &ids {
            assert!(!counted.contains(id));
            counted.insert(id);
            assert!(counted.contains(id));
        }
        assert_eq!(counted.count(), ids.len() as u64);
        let (keys, bytes) = counted.changed();
        assert_eq!(keys, wanted);
        let stored: Vec<(i64, Vec<u8>)> = keys.into_iter().zip(bytes).collect();
        let again = CountedIds::from_stored(&wanted, &stored).unwrap();
        assert!(ids.iter().all(|&id| again.contains(id)));
        for absent in [70_000, -2, 10_000_000_001, 2 * C + 1] {
            assert!(!again.contains(absent), "{absent}");
        }
        assert_eq!(
            again.changed().0,
            Vec::<i64>::new(),
            "nothing changed on read"
        );
        // Dense ids are bitmaps: about a bit per id.
        let dense = &stored.iter().find(|(k, _)| *k == 0).unwrap().1;
        assert!(dense.len() < 70_000 / 4, "{} bytes", dense.len());
    }

    #[test]
    fn chunks_come_from_the_cache_where_it_has_them() {
        let mut last = CountedIds::from_stored(&[0, 1], &[]).unwrap();
        last.insert(5);
        last.insert((1 << CHUNK_BITS) + 5);
        let last = last.committed();
        assert!(last.changed().0.is_empty());
        // The next batch touches chunks 1 and 2: 1 comes from the cache, 2 is read.
        let wanted = [1, 2];
        assert_eq!(CountedIds::missing(&wanted, Some(&last)), [2]);
        let stored = {
            let mut c = CountedIds::from_stored(&[2], &[]).unwrap();
            c.insert(2 * (1 << CHUNK_BITS) + 9);
            vec![(2, c.changed().1.remove(0))]
        };
        let next = CountedIds::assemble(&wanted, Some(last), &stored).unwrap();
        assert!(next.contains((1 << CHUNK_BITS) + 5) && next.contains(2 * (1 << CHUNK_BITS) + 9));
        assert!(!next.contains(5), "chunk 0 was not wanted");
        assert!(next.changed().0.is_empty());
    }

    #[test]
    fn inserting_a_counted_id_changes_nothing_and_corrupt_bytes_are_an_error() {
        let stored = {
            let mut c = CountedIds::from_stored(&[0], &[]).unwrap();
            c.insert(7);
            vec![(0, c.changed().1.remove(0))]
        };
        let mut c = CountedIds::from_stored(&[0], &stored).unwrap();
        c.insert(7);
        assert!(c.changed().0.is_empty());
        let err = CountedIds::from_stored(&[3], &[(3, vec![1, 2, 3])]).unwrap_err();
        assert_eq!(err.chunk, 3);
    }
}
