"""Reading CSV (encodings, delimiters) and XLSX; broken files give a clear message."""

from __future__ import annotations

import pytest

from voronka.imports import readers

from .conftest import csv_bytes, xlsx_bytes

ROWS = [["Имя", "Телефон", "E-mail"], ["Иван Петров", "8 916 123-45-67", "ivan@example.ru"], ["Мария", "", ""]]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1251"])
@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_csv_encodings_and_delimiters(tmp_path, encoding, delimiter):
    path = tmp_path / "f.csv"
    path.write_bytes(csv_bytes(ROWS, delimiter=delimiter, encoding=encoding))
    with readers.open_table(str(path), "csv") as table:
        assert table.headers == ROWS[0]
        assert table.encoding == encoding
        assert table.delimiter == delimiter
        assert list(table.rows()) == [(2, ROWS[1]), (3, ROWS[2])]


def test_xlsx_cells_become_text(tmp_path):
    import datetime

    path = tmp_path / "f.xlsx"
    path.write_bytes(xlsx_bytes([["Телефон", "ИНН", "Дата", "Сумма", None], [79161234567, 7701234567,
                                 datetime.datetime(2024, 12, 31), 1500.5, None], [None, None, None, None, None]]))
    with readers.open_table(str(path), "xlsx") as table:
        assert table.headers == ["Телефон", "ИНН", "Дата", "Сумма"]
        assert list(table.rows()) == [(2, ["79161234567", "7701234567", "2024-12-31", "1500.5"])]


def test_resume_skips_rows(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(csv_bytes([["a"], ["1"], ["2"], ["3"]]))
    with readers.open_table(str(path), "csv") as table:
        assert [n for n, _c in table.rows(skip=2)] == [4]
    assert readers.count_rows(str(path), "csv") == 3


@pytest.mark.parametrize(("content", "name", "message"), [
    (b"", "f.csv", "empty"),
    (b"PK\x03\x04 broken", "f.xlsx", "Excel"),
    (b"\x00\x01\x02", "f.csv", "CSV"),
    (b"\n\n", "f.csv", "empty"),
])
def test_broken_files_give_clear_errors(tmp_path, content, name, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(readers.FileError) as exc:
        with readers.open_table(str(path), readers.format_of(name)):
            pass
    assert message in exc.value.message


def test_unsupported_extension():
    with pytest.raises(readers.FileError):
        readers.format_of("data.pdf")


def test_wrong_encoding_forced(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(csv_bytes(ROWS, encoding="cp1251"))
    with pytest.raises(readers.FileError) as exc:
        with readers.open_table(str(path), "csv", encoding="utf-8") as table:
            list(table.rows())
    assert "UTF-8" in exc.value.message
