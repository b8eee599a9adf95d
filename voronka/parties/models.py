from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from voronka.core import entity_types
from voronka.core.records import Record


class Communication(models.Model):
    """A phone, e-mail, messenger handle or web address of any record (lead, contact, company), normalised
    for lookup."""

    class Kind(models.TextChoices):
        PHONE = "phone", _("Phone")
        EMAIL = "email", _("E-mail")
        IM = "im", _("Messenger")
        WEB = "web", _("Site")

    class ValueType(models.TextChoices):
        WORK = "work", _("Work")
        MOBILE = "mobile", _("Mobile")
        HOME = "home", _("Home")
        FAX = "fax", _("Fax")
        OTHER = "other", _("Other")
        # messengers (Bitrix24's IM vocabulary plus WhatsApp and MAX)
        TELEGRAM = "telegram", "Telegram"
        WHATSAPP = "whatsapp", "WhatsApp"
        VIBER = "viber", "Viber"
        VK = "vk", _("VK")
        MAX = "max", "MAX"
        SKYPE = "skype", "Skype"
        BITRIX24 = "bitrix24", "Bitrix24"
        OPENLINE = "openline", _("Open channel")
        IMOL = "imol", _("Open line")
        ICQ = "icq", "ICQ"
        MSN = "msn", "MSN"
        JABBER = "jabber", "Jabber"
        # sites
        LIVEJOURNAL = "livejournal", "LiveJournal"
        TWITTER = "twitter", "Twitter"

    entity_type_id = models.PositiveIntegerField()
    entity_id = models.BigIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    value_type = models.CharField(max_length=20, choices=ValueType.choices, default=ValueType.WORK)
    value = models.CharField(max_length=254)  # as the person typed it
    normalized = models.CharField(max_length=254)  # E.164, a lower-cased e-mail, handle or address
    sort = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["kind", "normalized"], name="comm_lookup_idx"),
            models.Index(fields=["entity_type_id", "entity_id"], name="comm_owner_idx"),
        ]
        ordering = ["sort", "id"]

    def __str__(self) -> str:
        return self.value


class Company(Record):
    ENTITY_TYPE_ID = entity_types.COMPANY

    class CompanyType(models.TextChoices):
        CLIENT = "client", _("Client")
        CONTRACTOR = "contractor", _("Contractor")
        GOVERNMENT = "government", _("Government")
        PARTNER = "partner", _("Partner")
        OTHER = "other", _("Other")

    name = models.CharField(_("name"), max_length=255)
    company_type = models.CharField(_("type"), max_length=20, choices=CompanyType.choices, default=CompanyType.CLIENT)
    industry = models.CharField(_("industry"), max_length=100, blank=True)
    legal_address = models.CharField(_("legal address"), max_length=500, blank=True)
    actual_address = models.CharField(_("actual address"), max_length=500, blank=True)
    site = models.CharField(_("site"), max_length=255, blank=True)
    employees = models.CharField(_("employees"), max_length=50, blank=True)
    revenue = models.DecimalField(_("annual revenue"), max_digits=18, decimal_places=2, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="RUB")
    comment = models.TextField(_("comment"), blank=True)
    source = models.CharField(_("source"), max_length=50, blank=True)

    class Meta:
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        indexes = [
            models.Index(fields=["name"], name="company_name_idx"),
            models.Index(fields=["responsible", "id"], name="company_resp_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class BankRequisite(models.Model):
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="requisites")
    name = models.CharField(_("name"), max_length=200, blank=True)
    inn = models.CharField(_("INN"), max_length=12, blank=True)
    kpp = models.CharField(_("KPP"), max_length=9, blank=True)
    ogrn = models.CharField(_("OGRN"), max_length=15, blank=True)
    bank_name = models.CharField(_("bank"), max_length=200, blank=True)
    bik = models.CharField(_("BIK"), max_length=9, blank=True)
    account = models.CharField(_("account"), max_length=20, blank=True)
    corr_account = models.CharField(_("correspondent account"), max_length=20, blank=True)

    class Meta:
        verbose_name = _("bank requisites")
        verbose_name_plural = _("bank requisites")
        indexes = [models.Index(fields=["inn"], name="requisite_inn_idx")]  # the importer matches companies by INN

    def __str__(self) -> str:
        return self.name or self.bank_name


class Contact(Record):
    ENTITY_TYPE_ID = entity_types.CONTACT

    class Gender(models.TextChoices):
        UNKNOWN = "", _("Not set")
        MALE = "m", _("Male")
        FEMALE = "f", _("Female")

    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    middle_name = models.CharField(_("middle name"), max_length=100, blank=True)
    company = models.ForeignKey(Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts",
                                verbose_name=_("company"))
    position = models.CharField(_("position"), max_length=200, blank=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    gender = models.CharField(_("gender"), max_length=1, choices=Gender.choices, blank=True, default="")
    city = models.CharField(_("city"), max_length=100, blank=True)
    address = models.CharField(_("address"), max_length=500, blank=True)
    behaviour_notes = models.TextField(_("behaviour notes"), blank=True)
    solvency = models.CharField(_("solvency category"), max_length=20, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    source = models.CharField(_("source"), max_length=50, blank=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        indexes = [
            models.Index(fields=["last_name", "first_name"], name="contact_name_idx"),
            models.Index(fields=["responsible", "id"], name="contact_resp_idx"),
        ]

    def __str__(self) -> str:
        return self.full_name or f"#{self.pk}"

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.last_name, self.first_name, self.middle_name) if p)
