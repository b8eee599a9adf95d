"""The demo's intake settings (installed by ``voronka demo`` through ``leads.demo.SETTINGS_HOOKS``):

- seed 004's source dispatcher, as robots on the creation of a lead with a condition on its source, no code:
  «registration → mark converted, create the contact, start the welcome letters» (a deal in the pipeline
  «Приветственная серия», whose robots send the letters over days) and «unsubscribe → mark the contact»
  (the contact field «Отписан от рассылок», its welcome deal moved to «Отписался» so no more letters go,
  the lead closed as not a client);
- the intake sources of both (policy «create»: a new lead every time, the robots decide);
- an SMTP intake mailbox for zayavki@voronka.local (mail reaches it once ``voronka mail-smtpd`` runs);
- the call centre's distribution queue (the four operators, round robin, at most 30 open leads each) and
  the site's published web form «Подбор запчастей» (``/f/zapchasti/``) whose leads it shares out.
"""

from __future__ import annotations

from voronka.core import entity_types
from voronka.core.actor import Actor

LEAD, DEAL, CONTACT = entity_types.LEAD, entity_types.DEAL, entity_types.CONTACT

WELCOME_LETTERS = (
    (0, "Добро пожаловать в демо-доступ, {first_name}!",
     "Здравствуйте! Демо-доступ открыт. Начните с раздела «Лиды»: там уже есть примеры заявок."),
    (3, "Подсказка: роботы на стадиях",
     "Роботы ставят задачи и пишут клиентам сами. Откройте «Настройки → Роботы» и добавьте первого."),
    (7, "Как дела с демо-доступом?",
     "Если остались вопросы — просто ответьте на это письмо, ответ попадёт вашему менеджеру."),
)


def install(admin: Actor, pipelines: dict) -> None:
    from voronka.automation.actions import create_robot
    from voronka.customfields.actions import define_field
    from voronka.leads.models import Source
    from voronka.pipelines.actions import create_pipeline

    from .mail import create_mailbox
    from .models import DuplicatePolicy, IntakeSource

    welcome = create_pipeline(admin, entity_type_id=DEAL, name="Приветственная серия", code="welcome", stages=[
        {"name": "Письма отправляются", "code": "letters", "color": "#38bdf8"},
        {"name": "Серия завершена", "code": "done", "semantics": "success", "color": "#22c55e"},
        {"name": "Отписался", "code": "unsubscribed", "semantics": "failure", "color": "#a8a29e"}])
    letters = welcome.stages.get(code="letters").pk
    for days, subject, body in WELCOME_LETTERS:
        create_robot(admin, stage=letters, name=f"Письмо: {subject[:60]}", action="email_client",
                     params={"subject": subject, "body": body},
                     delay={"kind": "after", "amount": days, "unit": "days"} if days else None)
    create_robot(admin, stage=letters, name="Серия завершена", action="move_stage", params={"stage": "done"},
                 delay={"kind": "after", "amount": 10, "unit": "days"})
    define_field(admin, entity_type_id=CONTACT, code="uf_unsubscribed", label="Отписан от рассылок", kind="boolean")
    for sort, (code, name) in enumerate((("registration", "Регистрация на сайте"),
                                          ("unsubscribe", "Отписка от рассылки")), start=200):
        Source.objects.get_or_create(code=code, defaults={"name": name, "sort": sort})
        IntakeSource.objects.get_or_create(code=code, defaults={"name": name,
                                                                "duplicate_policy": DuplicatePolicy.CREATE})
    new = pipelines[(LEAD, "leads")].stages.get(code="new").pk
    create_robot(admin, stage=new, name="Диспетчер: регистрация → контакт и приветственная серия",
                 trigger="on_create", action="convert_lead", order=10,
                 conditions={"all": [{"field": "source", "op": "equals", "value": "registration"}]},
                 params={"contact": True, "deal_pipeline": "welcome"})
    create_robot(admin, stage=new, name="Диспетчер: отписка → отметить контакт", trigger="on_create",
                 action="mark_contact", order=10,
                 conditions={"all": [{"field": "source", "op": "equals", "value": "unsubscribe"}]},
                 params={"fields": {"custom.uf_unsubscribed": True}, "comment": "Отписался от рассылок.",
                         "move_deals": {"pipeline": "welcome", "stage": "unsubscribed"}})
    create_robot(admin, stage=new, name="Диспетчер: закрыть лид отписки", trigger="on_create",
                 action="move_stage", order=20,
                 conditions={"all": [{"field": "source", "op": "equals", "value": "unsubscribe"}]},
                 params={"stage": "not_target"})
    create_mailbox(admin, name="Почта для заявок", kind="smtp", source="email", recipients=["zayavki@voronka.local"])
    install_form(admin, pipelines)


def install_form(admin: Actor, pipelines: dict) -> None:
    """The call centre's queue and the site's web form that feeds it (their screens are not empty)."""
    from voronka.distribution.actions import create_queue
    from voronka.identity.models import User

    from .forms import create_form

    operators = list(User.objects.filter(username__startswith="operator", is_active=True).order_by("username"))
    queue = create_queue(admin, code="call-centre", name="Колл-центр: новые заявки", mode="round_robin", cap=30,
                         members=[{"user": u.pk} for u in operators])
    create_form(admin, slug="zapchasti", name="Сайт: подбор запчастей", source="site", queue=queue.pk, mode="background",
                pipeline=pipelines[(LEAD, "leads")].pk, stage="new", title="Подберём запчасти за 15 минут",
                description="Оставьте телефон — оператор перезвонит и уточнит модель и VIN.",
                button="Жду звонка", consent_text="Согласен на обработку персональных данных",
                success_message="Спасибо! Оператор перезвонит в течение 15 минут в рабочее время.",
                fields=[{"name": "name", "label": "Имя", "maps_to": "first_name", "required": True},
                        {"name": "phone", "label": "Телефон", "type": "tel", "maps_to": "phones", "required": True},
                        {"name": "email", "label": "E-mail", "type": "email", "maps_to": "emails"},
                        {"name": "vehicle", "label": "Техника (марка, модель)", "maps_to": "custom.uf_vehicle"},
                        {"name": "question", "label": "Какая деталь нужна?", "type": "textarea",
                         "maps_to": "inquiry"}])
