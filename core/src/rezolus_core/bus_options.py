"""The bus's CURVE option rows and their reading, without loading ZeroMQ.

Invariants:
- ``SERVER_OPTIONS`` and ``CLIENT_OPTIONS`` are the rows every service adds
  (``rezolus_core.bus`` re-exports them); their checks and ``server_keys`` /
  ``client_keys`` are ``rezolus_core.curve``'s, which (with ZeroMQ) loads only
  when a key is given or read, so a service that never subscribes starts
  without it.
- Half a key pair is a ``ConfigError`` naming the missing flag; a plaintext
  non-loopback bind without ``--insecure`` is one too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rezolus_core.shell import Option

if TYPE_CHECKING:
    from rezolus_core import curve
    from rezolus_core.shell import Loaded


def _check_pair(path: str) -> str | None:
    from rezolus_core import curve  # noqa: PLC0415 - ZeroMQ loads only when CURVE is configured or checked

    return curve.check_pair(path)


def _check_public(path: str) -> str | None:
    from rezolus_core import curve  # noqa: PLC0415 - ZeroMQ loads only when CURVE is configured or checked

    return curve.check_public(path)


def _check_directory(path: str) -> str | None:
    from rezolus_core import curve  # noqa: PLC0415 - ZeroMQ loads only when CURVE is configured or checked

    return curve.check_directory(path)


SERVER_OPTIONS = (
    Option("curve_secret_key", "string", None, "the agent's CURVE key pair (NAME.key_secret)",
           key="bus.curve_secret_key", flag="--curve-secret-key", check=_check_pair, metavar="FILE"),
    Option("curve_authorized_keys", "string", None, "directory of the public keys (*.key) of allowed subscribers",
           key="bus.curve_authorized_keys", flag="--curve-authorized-keys", check=_check_directory,
           metavar="DIR"),
    Option("insecure", "boolean", default=False, help="allow a plaintext bus on a non-loopback address",
           key="bus.insecure", flag="--insecure"),
)
CLIENT_OPTIONS = (
    Option("curve_server_key", "string", None, "the agent's CURVE public key (NAME.key)",
           key="bus.curve_server_key", flag="--curve-server-key", check=_check_public, metavar="FILE"),
    Option("curve_key", "string", None, "this subscriber's CURVE key pair (NAME.key_secret)",
           key="bus.curve_key", flag="--curve-key", check=_check_pair, metavar="FILE"),
)


def _both(loaded: Loaded, first: str, second: str) -> tuple[Path, Path] | None:
    a, b = loaded.values.get(first), loaded.values.get(second)
    if a is None and b is None:
        return None
    if a is None or b is None:
        given, missing = (first, second) if a is not None else (second, first)
        flag = "--" + missing.replace("_", "-")
        raise loaded.error(given, f"needs {flag} too (CURVE takes both)")
    return Path(a), Path(b)


def server_keys(loaded: Loaded, listen: str, listen_option: str = "listen") -> curve.ServerKeys | None:
    """The agent's CURVE keys; ConfigError for half a pair or a plaintext non-loopback bind without --insecure."""
    from rezolus_core import curve  # noqa: PLC0415 - ZeroMQ loads only when CURVE is configured or checked

    pair = _both(loaded, "curve_secret_key", "curve_authorized_keys")
    if pair is not None:
        return curve.ServerKeys(*pair)
    if not curve.is_loopback(listen) and not loaded.values.get("insecure"):
        raise loaded.error(
            listen_option,
            f"{listen} is not a loopback address: give --curve-secret-key and --curve-authorized-keys, "
            "or --insecure for a plaintext bus",
        )
    return None


def client_keys(loaded: Loaded) -> curve.ClientKeys | None:
    """A subscriber's CURVE keys (ConfigError when only one of the two is given)."""
    pair = _both(loaded, "curve_server_key", "curve_key")
    if pair is None:
        return None
    from rezolus_core import curve  # noqa: PLC0415 - ZeroMQ loads only when CURVE is configured

    return curve.ClientKeys(*pair)
