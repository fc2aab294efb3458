"""The plugin host: the one wrapper around pluggy (``host``, ``hookspecs``), the adapter
registry it fills (``registry``), and what observer plugins are told (``session_info``)."""
