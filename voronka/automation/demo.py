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
    actions.create_robot(admin, stage=stage(DEAL, "production", "free"), name="Создать производственный заказ",
                         action="create_linked", params={
                             "entity_type": orders.code, "role": "production", "responsible": "user:prod_head",
                             "observers": ["creator", "observers"],
                             "fields": {"title": "{title}", "opportunity": "{opportunity}",
                                        "comment": "Заказ по сделке «{title}»: {link}"}})
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
