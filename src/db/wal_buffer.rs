//! SQLite's WAL written in a few system calls per commit.
//!
//! SQLite appends a commit to the WAL as two `pwrite`s per page: the
//! frame's 24-byte header, then the page. A batch of the writer's intakes
//! commits some 70 pages, so 140 system calls, each touching one or two of
//! the kernel's page-cache pages at an offset 24 bytes off their boundary:
//! about 13 % of the writer's samples (docs/performance.md, issue 19's
//! seventeenth round).
//!
//! This VFS wraps the default one and changes only how the WAL file is
//! written: consecutive writes are gathered in memory and handed to the
//! default VFS in writes of up to 124 KiB (the most it takes in one call)
//! when the commit frame's page arrives, before
//! anything else reads the file. What SQLite sees is unchanged: a write
//! that returns has either reached the kernel or belongs to a transaction
//! whose commit frame has not been written yet, which readers ignore and
//! recovery discards, exactly as they would a frame torn by a crash. Every
//! other operation on the WAL (read, size, sync, truncate, close) first
//! writes what is gathered; the database file and the shared memory are
//! the default VFS's own.
//!
//! Only what SQLite writes as a frame's header (24 bytes) followed by its
//! page is gathered; any other write goes through at once. Should a later
//! SQLite write its frames otherwise, nothing is gathered and nothing
//! breaks; this module's tests then fail on the count of writes.

use std::ffi::{c_int, c_void};
use std::ptr;
use std::sync::Once;

use libsqlite3_sys as ffi;

/// The name the VFS is registered under (as the process's default).
const NAME: &std::ffi::CStr = c"medesk-wal-buffer";
/// Length of a WAL frame's header; no other write to the WAL has it (the
/// WAL's own header is 32 bytes, pages at least 512).
const FRAME_HEADER_LEN: usize = 24;
/// The most the default (unix) VFS writes in one call: it masks a write's
/// length with 0x1ffff.
const MAX_WRITE: usize = 0x1ffff & !0xfff;
/// What a connection gathers at most: a transaction larger than this (an
/// import) is written in steps of this size before its commit. A batch of
/// intakes is some 300 KiB.
const MAX_GATHERED: usize = 1 << 20;

/// Makes the WAL-gathering VFS the default for every SQLite connection
/// opened afterwards in this process. Idempotent.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: `sqlite3_vfs_find(NULL)` returns the default VFS, which
        // SQLite keeps for the life of the process; the copy made here is
        // leaked so that it does too, as `sqlite3_vfs_register` requires.
        unsafe {
            let default = ffi::sqlite3_vfs_find(ptr::null());
            if default.is_null() {
                return;
            }
            let mut vfs = ptr::read(default);
            vfs.pNext = ptr::null_mut();
            vfs.zName = NAME.as_ptr();
            vfs.szOsFile = (HEADER_LEN + (*default).szOsFile as usize) as c_int;
            vfs.xOpen = Some(open);
            let vfs = Box::leak(Box::new(vfs));
            INNER_VFS.store(default, std::sync::atomic::Ordering::Release);
            ffi::sqlite3_vfs_register(vfs, 1);
        }
    });
}

static INNER_VFS: std::sync::atomic::AtomicPtr<ffi::sqlite3_vfs> =
    std::sync::atomic::AtomicPtr::new(ptr::null_mut());

/// A WAL file: this header, then the default VFS's own file object.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    gathered: Gathered,
}

/// Bytes written but not yet handed to the default VFS, and where they go.
struct Gathered {
    bytes: Vec<u8>,
    /// File offset of `bytes[0]`.
    offset: i64,
    /// After a frame's header: its page comes next, and ends the commit
    /// if true.
    page_next: Option<bool>,
}

/// `WalFile`'s size rounded up so the default VFS's object after it is
/// aligned as SQLite aligns file objects (8 bytes).
const HEADER_LEN: usize = std::mem::size_of::<WalFile>().next_multiple_of(8);

/// The default VFS's object inside a `WalFile`'s allocation.
unsafe fn inner(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: `open` sized every file object HEADER_LEN + the inner size.
    unsafe { file.cast::<u8>().add(HEADER_LEN).cast() }
}

unsafe fn gathered<'a>(file: *mut ffi::sqlite3_file) -> &'a mut Gathered {
    // SAFETY: only called through WAL_METHODS, set on `WalFile`s alone.
    unsafe { &mut (*file.cast::<WalFile>()).gathered }
}

