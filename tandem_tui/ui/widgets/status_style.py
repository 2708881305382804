"""One colour per run status, everywhere in the console.

Colours are theme variables, so every built-in theme works. Widgets that render Rich
text (the runs table, the timeline) resolve them with :func:`status_style`; widgets
styled by CSS use :func:`status_class`, whose rules live in ``styles/app.tcss`` and use
the same variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from rich.style import Style
from rich.text import Text
from textual.color import Color

from tandem_tui.domain.models import RunStatus

#: The theme variable that colours each status.
STATUS_COLOR_VARIABLE: Mapping[RunStatus, str] = {
    RunStatus.QUEUED: "text-primary",
    RunStatus.RUNNING: "text-success",
    RunStatus.PAUSING: "text-accent",
    RunStatus.PAUSED: "text-warning",
    RunStatus.AWAITING_APPROVAL: "text-accent",
    RunStatus.COMPLETED: "foreground-muted",
    RunStatus.BLOCKED: "text-error",
    RunStatus.FAILED: "text-error",
    RunStatus.CANCELLED: "foreground-muted",
}

#: Statuses an operator must look at: drawn bold as well as coloured.
EMPHASISED: frozenset[RunStatus] = frozenset(
    {RunStatus.RUNNING, RunStatus.FAILED, RunStatus.BLOCKED}
)


#: Colours for terminals of 16 colours (``TERM=xterm``): theme colours downsampled to
#: the 16 ANSI ones make several statuses look alike, so each gets its own ANSI colour.
ANSI_STATUS_COLORS: Mapping[RunStatus, str] = {
    RunStatus.QUEUED: "blue",
    RunStatus.RUNNING: "green",
    RunStatus.PAUSING: "cyan",
    RunStatus.PAUSED: "yellow",
    RunStatus.AWAITING_APPROVAL: "magenta",
    RunStatus.COMPLETED: "bright_black",
    RunStatus.BLOCKED: "bright_red",
    RunStatus.FAILED: "red",
    RunStatus.CANCELLED: "white",
}


def status_class(status: RunStatus | str) -> str:
    """The CSS class for a status, e.g. ``status-awaiting_approval``."""
    return f"status-{RunStatus(status).value}"


@lru_cache(maxsize=256)
def _resolve(value: str | None, background: str) -> str | None:
    if value is None:
        return None
    try:
        color = Color.parse(value)
    except Exception:
        return None
    if color.a < 1:
        # Rich has no alpha: blend onto the theme background like Textual would.
        color = Color.parse(background).blend(color.with_alpha(1), color.a)
    return color.hex


@lru_cache(maxsize=16)
def _ansi_style(status: RunStatus) -> Style:
    return Style(color=ANSI_STATUS_COLORS[status], bold=status in EMPHASISED)


@lru_cache(maxsize=256)
def _style(status: RunStatus, value: str | None, background: str) -> Style:
    return Style(color=_resolve(value, background), bold=status in EMPHASISED)


def status_style(
    status: RunStatus | str, variables: Mapping[str, str], *, ansi16: bool = False
) -> Style:
    """The Rich style for ``status`` under the theme whose variables are given
    (``app.theme_variables``); ``ansi16`` for a terminal of 16 colours. Cached: the runs
    table asks once per row."""
    run_status = RunStatus(status)
    if ansi16:
        return _ansi_style(run_status)
    value = variables.get(STATUS_COLOR_VARIABLE[run_status])
    return _style(run_status, value, variables.get("background", "#000000"))


def status_text(
    status: RunStatus | str, variables: Mapping[str, str], *, ansi16: bool = False
) -> Text:
    """The status name, coloured for the current theme (or the terminal's 16 colours)."""
    run_status = RunStatus(status)
    return Text(
        run_status.value,
        style=status_style(run_status, variables, ansi16=ansi16),
        end="",
        no_wrap=True,
        overflow="ellipsis",
    )
