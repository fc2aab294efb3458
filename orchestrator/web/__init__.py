"""``council web``: the run as one live page in a browser (``docs/web.md``).

The surface floor beside ``cli/``: ``source`` reads the run through the store and the reports
``status`` reads and acts through the same operations as the command line; ``board`` keeps the
newest report and hears the store's writes; ``guard`` the token, its cookie and the CSRF check;
``app`` the routes; ``serve`` the server. Starlette and uvicorn (the ``web`` extra) are
imported here alone.
"""
