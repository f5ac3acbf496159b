//! The allocator (mimalloc, set in `lib.rs`) asked to give freed memory back to the
//! system. It keeps freed pages for reuse, per thread, and returns them only after a
//! delay or when the thread that owns them collects; a config load frees large blocks
//! (the file's text, the parse's temporaries) that would otherwise stay resident while
//! the next ones are made, and a reload frees a whole registry.

/// Returns this thread's freed heap to the system, with the blocks other threads freed
/// that this thread had allocated (mimalloc gives those back only through the thread
/// that allocated them). Walks the thread's heap: call it off the async threads,
/// after a large free.
pub(crate) fn collect() {
    // SAFETY: mi_collect takes no pointer; it frees mimalloc's own unused pages and
    // may be called from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) };
}
