"""The transparency-log package is pure: importing it loads only the standard library and `cryptography`, so an
auditor's offline verifier (and the witness) can use it without Redis, gRPC or the service's settings."""

from __future__ import annotations

import subprocess
import sys

MODULES = ["encoding", "merkle", "compact", "nodes", "proofs", "keys", "note", "cosignature", "checkpoint", "witness"]
# cryptography's native parts register _openssl and _cffi_backend; setuptools' .pth hook loads _distutils_hack.
ALLOWED = {"__main__", "cryptography", "_openssl", "_cffi_backend", "_distutils_hack"}


def test_the_package_imports_only_the_standard_library_and_cryptography():
    probe = f"import sys\nfor name in {MODULES!r}: __import__('debar.tlog.' + name)\nprint(*sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.split()
    foreign = [
        m
        for m in loaded
        if m.split(".")[0] not in sys.stdlib_module_names | ALLOWED
        and m not in ("debar", "debar.tlog")
        and not m.startswith("debar.tlog.")
    ]
    assert foreign == []
    assert "debar.tlog.witness" in loaded and "cryptography" in loaded
