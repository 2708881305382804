"""The core stays pure: importing it loads no UI or watching library."""

import json
import subprocess
import sys


def test_importing_the_core_loads_no_textual_rich_or_watchfiles():
    code = (
        "import json, pkgutil, importlib, sys\n"
        "import tandem_tui.core as core\n"
        "for m in pkgutil.iter_modules(core.__path__):\n"
        "    importlib.import_module('tandem_tui.core.' + m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('textual', 'rich', 'watchfiles'))\n"
        "print(json.dumps(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