unsafe fn inner_methods(file: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    // SAFETY: the default VFS's open succeeded, so its methods are set.
    unsafe { &*(*inner(file)).pMethods }
}

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let default = INNER_VFS.load(std::sync::atomic::Ordering::Acquire);
    // SAFETY: SQLite hands a zeroed allocation of `szOsFile` bytes; the
    // default VFS's object goes at its start (any file but a WAL) or after
    // the header (a WAL), and is opened by the default VFS itself.
    unsafe {
        let default_open = (*default).xOpen.expect("the default VFS opens files");
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            return default_open(default, name, file, flags, out_flags);
        }
        let rc = default_open(default, name, inner(file), flags, out_flags);
        if rc != ffi::SQLITE_OK {
            // SQLite calls no method of a file whose open failed.
            (*file).pMethods = ptr::null();
            return rc;
        }
        ptr::write(
            file.cast::<WalFile>(),
            WalFile {
                base: ffi::sqlite3_file {
                    pMethods: &WAL_METHODS,
                },
                gathered: Gathered {
                    bytes: Vec::new(),
                    offset: 0,
                    page_next: None,
                },
            },
        );
        ffi::SQLITE_OK
    }
}

/// Hands what is gathered to the default VFS. What could not be written is
/// dropped either way: it belongs to a transaction that now fails.
unsafe fn flush(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: see `gathered`.
    unsafe {
        let gathered = gathered(file);
        if gathered.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        let bytes = std::mem::take(&mut gathered.bytes);
        let rc = write_through(file, &bytes, gathered.offset);
        let gathered = self::gathered(file);
        gathered.bytes = bytes;
        gathered.bytes.clear();
        rc
    }
}

/// Writes `bytes` at `offset` with the default VFS, in as few calls as it
/// takes.
unsafe fn write_through(file: *mut ffi::sqlite3_file, bytes: &[u8], mut offset: i64) -> c_int {
    // SAFETY: see `inner`.
    unsafe {
        let write = inner_methods(file).xWrite.expect("files are writable");
        for chunk in bytes.chunks(MAX_WRITE) {
            let rc = write(
                inner(file),
                chunk.as_ptr().cast(),
                chunk.len() as c_int,
                offset,
            );
            #[cfg(test)]
            tests::WRITES.with(|writes| writes.set(writes.get() + 1));
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            offset += chunk.len() as i64;
        }
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: SQLite passes `amount` readable bytes at `data`.
    unsafe {
        let bytes = std::slice::from_raw_parts(data.cast::<u8>(), amount as usize);
        let gathered = gathered(file);
        let page_of = gathered.page_next.take();
        let is_header = page_of.is_none() && bytes.len() == FRAME_HEADER_LEN;
        let frame_part = is_header || page_of.is_some();
        let contiguous =
            gathered.bytes.is_empty() || gathered.offset + gathered.bytes.len() as i64 == offset;
        if !frame_part || !contiguous || gathered.bytes.len() + bytes.len() > MAX_GATHERED {
            let rc = flush(file);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        if !frame_part || bytes.len() > MAX_GATHERED {
            // Any write but a frame's header and page (the WAL's own
            // header, a page rewritten in place) goes through as it comes.
            return write_through(file, bytes, offset);
        }
        let gathered = self::gathered(file);
        if gathered.bytes.capacity() == 0 {
            // Once per connection that writes, and never more.
            gathered.bytes.reserve_exact(MAX_GATHERED);
        }
        if gathered.bytes.is_empty() {
            gathered.offset = offset;
        }
        gathered.bytes.extend_from_slice(bytes);
        if is_header {
            // Bytes 4..8 of a frame header: the database's size in pages
            // after a commit, zero in every other frame.
            gathered.page_next = Some(bytes[4..8] != [0, 0, 0, 0]);
            return ffi::SQLITE_OK;
        }
        if page_of == Some(true) {
            return flush(file);
        }
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: the header was written by `open` and is dropped once, here;
    // SQLite calls no method after xClose.
    unsafe {
        let flushed = flush(file);
        let close = inner_methods(file).xClose.expect("files close");
        let closed = close(inner(file));
        ptr::drop_in_place(file.cast::<WalFile>());
        (*file).pMethods = ptr::null();
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            closed
        }
    }
}

/// Methods that first write what is gathered, then delegate.
macro_rules! flushing {
    ($name:ident, $method:ident, $($arg:ident: $ty:ty),*) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> c_int {
            // SAFETY: delegates to the default VFS's object.
            unsafe {
                let rc = flush(file);
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
                let method = inner_methods(file).$method.expect(stringify!($method));
                method(inner(file), $($arg),*)
            }
        }
    };
}

/// Methods that only delegate: locks, and the file's properties.
macro_rules! delegating {
    ($name:ident, $method:ident, $($arg:ident: $ty:ty),*) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> c_int {
            // SAFETY: delegates to the default VFS's object.
            unsafe {
                let method = inner_methods(file).$method.expect(stringify!($method));
                method(inner(file), $($arg),*)
            }
        }
    };
}

