"""Reading XLSX and CSV files row by row, so memory stays flat however long the file is.

CSV: the encoding is detected from the first bytes (a UTF-8 byte-order mark, then strict UTF-8, then
Windows-1251, the usual encoding of Russian Excel exports), the delimiter is sniffed among «;», «,» and tab.
XLSX: openpyxl in read-only mode streams the first sheet's rows. Every cell becomes text.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import decimal
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from voronka.core.errors import ValidationFailed

SAMPLE = 64 * 1024
MAX_COLUMNS = 200
MAX_CELL = 10000
DELIMITERS = ";,\t"
FORMATS = ("csv", "xlsx")


class FileError(ValidationFailed):
    """The file cannot be read: broken, empty, wrong encoding or kind."""

    code = "bad_file"


def format_of(name: str) -> str:
    ext = (name or "").rsplit(".", 1)[-1].lower() if "." in (name or "") else ""
    if ext in ("csv", "txt", "tsv"):
        return "csv"
    if ext in ("xlsx", "xlsm"):
        return "xlsx"
    raise FileError(_("Only .xlsx and .csv files can be imported."), fields={"file": [_("Unsupported file type.")]})


def detect_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(sample, final=False)  # a character cut at the sample's end is not an error
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1251"


def detect_delimiter(text: str) -> str:
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if not lines:
        return ";"
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        counts = {d: lines[0].count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ";"


def cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))  # phone numbers and INNs typed as numbers
        return repr(value)
    if isinstance(value, decimal.Decimal | int):
        return str(value)
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value).strip()[:MAX_CELL]


@dataclass
class Table:
    headers: list[str]
    _rows: Iterator[list]
    encoding: str = ""
    delimiter: str = ""
    total: int | None = None
    _next_number: int = 2  # the header is row 1
    _closers: list = field(default_factory=list)

    def rows(self, skip: int = 0) -> Iterator[tuple[int, list[str]]]:
        """(row number, cells as text padded to the headers) for every non-empty data row after ``skip`` rows."""
        width = len(self.headers)
        for index, raw in enumerate(self._rows):
            number = index + 2
            if index < skip:
                continue
            cells = [cell_text(v) for v in raw[:MAX_COLUMNS]]
            if not any(cells):
                continue
            cells += [""] * (width - len(cells))
            yield number, cells


def _headers(raw) -> list[str]:
    headers = [cell_text(v) for v in (raw or [])][:MAX_COLUMNS]
    while headers and not headers[-1]:
        headers.pop()
    if not headers:
        raise FileError(_("The first row must hold the column names, and it is empty."))
    seen: dict[str, int] = {}
    result = []
    for i, h in enumerate(headers):
        h = h or _("Column %(n)s") % {"n": i + 1}
        if h in seen:
            seen[h] += 1
            h = f"{h} ({seen[h]})"
        else:
            seen[h] = 1
        result.append(h)
    return result


def _csv_rows(handle, delimiter: str, encoding: str) -> Iterator[list]:
    reader = csv.reader(handle, delimiter=delimiter)
    try:
        yield from reader
    except UnicodeDecodeError:
        raise FileError(_("The file is not in the %(enc)s encoding throughout; save it as UTF-8 and upload it "
                          "again.") % {"enc": encoding}) from None
    except csv.Error as exc:
        raise FileError(_("The CSV file is broken near line %(n)s: %(e)s") % {"n": reader.line_num, "e": exc}) from None


@contextmanager
def open_table(path: str, file_format: str, *, encoding: str = "", delimiter: str = ""):
    """Open a CSV or XLSX file for streaming; raise ``FileError`` with a clear message if it cannot be read."""
    csv.field_size_limit(1024 * 1024)
    if file_format == "csv":
        with open(path, "rb") as f:
            sample = f.read(SAMPLE)
        if not sample.strip():
            raise FileError(_("The file is empty."))
        if b"\x00" in sample:
            raise FileError(_("This is not a text CSV file (is it an Excel file with a .csv name?)."))
        encoding = encoding or detect_encoding(sample)
        try:
            text = sample.decode(encoding, errors="ignore")
        except LookupError:
            raise FileError(_("Unknown encoding «%(enc)s».") % {"enc": encoding}) from None
        delimiter = delimiter or detect_delimiter(text)
        with open(path, encoding=encoding, newline="") as handle:
            rows = _csv_rows(handle, delimiter, encoding)
            try:
                header = next(rows, None)
            except FileError:
                raise
            yield Table(_headers(header), rows, encoding=encoding, delimiter=delimiter)
        return
    if file_format != "xlsx":
        raise FileError(_("Only .xlsx and .csv files can be imported."))
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError):
        raise FileError(_("The file is not a readable Excel (.xlsx) workbook.")) from None
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            raise FileError(_("The workbook has no sheets."))
        rows = sheet.iter_rows(values_only=True)
        try:
            header = next(rows, None)
        except (zipfile.BadZipFile, KeyError, ValueError):
            raise FileError(_("The file is not a readable Excel (.xlsx) workbook.")) from None
        total = None
        try:
            if sheet.max_row and sheet.max_row > 1:
                total = sheet.max_row - 1
        except (TypeError, ValueError):
            total = None
        yield Table(_headers(header), rows, total=total)
    finally:
        workbook.close()


def count_rows(path: str, file_format: str, *, encoding: str = "", delimiter: str = "") -> int | None:
    """Data rows of the file (for the progress bar); an XLSX answers from its recorded dimension."""
    with open_table(path, file_format, encoding=encoding, delimiter=delimiter) as table:
        if file_format == "xlsx":
            return table.total
        return sum(1 for _row in table._rows)
