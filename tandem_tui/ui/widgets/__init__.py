"""Dashboard widgets: metrics bar, trends, runs table, locks panel, status colours."""
