"""The invariants every layer leans on: files written without following planted links
(``safe_write``), secrets hidden (``redaction``, ``secret_mask``), found in any size and
shape (``secret_forms``, ``secret_stream``) and never committed (``secret_scrub``),
repository paths that cannot leave their root (``paths``), and the named crash points the
crash tests arm (``crashpoints``)."""
