"""The user's tables: reading them, the rules they must meet, their schema, their split, their rows."""
