"""A smart process linked to another smart process by a field (issue 7, Deliver 1: «which entities it links to …
other types»): a link field's value must be an item of the target process, not any row of the shared table."""

from __future__ import annotations

import pytest

from voronka.core.errors import ValidationFailed

pytestmark = pytest.mark.django_db


def test_a_link_field_to_another_process(admin, admin_user, client):
    from voronka.customfields.actions import define_field
    from voronka.items.actions import create_item, create_type, update_item

    orders = create_type(admin, name="Production order", name_plural="Production orders", code="orders")
    create_type(admin, name="Complaint", name_plural="Complaints", code="complaints")
    define_field(admin, entity_type_id=orders.id + 1, code="uf_order", label="Order", kind="link",
                 options={"entity_type_id": orders.id})
    order = create_item(admin, "orders", title="Frame 8 m")
    complaint = create_item(admin, "complaints", title="Bent frame", custom={"uf_order": order.pk})
    assert complaint.custom == {"uf_order": order.pk}
    other = create_item(admin, "complaints", title="Scratched paint")
    with pytest.raises(ValidationFailed) as exc:  # a complaint's id is not an order, though both share a table
        update_item(admin, "complaints", other.pk, custom={"uf_order": complaint.pk})
    assert exc.value.fields == {"custom.uf_order": [f"no record with id {complaint.pk}"]}
    client.force_login(admin_user)
    page = client.get(f"/crm/complaints/{complaint.pk}/").content.decode()
    assert "Frame 8 m" in page
