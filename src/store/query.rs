//! What is read back from the store: the deliveries a restart must make again, one
//! delivery with its attempts, and pages of deliveries for the API (newest first, a cursor
//! to go on from). Every query is bounded: a page by its `limit`, a delivery's attempts by
//! `MAX_ATTEMPTS_SHOWN`.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{AttemptLog, Received, Status};

/// The most deliveries in one page.
pub const MAX_PAGE: usize = 1000;
/// The most attempts listed with one delivery (a delivery replayed many times has more).
const MAX_ATTEMPTS_SHOWN: usize = 100;

/// Which deliveries a page lists.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub component: Option<String>,
    pub status: Option<Status>,
    /// The sender's address, bare or full: a bare one matches all its resources.
    pub from: Option<String>,
    /// Received at or after, in milliseconds since the epoch.
    pub since: Option<i64>,
    /// At most this many (1..=`MAX_PAGE`).
    pub limit: usize,
    /// Older than the delivery with this sequence number (the last page's cursor).
    pub before: Option<i64>,
}

/// A delivery in a list.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The cursor of this entry (the next page starts below it).
    #[serde(skip)]
    pub seq: i64,
    pub id: String,
    pub component: String,
    pub from: String,
    pub to: String,
    pub kind: String,
    pub status: Status,
    pub received_at: i64,
    pub finished_at: Option<i64>,
    pub attempts: i64,
    pub error: Option<String>,
}

/// One delivery with everything kept of it.
#[derive(Debug, Clone)]
pub struct Detail {
    pub summary: Summary,
    pub received: Received,
    pub attempts: Vec<AttemptLog>,
    /// The stanzas sent back, as written.
    pub sent: Option<String>,
}

/// Every column of a delivery, its body (`request`) read from its table by `seq`.
const COLUMNS: &str = "seq, id, component, sender, recipient, kind, stanza_type, stanza_id, \
    from_room, receipt, party, \
    (SELECT request FROM requests WHERE requests.seq = deliveries.seq), \
    received_at, status, attempts, finished_at, sent, error, attempt_log";

/// The same for a list, which shows no body: `NULL` in its place.
const SUMMARY_COLUMNS: &str = "seq, id, component, sender, recipient, kind, stanza_type, \
    stanza_id, from_room, receipt, party, NULL, received_at, status, attempts, finished_at, \
    sent, error, attempt_log";

fn status_of(row: &Row, index: usize) -> rusqlite::Result<Status> {
    let text: String = row.get(index)?;
    Status::parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            format!("unknown status '{text}'").into(),
        )
    })
}

fn received_of(row: &Row) -> rusqlite::Result<Received> {
    Ok(Received {
        id: row.get(1)?,
        component: row.get(2)?,
        from: row.get(3)?,
        to: row.get(4)?,
        kind: row.get(5)?,
        stanza_type: row.get(6)?,
        stanza_id: row.get(7)?,
        from_room: row.get(8)?,
        receipt: row.get(9)?,
        party: row.get(10)?,
        request: row
            .get::<_, Option<Vec<u8>>>(11)?
            .unwrap_or_default()
            .into(),
        received_at: row.get(12)?,
    })
}

fn summary_of(row: &Row) -> rusqlite::Result<Summary> {
    Ok(Summary {
        seq: row.get(0)?,
        id: row.get(1)?,
        component: row.get(2)?,
        from: row.get(3)?,
        to: row.get(4)?,
        kind: row.get(5)?,
        received_at: row.get(12)?,
        status: status_of(row, 13)?,
        attempts: row.get(14)?,
        finished_at: row.get(15)?,
        error: row.get(17)?,
    })
}

/// The in-flight and queued deliveries of `component`, in the order they were received:
/// those in flight from the rows at or above the floor, the queued ones by their index.
pub(super) fn unfinished(
    connection: &Connection,
    component: &str,
) -> rusqlite::Result<Vec<(Received, Status)>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM deliveries WHERE seq >= (SELECT seq FROM in_flight_floor) \
         AND component = ?1 AND status = 'in_flight' \
         UNION ALL SELECT {COLUMNS} FROM deliveries WHERE component = ?1 AND status = 'queued' \
         ORDER BY seq"
    ))?;
    let rows = statement.query_map(params![component], |row| {
        Ok((received_of(row)?, status_of(row, 13)?))
    })?;
    rows.collect()
}

pub(super) fn detail(connection: &Connection, id: &str) -> rusqlite::Result<Option<Detail>> {
    let found = connection
        .prepare_cached(&format!("SELECT {COLUMNS} FROM deliveries WHERE id = ?1"))?
        .query_row(params![id], |row| {
            let log: String = row.get(18)?;
            Ok((summary_of(row)?, received_of(row)?, row.get(16)?, log))
        })
        .optional()?;
    let Some((summary, received, sent, log)) = found else {
        return Ok(None);
    };
    // The last ones, when a delivery replayed many times has more than can be shown.
    let lines: Vec<&str> = log.lines().collect();
    let shown = &lines[lines.len().saturating_sub(MAX_ATTEMPTS_SHOWN)..];
    let attempts = shown
        .iter()
        .filter_map(|line| serde_json::from_str::<AttemptLog>(line).ok())
        .collect();
    Ok(Some(Detail {
        summary,
        received,
        attempts,
        sent,
    }))
}

pub(super) fn list(connection: &Connection, filter: &Filter) -> rusqlite::Result<Vec<Summary>> {
    // A bare `from` matches every resource: `alice@x` and `alice@x/...`.
    let resources = filter.from.as_ref().map(|from| format!("{from}/%"));
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM deliveries WHERE \
         (?1 IS NULL OR component = ?1) AND (?2 IS NULL OR status = ?2) \
         AND (?3 IS NULL OR sender = ?3 OR sender LIKE ?4 ESCAPE '\\') \
         AND (?5 IS NULL OR received_at >= ?5) AND (?6 IS NULL OR seq < ?6) \
         ORDER BY seq DESC LIMIT ?7"
    ))?;
    let escaped = resources.map(|r| {
        let (head, tail) = r.split_at(r.len() - 2);
        format!(
            "{}{tail}",
            head.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let rows = statement.query_map(
        params![
            filter.component,
            filter.status.map(Status::as_str),
            filter.from,
            escaped,
            filter.since,
            filter.before,
            filter.limit.clamp(1, MAX_PAGE) as i64
        ],
        summary_of,
    )?;
    rows.collect()
}
