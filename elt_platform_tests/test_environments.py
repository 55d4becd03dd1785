import pytest

from elt_platform.environments import (
    EnvironmentKind,
    environment_from_name,
    require_buildable,
    validate_environment_name,
    validate_sandbox_name,
)
from elt_platform.errors import InvalidEnvironmentName, WriteNotAllowed


@pytest.mark.parametrize("name", ["prod", "staging", "alice", "alice_exp2", "a" * 40])
def test_valid_names_are_accepted(name):
    assert validate_environment_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Alice",
        "1abc",
        "_x",
        "a b",
        "a;drop table x",
        "a'b",
        'a"b',
        "..",
        "../prod",
        "a/b",
        "a.b",
        "a-b",
        "café",
        "naïve",
        "ｐｒｏｄ",
        "a" * 41,
        " prod",
        "prod\n",
        "a\x00b",
    ],
)
def test_invalid_names_are_rejected_with_a_clear_message(name):
    with pytest.raises(InvalidEnvironmentName) as err:
        validate_environment_name(name)
    message = str(err.value)
    assert "environment name" in message
    assert "lowercase identifier" in message  # the hint says how to fix it


def test_non_string_name_is_rejected():
    with pytest.raises(InvalidEnvironmentName):
        validate_environment_name(None)


def test_core_and_reserved_names_cannot_be_sandboxes():
    for name in ["prod", "staging", "main", "raw"]:
        with pytest.raises(InvalidEnvironmentName, match="reserved"):
            validate_sandbox_name(name)
    assert validate_sandbox_name("alice") == "alice"


def test_kinds_and_write_rules():
    assert environment_from_name("prod").kind is EnvironmentKind.PROD
    assert environment_from_name("staging").kind is EnvironmentKind.STAGING
    assert environment_from_name("bob").kind is EnvironmentKind.SANDBOX
    with pytest.raises(WriteNotAllowed):
        require_buildable(environment_from_name("prod"))
    assert require_buildable(environment_from_name("bob")).name == "bob"
