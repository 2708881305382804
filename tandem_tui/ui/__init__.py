"""The Textual console. The only package in tandem-tui that imports textual."""