flushing!(read, xRead, data: *mut c_void, amount: c_int, offset: i64);
flushing!(truncate, xTruncate, size: i64);
flushing!(sync, xSync, flags: c_int);
flushing!(file_size, xFileSize, size: *mut i64);
flushing!(file_control, xFileControl, op: c_int, arg: *mut c_void);
delegating!(lock, xLock, level: c_int);
delegating!(unlock, xUnlock, level: c_int);
delegating!(check_reserved_lock, xCheckReservedLock, out: *mut c_int);
delegating!(sector_size, xSectorSize,);
delegating!(device_characteristics, xDeviceCharacteristics,);

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;

    thread_local! {
        /// Writes handed to the default VFS by this thread's connections.
        pub(super) static WRITES: Cell<u64> = const { Cell::new(0) };
    }

    fn writes() -> u64 {
        WRITES.with(Cell::get)
    }

    fn open(path: &std::path::Path) -> SqliteConnection {
        super::install();
        let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        conn.batch_execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .unwrap();
        conn
    }

    fn count(conn: &mut SqliteConnection) -> i64 {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT count(*) FROM notes)",
        ))
        .get_result(conn)
        .unwrap()
    }

    #[test]
    fn a_commit_of_many_pages_is_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("one.db"));
        conn.batch_execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            .unwrap();
        let wal = dir.path().join("one.db-wal");
        let wal_before = std::fs::metadata(&wal).unwrap().len();
        let before = writes();
        // Some 50 pages of 4 KiB: 100 writes without the gathering, 2 of
        // 124 KiB with it.
        conn.batch_execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
             INSERT INTO notes (body) SELECT printf('%.400c', 'x') FROM n",
        )
        .unwrap();
        let frames = (std::fs::metadata(&wal).unwrap().len() - wal_before) / (24 + 4096);
        assert!(frames >= 40, "{frames} frames");
        assert_eq!(writes() - before, 2);
        assert_eq!(count(&mut conn), 400);
    }

    #[test]
    fn every_commit_is_readable_by_another_connection_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seen.db");
        let mut writer = open(&path);
        writer
            .batch_execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            .unwrap();
        let mut reader = open(&path);
        let mut expected = 0;
        for round in 1..=150_i64 {
            // From one row to several pages per commit.
            let rows = 1 + (round * 7) % 60;
            writer
                .batch_execute(&format!(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
                     INSERT INTO notes (body) SELECT printf('%.300c', 'y') FROM n"
                ))
                .unwrap();
            expected += rows;
            assert_eq!(count(&mut reader), expected, "after commit {round}");
            if round % 50 == 0 {
                // The WAL starts over after a full checkpoint.
                writer
                    .batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    .unwrap();
            }
        }
        let check: String = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
            "(SELECT integrity_check FROM pragma_integrity_check)",
        ))
        .get_result(&mut reader)
        .unwrap();
        assert_eq!(check, "ok");
    }

    #[test]
    fn a_rolled_back_transaction_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollback.db");
        let mut writer = open(&path);
        writer
            .batch_execute(
                "PRAGMA cache_size = 10;
                 CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
            )
            .unwrap();
        // A cache of 10 pages spills a large transaction's pages into the
        // WAL before its commit, and reads them back from there.
        for end in ["ROLLBACK", "COMMIT"] {
            writer
                .batch_execute(&format!(
                    "BEGIN;
                     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
                     INSERT INTO notes (body) SELECT printf('%.500c', 'z') FROM n;
                     UPDATE notes SET body = 'short' WHERE id % 3 = 0;
                     {end};"
                ))
                .unwrap();
        }
        drop(writer);
        let mut reader = open(&path);
        assert_eq!(count(&mut reader), 2000);
        let short: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT count(*) FROM notes WHERE body = 'short')",
        ))
        .get_result(&mut reader)
        .unwrap();
        assert_eq!(short, 666);
    }
}
