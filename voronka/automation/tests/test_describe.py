"""How the time-limit chain is shown to administrators: people by name, not as «user:login» tokens."""

from django.utils import translation

from voronka.automation.selectors import describe_recipient
from voronka.identity.models import Role, User


def test_recipients_are_named(db):
    User.objects.create_user("petrova", first_name="Анна", last_name="Петрова")
    Role.objects.create(code="heads", name="Руководители")
    with translation.override("en"):
        assert describe_recipient("head") == "the head"
        assert describe_recipient("responsible") == "the responsible"
        assert describe_recipient("user:petrova") == "Анна Петрова"
        assert describe_recipient("role:heads") == "role «Руководители»"
        assert describe_recipient("user:nobody") == "user:nobody"  # a removed login stays visible as written
