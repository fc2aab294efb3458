"""A file record as files: its on-disk framing, JSON and a checksum line (``codec``), its
versioned directory with its history beside it (``records``), the compressed archive of its
older versions (``archive``), where each record's file is and its identity (``layout``), and the
records read in this thread without the store (``peek_read``, ``council status``'s quick look).
``layout`` and ``peek_read`` import no store, no record writer and no event loop (the
``status-quick-look`` contract)."""
