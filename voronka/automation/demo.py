"""The demo company's automation, from the seeds (installed by ``voronka demo`` before any record exists):

- seed 000: a lead «not processed» for more than 3 hours: the director is told, with the default message
  («Лид «…» уже более 3 часов находится в стадии «Не обработан», ответственный …»);
- seed 000: tasks with deadlines for the presentation (sales, «Встреча назначена») and for the contract
  signing (sales, «Договор и счёт отправлены»);
- seed 002: the sales manager who created a production order (an observer of it, F30) is notified at every
  production stage;
- F41: an overdue task tells its responsible at the deadline and the head of their department a day later.
- a trigger: a payment received on a sales deal moves it to «Оплачено» (the accountant or the bank's webhook
  records it through ``POST /api/v1/automation/deals/{id}/payment-received``).

The demo's own history never runs these: its events are marked delivered (``Demo.settle_outbox``) and the
limits exist before the records, so nothing is re-planned for them. New records from today on get it all.
"""

from __future__ import annotations

from voronka.core import entity_types
from voronka.core.actor import Actor

from . import actions

LEAD, DEAL = entity_types.LEAD, entity_types.DEAL

PRODUCTION_STAGES = {
    "assigned": "Заказ «{title}» принят в производство, мастер: {responsible}.",
    "planned": "Заказ «{title}» запланирован, отгрузка {custom.uf_delivery_date}.",
    "stage1": "Заказ «{title}»: первый этап отгружен.",
    "stage2": "Заказ «{title}»: второй этап отгружен.",
    "stage3": "Заказ «{title}»: третий этап отгружен.",
    "shipped": "Заказ «{title}» отгружен клиенту.",
    "defects": "Заказ «{title}» завершён с дефектами: нужна рекламация.",
    "cancelled": "Заказ «{title}» отменён.",
}


def install(admin: Actor, pipelines: dict) -> None:
    def stage(entity_type_id: int, pipeline: str, code: str) -> int:
        return pipelines[(entity_type_id, pipeline)].stages.get(code=code).pk

    actions.set_stage_limit(admin, stage(LEAD, "leads", "new"), amount=3, unit="hours", steps=[
        {"after": {"amount": 0, "unit": "minutes"}, "notify": ["user:director"]}])
    actions.create_robot(admin, stage=stage(DEAL, "sales", "meeting"), name="Презентация образцов",
                         action="create_task", params={
                             "title": "Провести презентацию образцов: {title}",
                             "description": "После встречи напишите отчёт о презентации в комментарии к сделке.",
                             "deadline": {"amount": 3, "unit": "days"}, "responsible": "responsible"})
    actions.create_robot(admin, stage=stage(DEAL, "sales", "contract"), name="Контроль подписания договора",
                         action="create_task", params={
                             "title": "Подписать договор: {title}",
                             "description": "Договор и счёт отправлены; проконтролируйте подписание.",
                             "deadline": {"amount": 5, "unit": "days"}, "responsible": "responsible",
                             "observers": ["head"]})
    actions.set_task_escalation(admin, steps=[
        {"after": {"amount": 0, "unit": "minutes"}, "notify": ["responsible"]},
        {"after": {"amount": 1, "unit": "days"}, "notify": ["head"]}])
    actions.create_trigger(admin, stage=stage(DEAL, "sales", "won"), name="Оплата получена", kind="payment")
    for code, text in PRODUCTION_STAGES.items():
        actions.create_robot(admin, stage=stage(DEAL, "production", code), name="Уведомить менеджера по продажам",
                             action="notify", params={"text": text, "to": ["creator"]})
    install_flows(admin, pipelines)


