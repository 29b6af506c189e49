//! Importing past cases from CSV (admins): all or nothing.
//!
//! The file is never held in memory (docs/statistics.md): as it arrives it
//! is written to an unnamed temporary file and checked record by record on
//! a blocking thread, keeping only where each good record starts and the
//! problems. The database is not touched until the whole file is in and
//! checked. A good file is then read back from the temporary file in
//! received order, a batch at a time, and stored in one transaction of its
//! own (`Database::write_alone`). The row rules are `domain::import`; the
//! batches are `db::import`.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};

use super::{Desk, DeskError};
use crate::clock;
use crate::db::AnyConnection;
use crate::db::import::{self as store, ImportSummary};
use crate::db::stats;
use crate::domain::case::desk_date;
use crate::domain::import::{LineError, check_cases_csv};
use crate::domain::role::{Caller, Role};

/// Who imports: admins only.
pub const ROLES: &[Role] = &[Role::Admin];

/// Import closed historical cases from a CSV file.
pub struct ImportCases<R> {
    /// The file's bytes as they arrive (blocking reads, e.g. of an upload
    /// still being received). A read error — an upload cut off, or refused
    /// for its size — stores nothing.
    pub csv: R,
}

/// What became of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Every case stored, in one transaction.
    Imported(ImportSummary),
    /// Nothing stored: every bad line, by line (the header is line 1).
    Refused(Vec<LineError>),
}

/// Spool bytes written at once (the temporary file sees few large writes).
const SPOOL_BUFFER: usize = 64 * 1024;

impl Desk {
    /// Runs `work` in a write transaction of its own: on SQLite without the
    /// savepoint other writes get, which would hold a copy of every page a
    /// bulk write changes in memory (see `Database::write_alone`).
    async fn write_alone<T, F>(&self, work: F) -> Result<T, DeskError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, DeskError> + Send + 'static,
        T: Send + 'static,
    {
        self.db.write_alone(work).await
    }
}

/// Checks the whole file, then stores every case of a good one (closed
/// historical records, counted in the statistics at once, no mail) or
/// refuses a bad one listing every problem.
pub async fn import_cases<R: Read + Send + 'static>(
    desk: &Desk,
    caller: Caller,
    command: ImportCases<R>,
) -> Result<ImportOutcome, DeskError> {
    caller.require(ROLES)?;
    let today = desk_date(clock::now_micros());
    // Checking is CPU work (and the file's reads may block): off the async
    // threads, while the file still arrives.
    let spool = tempfile::tempfile().map_err(DeskError::internal)?;
    let (spool, checked) = tokio::task::spawn_blocking(move || {
        let mut input = Spooled {
            input: command.csv,
            spool: BufWriter::with_capacity(SPOOL_BUFFER, spool),
        };
        let checked = check_cases_csv(&mut input, today);
        (
            input.spool.into_inner().map_err(|e| e.into_error()),
            checked,
        )
    })
    .await
    .map_err(DeskError::internal)?;
    let checked = match checked.map_err(DeskError::internal)? {
        Ok(checked) => checked,
        Err(problems) => return Ok(ImportOutcome::Refused(problems)),
    };
    let spool = spool.map_err(DeskError::internal)?;
    // Only now, with the whole file received and checked, is the writer
    // taken: the records are read back from the spool a batch at a time.
    let now = clock::now_micros();
    let importer = caller.id;
    let summary = desk
        .write_alone(move |conn| {
            let batches = checked
                .read_in_batches(&spool, store::batch_rows(conn))
                .map(|batch| batch.map_err(DeskError::internal));
            store::import_cases(conn, batches, importer, now)
        })
        .await?;
    tracing::info!(
        imported = summary.imported,
        organizations_created = summary.organizations_created,
        "historical cases imported"
    );
    // The import is stored whatever this says; a failure only costs speed.
    let analyzed = desk.write(|conn| Ok(stats::analyze_rollups(conn)?)).await;
    if let Err(error) = analyzed {
        tracing::warn!(%error, "could not refresh the rollups' planner statistics");
    }
    Ok(ImportOutcome::Imported(summary))
}

/// The input as the checks read it, every byte also written to the spool
/// file (from which a good file's records are read back).
struct Spooled<R> {
    input: R,
    spool: BufWriter<File>,
}

impl<R: Read> Read for Spooled<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.input.read(buf)?;
        self.spool.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Seek;

    use super::*;

    /// The spool holds exactly what was read, whatever the read sizes.
    #[test]
    fn the_spool_holds_every_byte_read() {
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut input = Spooled {
            input: body.as_slice(),
            spool: BufWriter::with_capacity(SPOOL_BUFFER, tempfile::tempfile().unwrap()),
        };
        let mut read = Vec::new();
        let mut small = [0; 7];
        let n = input.read(&mut small).unwrap();
        read.extend_from_slice(&small[..n]);
        input.read_to_end(&mut read).unwrap();
        assert_eq!(read, body);
        let mut spool = input.spool.into_inner().unwrap();
        spool.rewind().unwrap();
        let mut spooled = Vec::new();
        spool.read_to_end(&mut spooled).unwrap();
        assert_eq!(spooled, body);
    }
}
