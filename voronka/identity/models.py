from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from voronka.core import instances


class Department(models.Model):
    name = models.CharField(_("name"), max_length=200)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children",
                               verbose_name=_("parent department"))
    head = models.ForeignKey("identity.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="heads",
                             verbose_name=_("head"))
    sort = models.IntegerField(default=100)

    class Meta:
        ordering = ["sort", "name"]
        verbose_name = _("department")
        verbose_name_plural = _("departments")

    def __str__(self) -> str:
        return self.name

    def ancestors(self) -> list[Department]:
        chain, node, seen = [], self.parent, set()
        while node is not None and node.pk not in seen:
            seen.add(node.pk)
            chain.append(node)
            node = node.parent
        return chain

    def descendant_ids(self) -> set[int]:
        ids, frontier = {self.pk}, [self.pk]
        while frontier:
            children = list(Department.objects.filter(parent_id__in=frontier).values_list("id", flat=True))
            frontier = [c for c in children if c not in ids]
            ids.update(frontier)
        return ids


class User(AbstractUser):
    middle_name = models.CharField(_("middle name"), max_length=150, blank=True)
    department = models.ForeignKey(Department, null=True, blank=True, on_delete=models.SET_NULL, related_name="members",
                                   verbose_name=_("department"))
    position = models.CharField(_("position"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=60, blank=True)
    language = models.CharField(_("language"), max_length=10, blank=True)
    is_present = models.BooleanField(_("present at work"), default=True)
    totp_secret = models.CharField(_("second factor secret"), max_length=64, blank=True, editable=False)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def get_full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p).strip()

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    def head(self) -> User | None:
        """The head of this user's department (or of the nearest parent that has one)."""
        dept = self.department
        while dept is not None:
            if dept.head_id and dept.head_id != self.pk:
                return dept.head
            dept = dept.parent
        return None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiToken(models.Model):
    """A personal API token. Only its hash is stored; it acts with its user's rights, never more."""

    PREFIX_LEN = 10

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100, blank=True)
    prefix = models.CharField(max_length=PREFIX_LEN, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list, blank=True)  # [] = all rights of the user; or ["read"], ["read","write"]
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @classmethod
    def issue(cls, user: User, *, name: str = "", scopes: list[str] | None = None, expires_at=None) -> tuple[ApiToken, str]:
        prefix = secrets.token_hex(cls.PREFIX_LEN // 2)
        secret = secrets.token_urlsafe(32)
        raw = f"vk_{prefix}_{secret}"
        token = cls.objects.create(user=user, name=name, prefix=prefix, secret_hash=_hash(raw), scopes=scopes or [],
                                   expires_at=expires_at)
        return token, raw

    @classmethod
    def authenticate(cls, raw: str) -> ApiToken | None:
        parts = (raw or "").split("_")
        if len(parts) < 3 or parts[0] != "vk":
            return None
        token = _token_with_user(parts[1])
        if token is None or not hmac.compare_digest(token.secret_hash, _hash(raw)):
            return None
        now = timezone.now()
        if token.revoked_at or (token.expires_at and token.expires_at <= now) or not token.user.is_active:
            return None
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            cls.objects.filter(pk=token.pk).update(last_used_at=now)  # throttled: not a write per request
            _used(token.prefix, now)
        return token


def _token_query():
    from voronka.core.prepared import Prepared

    token_fields = [f.name for f in ApiToken._meta.concrete_fields]
    user_fields = [f.name for f in User._meta.concrete_fields]
    return Prepared(lambda prefix: ApiToken.objects.filter(prefix=prefix).values_list(
        *token_fields, *(f"user__{n}" for n in user_fields)), ["\x00prefix"], bound=True)


_TOKEN_QUERY = None
# The row of each token seen (token and user columns), per process, keyed by prefix and kept while the
# «tokens» and «rights» versions stay the same: every API request checks them anyway (one read shared with the
# settings and the rights), so a cached token costs no query. Revoking or changing a token, and any change of a
# user, bumps «tokens» (``_tokens_changed``; actions that change users bump «rights»), so the next request of any
# process sees it. The TTL is a safety net for writes that bypass the ORM (raw SQL).
TOKEN_TTL = 60.0
_token_rows: dict[str, tuple[tuple[int, int], float, tuple]] = {}


def _token_with_user(prefix: str) -> ApiToken | None:
    """The token with its user: from this process's cache, or in one query compiled once per process."""
    from voronka.core import config_cache

    global _TOKEN_QUERY
    current = config_cache.versions()
    stamp = (current[config_cache.TOKENS], current[config_cache.RIGHTS])
    hit = _token_rows.get(prefix)
    moment = time.monotonic()
    if hit is not None and hit[0] == stamp and moment - hit[1] < TOKEN_TTL:
        row = hit[2]
    else:
        if _TOKEN_QUERY is None:
            _TOKEN_QUERY = _token_query()
        rows = _TOKEN_QUERY.rows(prefix)
        if not rows:
            _token_rows.pop(prefix, None)
            return None  # unknown prefixes are never kept: the cache holds real tokens only
        row = rows[0]
        _token_rows[prefix] = (stamp, moment, row)
    # fresh instances per request: nothing a request sets on its user leaks into the next one
    token_names, user_names = _attnames()
    token = instances.build(ApiToken, token_names, row[:len(token_names)], db="default")
    token.user = instances.build(User, user_names, row[len(token_names):], db="default")
    return token


_ATTNAMES: list[list[str]] = []


def _attnames() -> list[list[str]]:
    if not _ATTNAMES:
        _ATTNAMES[:] = [[f.attname for f in ApiToken._meta.concrete_fields],
                        [f.attname for f in User._meta.concrete_fields]]
    return _ATTNAMES


def _used(prefix: str, moment) -> None:
    """Keep the cached row's ``last_used_at`` in step with the throttled update."""
    hit = _token_rows.get(prefix)
    if hit is not None:
        index = _attnames()[0].index("last_used_at")
        row = list(hit[2])
        row[index] = moment
        _token_rows[prefix] = (hit[0], hit[1], tuple(row))


def forget_tokens() -> None:
    _token_rows.clear()


def tokens_changed(**kwargs) -> None:
    """A token or a user changed: every process reloads the tokens it keeps (bumps «tokens»)."""
    from voronka.core import config_cache

    update_fields = kwargs.get("update_fields")
    if update_fields and set(update_fields) <= {"last_login", "last_used_at"}:
        return  # bookkeeping of sign-ins and token use changes nothing a token check reads
    config_cache.bump(config_cache.TOKENS)
    forget_tokens()


class Scope(models.IntegerChoices):
    """How far a right reaches. Each scope includes the ones before it."""

    NONE = 0, _("None")
    OWN = 10, _("Own")
    DEPARTMENT = 20, _("Own and department")
    SUBDEPARTMENTS = 30, _("Own, department and sub-departments")
    OPEN = 40, _("All open")
    ALL = 50, _("All")


class Role(models.Model):
    """A named set of rights. Users get roles directly or through their department."""

    SETTINGS_AREAS = ("pipelines", "fields", "robots", "forms", "users", "roles", "integrations", "recycle_bin")

    code = models.SlugField(_("code"), max_length=60, unique=True)
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    settings_rights = models.JSONField(_("settings rights"), default=list, blank=True)  # subset of SETTINGS_AREAS
    menu_hidden = models.JSONField(_("menu items hidden"), default=list, blank=True)  # e.g. ["deals", "companies"]
    is_preset = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("role")
        verbose_name_plural = _("roles")

    def __str__(self) -> str:
        return self.name


class RolePermission(models.Model):
    class Perm(models.TextChoices):
        READ = "read", _("Read")
        ADD = "add", _("Add")
        UPDATE = "update", _("Change")
        DELETE = "delete", _("Delete")
        EXPORT = "export", _("Export")
        IMPORT = "import", _("Import")

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="permissions")
    entity_type_id = models.PositiveIntegerField(_("entity type"))
    pipeline = models.ForeignKey("pipelines.Pipeline", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                 verbose_name=_("pipeline (empty: every pipeline)"))
    perm = models.CharField(_("right"), max_length=10, choices=Perm.choices)
    scope = models.PositiveSmallIntegerField(_("scope"), choices=Scope.choices, default=Scope.NONE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["role", "entity_type_id", "pipeline", "perm"],
                                               name="role_perm_uniq")]
        verbose_name = _("role right")
        verbose_name_plural = _("role rights")

    def __str__(self) -> str:
        return f"{self.role}: {self.entity_type_id}/{self.pipeline_id or '*'} {self.perm}={self.scope}"


class RoleAssignment(models.Model):
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE, related_name="role_assignments")
    department = models.ForeignKey(Department, null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="role_assignments")
    with_subdepartments = models.BooleanField(_("also sub-departments"), default=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(user__isnull=False) | models.Q(department__isnull=False),
                                   name="role_assignment_target"),
        ]
        verbose_name = _("role assignment")
        verbose_name_plural = _("role assignments")

    def __str__(self) -> str:
        return f"{self.role} → {self.user or self.department}"


class LoginAttempt(models.Model):
    """Every login attempt, for rate limiting and the audit of sign-ins."""

    username = models.CharField(max_length=150, db_index=True)
    ip = models.CharField(max_length=45, blank=True, db_index=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    success = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.username}@{self.ip} {'ok' if self.success else 'failed'}"
