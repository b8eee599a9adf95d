"""Labels under the bars of a chart fit their slot: no label runs into its neighbour or off the chart."""

import re

from voronka.ui import charts


def test_a_name_goes_on_two_lines_and_a_long_word_is_cut():
    assert charts.label_lines("Алексей Тарасов", 56) == ["Алексей", "Тарасов"]
    assert charts.label_lines("Константин Константинопольский", 56) == ["Констан…", "Констан…"]
    assert charts.label_lines("2026-11-01", 112) == ["2026-11-01"]
    assert charts.label_lines("Анна Мария Белова", 80) == ["Анна Мария", "Белова"]
    assert charts.label_lines("Анна Мария Белова", 120) == ["Анна Мария Белова"]
    assert charts.label_lines("", 56) == [""]


def test_every_label_line_fits_its_slot():
    names = ["Алексей Тарасов", "Анна Белова", "Артём Леонидович Лебедев", "Вадим Кузнецов", "Геннадий Петров"] * 3
    svg = str(charts.bars([(n, i * 10, str(i * 10), None) for i, n in enumerate(names)], title="Managers"))
    width = float(re.search(r'viewBox="0 0 (\d+)', svg).group(1))
    slot = (width - 16) / len(names)
    lines = re.findall(r"<tspan[^>]*>([^<]*)</tspan>", svg)
    assert lines and all(len(line) * charts.CHAR_W <= slot for line in lines)
    assert "Тарасов" in lines  # the surname is shown, not cut off after the first name
    assert 'Алексей Тарасов: 0' in svg  # the whole label stays in the bar's tooltip