def install_flows(admin: Actor, pipelines: dict) -> None:
    """Seed 002 with the smart process the items demo defines (F5, F24, F30) and the complaints round trip (F25):

    - a deal entering the Production pipeline creates a linked «Производственный заказ» (the head of production
      responsible, the deal's author and observers following it);
    - the order's launch is approved by the commercial director (an approval task: approved → «В очереди»,
      rejected → «Запуск отклонён»); every later stage tells the followers;
    - a finished order moves the deal on to «Отгружено клиенту»;
    - a deal closed «Завершено с дефектами» (the defect must be described) goes to Complaints by itself, where a
      complaints specialist takes it (round robin), and «Дефекты устранены» returns it to Production,
      «Отгружено клиенту».
    """
    from voronka.pipelines.actions import update_stage
    from voronka.pipelines.models import Stage

    def stage(entity_type_id: int, pipeline: str, code: str) -> int:
        return pipelines[(entity_type_id, pipeline)].stages.get(code=code).pk

    try:
        orders = entity_types.by_code("production-orders")
    except LookupError:
        return
    order_stage = {s.code: s.pk for s in Stage.objects.filter(pipeline__entity_type_id=orders.id)}
    from voronka.customfields.actions import define_field

    # the production data the manager gives when a deal goes to Production (the stage asks for them, F23 —
    # required from today on: ``in_flight`` sets them, the history's deals predate the rule); the robot copies
    # them onto the order
    for code, label, kind in PRODUCTION_FORM:
        define_field(admin, entity_type_id=DEAL, code=code, label=label, kind=kind)
    actions.create_robot(admin, stage=stage(DEAL, "production", "free"), name="Создать производственный заказ",
                         action="create_linked", params={
                             "entity_type": orders.code, "role": "production", "responsible": "user:prod_head",
                             "observers": ["creator", "observers"],
                             "fields": {"title": "{title}", "opportunity": "{opportunity}",
                                        "comment": "Заказ по сделке «{title}»: {link}",
                                        **{f"custom.{code}": f"{{custom.{code}}}" for code, _l, _k in PRODUCTION_FORM}}})
    actions.create_robot(admin, stage=order_stage["approval"], name="Согласовать запуск",
                         action="create_task", params={
                             "title": "Согласовать запуск в производство: {title}",
                             "description": "Одобрите запуск или отклоните его с комментарием.",
                             "deadline": {"amount": 1, "unit": "days"}, "responsible": "user:sales_head",
                             "approval": {"approved": "queued", "rejected": "rejected"}})
    for code, text in (("queued", "Заказ «{title}» поставлен в очередь производства."),
                       ("cutting", "Заказ «{title}»: раскрой и сварка."), ("painting", "Заказ «{title}»: покраска."),
                       ("done", "Заказ «{title}» изготовлен."),
                       ("rejected", "Запуск заказа «{title}» отклонён.")):
        actions.create_robot(admin, stage=order_stage[code], name="Уведомить менеджера по продажам",
                             action="notify", params={"text": text, "to": ["observers"]})
    actions.create_robot(admin, stage=order_stage["done"], name="Сделка: заказ изготовлен",
                         action="move_linked", params={
                             "entity_type": "deal", "stage": "shipped",
                             "from_stages": ["free", "assigned", "planned", "stage1", "stage2", "stage3"]})
    update_stage(admin, stage(DEAL, "production", "defects"), required_fields=["custom.uf_defect"])
    actions.create_robot(admin, stage=stage(DEAL, "production", "defects"), name="В рекламации",
                         action="move_stage", params={"pipeline": "complaints", "stage": "new"})
    actions.create_robot(admin, stage=stage(DEAL, "complaints", "new"), name="Назначить специалиста по рекламациям",
                         action="change_responsible",
                         params={"mode": "round_robin", "users": ["user:support1", "user:support2"]})
    actions.create_robot(admin, stage=stage(DEAL, "complaints", "resolved"), name="Вернуть в производство",
                         action="return_to_origin", params={"stage": "shipped"})


PRODUCTION_FORM = (  # deal fields asked on entering Production, copied onto the order (same codes)
    ("uf_product", "Изделие", "string"),
    ("uf_quantity", "Количество, шт.", "integer"),
    ("uf_due_date", "Срок изготовления", "date"),
    ("uf_spec", "Размеры и комплектация", "text"),
)
IN_FLIGHT = (  # title, opportunity, how far the order got
    ("Кронштейны для КАМАЗа, 40 шт.", "240000", "approval"),
    ("Рама прицепа 8 м", "690000", "queued"),
    ("Ограждения склада, 120 м", "415000", "cutting"),
    ("Металлоконструкции навеса", "980000", "painting"),
)
COMPLAINT = ("Кузов-фургон на ГАЗель", "530000", "Трещина сварного шва на задней двери")
ORDER_DATA = {  # what the managers filled in the form when the in-flight deals went to Production
    "Кронштейны для КАМАЗа, 40 шт.": ("Кронштейн крепления бампера", 40, 14, "Сталь 4 мм, порошковая окраска RAL 9005"),
    "Рама прицепа 8 м": ("Рама прицепа", 1, 30, "Длина 8 м, швеллер 16П, под тент"),
    "Ограждения склада, 120 м": ("Секция ограждения 2,5 м", 48, 21, "Высота 2 м, сетка 50×50, оцинковка"),
    "Металлоконструкции навеса": ("Навес 12×6 м", 1, 25, "Фермы, прогоны, кровля из профнастила С21"),
    "Кузов-фургон на ГАЗель": ("Кузов-фургон", 1, 20, "Изотермический, 4,2 м, задняя распашная дверь"),
}
PRODUCTION_REQUIRED = [f"custom.{code}" for code, _label, _kind in PRODUCTION_FORM]


