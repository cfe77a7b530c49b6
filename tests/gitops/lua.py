"""Running deploy/argocd/health.lua with the real Lua interpreter, as Argo CD runs it."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HEALTH_SCRIPT = ROOT / "deploy" / "argocd" / "health.lua"
HARNESS = Path(__file__).with_name("harness.lua")
LUA = "lua5.4"


def lua_string(text: str) -> str:
    """A Lua string literal for any text: printable ASCII as is, every other byte as \\ddd."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def lua_value(value: Any) -> str:
    """A Lua table constructor for a JSON-like value; None is absent (nil), as in Argo CD."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return lua_string(value)
    if isinstance(value, list):
        return "{" + ", ".join(lua_value(item) for item in value) + "}"
    if isinstance(value, dict):
        fields = [
            f"[{lua_string(str(key))}] = {lua_value(item)}"
            for key, item in value.items()
            if item is not None
        ]
        return "{" + ", ".join(fields) + "}"
    raise TypeError(f"no Lua form for {type(value).__name__}")


@dataclass(frozen=True)
class Health:
    status: str
    message: str


def health(obj: dict[str, Any], workdir: Path, script: Path = HEALTH_SCRIPT) -> Health:
    """Argo CD's view of `obj`, computed by the real interpreter."""
    interpreter = shutil.which(LUA)
    if interpreter is None:
        raise RuntimeError(f"{LUA} is not installed (Debian package lua5.4; .ci/run installs it)")
    object_file = workdir / "object.lua"
    object_file.write_text("return " + lua_value(obj) + "\n")
    proc = subprocess.run(
        [interpreter, str(HARNESS), str(script), str(object_file)],
        capture_output=True,
        timeout=10,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{LUA} failed: {proc.stderr.decode(errors='replace')}")
    status, message = proc.stdout.decode().split("\n", 1)
    return Health(status, message.removesuffix("\n"))
