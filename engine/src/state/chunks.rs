//! Sorting the chunks of a source read again, the same for every store: a chunk found
//! once to hold nothing new is skipped whole while it reads back unchanged; otherwise
//! its keys are looked up in one call. What makes that safe — the epoch read before the
//! keys, so a note made from answers older than a forgotten or judged-again key is not
//! taken — lives here, behind [`Sorted`] and [`ChunkNote`], which a run only hands back.
//! A store gives the primitive steps ([`ChunkNotes`]); its [`super::Journal`] verbs call
//! the functions below.

use serde_json::Value;

use super::{Handled, Meta, StateError};
use crate::record::ChunkPrint;

/// The meta value saying a run has read the source to its end once.
const PRIMED: &str = "primed";

/// A chunk of the source as the state sorted it (`Journal::sort_chunk`).
#[derive(Debug)]
pub enum Sorted {
    /// Found before to hold nothing new, and read back unchanged: nothing to do.
    Settled,
    /// What is remembered of each key, in the chunk's order; the note that settles the
    /// chunk, if it may be settled.
    Keys {
        remembered: Vec<Option<Handled>>,
        note: Option<ChunkNote>,
    },
}

/// What settles a chunk once its work is done: opaque to a run.
#[derive(Debug)]
pub struct ChunkNote {
    print: ChunkPrint,
    epoch: u64,
}

/// The steps a store keeps chunk notes with (its own tables; never called by a run).
pub(crate) trait ChunkNotes: Meta {
    /// What is remembered of each key, in their order (one round trip for a chunk).
    fn handled_many(&self, keys: &[&str]) -> Result<Vec<Option<Handled>>, StateError>;

    /// How many times something has happened that can make a handled key new again (a
    /// key forgotten, a handled key judged again).
    fn chunk_epoch(&self) -> Result<u64, StateError>;

    /// Whether a chunk with this print was noted to hold nothing new at the current
    /// epoch; a chunk found is noted as seen by `run`.
    fn chunk_settled(&self, print: &ChunkPrint, run: u64) -> Result<bool, StateError>;

    /// Note that the chunk with this print holds nothing new, as found from answers given
    /// at `epoch` (a note of an older epoch than the current one is never told).
    fn settle_chunk(&self, print: &ChunkPrint, epoch: u64, run: u64) -> Result<(), StateError>;

    /// Drop the notes of chunks `run` did not see and of chunks no longer taken.
    fn forget_chunks_unseen_by(&self, run: u64) -> Result<(), StateError>;
}

/// [`super::Journal::sort_chunk`].
pub(crate) fn sort(
    notes: &impl ChunkNotes,
    print: Option<ChunkPrint>,
    keys: &[&str],
    run: u64,
) -> Result<Sorted, StateError> {
    let note = match print {
        Some(print) if notes.chunk_settled(&print, run)? => return Ok(Sorted::Settled),
        // The epoch is read before the keys: a note is not taken if a key was forgotten
        // meanwhile.
        Some(print) => Some(ChunkNote {
            epoch: notes.chunk_epoch()?,
            print,
        }),
        None => None,
    };
    Ok(Sorted::Keys {
        remembered: notes.handled_many(keys)?,
        note,
    })
}

/// [`super::Journal::settle`].
pub(crate) fn settle(notes: &impl ChunkNotes, note: ChunkNote, run: u64) -> Result<(), StateError> {
    notes.settle_chunk(&note.print, note.epoch, run)
}

/// [`super::Journal::primed`].
pub(crate) fn primed(notes: &impl ChunkNotes) -> Result<bool, StateError> {
    Ok(notes.load_meta(PRIMED)?.is_some())
}

/// [`super::Journal::read_to_end`].
pub(crate) fn read_to_end(
    notes: &impl ChunkNotes,
    run: u64,
    whole: bool,
) -> Result<(), StateError> {
    notes.save_meta(PRIMED, &Value::Bool(true))?;
    if whole {
        notes.forget_chunks_unseen_by(run)?;
    }
    Ok(())
}
