"""Who acts: the operator named in lifecycle events and audit lines by default."""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Mapping


def default_actor(env: Mapping[str, str] = os.environ) -> str:
    """``$USER@hostname``, the operator named in events and the audit log by default.

    Without ``$USER``/``$LOGNAME`` (cron, some ssh setups) the OS account name stands in:
    an audit line must name someone.
    """
    user = (env.get("USER") or env.get("LOGNAME") or "").strip() or _account_name()
    return f"{user}@{socket.gethostname()}"


def _account_name() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, OSError):
        return "unknown"
