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
    use crate::desk::statistics::{self, DateRange};
    use crate::mail::MailSignal;
    use crate::mail::notify::Notifier;

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

    /// A file whose reading fails part-way, as an upload cut off or refused
    /// for its size does.
    struct CutOff {
        good: io::Cursor<Vec<u8>>,
    }

    impl Read for CutOff {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.good.read(buf)? {
                0 => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut off")),
                n => Ok(n),
            }
        }
    }

    fn csv(rows: usize, bad_line: Option<usize>) -> Vec<u8> {
        let mut body =
            String::from("received_on,product_type,categories,organization,title,status,outcome\n");
        for k in 0..rows {
            let category = if Some(k + 2) == bad_line {
                "astrology"
            } else {
                "regulatory;other"
            };
            body.push_str(&format!(
                "2019-{:02}-{:02},drug,{category},Org {},Case {k},closed,resolved\n",
                1 + k % 12,
                1 + k % 28,
                k % 7
            ));
        }
        body.into_bytes()
    }

    /// Another interface (a command line, a job) imports through the same
    /// use case: a good file is stored whole, a bad one and a cut-off one
    /// store nothing, and only admins import.
    #[tokio::test]
    async fn a_file_is_stored_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let (db, admin) = crate::db::scratch_sqlite_with_admin(dir.path());
        let notifier = Notifier {
            base_url: "http://desk.example".to_owned(),
            from_address: "desk@desk.example".to_owned(),
        };
        let desk = Desk::new(db, notifier, MailSignal::default());
        let caller = |role| Caller {
            id: admin,
            role,
            organization_id: None,
        };
        let stored = || async {
            let report =
                statistics::category_table(&desk, caller(Role::Admin), DateRange::default())
                    .await
                    .unwrap();
            report.table.total.cases
        };

        let body = csv(2_500, None);
        let cut = CutOff {
            good: io::Cursor::new(body[..body.len() / 2].to_vec()),
        };
        let failed = import_cases(&desk, caller(Role::Admin), ImportCases { csv: cut }).await;
        assert!(matches!(failed, Err(DeskError::Internal(_))), "{failed:?}");
        assert_eq!(stored().await, 0);

        let refused = import_cases(
            &desk,
            caller(Role::Admin),
            ImportCases {
                csv: io::Cursor::new(csv(2_500, Some(1_000))),
            },
        )
        .await
        .unwrap();
        match refused {
            ImportOutcome::Refused(problems) => {
                let lines: Vec<(u64, &str)> = problems
                    .iter()
                    .map(|p| (p.line, p.field.as_str()))
                    .collect();
                assert_eq!(lines, [(1_000, "categories")]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(stored().await, 0);

        let forbidden = import_cases(
            &desk,
            caller(Role::Supporter),
            ImportCases {
                csv: io::Cursor::new(body.clone()),
            },
        )
        .await;
        assert!(
            matches!(forbidden, Err(DeskError::Forbidden(_))),
            "{forbidden:?}"
        );

        let imported = import_cases(
            &desk,
            caller(Role::Admin),
            ImportCases {
                csv: io::Cursor::new(body),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            imported,
            ImportOutcome::Imported(ImportSummary {
                imported: 2_500,
                organizations_created: 7,
            })
        );
        assert_eq!(stored().await, 2_500);
    }
}
