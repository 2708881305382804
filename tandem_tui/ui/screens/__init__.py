"""The console's screens: dashboard (here), run detail, history, confirmation."""
