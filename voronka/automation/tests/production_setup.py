"""A small company with the production flow of seed 002 and its «form before the move» (F23), for the API and
browser tests: a deal entering the Production pipeline must carry the order's data (the entry stage's required
custom fields, which the board and the card ask for in a small form), and a robot creates the linked order
with those values (the field mapping of «create linked item»)."""

from __future__ import annotations

FIELDS = (("uf_product", "Product", "string"), ("uf_quantity", "Quantity", "integer"),
          ("uf_due_date", "Due date", "date"), ("uf_notes", "Production notes", "text"))


def production_company(admin) -> dict:
    from voronka.automation.actions import create_robot
    from voronka.customfields.actions import define_field
    from voronka.items.actions import create_type
    from voronka.pipelines.actions import create_pipeline, update_stage

    sales = create_pipeline(admin, entity_type_id=2, name="Sales", code="sales", is_default=True, stages=[
        {"name": "New", "code": "new"}, {"name": "Contract", "code": "contract"},
        {"name": "Won", "code": "won", "semantics": "success"}])
    production = create_pipeline(admin, entity_type_id=2, name="Production", code="production", stages=[
        {"name": "Order placed", "code": "placed"},
        {"name": "Shipped", "code": "shipped", "semantics": "success"}])
    orders = create_type(admin, name="Production order", name_plural="Production orders", code="orders")
    for code, label, kind in FIELDS:
        define_field(admin, entity_type_id=2, code=code, label=label, kind=kind)
        define_field(admin, entity_type_id=orders.id, code=code, label=label, kind=kind)
    placed = update_stage(admin, production.stages.get(code="placed").pk,
                          required_fields=[f"custom.{code}" for code, _label, _kind in FIELDS])
    create_robot(admin, stage=placed.pk, name="Create the production order", action="create_linked", params={
        "entity_type": "orders", "role": "production",
        "fields": {"title": "Order: {title}", **{f"custom.{c}": f"{{custom.{c}}}" for c, _l, _k in FIELDS}}})
    return {"sales": sales, "production": production, "placed": placed, "orders": orders}


def order_of(deal_id: int, orders_type_id: int):
    from voronka.items.models import SmartItem
    from voronka.links.models import Link

    link = Link.objects.filter(source_type_id=2, source_id=deal_id, target_type_id=orders_type_id).first()
    return SmartItem.objects.get(pk=link.target_id) if link else None
