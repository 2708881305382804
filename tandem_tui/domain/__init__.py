"""The pure domain of tandem-tui: the run record, the scheduler, the lifecycle rules,
claims, retry backoff, recovery, the view and the pure half of operator actions.

Standard library and pydantic-core only, and no I/O: nothing here opens a file, reads the
environment, asks the clock or imports a UI, watching, network or database library.
What it needs from the world (now, the environment, a scheduler) comes in as arguments.
A test enforces it.
"""
