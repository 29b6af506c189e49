//! Gives memory that request threads freed back to the system.
//!
//! The server's own (Rust) allocations go to mimalloc (`src/main.rs`); what
//! is here tunes glibc's malloc, which SQLite's page caches and statements
//! and libpq still use. glibc gives each thread that allocates an arena of
//! its own (up to 8 per core) and keeps what is freed there for later:
//! after a burst of case listings on many blocking threads the server held
//! memory it no longer used. `malloc_trim` returns free pages of every
//! arena; once a second its cost is small (figures in docs/performance.md).

use std::time::Duration;

const TRIM_EVERY: Duration = Duration::from_secs(1);

/// Process-wide allocator settings; called once at start.
///
/// glibc raises its mmap threshold to the size of a freed mapped block, so
/// after the first release of a large block the next ones would come from
/// the heap and stay with the process when freed (measured with argon2's
/// 19 MiB working memory, before it moved to mimalloc; docs/performance.md).
/// Pinning the threshold keeps blocks of 1 MiB and more in their own
/// mappings, which go back to the system when freed.
pub fn configure_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes glibc's allocator; any value is valid.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Trims until `stopping` turns true (a no-op where glibc is not the allocator).
pub fn spawn_trimmer(
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !*stopping.borrow() {
            tokio::select! {
                _ = tokio::time::sleep(TRIM_EVERY) => {}
                _ = stopping.changed() => break,
            }
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    })
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
