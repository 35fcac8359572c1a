"""Why a command cannot use its database (raised by ``database.access``; light to import, for ``main.py``)."""


class DatabaseUnavailable(Exception):
    """The database cannot be used by this command; the message names it (password masked) and says what to do."""


class DatabaseMissing(DatabaseUnavailable):
    """A read-only command found no database (or no bot tables) where ``DB_URL`` points."""
