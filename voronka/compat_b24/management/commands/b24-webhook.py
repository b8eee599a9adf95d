"""``voronka b24-webhook create|list|revoke``: incoming webhooks of the Bitrix24-compatible API."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone


def _actor():
    from voronka.core.actor import Actor

    return Actor.system("cli:b24-webhook", entry_point="cli")


class Command(BaseCommand):
    help = ("Incoming webhooks for Bitrix24 integrations. `b24-webhook create --user LOGIN [--scopes crm,user,task]` "
            "prints the webhook URL once; `list` shows webhooks; `revoke ID` disables one.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", metavar="{create,list,revoke}")
        sub.required = True
        create = sub.add_parser("create", help="create a webhook and print its URL")
        create.add_argument("--user", required=True, help="login of the user the calls act for")
        create.add_argument("--scopes", default="crm", help="comma-separated: crm, user, task (default: crm)")
        create.add_argument("--name", default="", help="what it is for, e.g. «site forms»")
        create.add_argument("--base-url", default="", help="how clients reach Voronka, e.g. https://crm.example.ru "
                            "(default: VORONKA_BASE_URL or http://127.0.0.1:8000)")
        listing = sub.add_parser("list", help="list webhooks (never their secrets)")
        listing.add_argument("--user", default=None)
        revoke = sub.add_parser("revoke", help="revoke a webhook by its id")
        revoke.add_argument("id", type=int)

    def handle(self, *args, **options):
        from voronka.core.errors import ActionError

        try:
            return getattr(self, options["action"])(options)
        except ActionError as exc:
            details = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.fields.items())
            raise CommandError(f"{exc.message} ({details})" if details else exc.message) from None

    def _user(self, login: str):
        from voronka.identity.models import User

        user = User.objects.filter(username=login).first()
        if user is None:
            raise CommandError(f"No user with login «{login}».")
        return user

    def create(self, options) -> None:
        import os

        from voronka.compat_b24.actions import create_webhook

        user = self._user(options["user"])
        scopes = [s for s in options["scopes"].split(",") if s.strip()]
        hook, secret = create_webhook(_actor(), user_id=user.pk, name=options["name"], scopes=scopes)
        base = (options["base_url"] or os.environ.get("VORONKA_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")
        self.stdout.write(f"{base}/rest/{user.pk}/{secret}/")
        self.stderr.write(f"Webhook #{hook.pk} for {user.username} (scopes: {', '.join(hook.scopes)}). "
                          "The URL is shown only once; keep it secret.", style_func=lambda x: x)

    def list(self, options) -> None:
        from voronka.compat_b24.models import Webhook

        qs = Webhook.objects.select_related("user").order_by("id")
        if options["user"]:
            qs = qs.filter(user=self._user(options["user"]))
        rows = [("ID", "USER", "NAME", "SCOPES", "CREATED", "LAST USED", "STATUS")]
        for h in qs:
            rows.append((str(h.pk), h.user.username, h.name or "-", ",".join(h.scopes), _when(h.created_at),
                         _when(h.last_used_at), "active" if h.is_active else "revoked"))
        if len(rows) == 1:
            self.stdout.write("No webhooks.")
            return
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            self.stdout.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())

    def revoke(self, options) -> None:
        from voronka.compat_b24.actions import revoke_webhook

        hook = revoke_webhook(_actor(), options["id"])
        self.stdout.write(f"Webhook #{hook.pk} of {hook.user.username} revoked.")


def _when(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else "-"
