"""The demo company: a realistic auto-parts wholesaler with its own workshop, in Russian.

``voronka demo`` calls :func:`load`. Settings data (departments, users, lead sources) is created
with the ORM, since it has no actions yet; every CRM record, stage move, task and comment goes
through the actions, so the demo has the same history, stage-history rows and outbox events as
real work. The actions stamp "now", so the loader replays the company's last six months in time
order and afterwards moves the timestamps the actions wrote (timeline entries, stage history,
the records' own created/changed/in-stage-since/closed stamps, tasks) back to the simulated
moment (plain UPDATEs of those timestamp columns, batched with ``executemany``).

The lists of names, products, stages and sources are also used by ``voronka generate``.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import random
import secrets
from collections import defaultdict
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from voronka.core import entity_types
from voronka.core.actor import Actor

LEAD, DEAL, CONTACT, COMPANY = entity_types.LEAD, entity_types.DEAL, entity_types.CONTACT, entity_types.COMPANY

COMPANY_NAME = "АвтоТорсион"
LEAD_PIPELINE_CODE = "leads"
DEMO_CAUSE = "demo"

# --- Russian names ------------------------------------------------------------------------------

MALE_FIRST = (
    "Александр", "Алексей", "Андрей", "Антон", "Артём", "Борис", "Вадим", "Валерий", "Василий", "Виктор", "Виталий",
    "Владимир", "Владислав", "Вячеслав", "Геннадий", "Георгий", "Григорий", "Денис", "Дмитрий", "Евгений", "Егор",
    "Иван", "Игорь", "Илья", "Кирилл", "Константин", "Леонид", "Максим", "Михаил", "Никита", "Николай", "Олег",
    "Павел", "Пётр", "Роман", "Руслан", "Сергей", "Станислав", "Степан", "Тимур", "Фёдор", "Юрий", "Ярослав",
)
FEMALE_FIRST = (
    "Алёна", "Алина", "Анастасия", "Анна", "Валентина", "Валерия", "Вера", "Виктория", "Галина", "Дарья",
    "Екатерина", "Елена", "Елизавета", "Ирина", "Карина", "Кристина", "Ксения", "Лариса", "Любовь", "Людмила",
    "Маргарита", "Марина", "Мария", "Надежда", "Наталья", "Нина", "Оксана", "Ольга", "Полина", "Светлана", "Софья",
    "Татьяна", "Юлия", "Яна",
)
LAST_NAMES = (  # male forms; female forms are derived
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков", "Фёдоров",
    "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов", "Николаев",
    "Орлов", "Андреев", "Макаров", "Никитин", "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев", "Григорьев",
    "Романов", "Воробьёв", "Сергеев", "Кузьмин", "Фролов", "Александров", "Дмитриев", "Королёв", "Гусев", "Киселёв",
    "Ильин", "Максимов", "Поляков", "Сорокин", "Виноградов", "Ковалёв", "Белов", "Медведев", "Антонов", "Тарасов",
    "Жуков", "Баранов", "Филиппов", "Комаров", "Давыдов", "Беляев", "Герасимов", "Богданов", "Осипов", "Сидоров",
    "Матвеев", "Титов", "Марков", "Миронов", "Крылов", "Куликов", "Карпов", "Власов", "Мельников", "Денисов",
    "Гаврилов", "Тихонов", "Казаков", "Афанасьев", "Данилов", "Савельев", "Тимофеев", "Фомин", "Чернов", "Абрамов",
    "Мартынов", "Ефимов", "Федотов", "Щербаков", "Назаров", "Калинин", "Исаев", "Быков", "Маслов", "Родионов",
    "Коновалов", "Лазарев", "Воронин", "Климов", "Филатов", "Пономарёв", "Голубев", "Кудрявцев", "Прохоров",
    "Наумов", "Потапов", "Журавлёв", "Трофимов", "Леонов", "Соболев", "Ермаков", "Колесников", "Гончаров",
    "Емельянов", "Никифоров", "Грачёв", "Котов", "Гришин", "Ефремов", "Архипов", "Громов", "Кириллов", "Малышев",
    "Панов", "Моисеев", "Румянцев", "Акимов", "Кондратьев", "Бирюков", "Горбунов", "Анисимов", "Галкин", "Лукьянов",
    "Михеев", "Скворцов", "Юдин", "Белоусов", "Нестеров", "Симонов", "Прокофьев", "Харитонов", "Князев", "Цветков",
    "Вишневский", "Ковальский", "Савин", "Краснов", "Майоров", "Демидов", "Елисеев", "Рыбаков", "Сафонов", "Жданов",
)
PATRONYMICS = (  # (male, female)
    ("Александрович", "Александровна"), ("Алексеевич", "Алексеевна"), ("Андреевич", "Андреевна"),
    ("Викторович", "Викторовна"), ("Владимирович", "Владимировна"), ("Дмитриевич", "Дмитриевна"),
    ("Евгеньевич", "Евгеньевна"), ("Иванович", "Ивановна"), ("Игоревич", "Игоревна"), ("Михайлович", "Михайловна"),
    ("Николаевич", "Николаевна"), ("Олегович", "Олеговна"), ("Павлович", "Павловна"), ("Петрович", "Петровна"),
    ("Сергеевич", "Сергеевна"), ("Юрьевич", "Юрьевна"), ("Анатольевич", "Анатольевна"), ("Васильевич", "Васильевна"),
    ("Геннадьевич", "Геннадьевна"), ("Борисович", "Борисовна"), ("Валерьевич", "Валерьевна"),
    ("Константинович", "Константиновна"), ("Романович", "Романовна"), ("Фёдорович", "Фёдоровна"),
)
CITIES = (
    "Москва", "Москва", "Москва", "Подольск", "Химки", "Люберцы", "Балашиха", "Тверь", "Тула", "Калуга", "Рязань",
    "Владимир", "Ярославль", "Нижний Новгород", "Казань", "Воронеж", "Санкт-Петербург", "Смоленск",
)
STREETS = (
    "ул. Ленина", "ул. Гагарина", "Промышленная ул.", "ул. Строителей", "Складская ул.", "ш. Энтузиастов",
    "Рязанский пр-т", "Угрешская ул.", "Дмитровское ш.", "ул. Заводская", "Транспортная ул.", "ул. Мира",
    "Октябрьский пр-т", "Советская ул.", "Индустриальная ул.", "ул. Автомобилистов",
)
MAIL_DOMAINS = ("mail.ru", "yandex.ru", "gmail.com", "bk.ru", "list.ru", "inbox.ru", "rambler.ru")

COMPANY_ROOTS = (  # (name, industry, kind of client)
    ("Автодом", "Автосервис", "sto"), ("ТрансЛогистик", "Грузоперевозки", "fleet"), ("СТО Профи", "Автосервис", "sto"),
    ("АвтоМир", "Розничная торговля автозапчастями", "shop"), ("Магистраль", "Грузоперевозки", "fleet"),
    ("Северный путь", "Грузоперевозки", "fleet"), ("Автоколонна 1412", "Пассажирские перевозки", "fleet"),
    ("ТаксоПарк", "Такси", "fleet"), ("ДорСтрой", "Дорожное строительство", "fleet"),
    ("Сибирский тракт", "Логистика", "fleet"), ("Вектор", "Автосервис", "sto"), ("Ремдизель", "Автосервис", "sto"),
    ("Евротрак", "Дилер грузовой техники", "dealer"), ("АвтоПлюс", "Розничная торговля автозапчастями", "shop"),
    ("Меридиан", "Логистика", "fleet"), ("Карго-Сервис", "Грузоперевозки", "fleet"), ("Техноком", "Автосервис", "sto"),
    ("Волга-Транс", "Грузоперевозки", "fleet"), ("Урал-Авто", "Дилер грузовой техники", "dealer"),
    ("Мотор-Центр", "Автосервис", "sto"), ("ГрузАвтоСервис", "Автосервис", "sto"), ("Дизель-Мастер", "Автосервис", "sto"),
    ("Колесо", "Розничная торговля автозапчастями", "shop"), ("Пассажиравтотранс", "Пассажирские перевозки", "fleet"),
    ("АгроТехника", "Сельское хозяйство", "fleet"), ("Спецтранс", "Коммунальное хозяйство", "fleet"),
    ("Горавтодор", "Дорожное хозяйство", "fleet"), ("Регион-Логистик", "Логистика", "fleet"),
    ("Автобаза №3", "Грузоперевозки", "fleet"), ("ПрофТрак", "Автосервис", "sto"),
    ("Запчасть-Опт", "Оптовая торговля автозапчастями", "shop"), ("АвтоЛидер", "Розничная торговля автозапчастями", "shop"),
    ("Кардан-Сервис", "Автосервис", "sto"), ("Тягач", "Грузоперевозки", "fleet"), ("Движение", "Такси", "fleet"),
    ("Русская миля", "Логистика", "fleet"), ("Старт-Авто", "Автосервис", "sto"), ("Нефтетранс", "Грузоперевозки", "fleet"),
    ("СтройМеханизация", "Строительство", "fleet"), ("ЭкоВывоз", "Коммунальное хозяйство", "fleet"),
)
COMPANY_SUFFIXES = ("", "", "", " Плюс", "-М", " Групп", "-Сервис", " Регион", "-2")
POSITIONS = ("Директор", "Менеджер по закупкам", "Главный механик", "Начальник автоколонны", "Владелец",
             "Заведующий складом", "Инженер по снабжению", "Коммерческий директор")
CLIENT_KINDS = (("sto", "Автосервис (СТО)"), ("shop", "Магазин автозапчастей"), ("fleet", "Автопарк / перевозчик"),
                ("dealer", "Дилер"), ("private", "Частное лицо"))
BANKS = (  # (name, BIK, correspondent account)
    ("ПАО Сбербанк", "044525225", "30101810400000000225"), ("АО «Альфа-Банк»", "044525593", "30101810200000000593"),
    ("Банк ВТБ (ПАО)", "044525187", "30101810700000000187"), ("АО «Т-Банк»", "044525974", "30101810145250000974"),
    ("ПАО «Промсвязьбанк»", "044525555", "30101810400000000555"), ("АО «Райффайзенбанк»", "044525700",
                                                                     "30101810200000000700"),
)

# --- auto parts ---------------------------------------------------------------------------------

PRODUCTS = (  # (what, unit price range in RUB)
    ("тормозные колодки", 1800, 9000), ("фильтры масляные", 400, 2500), ("фильтры топливные", 600, 3500),
    ("амортизаторы", 3500, 18000), ("рессоры", 9000, 45000), ("торсионы", 7000, 30000),
    ("карданные валы", 15000, 90000), ("сцепление в сборе", 12000, 60000), ("ремни ГРМ", 1500, 8000),
    ("подшипники ступицы", 2500, 14000), ("радиаторы", 9000, 55000), ("стартеры", 8000, 35000),
    ("генераторы", 9000, 42000), ("крестовины кардана", 900, 4500), ("тормозные барабаны", 5000, 21000),
    ("пневмоподушки", 6000, 26000), ("масло моторное 20 л", 5500, 14000), ("аккумуляторы 190 А·ч", 14000, 32000),
    ("шкворни", 2500, 9000), ("рулевые тяги", 2200, 12000),
)
VEHICLES = (
    "КАМАЗ 5490", "КАМАЗ 65115", "МАЗ 5440", "ГАЗель Next", "Volvo FH", "Scania R", "MAN TGX", "Mercedes-Benz Actros",
    "DAF XF", "Hyundai Solaris", "Lada Largus", "ПАЗ 3205", "ЛиАЗ 5292", "Ford Transit", "Урал 4320", "Shacman X3000",
)
INQUIRY_TEMPLATES = (
    "Нужны {what} для {vehicle}, {qty} шт. Просит прайс и сроки поставки.",
    "Запрос КП: {what} на {vehicle}, партия {qty} шт., доставка до базы.",
    "Ищут {what} для парка {vehicle} ({qty} ед. техники), интересует отсрочка платежа.",
    "Просят подобрать {what} по VIN для {vehicle}, нужно {qty} шт. срочно.",
    "Клиент сравнивает цены на {what} ({vehicle}), объём {qty} шт. в месяц.",
)
TITLE_TEMPLATES = ("{What} для {vehicle}", "{What} на {vehicle}, {qty} шт.", "Запрос КП: {what} ({vehicle})")

# --- sources ------------------------------------------------------------------------------------

# code, name, share of leads, quality (weight for conversion), UTM source/medium
SOURCES = (
    ("site", "Сайт: форма «Подбор запчастей»", 22, 1.2, "", ""),
    ("yandex_direct", "Яндекс.Директ", 18, 0.9, "yandex", "cpc"),
    ("call", "Входящий звонок", 16, 1.6, "", ""),
    ("telegram", "Telegram", 8, 1.0, "telegram", "messenger"),
    ("recommendation", "Рекомендация клиента", 7, 2.6, "", ""),
    ("vk", "ВКонтакте", 7, 0.5, "vk", "cpc"),
    ("email", "E-mail", 7, 1.1, "", ""),
    ("google_ads", "Google Ads", 5, 0.8, "google", "cpc"),
    ("avito", "Авито", 6, 0.6, "avito", "classified"),
    ("exhibition", "Выставка «Комтранс»", 4, 2.0, "", ""),
)
UTM_CAMPAIGNS = ("gruz_zapchasti_msk", "kamaz_tormoza", "evro_trucks", "retarget_90d", "taxi_park", "kardan_valy")

# --- pipelines ----------------------------------------------------------------------------------

P, S, F = "process", "success", "failure"

# (code, name, semantics, colour, required fields)
LEAD_STAGES = (
    ("new", "Не обработан", P, "#94a3b8", []),
    ("assigned", "Назначен менеджер", P, "#38bdf8", []),
    ("qualified", "Квалифицирован", P, "#3b82f6", ["phones"]),
    ("meeting_set", "Назначена встреча", P, "#6366f1", []),
    ("meeting_held", "Встреча проведена", P, "#8b5cf6", []),
    ("proposal", "Отправлено КП", P, "#a855f7", ["opportunity"]),
    ("consent", "Получено согласие", P, "#d946ef", []),
    ("converted", "Сконвертирован в сделку", S, "#22c55e", []),
    ("junk", "Некачественный лид", F, "#78716c", []),
    ("duplicate", "Дубликат", F, "#a8a29e", []),
    ("no_answer", "Не дозвонились", F, "#f59e0b", []),
    ("not_target", "Не наш клиент", F, "#f97316", []),
    ("competitor", "Ушёл к конкуренту", F, "#ef4444", []),
    ("refused", "Отказ: цена или сроки", F, "#b91c1c", []),
)
DEAL_PIPELINES = (
    ("sales", "Продажи", True, (
        ("free", "Свободная сделка", P, "#94a3b8", []),
        ("assigned", "Менеджер назначен", P, "#38bdf8", []),
        ("meeting", "Встреча назначена", P, "#3b82f6", []),
        ("proposal", "КП отправлено", P, "#6366f1", ["opportunity"]),
        ("consent", "Согласие получено", P, "#8b5cf6", []),
        ("contract", "Договор и счёт отправлены", P, "#d946ef", ["opportunity"]),
        ("won", "Оплачено", S, "#22c55e", []),
        ("refused", "Отказ клиента", F, "#ef4444", []),
        ("competitor", "Выбрали конкурента", F, "#f97316", []),
        ("price", "Не устроила цена", F, "#b91c1c", []),
        ("lost_contact", "Пропал клиент", F, "#78716c", []),
    )),
    ("production", "Производство", False, (
        ("free", "Свободная сделка", P, "#94a3b8", []),
        ("assigned", "Мастер назначен", P, "#38bdf8", []),
        ("planned", "Запланировано", P, "#3b82f6", ["custom.uf_delivery_date"]),
        ("stage1", "Этап 1 отгружен", P, "#6366f1", []),
        ("stage2", "Этап 2 отгружен", P, "#8b5cf6", []),
        ("stage3", "Этап 3 отгружен", P, "#a855f7", []),
        ("shipped", "Отгружено клиенту", S, "#22c55e", []),
        ("defects", "Завершено с дефектами", F, "#f97316", []),
        ("cancelled", "Заказ отменён", F, "#78716c", []),
    )),
    ("complaints", "Рекламации", False, (
        ("new", "Новая рекламация", P, "#f97316", ["custom.uf_defect"]),
        ("diagnostics", "Диагностика", P, "#f59e0b", []),
        ("fixing", "Устранение дефектов", P, "#3b82f6", []),
        ("checking", "Проверка клиентом", P, "#8b5cf6", []),
        ("resolved", "Дефекты устранены", S, "#22c55e", []),
        ("rejected", "Рекламация отклонена", F, "#78716c", []),
    )),
    ("repeat", "Повторные продажи", False, (
        ("new", "Новый заказ", P, "#38bdf8", []),
        ("invoice", "Счёт выставлен", P, "#6366f1", ["opportunity"]),
        ("paid", "Оплачено", S, "#22c55e", []),
        ("refused", "Отказ", F, "#ef4444", []),
    )),
)

LEAD_FAILURES = {  # failure stage: (stages it is reached from, reasons written as a comment)
    "junk": (("new", "new", "assigned"), ("Спам с формы сайта", "Ошиблись номером", "Тестовая заявка",
                                   "Искали работу, а не запчасти", "Номер не существует")),
    "duplicate": (("new",), ("Дубликат: клиент уже в работе у другого менеджера",
                             "Повторная заявка с того же номера")),
    "no_answer": (("assigned",), ("Пять попыток дозвона, трубку не берут", "Абонент недоступен, письмо без ответа")),
    "not_target": (("assigned", "assigned", "assigned", "qualified"), (
        "Нужна одна деталь на легковой автомобиль в розницу — не наш профиль",
        "Клиент из другого региона, доставка невыгодна", "Минимальная партия не устроила", "Ищут б/у запчасти")),
    "competitor": (("meeting_held", "proposal"), (
        "Выбрали поставщика с отсрочкой платежа 60 дней", "У конкурента деталь на складе, у нас под заказ 2 недели",
        "Взяли у дилера по гарантийной программе")),
    "refused": (("proposal", "consent"), ("Цена выше бюджета на 15%", "Не устроили сроки поставки",
                                          "Закупку перенесли на следующий квартал")),
}
# failure reason weights per source: which advertising brings the wrong clients (F4, F36)
FAILURE_MIX = {
    "default": {"junk": 22, "no_answer": 24, "not_target": 30, "competitor": 12, "refused": 12},
    "vk": {"junk": 40, "no_answer": 20, "not_target": 22, "competitor": 6, "refused": 6},
    "avito": {"junk": 18, "no_answer": 16, "not_target": 42, "competitor": 9, "refused": 9},
    "yandex_direct": {"junk": 16, "no_answer": 16, "not_target": 30, "competitor": 14, "refused": 14},
    "recommendation": {"junk": 2, "no_answer": 10, "not_target": 18, "competitor": 35, "refused": 35},
}
SALES_FAILURES = {
    "refused": ("Клиент отказался от заказа: сменилось руководство", "Бюджет урезали, закупка отменена"),
    "competitor": ("Выбрали конкурента с отсрочкой платежа", "Конкурент дал скидку 12%"),
    "price": ("Не устроила итоговая цена с доставкой", "Попросили скидку 20%, согласовать не удалось"),
    "lost_contact": ("Клиент перестал отвечать после отправки договора",),
}
DEFECTS = ("Люфт в шлицевом соединении карданного вала", "Течь масла из амортизатора после 2 недель работы",
           "Несоответствие размеров крепления рессоры чертежу", "Повышенная вибрация вала на скорости выше 70 км/ч",
           "Трещина в сварном шве кронштейна")

# --- the staff ----------------------------------------------------------------------------------

# username, first, last, middle, position, department key, is head of it, gender
STAFF = (
    ("director", "Виктор", "Громов", "Андреевич", "Генеральный директор", "root", True, "m"),
    ("cc_head", "Ольга", "Кравцова", "Сергеевна", "Руководитель колл-центра", "cc", True, "f"),
    ("operator1", "Анна", "Белова", "Игоревна", "Оператор колл-центра", "cc", False, "f"),
    ("operator2", "Дмитрий", "Соколов", "Павлович", "Оператор колл-центра", "cc", False, "m"),
    ("operator3", "Екатерина", "Морозова", "Олеговна", "Оператор колл-центра", "cc", False, "f"),
    ("operator4", "Артём", "Лебедев", "Викторович", "Оператор колл-центра", "cc", False, "m"),
    ("sales_head", "Игорь", "Захаров", "Николаевич", "Коммерческий директор", "sales", True, "m"),
    ("closers_head", "Марина", "Волкова", "Андреевна", "Руководитель отдела первичных продаж", "closers", True, "f"),
    ("manager1", "Пётр", "Орлов", "Сергеевич", "Менеджер по продажам", "closers", False, "m"),
    ("manager2", "Наталья", "Егорова", "Владимировна", "Менеджер по продажам", "closers", False, "f"),
    ("manager3", "Сергей", "Никитин", "Юрьевич", "Менеджер по продажам", "closers", False, "m"),
    ("manager4", "Юлия", "Макарова", "Дмитриевна", "Менеджер по продажам", "closers", False, "f"),
    ("farmer1", "Алексей", "Тарасов", "Михайлович", "Менеджер по работе с постоянными клиентами", "farmers", True, "m"),
    ("farmer2", "Светлана", "Королёва", "Петровна", "Менеджер по работе с постоянными клиентами", "farmers", False,
     "f"),
    ("prod_head", "Николай", "Гусев", "Фёдорович", "Начальник производства", "production", True, "m"),
    ("master1", "Василий", "Кузьмин", "Иванович", "Мастер участка", "production", False, "m"),
    ("master2", "Геннадий", "Фролов", "Алексеевич", "Мастер участка", "production", False, "m"),
    ("master3", "Роман", "Ильин", "Евгеньевич", "Технолог", "production", False, "m"),
    ("support_head", "Татьяна", "Медведева", "Борисовна", "Руководитель службы рекламаций", "support", True, "f"),
    ("support1", "Кирилл", "Антонов", "Олегович", "Специалист по рекламациям", "support", False, "m"),
    ("support2", "Дарья", "Филиппова", "Романовна", "Специалист по рекламациям", "support", False, "f"),
)
# key, name, parent key
DEPARTMENTS = (
    ("root", COMPANY_NAME, None), ("cc", "Колл-центр", "root"), ("sales", "Отдел продаж", "root"),
    ("closers", "Первичные продажи", "sales"), ("farmers", "Повторные продажи", "sales"),
    ("production", "Производство", "root"), ("support", "Служба рекламаций", "root"),
)

# --- small helpers ------------------------------------------------------------------------------

_TRANSLIT = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                     ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s",
                      "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"], strict=True))


def translit(text: str) -> str:
    out = "".join(_TRANSLIT.get(ch, ch) for ch in text.lower())
    return "".join(ch for ch in out if ch.isascii() and (ch.isalnum() or ch in ".-"))


def female_last_name(name: str) -> str:
    if name.endswith("ский"):
        return name[:-2] + "ая"
    if name.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return name + "а"
    return name


def person(rnd: random.Random) -> dict:
    """A Russian person: first, last and middle name, gender."""
    gender = "f" if rnd.random() < 0.38 else "m"
    last = rnd.choice(LAST_NAMES)
    patronymic = rnd.choice(PATRONYMICS)
    if gender == "f":
        return {"first_name": rnd.choice(FEMALE_FIRST), "last_name": female_last_name(last),
                "middle_name": patronymic[1], "gender": "f"}
    return {"first_name": rnd.choice(MALE_FIRST), "last_name": last, "middle_name": patronymic[0], "gender": "m"}


PHONE_FORMATS = ("+7 {a} {b}-{c}-{d}", "8 ({a}) {b}-{c}-{d}", "+7{a}{b}{c}{d}", "8{a}{b}{c}{d}", "+7 ({a}) {b} {c} {d}")


def mobile_phone(rnd: random.Random) -> tuple[str, str]:
    """(as typed, E.164) of a Russian mobile number, typed in one of the usual ways."""
    digits = f"9{rnd.randrange(10**9):09d}"
    return format_phone(digits, rnd.choice(PHONE_FORMATS)), "+7" + digits


def format_phone(ten_digits: str, pattern: str) -> str:
    return pattern.format(a=ten_digits[:3], b=ten_digits[3:6], c=ten_digits[6:8], d=ten_digits[8:])


def personal_email(rnd: random.Random, first: str, last: str) -> str:
    style = rnd.randrange(3)
    f, la = translit(first), translit(last)
    local = f"{f}.{la}" if style == 0 else (f"{f[0]}.{la}" if style == 1 else f"{la}{rnd.randrange(70, 99)}")
    return f"{local}@{rnd.choice(MAIL_DOMAINS)}"


def _checksum(digits: list[int], weights: tuple[int, ...]) -> int:
    return sum(d * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def inn(rnd: random.Random, individual: bool = False) -> str:
    """A taxpayer number with valid check digits (10 digits for a company, 12 for a sole trader)."""
    region = rnd.choice((77, 50, 69, 71, 40, 62, 33, 76, 52, 16, 36, 78))
    if not individual:
        digits = [int(c) for c in f"{region:02d}{rnd.randrange(10**7):07d}"]
        digits.append(_checksum(digits, (2, 4, 10, 3, 5, 9, 4, 6, 8)))
        return "".join(map(str, digits))
    digits = [int(c) for c in f"{region:02d}{rnd.randrange(10**8):08d}"]
    digits.append(_checksum(digits, (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)))
    digits.append(_checksum(digits, (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)))
    return "".join(map(str, digits))


def company_name(rnd: random.Random) -> tuple[str, str, str]:
    """(name, industry, kind of client)."""
    root, industry, kind = rnd.choice(COMPANY_ROOTS)
    form = rnd.random()
    if form < 0.15:
        p = person(rnd)
        return f"ИП {p['last_name']} {p['first_name'][0]}. {p['middle_name'][0]}.", industry, kind
    prefix = "АО" if form < 0.25 else "ООО"
    return f"{prefix} «{root}{rnd.choice(COMPANY_SUFFIXES)}»", industry, kind


def site_of(name: str) -> str:
    core = name.split("«")[-1].rstrip("»") if "«" in name else name
    return translit(core.replace(" ", "-").replace("№", "n")).strip("-.") or "company"


def inquiry(rnd: random.Random) -> dict:
    what, lo, hi = rnd.choice(PRODUCTS)
    vehicle = rnd.choice(VEHICLES)
    qty = rnd.choice((2, 4, 5, 6, 8, 10, 12, 16, 20, 24, 30, 40, 50, 100))
    unit = lo * (hi / lo) ** rnd.random()
    amount = Decimal(int(unit * qty / 100) * 100 or 1000)
    title = rnd.choice(TITLE_TEMPLATES).format(What=what[0].upper() + what[1:], what=what, vehicle=vehicle, qty=qty)
    text = rnd.choice(INQUIRY_TEMPLATES).format(what=what, vehicle=vehicle, qty=qty)
    return {"title": title, "inquiry": text, "amount": amount, "vehicle": vehicle, "what": what, "qty": qty}


def log_uniform(rnd: random.Random, lo: float, hi: float) -> float:
    return lo * (hi / lo) ** rnd.random()


def weighted_sample(rnd: random.Random, items: list, weights: list[float], k: int) -> list:
    """k items without replacement, each picked with probability proportional to its weight."""
    keyed = sorted(((rnd.random() ** (1.0 / w), i) for i, w in enumerate(weights) if w > 0), reverse=True)
    return [items[i] for _, i in keyed[:k]]


# Callables (admin actor, {(entity type id, pipeline code): Pipeline}) run after the demo's settings are created:
# the extension point for engines the domain apps may not import (automation installs its demo rules here).
SETTINGS_HOOKS: list = []
LIVE_HOOKS: list = []  # called with the Demo after its history is loaded: today's work in progress


def pipeline_specs() -> list[dict]:
    """The demo pipelines as arguments of ``create_pipeline`` (lead pipeline first)."""
    def stages(rows):
        return [{"code": c, "name": n, "semantics": s, "color": col, "required_fields": list(req)}
                for c, n, s, col, req in rows]

    specs = [{"entity_type_id": LEAD, "name": "Лиды", "code": LEAD_PIPELINE_CODE, "is_default": True,
              "stages": stages(LEAD_STAGES)}]
    for code, name, default, rows in DEAL_PIPELINES:
        specs.append({"entity_type_id": DEAL, "name": name, "code": code, "is_default": default,
                      "stages": stages(rows)})
    return specs


def ensure_sources() -> list[str]:
    """The lead sources of the demo (settings data, created with the ORM). Returns their codes."""
    from .models import Source

    for sort, (code, name, *_rest) in enumerate(SOURCES):
        Source.objects.get_or_create(code=code, defaults={"name": name, "sort": (sort + 1) * 10})
    return [s[0] for s in SOURCES]


# --- the state of the database ------------------------------------------------------------------

def state() -> str:
    """"loaded" when the demo is in the database, "busy" when other CRM data is, else "empty"."""
    from voronka.deals.models import Deal
    from voronka.identity.models import User
    from voronka.parties.models import Company, Contact
    from voronka.pipelines.models import Pipeline

    from .models import Lead

    if Pipeline.objects.filter(entity_type_id=LEAD, code=LEAD_PIPELINE_CODE).exists() and \
            User.objects.filter(username="operator1").exists():
        return "loaded"
    if any(m.objects.exists() for m in (Lead, Deal, Contact, Company)):
        return "busy"
    return "empty"


def login_file():
    return settings.VAR_DIR / "demo-login.txt"


# --- the loader ---------------------------------------------------------------------------------

@dataclass
class Result:
    password: str
    users: list[str]
    counts: dict[str, int]
    seconds: float = 0.0
    admin_created: bool = True


@dataclass
class LeadPlan:
    created: dt.datetime
    source: str
    data: dict
    info: dict
    b2b: bool
    base_company: int | None = None
    route: list[str] = field(default_factory=list)
    times: list[dt.datetime] = field(default_factory=list)
    deal_plan: str = ""  # "production", "sale" or "" for a converted lead
    lead_id: int = 0
    phone: str = ""
    has_phone: bool = True
    duplicate: bool = False


Step = Generator[dt.datetime, None, None]


class Demo:
    """Loads the demo company; see the module docstring."""

    def __init__(self, *, leads: int = 2000, deals: int = 500, seed: int = 2024, now: dt.datetime | None = None,
                 password: str | None = None, progress: Callable[[str, int, int], None] | None = None):
        self.n_leads, self.n_deals = max(0, leads), max(0, deals)
        self.rnd = random.Random(seed)
        self.now = (now or timezone.now()).replace(microsecond=0)
        self.start = self.now - dt.timedelta(days=182)
        self.tz = ZoneInfo(settings.TIME_ZONE)
        self.password = password or secrets.token_urlsafe(9)
        self.report = progress or (lambda phase, done, total: None)
        self.heap: list = []
        self.seq = itertools.count()
        self.steps_done = 0
        self.steps_total = 0
        self.open_tasks: dict[tuple[int, int], list[int]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)
        self._te_ranges: list[tuple] = []
        self._sh_ranges: list[tuple] = []
        from voronka.core.models import TimelineEntry
        from voronka.pipelines.models import StageHistory

        q = connection.ops.quote_name
        self._max_sql = (f"SELECT (SELECT MAX({q('id')}) FROM {q(TimelineEntry._meta.db_table)}), "
                         f"(SELECT MAX({q('id')}) FROM {q(StageHistory._meta.db_table)})")

    # ---- actors and time ----

    def actor(self, username: str) -> Actor:
        """The demo replays work on behalf of each employee; it acts as the system so that it needs no roles."""
        return self.actors[username]

    def working(self, t: dt.datetime) -> dt.datetime:
        """The next moment in office hours (Mon–Fri 9:00–19:00 local time) at or after ``t``."""
        local = t.astimezone(self.tz)
        for _ in range(7):
            if local.weekday() >= 5:
                local = (local + dt.timedelta(days=7 - local.weekday())).replace(hour=9, minute=self.rnd.randrange(50))
                continue
            if local.hour < 9:
                local = local.replace(hour=9, minute=self.rnd.randrange(50))
            elif local.hour >= 19:
                local = (local + dt.timedelta(days=1)).replace(hour=9, minute=self.rnd.randrange(50))
                continue
            break
        return local.astimezone(dt.UTC)

    def _max_ids(self) -> tuple[int, int]:
        """The highest timeline-entry and stage-history ids (one cheap query per replayed step)."""
        with connection.cursor() as cursor:
            cursor.execute(self._max_sql)
            te, sh = cursor.fetchone()
        return te or 0, sh or 0

    def _stamp(self, before: tuple[int, int], t: dt.datetime) -> None:
        """Remember that what the last actions wrote (they stamp "now") happened at the simulated moment ``t``."""
        te, sh = self._last_ids = self._max_ids()
        value = connection.ops.adapt_datetimefield_value(t)
        if te > before[0]:
            self._te_ranges.append((value, before[0], te))
        if sh > before[1]:
            self._sh_ranges.append((value, before[1], sh))

    def _apply_stamps(self) -> None:
        """Move the stamps in bulk: the same as ``filter(id__gt=lo, id__lte=hi).update(created_at=t)`` per step,
        as one executemany per table."""
        from voronka.core.models import TimelineEntry
        from voronka.pipelines.models import StageHistory

        q = connection.ops.quote_name
        for model, column, ranges in ((TimelineEntry, "created_at", self._te_ranges),
                                      (StageHistory, "moved_at", self._sh_ranges)):
            if ranges:
                with connection.cursor() as cursor:
                    cursor.executemany(f"UPDATE {q(model._meta.db_table)} SET {q(column)} = %s "
                                       f"WHERE {q('id')} > %s AND {q('id')} <= %s", ranges)
            ranges.clear()

    def spawn(self, script: Step) -> None:
        first = next(script, None)
        if first is not None and first <= self.now:
            self.steps_total += 1
            heapq.heappush(self.heap, (first, next(self.seq), script))

    def run_scripts(self) -> None:
        """Replay every script in time order, so that ids grow with time as in a real database."""
        self._last_ids = self._max_ids()
        while self.heap:
            t, _, script = heapq.heappop(self.heap)
            self.clock = t
            nxt = next(script, None)  # spawning a script runs no action, so the ids after the previous step hold
            self._stamp(self._last_ids, t)
            self.steps_done += 1
            if nxt is not None and nxt <= self.now:
                self.steps_total += 1
                heapq.heappush(self.heap, (max(nxt, t), next(self.seq), script))
            if self.steps_done % 50 == 0 or not self.heap:
                self.report("События за полгода", self.steps_done, self.steps_total)

    # ---- entry point ----

    def load(self) -> Result:
        with transaction.atomic():
            self.report("Сотрудники и настройки", 0, 1)
            self.create_staff()
            before = self._max_ids()
            self.create_settings()
            self._stamp(before, self.start - dt.timedelta(days=45))  # the CRM was set up before the period
            self.report("Сотрудники и настройки", 1, 1)
            self.create_base()
            self.plan_and_create_leads()
            self.plan_deals()
            self.run_scripts()
            self.report("Даты истории", 0, 1)
            self._apply_stamps()
            self.finish_timestamps()
            self.settle_outbox()
            # the dates above were rewritten in bulk: the reports' read models are recomputed from them
            from voronka.pipelines import daily

            daily.rebuild_all()
            self.report("Даты истории", 1, 1)
        # work in progress today (other apps: production orders in flight, a complaint), made through the actions
        # after the history is committed, with the robots run in this process
        for hook in LIVE_HOOKS:
            hook(self)
        return Result(self.password, [s[0] for s in STAFF], dict(self.counts), admin_created=self.admin_created)

    def settle_outbox(self) -> None:
        """The demo replays six months of history: its events are history too, not work for robots today.

        They are marked delivered so that automation consumers never act on a demo move from last spring.
        """
        from voronka.core.models import OutboxEvent

        OutboxEvent.objects.filter(dispatched_at__isnull=True).update(dispatched_at=timezone.now())

    # ---- settings data ----

    def create_staff(self) -> None:
        """Departments (a tree with heads) and roles through the identity actions; users with the ORM.

        ``create_user`` hashes the password once per user (PBKDF2, ~0.3 s each); the demo users share one
        password, so it is hashed once and the users are written directly, with the same audit record
        ``create_user`` writes.
        """
        from django.contrib.auth.hashers import make_password
        from django.contrib.auth.password_validation import validate_password

        from voronka.core import audit
        from voronka.identity.actions import assign_role, create_department, update_department
        from voronka.identity.models import Role, User
        from voronka.identity.permissions import rights_changed
        from voronka.identity.presets import install_presets

        system = Actor.system(DEMO_CAUSE, entry_point="demo")
        validate_password(self.password)
        hashed = make_password(self.password)
        departments = {}
        for key, name, parent in DEPARTMENTS:
            departments[key] = create_department(system, name=name, parent=getattr(departments.get(parent), "pk", None))
        self.users: dict[str, User] = {}
        self.admin_created = False

        def add(username: str, **values) -> User:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User(username=username, email=f"{username}@avtotorsion.ru", password=hashed,
                            date_joined=self.start - dt.timedelta(days=60), **values)
                user.full_clean(exclude=["password"])
                user.save()
                audit.record(system, "user.created", user=user.pk, username=user.username)
                if username == "admin":
                    self.admin_created = True
            self.users[username] = user
            return user

        add("admin", first_name="Администратор", last_name="CRM", is_staff=True, is_superuser=True,
            position="Администратор CRM", department=departments["root"])
        for index, (username, first, last, middle, position, dept, head, _gender) in enumerate(STAFF):
            user = add(username, first_name=first, last_name=last, middle_name=middle, position=position,
                       department=departments[dept], phone=f"+7 495 938-{40 + index:02d}-{self.rnd.randrange(10, 99)}")
            if head:
                update_department(system, departments[dept].pk, head=user.pk)
        rights_changed()
        # roles (F40): the call centre, sales, production and support departments get their preset roles;
        # heads and the director see everything and change their departments' records
        install_presets()
        roles = {r.code: r.pk for r in Role.objects.all()}
        by_department = {"cc": "call_centre_operator", "sales": "sales_manager", "production": "production_master",
                         "support": "support"}
        for key, code in by_department.items():
            if code in roles:
                assign_role(system, roles[code], department_id=departments[key].pk, with_subdepartments=True)
        for username in ("director", "cc_head", "sales_head", "closers_head"):
            if "head_of_sales" in roles:
                assign_role(system, roles["head_of_sales"], user_id=self.users[username].pk)
        if "administrator" in roles:
            assign_role(system, roles["administrator"], user_id=self.users["admin"].pk)
        self.actors = {name: Actor.system(DEMO_CAUSE, entry_point="demo", on_behalf_of=u)
                       for name, u in self.users.items()}
        self.operators = [f"operator{i}" for i in range(1, 5)]
        self.managers = [f"manager{i}" for i in range(1, 5)]
        self.farmers = ["farmer1", "farmer2"]
        self.masters = ["master1", "master2", "master3"]
        self.support = ["support1", "support2"]
        self.counts["users"] = len(self.users)

    def create_settings(self) -> None:
        self._create_settings()
        # other apps add their settings here (automation ships the seeds' robots and time limits): before any
        # record exists, so nothing is re-planned for the history that follows
        for hook in SETTINGS_HOOKS:
            hook(self.actor("admin"), dict(self.pipelines))

    def _create_settings(self) -> None:
        from voronka.customfields.actions import define_field
        from voronka.pipelines.actions import create_pipeline

        admin = self.actor("admin")
        self.source_codes = ensure_sources()
        define_field(admin, entity_type_id=LEAD, code="uf_vehicle", label="Техника клиента", kind="string")
        define_field(admin, entity_type_id=LEAD, code="uf_client_kind", label="Тип клиента", kind="enum",
                     options={"choices": [{"id": k, "label": v} for k, v in CLIENT_KINDS]}, is_filterable=True)
        define_field(admin, entity_type_id=LEAD, code="uf_readiness", label="Готовность клиента", kind="enum",
                     options={"choices": [{"id": "now", "label": "Готов СЕЙЧАС"},
                                          {"id": "later", "label": "Готов в другой день"}]})
        define_field(admin, entity_type_id=DEAL, code="uf_delivery_date", label="Дата отгрузки", kind="date")
        define_field(admin, entity_type_id=DEAL, code="uf_defect", label="Описание дефекта", kind="text")
        self.pipelines = {}
        for spec in pipeline_specs():
            pipeline = create_pipeline(admin, **spec)
            self.pipelines[(spec["entity_type_id"], spec["code"])] = pipeline
        define_field(admin, entity_type_id=DEAL, code="uf_sales_deal", label="Сделка продажи", kind="link",
                     options={"entity_type_id": DEAL}, pipeline=self.pipelines[(DEAL, "production")].pk)
        self.counts["pipelines"] = len(self.pipelines)

    # ---- the client base imported before the period ----

    def create_base(self) -> None:
        from voronka.parties.actions import add_bank_requisite, create_companies, create_contacts

        rnd = self.rnd
        n_companies = max(3, round(self.n_deals * 0.16))
        n_contacts = max(6, round(self.n_deals * 0.4))
        imported = self.working(self.start - dt.timedelta(days=rnd.randrange(20, 40)))
        actor = self.actor("sales_head")
        companies, names = [], set()
        while len(companies) < n_companies:
            name, industry, kind = company_name(rnd)
            if name in names:
                continue
            names.add(name)
            city = rnd.choice(CITIES)
            address = f"г. {city}, {rnd.choice(STREETS)}, д. {rnd.randrange(1, 120)}"
            site = site_of(name)
            digits = f"{rnd.choice(('495', '499', '812', '831', '843'))}{rnd.randrange(10**7):07d}"
            companies.append({
                "name": name, "company_type": "client", "industry": industry, "legal_address": address,
                "actual_address": address if rnd.random() < 0.6 else f"г. {city}, {rnd.choice(STREETS)}, стр. 2",
                "site": f"https://{site}.ru", "employees": rnd.choice(("до 10", "10–50", "50–250", "250+")),
                "revenue": str(rnd.randrange(5, 900) * 1_000_000), "source": rnd.choice(self.source_codes),
                "responsible": self.users[rnd.choice(self.farmers)].pk,
                "comment": f"Постоянный клиент с {rnd.randrange(2014, 2024)} года. Направление: {kind}.",
                "phones": [{"value": format_phone(digits, "+7 ({a}) {b}-{c}-{d}"), "type": "work"}],
                "emails": [{"value": f"{rnd.choice(('info', 'zakupki', 'snab'))}@{site}.ru", "type": "work"}],
            })
        before = self._max_ids()
        results = create_companies(actor, companies)
        self._stamp(before, imported)
        self.companies = [r.obj for r in results if r.ok]
        self.company_kind = {c.pk: next((k for r, _i, k in COMPANY_ROOTS if r in c.name), "sto") for c in self.companies}
        for company in self.companies:
            bank, bik, corr = rnd.choice(BANKS)
            individual = company.name.startswith("ИП")
            before = self._max_ids()
            add_bank_requisite(actor, company.pk, name="Основной счёт", inn=inn(rnd, individual),
                               kpp="" if individual else f"{rnd.randrange(10**8, 10**9)}",
                               ogrn=f"{rnd.randrange(10**14, 10**15)}" if individual else f"1{rnd.randrange(10**11, 10**12)}7",
                               bank_name=bank, bik=bik, account=f"40{'802' if individual else '702'}810{rnd.randrange(10**11, 10**12)}",
                               corr_account=corr)
            self._stamp(before, imported + dt.timedelta(minutes=rnd.randrange(5, 300)))
        contacts = []
        for i in range(n_contacts):
            p = person(rnd)
            company = self.companies[i % len(self.companies)] if rnd.random() < 0.85 else None
            typed, _e164 = mobile_phone(rnd)
            contacts.append({
                "first_name": p["first_name"], "last_name": p["last_name"], "middle_name": p["middle_name"],
                "gender": p["gender"], "company": company.pk if company else None,
                "position": rnd.choice(POSITIONS) if company else "", "city": rnd.choice(CITIES),
                "birthday": dt.date(rnd.randrange(1962, 2000), rnd.randrange(1, 13), rnd.randrange(1, 29)).isoformat(),
                "solvency": rnd.choice(("высокая", "высокая", "средняя", "низкая")),
                "behaviour_notes": rnd.choice(("", "", "Предпочитает общаться в Telegram", "Звонить после 14:00",
                                               "Всегда торгуется, просит отсрочку", "Решения принимает быстро")),
                "source": rnd.choice(self.source_codes), "responsible": self.users[rnd.choice(self.farmers)].pk,
                "phones": [typed], "emails": [personal_email(rnd, p["first_name"], p["last_name"])],
            })
        before = self._max_ids()
        results = create_contacts(actor, contacts)
        self._stamp(before, imported + dt.timedelta(hours=5))
        self.contacts = [r.obj for r in results if r.ok]
        self.counts["companies"] += len(self.companies)
        self.counts["contacts"] += len(self.contacts)
        self.report("Клиентская база", 1, 1)

    # ---- leads ----

    def _created_at(self) -> dt.datetime:
        """More leads lately (the business grows), in office hours mostly, fewer at weekends."""
        rnd = self.rnd
        x = rnd.random() if rnd.random() < 0.5 else max(rnd.random(), rnd.random())
        day = (self.start + (self.now - self.start) * x).astimezone(self.tz)
        if day.weekday() >= 5 and rnd.random() < 0.6:
            day -= dt.timedelta(days=day.weekday() - 4)
        hour = rnd.choices(range(24), weights=[1, 1, 1, 1, 1, 2, 3, 5, 9, 12, 14, 14, 12, 13, 14, 14, 13, 11, 9, 7, 5,
                                               4, 2, 1])[0]
        t = day.replace(hour=hour, minute=rnd.randrange(60), second=rnd.randrange(60)).astimezone(dt.UTC)
        return min(t, self.now - dt.timedelta(minutes=rnd.randrange(5, 90)))

    def plan_and_create_leads(self) -> None:
        from voronka.leads.actions import create_leads

        rnd = self.rnd
        shares = [s[2] for s in SOURCES]
        plans: list[LeadPlan] = []
        recent_phones: list[str] = []
        for _ in range(self.n_leads):
            source = rnd.choices(SOURCES, weights=shares)[0]
            code = source[0]
            p = person(rnd)
            info = inquiry(rnd)
            b2b = rnd.random() < 0.78
            base = None
            data: dict = {"title": info["title"], "first_name": p["first_name"], "last_name": p["last_name"],
                          "middle_name": p["middle_name"] if rnd.random() < 0.5 else "", "inquiry": info["inquiry"],
                          "source": code, "comment": "", "currency": "RUB"}
            kind = "private"
            if b2b:
                if self.companies and rnd.random() < 0.12:
                    company = rnd.choice(self.companies)
                    base, name = company.pk, company.name
                    kind = self.company_kind.get(company.pk, "sto")
                else:
                    name, _industry, kind = company_name(rnd)
                data["company_name"] = name
                data["position"] = rnd.choice(POSITIONS)
            typed, e164 = mobile_phone(rnd)
            duplicate = bool(recent_phones) and rnd.random() < 0.05
            if duplicate:  # the same client writes again from another channel (F13)
                typed = format_phone(rnd.choice(recent_phones)[2:], rnd.choice(PHONE_FORMATS))
            recent_phones = (recent_phones + [e164])[-50:]
            has_phone = code not in ("email", "telegram") or rnd.random() < 0.4
            if has_phone:
                data["phones"] = [typed]
            if code in ("email", "site", "telegram") or rnd.random() < 0.35:
                data["emails"] = [personal_email(rnd, p["first_name"], p["last_name"])]
            utm_source, utm_medium = source[4], source[5]
            if utm_source:
                data.update(utm_source=utm_source, utm_medium=utm_medium, utm_campaign=rnd.choice(UTM_CAMPAIGNS),
                            utm_term=info["what"])
            data["custom"] = {"uf_vehicle": info["vehicle"], "uf_client_kind": kind,
                              "uf_readiness": "now" if rnd.random() < 0.4 else "later"}
            if code == "call":  # the operator who answered registers the lead, already assigned to them (F14)
                data["responsible"] = self.users[rnd.choice(self.operators)].pk
                data["stage"] = "assigned"
            plans.append(LeadPlan(self._created_at(), code, data, info, b2b, base, phone=typed, has_phone=has_phone,
                                  duplicate=duplicate and has_phone))
        plans.sort(key=lambda p: p.created)
        self.lead_plans = plans
        # leads come in through intake (forms, telephony, messengers); the loader creates them in batches
        intake = Actor.system("demo:intake", entry_point="demo")
        for offset in range(0, len(plans), 250):
            chunk = plans[offset:offset + 250]
            before = self._max_ids()
            results = create_leads(intake, [p.data for p in chunk])
            bad = [r for r in results if not r.ok]
            if bad:
                raise RuntimeError(f"demo lead rejected: {bad[0].error.as_dict()}")
            for p, r in zip(chunk, results, strict=True):
                p.lead_id = r.obj.pk
            self._stamp_each(before, [(LEAD, p.lead_id, p.created) for p in chunk])
            self.report("Лиды", offset + len(chunk), len(plans))
        self.counts["leads"] = len(plans)

    def _stamp_each(self, before: tuple[int, int], items: list[tuple[int, int, dt.datetime]]) -> None:
        """After a bulk create: each record's own timeline entries and stage rows get its own moment."""
        from voronka.core.models import TimelineEntry
        from voronka.pipelines.models import StageHistory

        when = {(t, pk): at for t, pk, at in items}
        for model, column, lo in ((TimelineEntry, "created_at", before[0]), (StageHistory, "moved_at", before[1])):
            rows = model.objects.filter(id__gt=lo).values_list("id", "entity_type_id", "entity_id")
            self._set_rows(model, [column], [(when.get((t, e), self.now), pk) for pk, t, e in rows])

    # ---- planning what happens to every lead and deal ----

    def plan_deals(self) -> None:
        rnd = self.rnd
        m = self.n_deals
        n_repeat = round(m * 0.12)
        n_production = round(m * 0.25)
        n_direct = round(m * 0.12)
        n_conv = m - n_repeat - n_production - n_direct
        eligible = [p for p in self.lead_plans if p.created < self.now - dt.timedelta(days=21)]
        quality = {s[0]: s[3] for s in SOURCES}
        n_conv = min(n_conv, len(eligible), int(self.n_leads * 0.3))
        converted = weighted_sample(rnd, eligible, [quality[p.source] for p in eligible], n_conv)
        converted.sort(key=lambda p: p.created)
        n_production = min(n_production, len(converted))
        n_direct = m - n_repeat - n_production - len(converted)
        # orders for the workshop come from conversions old enough to be paid for by now, spread over the
        # period, so that the Production board has finished orders and orders in work
        early = [p for p in converted if p.created < self.now - dt.timedelta(days=35)]
        if len(early) >= n_production:
            young = n_production // 3  # the youngest ones are still being made
            picked = early[len(early) - young:] + rnd.sample(early[:len(early) - young], n_production - young)
        else:
            picked = converted[:n_production]
        chosen = set(map(id, picked))
        for plan in converted:
            plan.deal_plan = "production" if id(plan) in chosen else "sale"
            self._plan_conversion(plan)
        for plan in self.lead_plans:
            if not plan.deal_plan:
                self._plan_lead(plan)
            self.spawn(self.lead_script(plan))
        for _ in range(max(0, n_direct)):
            self.spawn(self.direct_sale_script(self._random_time(3, recent=True)))
        for _ in range(n_repeat):
            self.spawn(self.repeat_script(self._random_time(5)))
        # planned calls to regular clients (F22): done ones over the period and the coming ones
        for _ in range(max(2, m // 6)):
            self.spawn(self.regular_call_script(self._random_time(0)))
        for _ in range(max(2, m // 12)):
            self.spawn(self.regular_call_script(self.now - dt.timedelta(hours=self.rnd.randrange(1, 24 * 7)),
                                                ahead=True))

    def _random_time(self, days_before_now: int, recent: bool = False) -> dt.datetime:
        span = (self.now - dt.timedelta(days=days_before_now)) - self.start
        x = max(self.rnd.random(), self.rnd.random()) if recent else self.rnd.random()
        return self.working(self.start + span * x)

    LEAD_DELAYS = {  # hours from the previous step: (min, max), log-uniform
        "assigned": (0.05, 6), "qualified": (1, 36), "meeting_set": (3, 72), "meeting_held": (20, 170),
        "meeting_failed": (20, 120), "proposal": (3, 48), "consent": (24, 240), "convert": (3, 72), "fail": (1, 96),
    }
    FLOW = ("assigned", "qualified", "meeting_set", "meeting_held", "proposal", "consent")

    def _times(self, start: dt.datetime, route: list[str], delays: dict, limit: dt.datetime | None) -> list[dt.datetime]:
        times, t = [], start
        for step in route:
            key = "fail" if step.startswith("fail:") or step.startswith("lost:") else step
            lo, hi = delays.get(key, (2, 72))
            t = self.working(t + dt.timedelta(hours=log_uniform(self.rnd, lo, hi)))
            times.append(t)
        if limit is not None and times and times[-1] > limit:
            span = (limit - start).total_seconds()
            total = (times[-1] - start).total_seconds()
            factor = max(span, 60.0) / total
            times = [start + (x - start) * factor for x in times]
        return times

    def _with_meeting_loops(self, route: list[str]) -> list[str]:
        """Half of the clients need no visit (small orders go from qualification straight to a proposal);
        some meetings fail and loop back to «Квалифицирован» (F10)."""
        if "proposal" in route and self.rnd.random() < 0.5:
            route = [s for s in route if s not in ("meeting_set", "meeting_held")]
        out = []
        for step in route:
            if step == "meeting_held" and self.rnd.random() < 0.12:
                out += ["meeting_failed", "meeting_set"]
            out.append(step)
        return out

    def _plan_conversion(self, plan: LeadPlan) -> None:
        plan.route = self._with_meeting_loops(list(self.FLOW)) + ["convert"]
        margin = dt.timedelta(days=25 if plan.deal_plan == "production" else 1)
        plan.times = self._times(plan.created, plan.route, self.LEAD_DELAYS, self.now - margin)

    def _plan_lead(self, plan: LeadPlan) -> None:
        rnd = self.rnd
        if plan.duplicate and rnd.random() < 0.8:
            plan.route = ["fail:duplicate"]
        elif rnd.random() < 0.8:
            mix = FAILURE_MIX.get(plan.source, FAILURE_MIX["default"])
            reason = rnd.choices(list(mix), weights=list(mix.values()))[0]
            from_stage = rnd.choice(LEAD_FAILURES[reason][0])
            flow = ["new", *self.FLOW]
            route = flow[1:flow.index(from_stage) + 1]
            plan.route = self._with_meeting_loops(route) + [f"fail:{reason}"]
        else:  # stays in work (or stalled)
            depth = rnd.choices(range(len(self.FLOW) + 1), weights=[30, 25, 15, 10, 8, 7, 5])[0]
            plan.route = self._with_meeting_loops(list(self.FLOW[:depth]))
        plan.times = self._times(plan.created, plan.route, self.LEAD_DELAYS, None)

    # ---- scripts: each yields the moment of its next step, then does it ----

    def task(self, actor: str, title: str, record: tuple[int, int], deadline: dt.datetime, responsible: str,
             description: str = "") -> int:
        from voronka.activities.actions import create_task
        from voronka.activities.models import Task

        task = create_task(self.actor(actor), title=title[:255], description=description, deadline=deadline,
                           responsible=self.users[responsible].pk, entity_type_id=record[0], entity_id=record[1])
        Task.objects.filter(pk=task.pk).update(created_at=self.clock, updated_at=self.clock)
        self.open_tasks[record].append(task.pk)
        self.counts["tasks"] += 1
        return task.pk

    def close_tasks(self, actor: str, record: tuple[int, int], result: str) -> None:
        from voronka.activities.actions import complete_task
        from voronka.activities.models import Task

        for task_id in self.open_tasks.pop(record, []):
            complete_task(self.actor(actor), task_id, result=result)
            Task.objects.filter(pk=task_id).update(completed_at=self.clock, updated_at=self.clock)

    def comment(self, actor: str, record: tuple[int, int], text: str) -> None:
        from voronka.activities.actions import add_comment

        add_comment(self.actor(actor), entity_type_id=record[0], entity_id=record[1], text=text)
        self.counts["comments"] += 1

    def name_of(self, username: str) -> str:
        u = self.users[username]
        return f"{u.first_name} {u.last_name}"

    def lead_script(self, plan: LeadPlan) -> Step:
        from voronka.leads.actions import convert_lead, move_lead

        rnd = self.rnd
        rec = (LEAD, plan.lead_id)
        operator = next((n for n in self.operators if self.users[n].pk == plan.data.get("responsible")), None)
        manager = rnd.choice(self.managers)
        owner = operator
        for step, when in zip(plan.route, plan.times, strict=True):
            if step == "assigned" and plan.source == "call":
                continue  # created in «Назначен менеджер» already
            if when > self.now:
                return
            yield when
            if step == "assigned":
                if operator is None:  # the head distributes free leads (F14)
                    operator = owner = rnd.choice(self.operators)
                    move_lead(self.actor("cc_head"), plan.lead_id, stage="assigned",
                              fields={"responsible": self.users[operator].pk})
                else:
                    move_lead(self.actor(operator), plan.lead_id, stage="assigned")
                if plan.route[-1] == "assigned" or rnd.random() < 0.05:  # open ones keep (maybe overdue) tasks
                    self.task(operator, f"Квалифицировать обращение: {plan.data['title']}", rec,
                              when + dt.timedelta(hours=4), operator,
                              "Уточнить потребность, объём, сроки и регион доставки.")
            elif step == "qualified":
                fields = {} if plan.has_phone else {"phones": [plan.phone]}
                self.close_tasks(owner, rec, "Потребность подтверждена")
                move_lead(self.actor(owner), plan.lead_id, stage="qualified", fields=fields)
                plan.has_phone = True
            elif step == "meeting_set":
                if owner != manager:  # the operator hands a live client over to a sales expert (F17)
                    move_lead(self.actor(owner), plan.lead_id, stage="meeting_set",
                              fields={"responsible": self.users[manager].pk})
                    self.comment(owner, rec, f"Клиент готов обсудить заказ, передаю менеджеру {self.name_of(manager)}.")
                    owner = manager
                else:
                    move_lead(self.actor(owner), plan.lead_id, stage="meeting_set")
                meeting = self.working(when + dt.timedelta(days=rnd.randrange(1, 6)))
                place = plan.data.get("company_name") or f"{plan.data['last_name']} {plan.data['first_name']}"
                self.task(manager, f"Встреча: {place}", rec, meeting, manager,
                          "Показать образцы, уточнить объём и условия оплаты.")
            elif step == "meeting_failed":
                self.close_tasks(owner, rec, "Встреча не состоялась")
                move_lead(self.actor(owner), plan.lead_id, stage="qualified")
                self.comment(owner, rec, rnd.choice(("Клиент перенёс встречу, согласуем новую дату.",
                                                     "Встреча сорвалась: механик на выезде. Перезвонить.")))
            elif step == "meeting_held":
                self.close_tasks(owner, rec, "Встреча проведена")
                move_lead(self.actor(owner), plan.lead_id, stage="meeting_held")
                if rnd.random() < 0.35:
                    self.comment(owner, rec, rnd.choice((
                        f"Встреча прошла хорошо: показали образцы, клиент просит КП на {plan.info['qty']} шт.",
                        "Обсудили отсрочку платежа, нужен расчёт с доставкой.",
                        "Главный механик подтвердил потребность, ждёт КП до пятницы.")))
            elif step == "proposal":
                fields, mover = {"opportunity": str(plan.info["amount"])}, owner
                if owner != manager:  # no visit needed: the operator hands over with the proposal request
                    fields["responsible"] = self.users[manager].pk
                    self.comment(owner, rec, f"Нужен расчёт КП, передаю менеджеру {self.name_of(manager)}.")
                    owner = manager
                move_lead(self.actor(mover), plan.lead_id, stage="proposal", fields=fields)
                if plan.route[-1] == "proposal" or rnd.random() < 0.3:
                    self.task(owner, "Получить обратную связь по КП", rec, self.working(when + dt.timedelta(days=3)),
                              owner)
            elif step == "consent":
                self.close_tasks(owner, rec, "Клиент согласен с условиями")
                move_lead(self.actor(owner), plan.lead_id, stage="consent")
            elif step == "convert":
                self.close_tasks(owner, rec, "Лид сконвертирован")
                result = convert_lead(
                    self.actor(owner), plan.lead_id, company_id=plan.base_company,
                    deal_pipeline=self.pipelines[(DEAL, "sales")].pk, deal_stage="consent",
                    deal_fields={"begin_date": when.date().isoformat(),
                                 "close_date": (when + dt.timedelta(days=14)).date().isoformat()})
                self.counts["deals"] += 1
                self.counts["contacts"] += 1 if result["contact"] else 0
                self.counts["companies"] += 1 if result["company"] and not plan.base_company else 0
                self.spawn(self.sales_script(result["deal"], owner, when, plan.deal_plan == "production"))
            elif step.startswith("fail:"):
                reason = step[5:]
                actor = owner or "cc_head"
                self.close_tasks(actor, rec, "Лид закрыт")
                move_lead(self.actor(actor), plan.lead_id, stage=reason)
                if rnd.random() < (0.15 if reason == "junk" else 0.4):
                    self.comment(actor, rec, rnd.choice(LEAD_FAILURES[reason][1]))

    SALE_DELAYS = {"assigned": (0.5, 24), "meeting": (4, 72), "proposal": (24, 120), "consent": (24, 200),
                   "contract": (4, 72), "won": (48, 260), "fail": (24, 240)}

    def sales_script(self, deal, manager: str, start: dt.datetime, production: bool, route=None) -> Step:
        from voronka.deals.actions import create_deals, move_deal

        rnd = self.rnd
        rec = (DEAL, deal.pk) if deal is not None else None
        if route is None:
            lost = f"lost:{rnd.choice(list(SALES_FAILURES))}"
            if production:
                route = ["contract", "won"]
            elif start > self.now - dt.timedelta(days=40) and rnd.random() < 0.6:
                route = ["contract"] if rnd.random() < 0.6 else []  # recent deals still in work
            else:
                r = rnd.random()
                route = ["contract", "won"] if r < 0.45 else (["contract", lost] if r < 0.8 else [lost])
        limit = self.now - dt.timedelta(days=8) if production else None
        times = self._times(start, route, self.SALE_DELAYS, limit)
        for step, when in zip(route, times, strict=True):
            if when > self.now:
                return
            yield when
            if step == "create":  # a deal the manager opens directly, e.g. a tender of a known client
                company = rnd.choice(self.companies)
                contact = next((c for c in self.contacts if c.company_id == company.pk), None)
                info = inquiry(rnd)
                [r] = create_deals(self.actor(manager), [{
                    "title": f"{company.name}: {info['what']}", "pipeline": self.pipelines[(DEAL, "sales")].pk,
                    "stage": "free", "company": company.pk, "contact": contact.pk if contact else None,
                    "opportunity": str(info["amount"] * 3), "source": "recommendation", "responsible": None,
                    "comment": f"Тендер: {info['inquiry']}"}])
                if not r.ok:
                    raise RuntimeError(f"demo deal rejected: {r.error.as_dict()}")
                deal, rec = r.obj, (DEAL, r.obj.pk)
                self.counts["deals"] += 1
            elif step == "assigned":
                move_deal(self.actor("closers_head"), deal.pk, stage="assigned",
                          fields={"responsible": self.users[manager].pk})
            elif step in ("meeting", "proposal", "consent"):
                move_deal(self.actor(manager), deal.pk, stage=step)
            elif step == "contract":
                move_deal(self.actor(manager), deal.pk, stage="contract")
                if rnd.random() < 0.5 or when > self.now - dt.timedelta(days=20):
                    self.task(manager, "Подписать договор и проконтролировать оплату", rec,
                              self.working(when + dt.timedelta(days=5)), manager)
            elif step == "won":
                self.close_tasks(manager, rec, "Оплата получена")
                move_deal(self.actor(manager), deal.pk, stage="won")
                if production:
                    self.spawn(self.production_script(deal, manager, when))
            elif step.startswith("lost:"):
                reason = step[5:]
                self.close_tasks(manager, rec, "Сделка закрыта")
                move_deal(self.actor(manager), deal.pk, stage=reason)
                self.comment(manager, rec, rnd.choice(SALES_FAILURES[reason]))

    def direct_sale_script(self, start: dt.datetime) -> Step:
        """A deal a manager opens directly for a known client (a tender, an order by e-mail)."""
        rnd = self.rnd
        tail = ["meeting", "proposal", "consent", "contract"]
        cut = rnd.choices(range(len(tail) + 1), weights=[10, 10, 20, 20, 40])[0]
        route = ["create", "assigned", *tail[:cut]]
        if cut == len(tail):
            route.append("won" if rnd.random() < 0.6 else f"lost:{rnd.choice(list(SALES_FAILURES))}")
        elif rnd.random() < 0.5:
            route.append(f"lost:{rnd.choice(list(SALES_FAILURES))}")
        yield from self.sales_script(None, rnd.choice(self.managers), start, False, route=route)

    PRODUCTION_DELAYS = {"create": (2, 20), "assigned": (1, 24), "planned": (24, 170), "stage1": (96, 290),
                         "stage2": (96, 290), "stage3": (96, 290), "shipped": (24, 120), "defects": (24, 96),
                         "cancelled": (24, 200), "complaint": (24, 240), "diagnostics": (4, 48),
                         "fixing": (24, 120), "checking": (48, 170), "resolved": (24, 72), "rejected": (24, 96),
                         "back": (1, 8)}

    def production_script(self, sale, manager: str, start: dt.datetime) -> Step:
        """The deal goes on in the Production pipeline (F24); defects take it to Complaints and back (F25)."""
        from voronka.core.recordkit import set_observers
        from voronka.deals.actions import DEAL as DEAL_SPEC
        from voronka.deals.actions import create_deals, move_deal

        rnd = self.rnd
        route = ["create", "assigned", "planned", "stage1", "stage2", "stage3"]
        if sale.opportunity < 150_000:  # a small order is shipped in one go
            route = route[:4]
        r = rnd.random()
        if r < 0.12:
            route += ["defects", "complaint", "diagnostics", "fixing", "checking"]
            route += ["resolved", "back"] if rnd.random() < 0.8 else ["rejected"]
        elif r < 0.16:
            route = route[:3] + ["cancelled"]
        else:
            route.append("shipped")
        times = self._times(start, route, self.PRODUCTION_DELAYS, None)
        master, support = rnd.choice(self.masters), rnd.choice(self.support)
        deal = rec = None
        for step, when in zip(route, times, strict=True):
            if when > self.now:
                return
            yield when
            if step == "create":
                [res] = create_deals(self.actor(manager), [{
                    "title": f"Производство: {sale.title}"[:255], "pipeline": self.pipelines[(DEAL, "production")].pk,
                    "stage": "free", "contact": sale.contact_id, "company": sale.company_id, "lead": sale.lead_id,
                    "opportunity": str(sale.opportunity), "source": sale.source, "responsible": None,
                    "comment": f"Заказ по сделке продажи #{sale.pk}", "custom": {"uf_sales_deal": sale.pk}}])
                if not res.ok:
                    raise RuntimeError(f"demo deal rejected: {res.error.as_dict()}")
                deal, rec = res.obj, (DEAL, res.obj.pk)
                # the sales manager follows the order (F30): an observer may read it and is told of its stages
                set_observers(self.actor(manager), DEAL_SPEC, deal.pk, [self.users[manager].pk])
                self.counts["deals"] += 1
            elif step == "assigned":
                move_deal(self.actor("prod_head"), deal.pk, stage="assigned",
                          fields={"responsible": self.users[master].pk})
            elif step == "planned":
                ship = self.working(when + dt.timedelta(days=rnd.randrange(10, 30)))
                move_deal(self.actor(master), deal.pk, stage="planned",
                          fields={"custom": {"uf_delivery_date": ship.date().isoformat()}})
                self.task(master, "Запустить заказ в производство", rec, self.working(when + dt.timedelta(days=1)),
                          master)
            elif step in ("stage1", "stage2", "stage3", "shipped", "cancelled"):
                self.close_tasks(master, rec, "Сделано")
                move_deal(self.actor(master), deal.pk, stage=step)
            elif step == "defects":  # closing with defects asks what they are (the complaint's first field)
                move_deal(self.actor(master), deal.pk, stage="defects",
                          fields={"custom": {"uf_defect": DEFECTS[deal.pk % len(DEFECTS)]}})
            elif step == "complaint":
                defect = rnd.choice(DEFECTS)
                move_deal(self.actor("support_head"), deal.pk, pipeline=self.pipelines[(DEAL, "complaints")].pk,
                          stage="new", fields={"responsible": self.users[support].pk, "custom": {"uf_defect": defect}})
                self.comment("support_head", rec, f"Клиент сообщил о дефекте: {defect.lower()}.")
                self.task(support, "Выехать на диагностику к клиенту", rec, self.working(when + dt.timedelta(days=2)),
                          support)
            elif step in ("diagnostics", "fixing", "checking", "resolved", "rejected"):
                self.close_tasks(support, rec, "Выполнено")
                move_deal(self.actor(support), deal.pk, stage=step)
                if step == "rejected":
                    self.comment(support, rec, "Дефект возник из-за нарушения условий эксплуатации, рекламация отклонена.")
            elif step == "back":  # fixed: the deal returns to its original pipeline
                move_deal(self.actor("support_head"), deal.pk, pipeline=self.pipelines[(DEAL, "production")].pk,
                          stage="shipped")

    def repeat_script(self, start: dt.datetime) -> Step:
        """A known client orders again: a deal straight in the short pipeline (F12)."""
        from voronka.deals.actions import create_repeat_deal, move_deal

        rnd = self.rnd
        farmer = rnd.choice(self.farmers)
        contact = rnd.choice(self.contacts)
        r = rnd.random()
        route = ["create", "invoice", "paid"] if r < 0.6 else (["create", "invoice", "refused"] if r < 0.8 else
                                                               ["create"])
        times = self._times(start, route, {"create": (0.1, 2), "invoice": (2, 48), "paid": (24, 170),
                                           "refused": (48, 240)}, None)
        deal = None
        for step, when in zip(route, times, strict=True):
            if when > self.now:
                return
            yield when
            if step == "create":
                info = inquiry(rnd)
                deal = create_repeat_deal(self.actor(farmer), contact=contact.pk, company=contact.company_id,
                                          title=f"Повторный заказ: {info['what']} ({info['vehicle']})",
                                          opportunity=str(info["amount"]), responsible=self.users[farmer].pk,
                                          source="call", comment=info["inquiry"])
                self.counts["deals"] += 1
            elif step == "invoice":
                move_deal(self.actor(farmer), deal.pk, stage="invoice")
                self.task(farmer, "Проконтролировать оплату счёта", (DEAL, deal.pk),
                          self.working(when + dt.timedelta(days=3)), farmer)
            else:
                self.close_tasks(farmer, (DEAL, deal.pk), "Оплачено" if step == "paid" else "Клиент отказался")
                move_deal(self.actor(farmer), deal.pk, stage=step)
                if step == "refused":
                    self.comment(farmer, (DEAL, deal.pk), "Клиент нашёл дешевле, вернуться через месяц.")

    def regular_call_script(self, start: dt.datetime, ahead: bool = False) -> Step:
        """A planned call to a regular client (F22): done on time, or still open (and maybe overdue)."""
        rnd = self.rnd
        farmer = rnd.choice(self.farmers)
        company = rnd.choice(self.companies)
        yield start
        rec = (COMPANY, company.pk)
        days = rnd.randrange(8, 21) if ahead else rnd.randrange(1, 10)
        deadline = self.working(start + dt.timedelta(days=days))
        self.task(farmer, f"Плановый звонок: {company.name}", rec, deadline, farmer,
                  "Узнать потребность на следующий месяц, предложить новинки.")
        done = self.working(deadline - dt.timedelta(hours=rnd.randrange(1, 20)))
        if done <= self.now and rnd.random() < 0.85:
            yield max(done, start)
            self.close_tasks(farmer, rec, rnd.choice(("Заказ будет в следующем месяце", "Отправил прайс",
                                                      "Клиент доволен, потребности пока нет")))

    # ---- the records' own stamps, from their (already moved) history ----

    def _set_rows(self, model, columns: list[str], rows: list[tuple]) -> None:
        """``UPDATE table SET col1=%s, … WHERE id=%s`` for many rows at once: timestamps only, as
        ``filter(pk=…).update(…)`` would, in one executemany."""
        if not rows:
            return
        q = connection.ops.quote_name
        adapt = connection.ops.adapt_datetimefield_value
        sets = ", ".join(f"{q(c)} = %s" for c in columns)
        sql = f"UPDATE {q(model._meta.db_table)} SET {sets} WHERE {q('id')} = %s"
        params = [tuple(adapt(v) if isinstance(v, dt.datetime) else v for v in row) for row in rows]
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)

    def finish_timestamps(self) -> None:
        from voronka.core.models import TimelineEntry
        from voronka.deals.models import Deal
        from voronka.parties.models import Company, Contact
        from voronka.pipelines.models import StageHistory

        from .models import Lead

        rows = StageHistory.objects.order_by("entity_type_id", "entity_id", "id").values_list(
            "id", "entity_type_id", "entity_id", "moved_at", "from_stage_id", "semantics")
        seconds_rows, last = [], {}
        moves: dict[tuple[int, int], list] = defaultdict(list)
        for pk, type_id, entity_id, moved_at, from_stage, semantics in rows.iterator(chunk_size=5000):
            key = (type_id, entity_id)
            prev = last.get(key)
            seconds = int((moved_at - prev).total_seconds()) if prev is not None and from_stage else None
            seconds_rows.append((seconds, pk))
            last[key] = moved_at
            moves[key].append((moved_at, semantics))
        self._set_rows(StageHistory, ["seconds_in_previous"], seconds_rows)
        stamps: dict[tuple[int, int], dict] = defaultdict(dict)
        for type_id, entity_id, kind, at in TimelineEntry.objects.values_list(
                "entity_type_id", "entity_id", "kind", "created_at").iterator(chunk_size=5000):
            s = stamps[(type_id, entity_id)]
            s["updated"] = max(s.get("updated", at), at)
            if kind == "created":
                s["created"] = min(s.get("created", at), at)
            elif kind == "converted":
                s["converted"] = at
        for model, type_id in ((Lead, LEAD), (Deal, DEAL)):
            out = []
            for pk in model.objects.values_list("id", flat=True):
                hist = moves.get((type_id, pk), [])
                s = stamps.get((type_id, pk), {})
                created = s.get("created") or (hist[0][0] if hist else self.now)
                in_stage = hist[-1][0] if hist else created
                closed = in_stage if hist and hist[-1][1] != "process" else None
                updated = max(s.get("updated", created), in_stage)
                out.append((created, in_stage, closed, updated, *((s.get("converted"),) if model is Lead else ()), pk))
            self._set_rows(model, ["created_at", "stage_changed_at", "closed_at", "updated_at",
                                   *(["converted_at"] if model is Lead else [])], out)
        for model, type_id in ((Contact, CONTACT), (Company, COMPANY)):
            out = []
            for pk in model.objects.values_list("id", flat=True):
                s = stamps.get((type_id, pk), {})
                created = s.get("created", self.now)
                out.append((created, s.get("updated", created), pk))
            self._set_rows(model, ["created_at", "updated_at"], out)


def write_login(password: str, admin: bool = True) -> str:
    path = login_file()
    names = ", ".join(s[0] for s in STAFF)
    first = f"login: admin / password: {password}\n" if admin else \
        "login: admin (it existed before the demo; its password was not changed)\n"
    text = (f"Voronka demo ({COMPANY_NAME})\n{first}"
            f"The demo staff log in with the password {password}: {names}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


def load(*, leads: int = 2000, deals: int = 500, seed: int = 2024, progress=None, now=None) -> Result:
    """Load the demo into an empty database. The caller checks :func:`state` first."""
    import time

    began = time.monotonic()
    demo = Demo(leads=leads, deals=deals, seed=seed, progress=progress, now=now)
    result = demo.load()
    result.seconds = time.monotonic() - began
    return result


def iter_staff() -> Iterable[tuple[str, str]]:
    for username, first, last, _middle, position, *_rest in STAFF:
        yield username, f"{first} {last} — {position}"
