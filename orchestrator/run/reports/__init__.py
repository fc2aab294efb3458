"""What a run reports, and how ``council status`` reads it: the report itself (``report``:
``RunReport`` and its parts), built from the store's records alone (``build_report``), a
session's report as the store has it now and until when it holds (``session_report``), that
report kept beside a file store (``report_cache``) and the first look after a write, built
without the store (``quick_report``)."""
