"""README's code layout is the tree: every folder it names exists, every package folder is named, and every module
is named on its folder's lines. A newcomer walks the README, so a module added without a word there fails here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_WALKED = {"__pycache__", "lua", "v1", "data"}  # scripts, generated stubs and data: named, not listed by module


def _layout() -> dict[Path, str]:
    """Folder -> the words of its lines in README's layout block (a folder's continuation lines included)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Code layout", 1)[1].split("```", 2)[1]
    folders: dict[Path, str] = {}
    stack: list[tuple[int, Path]] = []
    current: Path | None = None
    for line in block.splitlines():
        found = re.match(r"^( *)(\S+/)( .*)?$", line)
        if found:
            indent = len(found[1])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            parent = stack[-1][1] if stack else ROOT
            current = parent / found[2].rstrip("/")
            stack.append((indent, current))
            folders[current] = found[3] or ""
        elif current is not None and line.strip():
            folders[current] += " " + line.strip()
    return folders


def _package_folders(top: Path) -> set[Path]:
    return {
        path
        for path in [top, *top.rglob("*")]
        if path.is_dir() and not NOT_WALKED & set(path.relative_to(top.parent).parts) and any(path.glob("*.py"))
    }


def test_every_named_folder_exists() -> None:
    missing = [str(path.relative_to(ROOT)) for path in _layout() if not path.is_dir()]
    assert not missing, f"README's layout names folders that do not exist: {missing}"


def test_every_package_folder_is_named() -> None:
    named = set(_layout())
    code = _package_folders(ROOT / "services" / "debar") | {p for p in (ROOT / "tests").iterdir() if p.is_dir()}
    unnamed = sorted(str(p.relative_to(ROOT)) for p in code if p not in named and p.name != "__pycache__")
    assert not unnamed, f"folders missing from README's layout: {unnamed}"


def test_every_module_is_named_on_its_folders_line() -> None:
    layout = _layout()
    unnamed = []
    for folder in _package_folders(ROOT / "services" / "debar"):
        words = set(re.findall(r"[A-Za-z_]\w*", layout.get(folder, "")))
        for module in folder.glob("*.py"):
            if module.stem != "__init__" and module.stem not in words:
                unnamed.append(str(module.relative_to(ROOT)))
    assert not unnamed, f"modules missing from README's layout (add each to its folder's line): {sorted(unnamed)}"
