"""The fixture company for analytics: a small, fully known history written through the real actions, with the
clock held at chosen instants, so that every figure of every report can be computed by hand (see the tests).

Times are UTC; the head looks from Moscow (UTC+3), so a lead created on 31 January at 22:30 UTC is a
February lead for him and a January lead for a viewer in UTC.

People: admin (superuser), head (head of sales, sees everything), m1 and m2 (sales), m3 (production),
own (m1 with a role that reads only his own leads and deals).

    L1 m1 site   10 Jan 09:00  comment 09:30, assigned 10:00, qualified 12:00, converted 12 Jan 09:00 → D1
    D1 m1 sales  100 000       invoice 15 Jan, won 20 Jan 09:00 → production P1 (m3, 30 000) made 21 Jan and
                               linked to it (voronka.links), shipped 25 Jan
    L2 m1 site   31 Jan 22:30  junk 1 Feb 06:00
    D8 m1 sales   70 000       made 20 Jan 09:00, invoice 21 Jan 09:00, expected to close 25 Feb (open)
    D2 m2 sales   20 000       made 3 Feb 09:00, lost 4 Feb 09:00, reason «Дорого»
    L3 m2 phone  5 Feb 10:00   assigned 10:10, qualified 11:00, back to assigned 12:00, qualified 6 Feb 10:00,
                               converted 7 Feb 10:00 → D3
    D3 m2 sales   50 000       invoice 8 Feb 10:00, lost 10 Feb 10:00, re-opened to invoice 11 Feb 10:00,
                               won 15 Feb 10:00 → complaint C3 (m3, 5 000, company «Ромашка») made 16 Feb by a
                               robot (a «linked» timeline entry), rejected 20 Feb
    L4 m1 phone  10 Feb 08:00  L5 (m1 site, 10 Feb 09:00) merged into it 10 Feb 10:00; stays new
    L6 m1 site   12 Feb 08:00  deleted 12 Feb 09:00
    L7 m2 site   28 Feb 21:30  (1 March in Moscow)
    tasks: m1 «call back» due 20 Feb, open (overdue); m2 «send offer» due 18 Feb, done
    contacts: K1 (L1's; born 10 Mar 1990, male, Москва), K3 (L3's; born 6 Mar 2000, female, Казань),
              K9 (no deals, Казань)
    now: 5 March 2026 12:00 UTC
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.db import models
from django.utils import timezone

UTC = datetime.UTC
NOW = datetime.datetime(2026, 3, 5, 12, 0, tzinfo=UTC)


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime.datetime:
    return datetime.datetime(2026, month, day, hour, minute, tzinfo=UTC)


class Clock:
    """Holds ``timezone.now()`` (and every model default that calls it) at a chosen instant."""

    def __init__(self, monkeypatch):
        self.value = NOW
        real = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: self.value)
        from django.apps import apps

        for model in apps.get_models():
            for f in model._meta.concrete_fields:
                if isinstance(f, models.DateTimeField) and f.default is real:
                    monkeypatch.setattr(f, "_get_default", lambda: self.value)

    def set(self, value: datetime.datetime) -> None:
        self.value = value


@dataclass
class Company:
    users: dict = field(default_factory=dict)
    actors: dict = field(default_factory=dict)
    leads: dict = field(default_factory=dict)
    deals: dict = field(default_factory=dict)
    stages: dict = field(default_factory=dict)
    pipelines: dict = field(default_factory=dict)
    contacts: dict = field(default_factory=dict)


def build(monkeypatch) -> Company:
    from voronka.activities.actions import add_comment, complete_task, create_task
    from voronka.core import history
    from voronka.core.actor import Actor
    from voronka.customfields.actions import define_field
    from voronka.deals.actions import create_deal, move_deal
    from voronka.identity.models import Department, Role, RoleAssignment, RolePermission, Scope, User
    from voronka.identity.permissions import rights_changed
    from voronka.intake.duplicates import merge_records
    from voronka.leads.actions import convert_lead, create_lead, delete_lead, move_lead
    from voronka.links.actions import link
    from voronka.parties.actions import create_company, create_contact, update_contact
    from voronka.pipelines.actions import create_pipeline

    clock = Clock(monkeypatch)
    c = Company()
    clock.set(at(1, 1))
    admin = User.objects.create_superuser("admin", "admin@example.ru", "admin-pass", first_name="Анна",
                                          last_name="Админова", time_zone="Europe/Moscow")
    sales = Department.objects.create(name="Продажи")
    production = Department.objects.create(name="Производство")
    mk = {}
    for login, first, dept in (("head", "Глеб", sales), ("m1", "Мария", sales), ("m2", "Николай", sales),
                               ("m3", "Олег", production), ("own", "Ося", sales)):
        mk[login] = User.objects.create_user(login, f"{login}@example.ru", f"{login}-pass", first_name=first,
                                             last_name="Тестов", department=dept, time_zone="Europe/Moscow")
    RoleAssignment.objects.create(role=Role.objects.get(code="head_of_sales"), user=mk["head"])
    for login in ("m1", "m2"):
        RoleAssignment.objects.create(role=Role.objects.get(code="sales_manager"), user=mk[login])
    own_role = Role.objects.create(code="own_only", name="Own only")
    for type_id in (1, 2, 3, 4):
        RolePermission.objects.create(role=own_role, entity_type_id=type_id, perm="read", scope=Scope.OWN)
    RoleAssignment.objects.create(role=own_role, user=mk["own"])
    rights_changed()
    c.users = {"admin": admin, **mk}
    c.actors = {k: Actor.for_user(u, "test") for k, u in c.users.items()}
    a = c.actors["admin"]
    leads = create_pipeline(a, entity_type_id=1, name="Лиды", code="leads", stages=[
        {"name": "Не обработан", "code": "new"}, {"name": "Назначен", "code": "assigned"},
        {"name": "Квалифицирован", "code": "qualified"}, {"name": "Сконвертирован", "code": "converted",
                                                           "semantics": "success"},
        {"name": "Некачественный", "code": "junk", "semantics": "failure"}])
    sales_p = create_pipeline(a, entity_type_id=2, name="Продажи", code="sales", stages=[
        {"name": "Новая", "code": "new"}, {"name": "Счёт", "code": "invoice"},
        {"name": "Оплачена", "code": "won", "semantics": "success"},
        {"name": "Проиграна", "code": "lost", "semantics": "failure"}])
    prod_p = create_pipeline(a, entity_type_id=2, name="Производство", code="production", stages=[
        {"name": "Запланировано", "code": "planned"}, {"name": "Отгружено", "code": "shipped", "semantics": "success"},
        {"name": "Брак", "code": "failed", "semantics": "failure"}])
    compl_p = create_pipeline(a, entity_type_id=2, name="Рекламации", code="complaints", stages=[
        {"name": "Новая", "code": "new"}, {"name": "Решена", "code": "solved", "semantics": "success"},
        {"name": "Отклонена", "code": "rejected", "semantics": "failure"}])
    c.pipelines = {"leads": leads, "sales": sales_p, "production": prod_p, "complaints": compl_p}
    from voronka.pipelines.models import Stage

    for p in c.pipelines.values():
        for s in Stage.objects.filter(pipeline=p):
            c.stages[f"{p.code}.{s.code}"] = s
    define_field(a, entity_type_id=2, code="uf_reason", label="Причина отказа", kind="string")
    m1, m2 = c.actors["m1"], c.actors["m2"]
    u = c.users

    def lead(name, who, source, when, **extra):
        clock.set(when)
        obj = create_lead(a, title=name, responsible=u[who].pk, source=source, pipeline=leads.pk,
                          phones=[f"+7916{len(c.leads):07d}"], **extra)
        c.leads[name] = obj
        return obj

    def move(kind, obj, stage, when, actor=a, **kw):
        clock.set(when)
        return (move_lead if kind == "lead" else move_deal)(actor, obj.pk, stage=c.stages[stage].pk, **kw)

    def linked(source, name, pipeline, who, amount, when, *, by_robot=False, **extra):
        clock.set(when)
        d = create_deal(a, title=name, pipeline=c.pipelines[pipeline].pk, responsible=u[who].pk, opportunity=amount,
                        **extra)
        if by_robot:  # what the robot «create a linked record» writes
            history.entry(Actor.system("robot:1"), 2, source.pk, "linked", text=name,
                          data={"entity_type_id": 2, "entity_id": d.pk}, also=[(2, d.pk)])
        else:
            link(a, (2, source.pk), (2, d.pk), role="production")
        c.deals[name] = d
        return d

    # L1 → D1 → P1
    l1 = lead("L1", "m1", "site", at(1, 10, 9))
    clock.set(at(1, 10, 9, 30))
    add_comment(m1, entity_type_id=1, entity_id=l1.pk, text="Позвонила, ждёт КП")
    move("lead", l1, "leads.assigned", at(1, 10, 10), m1)
    move("lead", l1, "leads.qualified", at(1, 10, 12), m1)
    clock.set(at(1, 12, 9))
    res = convert_lead(m1, l1.pk, deal_pipeline=sales_p.pk, deal_fields={"opportunity": "100000"})
    d1 = c.deals["D1"] = res["deal"]
    c.contacts["K1"] = res["contact"]
    move("deal", d1, "sales.invoice", at(1, 15, 9), m1)
    move("deal", d1, "sales.won", at(1, 20, 9), m1)
    p1 = linked(d1, "P1", "production", "m3", 30000, at(1, 21, 9))
    move("deal", p1, "production.shipped", at(1, 25, 9))
    # D8: open
    clock.set(at(1, 20, 9))
    d8 = c.deals["D8"] = create_deal(a, title="D8", pipeline=sales_p.pk, responsible=u["m1"].pk, opportunity=70000,
                                     close_date="2026-02-25")
    move("deal", d8, "sales.invoice", at(1, 21, 9), m1)
    # L2: junk, at the month border
    l2 = lead("L2", "m1", "site", at(1, 31, 22, 30))
    move("lead", l2, "leads.junk", at(2, 1, 6), m1)
    # D2: lost with a reason
    clock.set(at(2, 3, 9))
    d2 = c.deals["D2"] = create_deal(a, title="D2", pipeline=sales_p.pk, responsible=u["m2"].pk, opportunity=20000,
                                     custom={"uf_reason": "Дорого"})
    move("deal", d2, "sales.lost", at(2, 4, 9), m2)
    # L3: back and forth, converted, the deal lost and re-opened, won, then a rejected complaint
    l3 = lead("L3", "m2", "phone", at(2, 5, 10))
    move("lead", l3, "leads.assigned", at(2, 5, 10, 10), m2)
    move("lead", l3, "leads.qualified", at(2, 5, 11), m2)
    move("lead", l3, "leads.assigned", at(2, 5, 12), m2)
    move("lead", l3, "leads.qualified", at(2, 6, 10), m2)
    clock.set(at(2, 7, 10))
    romashka = create_company(a, name="Ромашка", responsible=u["m2"].pk)
    res = convert_lead(m2, l3.pk, deal_pipeline=sales_p.pk, deal_fields={"opportunity": "50000"})
    d3 = c.deals["D3"] = res["deal"]
    c.contacts["K3"] = res["contact"]
    move("deal", d3, "sales.invoice", at(2, 8, 10), m2)
    move("deal", d3, "sales.lost", at(2, 10, 10), m2)
    move("deal", d3, "sales.invoice", at(2, 11, 10), m2)
    move("deal", d3, "sales.won", at(2, 15, 10), m2)
    c3 = linked(d3, "C3", "complaints", "m3", 5000, at(2, 16, 9), by_robot=True, company=romashka.pk)
    move("deal", c3, "complaints.rejected", at(2, 20, 9))
    # L4 + L5 merged; L6 deleted; L7 at the next month border
    l4 = lead("L4", "m1", "phone", at(2, 10, 8))
    l5 = lead("L5", "m1", "site", at(2, 10, 9))
    clock.set(at(2, 10, 10))
    merge_records(m1, 1, l4.pk, [l5.pk])
    lead("L6", "m1", "site", at(2, 12, 8))
    clock.set(at(2, 12, 9))
    delete_lead(a, c.leads["L6"].pk)
    lead("L7", "m2", "site", at(2, 28, 21, 30))
    # tasks
    clock.set(at(2, 1, 9))
    create_task(a, title="call back", responsible=u["m1"].pk, deadline="2026-02-20T09:00:00+00:00",
                entity_type_id=2, entity_id=d8.pk)
    t2 = create_task(a, title="send offer", responsible=u["m2"].pk, deadline="2026-02-18T09:00:00+00:00")
    clock.set(at(2, 17, 9))
    complete_task(m2, t2.pk, result="sent")
    # contacts for the portrait
    clock.set(at(2, 25, 9))
    update_contact(a, c.contacts["K1"].pk, birthday="1990-03-10", gender="m", city="Москва")
    update_contact(a, c.contacts["K3"].pk, birthday="2000-03-06", gender="f", city="Казань")
    c.contacts["K9"] = create_contact(a, first_name="Кирилл", city="Казань", responsible=u["m2"].pk)
    clock.set(NOW)
    for d in c.deals.values():
        d.refresh_from_db()
    return c
