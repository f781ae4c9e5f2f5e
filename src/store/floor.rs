//! The in-flight floor: every delivery in flight in the file has a `seq` at or above the one
//! kept in `in_flight_floor`, so that a start finds them by reading the rows from there on,
//! in `seq` order, without an index that every delivery would add itself to and remove
//! itself from. The writer follows the deliveries it left in flight (their id and `seq`),
//! at most `max` of them; past that the floor cannot pass the oldest it no longer follows
//! until a rescan of the file (`Writer::prune`) finds them again.

use std::collections::{BTreeSet, HashMap};

use rusqlite::{params, Connection};

/// The deliveries in flight in the file, as the writer's commits left them.
pub(super) struct InFlight {
    ids: HashMap<Box<str>, i64>,
    seqs: BTreeSet<i64>,
    max: usize,
    /// The oldest in flight that is not followed (`max` were followed when it came).
    unfollowed: Option<i64>,
    /// The `seq` the next delivery will have, at least: the floor when none is in flight.
    next: i64,
    /// The floor as last written to the file.
    written: i64,
}

impl InFlight {
    /// Reads what the file has in flight from its floor on (at most `max` followed).
    pub(super) fn load(connection: &Connection, max: usize) -> rusqlite::Result<InFlight> {
        let next: i64 = connection.query_row(
            "SELECT coalesce(max(seq), 0) + 1 FROM deliveries",
            [],
            |r| r.get(0),
        )?;
        let mut in_flight = InFlight {
            ids: HashMap::new(),
            seqs: BTreeSet::new(),
            max: max.max(1),
            unfollowed: None,
            next,
            written: 0,
        };
        in_flight.rescan(connection)?;
        Ok(in_flight)
    }

    /// Follows again the oldest `max` deliveries in flight from the floor on, as the file
    /// has them (after a failed commit, or to find those past `max`).
    pub(super) fn rescan(&mut self, connection: &Connection) -> rusqlite::Result<()> {
        self.ids.clear();
        self.seqs.clear();
        self.unfollowed = None;
        let floor = read(connection)?;
        self.written = floor;
        self.next = self.next.max(floor);
        let mut statement = connection.prepare(
            "SELECT seq, id FROM deliveries WHERE seq >= ?1 AND status = 'in_flight' \
             ORDER BY seq LIMIT ?2",
        )?;
        let mut rows = statement.query(params![floor, self.max as i64 + 1])?;
        while let Some(row) = rows.next()? {
            let (seq, id): (i64, String) = (row.get(0)?, row.get(1)?);
            self.started(id.into(), seq);
        }
        Ok(())
    }

    /// Whether some in flight are not followed: a rescan may follow them.
    pub(super) fn overflowed(&self) -> bool {
        self.unfollowed.is_some()
    }

    /// A delivery is in flight in the file from this commit on.
    pub(super) fn started(&mut self, id: Box<str>, seq: i64) {
        self.next = self.next.max(seq + 1);
        if self.ids.len() >= self.max {
            self.unfollowed = Some(self.unfollowed.map_or(seq, |u| u.min(seq)));
            return;
        }
        if let Some(before) = self.ids.insert(id, seq) {
            self.seqs.remove(&before);
        }
        self.seqs.insert(seq);
    }

    /// A delivery inserted with an outcome: not in flight, but the floor may pass it.
    pub(super) fn passed(&mut self, seq: i64) {
        self.next = self.next.max(seq + 1);
    }

    /// A delivery is no longer in flight (finished or queued) from this commit on.
    pub(super) fn ended(&mut self, id: &str) {
        if let Some(seq) = self.ids.remove(id) {
            self.seqs.remove(&seq);
        }
    }

    /// The floor to write with this commit, when it moved since the last commit.
    pub(super) fn moved(&self) -> Option<i64> {
        let followed = self.seqs.first().copied().unwrap_or(self.next);
        let floor = self.unfollowed.map_or(followed, |u| u.min(followed));
        (floor != self.written).then_some(floor)
    }

    /// The commit that wrote `floor` is on disk.
    pub(super) fn committed(&mut self, floor: i64) {
        self.written = floor;
    }

    /// A commit failed and the file could not be read again: what this follows may differ
    /// from the file, so the floor stays where the file has it until a rescan.
    pub(super) fn distrust(&mut self) {
        self.unfollowed = Some(
            self.unfollowed
                .map_or(self.written, |u| u.min(self.written)),
        );
    }
}

/// The floor as the file has it.
pub(super) fn read(connection: &Connection) -> rusqlite::Result<i64> {
    connection.query_row("SELECT seq FROM in_flight_floor", [], |r| r.get(0))
}

/// Writes the floor in the commit's transaction.
pub(super) fn write(transaction: &rusqlite::Transaction, floor: i64) -> rusqlite::Result<()> {
    transaction
        .prepare_cached("UPDATE in_flight_floor SET seq = ?1")?
        .execute(params![floor])?;
    Ok(())
}

#[cfg(test)]
#[path = "floor_tests.rs"]
pub(super) mod tests;
