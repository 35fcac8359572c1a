"""The bot's persistence: schema (models, migrations), engine setup (engine.py) and the idempotent Repository."""
