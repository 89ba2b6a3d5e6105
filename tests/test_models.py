"""CustomerIn / CustomerUpdate validation and ``first_error`` (what an import reports)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from recrm_core import CRM, InvalidInput
from recrm_core.models import CustomerIn, CustomerUpdate, first_error

ID_CARD = "11010519491231002X"  # born 1949-12-31, female


def error_of(data: dict[str, Any], model: type[CustomerIn | CustomerUpdate] = CustomerIn,
             **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data, **kwargs)
    return first_error(info.value)


# -- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"name": "王先生"},
        {"name": "王先生", "email": "wang@example.com"},
        {"mobile": "", "id_card": ""},
        {"mobile": "  ", "mobiles": [], "id_card": None},
        {"mobile": None},
        {"wechat_unionid": " ", "wechat_unionids": [""]},
    ],
)
def test_a_record_needs_a_mobile_or_an_id_card(data: dict[str, Any]) -> None:
    assert error_of(data) == ("mobile,id_card", "no mobile, ID card or WeChat unionid")


def test_mobile_only_and_id_card_only_are_enough() -> None:
    assert CustomerIn.model_validate({"mobile": "138 1234 5678"}).mobiles == ["+8613812345678"]
    record = CustomerIn.model_validate({"id_card": ID_CARD.lower()})
    assert record.id_card == ID_CARD
    assert record.mobiles == []


def test_mobile_alias_and_list_are_merged_and_deduplicated() -> None:
    record = CustomerIn.model_validate(
        {"mobile": "+86 138 1234 5678", "mobiles": ["13912345678", "138-1234-5678"]}
    )
    assert record.mobiles == ["+8613812345678", "+8613912345678"]
    assert CustomerIn.model_validate({"mobiles": "13812345678"}).mobiles == ["+8613812345678"]
    # a number that arrived as an int (JSON, a spreadsheet cell) is one mobile
    assert CustomerIn.model_validate({"mobiles": 13812345678}).mobiles == ["+8613812345678"]
    assert CustomerIn.model_validate({"mobile": 13812345678}).mobiles == ["+8613812345678"]


def test_mobile_region_comes_from_the_validation_context() -> None:
    hk = CustomerIn.model_validate({"mobile": "5123 4567"}, context={"region": "HK"})
    assert hk.mobiles == ["+85251234567"]
    # the same digits are not a mainland mobile
    assert error_of({"mobile": "5123 4567"})[0] == "mobile"


def test_values_are_normalised() -> None:
    record = CustomerIn.model_validate(
        {
            "name": "  王伟\u3000",
            "mobile": "１３８１２３４５６７８",
            "email": "WW@Example.COM",
            "gender": "男",
            "birth_date": "1990年5月17日",
            "persona": "改善",
            "budget": "300万",
            "project": "XL2",
        }
    )
    assert record.name == "王伟"
    assert record.mobiles == ["+8613812345678"]
    assert record.email == "ww@example.com"
    assert record.gender == "male"
    assert record.birth_date == dt.date(1990, 5, 17)
    assert record.persona == "upgrader"
    assert record.budget == 3_000_000


def test_empty_cells_are_none() -> None:
    record = CustomerIn.model_validate(
        {"mobile": "13812345678", "email": "", "gender": " ", "birth_date": "", "budget": "",
         "persona": "", "name": "\u3000"}
    )
    assert (record.email, record.gender, record.birth_date, record.budget, record.persona,
            record.name) == (None, None, None, None, None, None)


# -- the ID card decides birth date and gender ----------------------------------------------


def test_birth_date_and_gender_are_filled_from_the_id_card() -> None:
    record = CustomerIn.model_validate({"id_card": ID_CARD})
    assert record.birth_date == dt.date(1949, 12, 31)
    assert record.gender == "female"
    male = CustomerIn.model_validate({"mobile": "13812345678", "id_card": "110105194912310038"})
    assert male.gender == "male"


def test_agreeing_values_in_other_spellings_are_accepted() -> None:
    record = CustomerIn.model_validate(
        {"id_card": ID_CARD, "gender": "女", "birth_date": "1949/12/31"}
    )
    assert (record.gender, record.birth_date) == ("female", dt.date(1949, 12, 31))


def test_contradicting_birth_date_rejects() -> None:
    field, reason = error_of({"id_card": ID_CARD, "birth_date": "1950-01-01"})
    assert field == "birth_date"
    assert "contradicts the ID card" in reason


def test_contradicting_gender_rejects() -> None:
    field, reason = error_of({"id_card": ID_CARD, "gender": "M"})
    assert field == "gender"
    assert "contradicts the ID card" in reason


def test_both_contradicting_reports_gender_first() -> None:
    # gender comes before birth_date in field order
    assert error_of({"id_card": ID_CARD, "gender": "M", "birth_date": "1950-01-01"})[0] == "gender"


# -- first_error ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "x" * 101, "mobile": "abc"}, "name"),
        ({"mobile": "abc", "email": "bad", "gender": "x"}, "mobile"),
        ({"mobiles": ["13812345678", "010 6552 9988"]}, "mobile"),
        ({"mobile": "13812345678", "id_card": "110105194912310021", "email": "bad"}, "id_card"),
        ({"mobile": "13812345678", "email": "bad", "gender": "x"}, "email"),
        ({"mobile": "13812345678", "gender": "x", "birth_date": "2024-02-30"}, "gender"),
        ({"mobile": "13812345678", "birth_date": "2024-02-30", "persona": "vip"}, "birth_date"),
        ({"mobile": "13812345678", "persona": "vip", "budget": "100-200万"}, "persona"),
        ({"mobile": "13812345678", "budget": "-1"}, "budget"),
        ({"mobile": "13812345678", "external_id": "e" * 129}, "external_id"),
        ({"mobile": "13812345678", "nickname": "小王"}, "nickname"),
    ],
)
def test_first_error_names_the_first_failing_field_in_field_order(
    data: dict[str, Any], field: str
) -> None:
    got, reason = error_of(data)
    assert got == field
    assert reason and "\n" not in reason
    assert not reason.startswith("Value error")


def test_future_birth_date_is_rejected_as_text_and_as_a_date() -> None:
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    for value in (tomorrow.isoformat(), tomorrow):
        field, reason = error_of({"mobile": "13812345678", "birth_date": value})
        assert field == "birth_date"
        assert "future" in reason


# -- CustomerUpdate ------------------------------------------------------------------------


def test_update_knows_which_fields_were_given() -> None:
    update = CustomerUpdate.model_validate({"name": "王伟", "add_mobiles": ["139-1234-5678"]})
    assert update.model_fields_set == {"name", "add_mobiles"}
    assert update.add_mobiles == ["+8613912345678"]
    assert CustomerUpdate.model_validate({}).model_fields_set == set()


def test_update_errors_use_the_input_field_names() -> None:
    assert error_of({"add_mobiles": ["abc"]}, CustomerUpdate)[0] == "mobile"
    assert error_of({"email": "nope"}, CustomerUpdate)[0] == "email"
    # updates add mobiles (add_mobiles); replacing the list is not an option
    assert "not permitted" in error_of({"mobiles": ["13812345678"]}, CustomerUpdate)[1]


def test_update_cannot_contradict_the_id_card(crm: CRM) -> None:
    customer = crm.customers.add({"id_card": ID_CARD}).customer
    with pytest.raises(InvalidInput) as info:
        crm.customers.update(customer.id, {"gender": "male"})
    assert info.value.field == "gender"
    with pytest.raises(InvalidInput) as info:
        crm.customers.update(customer.id, {"birth_date": "1950-01-01"})
    assert info.value.field == "birth_date"
    unchanged = crm.customers.get(customer.id)
    assert (unchanged.gender, unchanged.birth_date) == ("female", dt.date(1949, 12, 31))
    # a customer without an ID card can change both freely
    other = crm.customers.add({"mobile": "13812345678", "gender": "male"}).customer
    assert crm.customers.update(other.id, {"gender": "female"}).gender == "female"


def test_service_uses_the_configured_region(crm_factory: Any) -> None:
    hk = crm_factory(settings={"default_region": "HK"})
    added = hk.customers.add({"mobile": "5123 4567"}).customer
    assert added.mobiles == ["+85251234567"]
    assert [c.id for c in hk.customers.find(mobile="5123-4567")] == [added.id]
    updated = hk.customers.update(added.id, {"add_mobiles": ["6123 4567"]})
    assert updated.mobiles == ["+85251234567", "+85261234567"]
