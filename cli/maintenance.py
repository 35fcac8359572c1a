"""The ``config`` and ``migrate`` commands: show the checked settings, bring the database to the newest schema."""

from __future__ import annotations

import json
import sys

from config import AppConfig
from database.access import open_for_writing
from database.errors import DatabaseUnavailable
from database.migrate import head_revision


def command_config(config: AppConfig) -> int:
    print(json.dumps(config.masked_summary(), indent=2, default=str))
    return 0


def command_migrate(config: AppConfig) -> int:
    try:
        open_for_writing(config.settings.db_url).close()
    except DatabaseUnavailable as error:
        print(str(error), file=sys.stderr)
        return 2
    print(f"database {config.settings.masked()['DB_URL']} is at the newest schema ({head_revision()})")
    return 0
