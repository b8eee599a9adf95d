"""The demo company's smart process and custom list (``voronka demo``, before any record exists):

- seed 002: «Производственные заказы», a smart process linked to the deal (the production flow's robots are
  added by the automation demo: a deal entering the Production pipeline creates an order, the head of sales
  approves its launch, the sales manager follows it, a finished order moves the deal on);
- seed 004: «Лицензии», a custom list (key, product, seats, issued, expires, contact, company).
"""

from __future__ import annotations

from voronka.core.actor import Actor

PRODUCTION_CODE = "production-orders"
LICENCES_CODE = "licences"

PRODUCTION_STAGES = [
    {"name": "Согласование запуска", "code": "approval", "color": "#f59e0b"},
    {"name": "В очереди", "code": "queued", "color": "#38bdf8"},
    {"name": "Раскрой и сварка", "code": "cutting", "color": "#6366f1"},
    {"name": "Покраска", "code": "painting", "color": "#a855f7"},
    {"name": "Изготовлено", "code": "done", "semantics": "success", "color": "#22c55e"},
    {"name": "Запуск отклонён", "code": "rejected", "semantics": "failure", "color": "#78716c"},
]
LICENCE_FIELDS = (("uf_key", "Ключ", "string"), ("uf_product", "Продукт", "string"), ("uf_seats", "Мест", "integer"),
                  ("uf_issued", "Выдана", "date"), ("uf_expires", "Действует до", "date"))
LICENCES = (
    ("Диагностический сканер — мастерская «Автодок»", "DX-4F7A-91C2-7B3E", "Сканер Pro", 3, "2025-09-01", "2026-08-31"),
    ("Каталог запчастей — ИП Смирнов", "CT-22B8-0D41-AA19", "Каталог онлайн", 1, "2025-11-15", "2026-11-14"),
    ("Сканер — ООО «ТракСервис»", "DX-8810-3C5D-F2E0", "Сканер Pro", 10, "2026-01-10", "2027-01-09"),
    ("Каталог запчастей — ООО «Агроснаб»", "CT-5E61-77AF-0B93", "Каталог онлайн", 5, "2026-02-01", "2027-01-31"),
    ("Учёт склада — ООО «Север-Дизель»", "WH-1A2B-3C4D-5E6F", "Склад", 2, "2026-03-20", "2026-12-31"),
)


def _grant(admin: Actor, role_code: str, rights: list[dict]) -> None:
    """Add rights to a preset role (keeping what it has)."""
    from voronka.identity.actions import set_role_rights
    from voronka.identity.models import Role

    role = Role.objects.filter(code=role_code).first()
    if role is None:
        return
    current = [{"entity_type_id": p.entity_type_id, "pipeline": p.pipeline_id, "perm": p.perm, "scope": p.scope}
               for p in role.permissions.all()]
    set_role_rights(admin, role.pk, rights=current + rights)


def install(admin: Actor, pipelines: dict) -> None:
    from voronka.customfields.actions import define_field

    from . import actions

    production = actions.create_type(admin, name="Производственный заказ", name_plural="Производственные заказы",
                                     code=PRODUCTION_CODE, links=["contact", "company"],
                                     pipeline_name="Производство", stages=PRODUCTION_STAGES)
    define_field(admin, entity_type_id=production.id, code="uf_product", label="Изделие", kind="string")
    define_field(admin, entity_type_id=production.id, code="uf_quantity", label="Количество, шт.", kind="integer")
    define_field(admin, entity_type_id=production.id, code="uf_due_date", label="Срок изготовления", kind="date")
    define_field(admin, entity_type_id=production.id, code="uf_spec", label="Размеры и комплектация", kind="text")
    define_field(admin, entity_type_id=production.id, code="uf_delivery_date", label="Дата отгрузки", kind="date")
    every = ("read", "add", "update")
    _grant(admin, "production_master", [{"entity_type_id": production.id, "pipeline": None, "perm": p,
                                         "scope": "all"} for p in every])
    _grant(admin, "head_of_sales", [{"entity_type_id": production.id, "pipeline": None, "perm": "read",
                                     "scope": "all"}])

    licences = actions.create_type(admin, kind="list", name="Лицензия", name_plural="Лицензии", code=LICENCES_CODE,
                                   links=["contact", "company"])
    for code, label, kind in LICENCE_FIELDS:
        define_field(admin, entity_type_id=licences.id, code=code, label=label, kind=kind)
    _grant(admin, "head_of_sales", [{"entity_type_id": licences.id, "pipeline": None, "perm": p, "scope": "all"}
                                    for p in ("read", "add", "update", "export", "import")])
    _grant(admin, "sales_manager", [{"entity_type_id": licences.id, "pipeline": None, "perm": "read",
                                     "scope": "all"}])
    _grant(admin, "support", [{"entity_type_id": licences.id, "pipeline": None, "perm": "read", "scope": "all"}])
    actions.create_rows(admin, licences.id, [
        {"title": title, "custom": {"uf_key": key, "uf_product": product, "uf_seats": seats, "uf_issued": issued,
                                    "uf_expires": expires}}
        for title, key, product, seats, issued, expires in LICENCES], atomic_all=True)
