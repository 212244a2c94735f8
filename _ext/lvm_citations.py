"""Bibliography labels that read like the citations in the text: "[Prince, 2023]", not "[Pri23]".

sphinxcontrib-bibtex writes citations in the text author-year (``bibtex_reference_style: author_year``) but
labels the bibliography with pybtex's alpha style unless told otherwise. This registers a pybtex style,
``lvm``, whose labels follow the same rule as the text: one author's last name, two joined by "and", or the
first author and "et al.", then the year; the list is sorted by author and year.
"""

from __future__ import annotations

from collections import Counter

from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle


def _last_name(person) -> str:
    return Text.from_latex(" ".join(person.prelast_names + person.last_names)).render_as("text")


def author_year_label(entry) -> str:
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_last_name(p) for p in persons]
    if not names:
        who = entry.fields.get("organization") or entry.fields.get("title", "?").split(":")[0]
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        labels = [author_year_label(entry) for entry in sorted_entries]
        count, seen = Counter(labels), Counter()
        for label in labels:
            if count[label] == 1:
                yield label
            else:  # two works by the same authors in one year: 2016a, 2016b
                yield label + chr(ord("a") + seen[label])
                seen[label] += 1


class AuthorYearStyle(UnsrtStyle):
    default_label_style = "lvm_author_year"
    default_sorting_style = "author_year_title"


def setup(app):
    register_plugin("pybtex.style.labels", "lvm_author_year", AuthorYearLabels)
    register_plugin("pybtex.style.formatting", "lvm", AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
