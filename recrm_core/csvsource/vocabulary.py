"""Which columns a table may have, and how a header cell is read: padded, joined with
dashes or underscores, labelled with the unit its field holds."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

from .failures import ImportFileError

#: header (compared as :func:`normalise_header` does) -> CustomerIn field
HEADER_ALIASES: dict[str, str] = {
    "name": "name",
    "mobile": "mobile",
    "id_card": "id_card",
    "email": "email",
    "gender": "gender",
    "birth_date": "birth_date",
    "source": "source",
    "project": "project",
    "persona": "persona",
    "budget": "budget",
    "owner_staff": "owner_staff",
    "external_id": "external_id",
    "source_system": "source_system",
    "wechat_unionid": "wechat_unionid",
    "姓名": "name",
    "客户姓名": "name",
    "手机": "mobile",
    "手机号": "mobile",
    "手机号码": "mobile",
    "联系电话": "mobile",
    "身份证": "id_card",
    "身份证号": "id_card",
    "身份证号码": "id_card",
    "证件号码": "id_card",
    "邮箱": "email",
    "电子邮箱": "email",
    "性别": "gender",
    "出生日期": "birth_date",
    "生日": "birth_date",
    "出生年月日": "birth_date",
    "来源": "source",
    "项目": "project",
    "客户类型": "persona",
    "预算": "budget",
    "置业顾问": "owner_staff",
    "微信unionid": "wechat_unionid",
}

#: the names listed when a header is refused (English first, then Chinese)
KNOWN_HEADERS: tuple[str, ...] = tuple(HEADER_ALIASES)

#: what a header may hold that does not count: spaces (ASCII, and the ideographic
#: U+3000 and NBSP, which NFKC makes ASCII), dashes, underscores, a stray BOM (a
#: UTF-8-with-BOM file read as plain UTF-8)
_NOT_COUNTED = re.compile("[\\s\\-_\ufeff]+")
#: a trailing "(unit)" of a normalised header (NFKC has made full-width brackets ASCII)
_UNIT = re.compile(r"(.+?)\(([^()]+)\)")

#: the units a :class:`Vocabulary` may give a field (``units``), and how a header may
#: spell each after NFKC (which makes ㎡ and m² "m2"): amounts in 元, areas in square
#: metres, prices per square metre. A header so labelled is the field's own column.
UNIT_SPELLINGS: dict[str, frozenset[str]] = {
    "元": frozenset({"元"}),
    "m2": frozenset({"m2", "平方米", "平米"}),
    "元/m2": frozenset({"元/m2", "元/平方米", "元/平米"}),
}
#: unit -> the labels that scale it, and by how much: figures so labelled, read in
#: the unit, would be that many times too small, so the file is refused
SCALED_UNITS: dict[str, dict[str, str]] = {
    "元": {"万元": "10,000", "万": "10,000", "千元": "1,000", "亿元": "100,000,000",
          "亿": "100,000,000"},
    "元/m2": {"万元/m2": "10,000", "万元/平方米": "10,000", "万元/平米": "10,000"},
}


def normalise_header(cell: str) -> str:
    """How a header cell is compared: NFKC, lower-case, without the spaces, dashes and
    underscores people pad and join words with (see :data:`_NOT_COUNTED`): ``Birth
    Date`` == ``birth_date``, ``姓　名`` == ``姓 名`` == ``姓名``."""
    return _NOT_COUNTED.sub("", unicodedata.normalize("NFKC", cell).lower())


class Vocabulary:
    """The columns a table may have: header names -> the field each one feeds.

    ``aliases`` maps every accepted header spelling to its field (several spellings
    may feed one field; names are compared as :func:`normalise_header` does, so
    ``Birth Date`` == ``birth_date``). A field named in ``lists`` may be fed by several
    columns (手机 and 联系电话): their values then come as one list under the name
    ``lists`` gives it, while a single such column comes as a plain value. A field in
    ``text_only`` holds digits a number-typed workbook cell has lost (Excel keeps 15
    significant digits), so such a cell rejects its row.

    ``units`` gives the unit a field's values are in (a key of :data:`UNIT_SPELLINGS`:
    ``{"list_price": "元", "gross_area": "m2"}``): a header naming the field may then
    end with that unit (``总价(元)``, ``建筑面积(㎡)``), and one ending with a unit
    that scales it (``总价(万元)``) refuses the file, naming the factor; any other
    field with a unit (``姓名(元)``) is an unknown column. A vocabulary that does not
    say (``units=None``) cannot tell which fields hold money or area, so each of its
    fields takes any of those units.
    """

    def __init__(
        self,
        aliases: Mapping[str, str],
        *,
        lists: Mapping[str, str] | None = None,
        text_only: Iterable[str] = (),
        units: Mapping[str, str] | None = None,
    ) -> None:
        self.aliases = {normalise_header(name): target for name, target in aliases.items()}
        #: the spellings listed when a header is refused, in the order given
        self.known: tuple[str, ...] = tuple(aliases)
        self.lists = dict(lists or {})
        self.text_only = frozenset(text_only)
        strange = sorted(set((units or {}).values()) - set(UNIT_SPELLINGS))
        if strange:
            raise ValueError(f"unknown unit(s) {strange}; a unit is one of "
                             f"{sorted(UNIT_SPELLINGS)}")
        self.units = None if units is None else dict(units)

    def field_of(self, cell: str) -> str | None:
        """The field a header cell names, or None when it names none; ImportFileError
        (exit 2) when it names a field in a unit that scales the field's values."""
        key = normalise_header(cell)
        found = self.aliases.get(key)
        labelled = _UNIT.fullmatch(key) if found is None else None
        if labelled is None:
            return found
        base, label = labelled.groups()
        found = self.aliases.get(base)
        if found is None:
            return None
        for unit in self._units_of(found):
            if label in UNIT_SPELLINGS[unit]:
                return found
            scale = SCALED_UNITS.get(unit, {}).get(label)
            if scale is not None:
                text = unicodedata.normalize("NFKC", cell).strip()
                name = text[: text.rindex("(")].strip()
                raise ImportFileError(
                    f"column {cell.strip()!r} is in {label}, but {name!r} holds {unit}:"
                    f" its figures would be read {scale} times too small; convert them"
                    f" to {unit} and name the column {name!r}")
        return None

    def _units_of(self, field: str) -> Iterable[str]:
        """The units a header naming ``field`` may end with."""
        if self.units is None:
            return UNIT_SPELLINGS
        unit = self.units.get(field)
        return () if unit is None else (unit,)


#: the customer import's columns
CUSTOMER_COLUMNS = Vocabulary(HEADER_ALIASES, lists={"mobile": "mobiles"},
                              text_only=["id_card", "wechat_unionid"],
                              units={"budget": "元"})
