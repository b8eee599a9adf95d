"""``voronka token create|list|revoke``: personal API tokens for scripts."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

SCOPES = ("read", "write", "export", "settings")  # what identity.actions.issue_token accepts


def _actor():
    from voronka.core.actor import Actor

    return Actor.system("cli:token", entry_point="cli")


def _error(exc) -> CommandError:
    details = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.fields.items())
    return CommandError(f"{exc.message} ({details})" if details else exc.message)


class Command(BaseCommand):
    help = (
        "Manage personal API tokens. `token create --user LOGIN` prints a new token once (only its hash is "
        "stored); `token list [--user LOGIN]` shows tokens by prefix; `token revoke PREFIX` disables one. "
        "Issuing and revoking go through the identity actions and are audited."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", metavar="{create,list,revoke}")
        sub.required = True
        create = sub.add_parser("create", help="issue a token and print it once")
        create.add_argument("--user", required=True, help="login of the user the token acts for")
        create.add_argument("--name", default="", help="what the token is for, e.g. «1C exchange»")
        create.add_argument("--scopes", default="",
                            help="comma-separated: read, write, export, settings (default: all rights of the user)")
        create.add_argument("--expires-days", type=int, default=None, help="valid for this many days (default: no expiry)")
        listing = sub.add_parser("list", help="list tokens (never their secrets)")
        listing.add_argument("--user", default=None, help="only the tokens of this login")
        revoke = sub.add_parser("revoke", help="revoke a token by its prefix")
        revoke.add_argument("prefix", help="the token's prefix (as `token list` shows it) or the whole token")

    def handle(self, *args, **options):
        action = options["action"]
        if action == "create":
            return self.create(options)
        if action == "list":
            return self.list(options)
        return self.revoke(options)

    # ---- create ----

    def _user(self, login: str):
        from voronka.identity.models import User

        user = User.objects.filter(username=login).first()
        if user is None:
            raise CommandError(f"No user with login «{login}».")
        return user

    def create(self, options) -> None:
        from voronka.identity.models import ApiToken

        user = self._user(options["user"])
        if not user.is_active:
            raise CommandError(f"User «{user.username}» is not active; a token of theirs would not work.")
        scopes = [s.strip().lower() for s in (options["scopes"] or "").split(",") if s.strip()]
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown:
            raise CommandError(f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(SCOPES)}.")
        scopes = [s for s in SCOPES if s in scopes]
        expires_at = None
        days = options["expires_days"]
        if days is not None:
            if days < 1:
                raise CommandError("--expires-days must be at least 1.")
            expires_at = timezone.now() + dt.timedelta(days=days)
        if len(options["name"]) > ApiToken._meta.get_field("name").max_length:
            raise CommandError("--name is too long (at most 100 characters).")
        from voronka.core.errors import ActionError
        from voronka.identity.actions import issue_token

        try:
            token, raw = issue_token(_actor(), user_id=user.pk, name=options["name"], scopes=scopes,
                                     expires_at=expires_at)
        except ActionError as exc:
            raise _error(exc) from None
        # the raw token alone on stdout, so that scripts can do TOKEN=$(voronka token create --user …)
        self.stdout.write(raw)
        self.stderr.write(
            f"Token {token.prefix} for {user.username} created (scopes: {', '.join(scopes) or 'all rights'}; "
            f"expires: {_when(expires_at) if expires_at else 'never'}). It is shown only once; keep it secret.",
            style_func=lambda x: x)

    # ---- list ----

    def list(self, options) -> None:
        from voronka.identity.models import ApiToken

        qs = ApiToken.objects.select_related("user").order_by("user__username", "created_at", "id")
        if options["user"]:
            qs = qs.filter(user=self._user(options["user"]))
        now = timezone.now()
        rows = [("PREFIX", "USER", "NAME", "SCOPES", "CREATED", "EXPIRES", "LAST USED", "STATUS")]
        for t in qs:
            status = "revoked" if t.revoked_at else ("expired" if t.expires_at and t.expires_at <= now else "active")
            rows.append((t.prefix, t.user.username, t.name or "-", ",".join(t.scopes or []) or "all",
                         _when(t.created_at), _when(t.expires_at), _when(t.last_used_at), status))
        if len(rows) == 1:
            self.stdout.write("No tokens.")
            return
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            self.stdout.write("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())

    # ---- revoke ----

    def revoke(self, options) -> None:
        from voronka.identity.models import ApiToken

        given = options["prefix"].strip()
        parts = given.split("_")
        prefix = parts[1] if len(parts) >= 2 and parts[0] == "vk" else given
        token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
        if token is None:
            raise CommandError(f"No token with prefix «{prefix}». See `voronka token list`.")
        if token.revoked_at:
            self.stdout.write(f"Token {token.prefix} of {token.user.username} was already revoked "
                              f"on {_when(token.revoked_at)}.")
            return
        from voronka.core.errors import ActionError
        from voronka.identity.actions import revoke_token

        try:
            revoke_token(_actor(), token.pk)
        except ActionError as exc:
            raise _error(exc) from None
        self.stdout.write(f"Token {token.prefix} of {token.user.username} revoked.")


def _when(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else "-"
