import string

import pytest

from comms.web.texts import LANGUAGES, TEXTS, language, names_list


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_every_text_exists_in_both_languages_with_the_same_placeholders(key):
    assert set(TEXTS[key]) == set(LANGUAGES)
    fields = [{f for _, f, _, _ in string.Formatter().parse(TEXTS[key][lang]) if f} for lang in LANGUAGES]
    assert fields[0] == fields[1]
    assert all(TEXTS[key][lang].strip() for lang in LANGUAGES)


def test_bokmal_is_the_default_and_english_only_when_asked():
    assert [language(v) for v in (None, "", "nb", "en", "de", "EN")] == ["nb", "nb", "nb", "en", "nb", "nb"]


def test_names_are_listed_as_people_write_them():
    assert names_list(["A", "B", "C"], "nb") == "«A», «B» og «C»"
    assert names_list(["A", "B"], "en") == "“A” and “B”"
