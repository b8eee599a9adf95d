"""The Russian catalogue is complete: every translatable string in the code has a Russian text, and the
compiled catalogue the server loads matches the source one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest

PACKAGE = Path(__file__).resolve().parents[2]
PO = PACKAGE / "locale" / "ru" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


def _problems(po: polib.POFile) -> list[str]:
    out = []
    for e in po:
        if e.obsolete:
            continue
        if "fuzzy" in e.flags:
            out.append(f"fuzzy: {e.msgid!r}")
        elif e.msgid_plural:
            if not all(e.msgstr_plural.get(i) for i in range(3)):
                out.append(f"untranslated plural: {e.msgid!r}")
        elif not e.msgstr:
            out.append(f"untranslated: {e.msgid!r}")
    return out


def test_every_entry_of_the_russian_catalogue_is_translated():
    assert _problems(polib.pofile(str(PO))) == []


def test_the_compiled_catalogue_matches_the_source():
    po = {(e.msgctxt, e.msgid): (e.msgstr or e.msgstr_plural.get(0)) for e in polib.pofile(str(PO))
          if not e.obsolete and "fuzzy" not in e.flags}
    mo = {(e.msgctxt, e.msgid): (e.msgstr or e.msgstr_plural.get(0)) for e in polib.mofile(str(MO))}
    mo.pop((None, ""), None)
    stale = sorted(k[1] for k in po if po[k] != mo.get(k))[:10]
    assert not stale, f"run: cd voronka && ../manage.py compilemessages -l ru  (stale: {stale})"


@pytest.mark.skipif(shutil.which("xgettext") is None,
                    reason="xgettext (Debian package gettext) is not installed; .ci/run installs it")
def test_no_string_in_the_code_is_missing_from_the_catalogue(tmp_path):
    """Extract the strings like `makemessages` does, into a copy, and compare with the committed catalogue."""
    copy = tmp_path / "voronka"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "tests", "benchsupport", "*.mo"))
    manage = PACKAGE.parent / "manage.py"
    result = subprocess.run([sys.executable, str(manage), "makemessages", "-l", "ru", "--no-location",
                             "--no-obsolete", "-i", "*/tests/*", "-i", "benchsupport/*"],
                            cwd=copy, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    fresh = polib.pofile(str(copy / "locale" / "ru" / "LC_MESSAGES" / "django.po"))
    known = {(e.msgctxt, e.msgid) for e in polib.pofile(str(PO)) if not e.obsolete}
    missing = sorted(e.msgid for e in fresh if (e.msgctxt, e.msgid) not in known)
    assert not missing, (f"{len(missing)} new string(s) lack a Russian text; run makemessages -l ru in voronka/ "
                         f"and translate them: {missing[:15]}")
