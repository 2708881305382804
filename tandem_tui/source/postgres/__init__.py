"""A fleet of engines sharing one PostgreSQL database (one schema per engine), as one source."""