def order_form(title: str, today) -> dict:
    """The production data of an in-flight deal, as the manager entered it (the due date counted from today)."""
    import datetime as dt

    product, quantity, days, spec = ORDER_DATA[title]
    return {"uf_product": product, "uf_quantity": quantity,
            "uf_due_date": (today + dt.timedelta(days=days)).isoformat(), "uf_spec": spec}


def in_flight(demo) -> None:
    """Today's work of the production flow, so the order board, the cards and the complaints pipeline are not
    empty: four deals in Production whose orders stand at approval (the head of sales has the approval task),
    in the queue, cutting and painting; and one finished order whose deal came back with defects and is being
    fixed in Complaints. Everything goes through the actions, and the robots do their part (``drain``)."""
    from voronka.activities.actions import decide_task
    from voronka.activities.models import Task
    from voronka.core.management.commands.worker import drain
    from voronka.deals.actions import create_deal, move_deal
    from voronka.items import actions as items
    from voronka.links.models import Link
    from voronka.parties.models import Contact

    try:
        orders = entity_types.by_code("production-orders")
    except LookupError:
        return
    clients = list(Contact.objects.filter(deleted_at__isnull=True, company__isnull=False).order_by("id")[:5])
    head, master, support = demo.actor("sales_head"), demo.actor("master1"), demo.actor("support_head")
    managers = ["manager1", "manager2", "manager3", "manager4"]

    def order_of(deal_id: int) -> int:
        return Link.objects.filter(source_type_id=DEAL, source_id=deal_id, target_type_id=orders.id) \
            .values_list("target_id", flat=True).first()

    def approve(order_id: int) -> None:
        task = Task.objects.filter(entity_type_id=orders.id, entity_id=order_id).exclude(approval={}) \
            .order_by("-id").first()
        decide_task(head, task.pk, outcome="approved", comment="Согласовано, запускайте.")
        drain()

    from django.utils import timezone

    from voronka.pipelines.actions import update_stage
    from voronka.pipelines.models import Stage

    # from today on, a deal entering Production asks the manager for the order's data (F23: the board and the
    # card show a small form before the move completes; the API answers 422 naming the fields)
    entry = Stage.objects.filter(pipeline__entity_type_id=DEAL, pipeline__code="production", code="free").first()
    if entry is not None:
        update_stage(demo.actor("admin"), entry.pk, required_fields=PRODUCTION_REQUIRED)
    today = timezone.localdate()
    steps = ("queued", "cutting", "painting", "done")
    deal = manager = None
    for n, (title, amount, reached) in enumerate((*IN_FLIGHT, (*COMPLAINT[:2], "done"))):
        client = clients[n % len(clients)] if clients else None
        manager = demo.actor(managers[n % len(managers)])
        deal = create_deal(manager, title=title, pipeline="production", stage="free", opportunity=amount,
                           contact=client.pk if client else None, company=client.company_id if client else None,
                           custom=order_form(title, today))
        drain()  # the robot creates the linked order; the approval task goes to the head of sales
        order = order_of(deal.pk)
        if order is None or reached == "approval":
            continue
        approve(order)  # → «В очереди»
        for code in steps[1:steps.index(reached) + 1]:
            items.move_item(master, orders.id, order, stage=code)
            drain()
    from voronka.deals.models import Deal

    deal = Deal.objects.get(pk=deal.pk)
    if deal.stage.code != "shipped":  # the finished order moved its deal on
        return
    move_deal(manager, deal.pk, stage="defects", fields={"custom": {"uf_defect": COMPLAINT[2]}})
    drain()  # → Complaints, a complaints specialist responsible
    move_deal(support, deal.pk, stage="fixing")
    drain()
