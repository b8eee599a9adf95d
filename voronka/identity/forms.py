from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from voronka.core.clientip import client_ip

from .auth import is_locked


class LoginForm(AuthenticationForm):
    """Username, password and, for users who set it up, a one-time code. Every active user may sign in."""

    otp = forms.CharField(label=_("One-time code"), required=False, max_length=10,
                          help_text=_("Only if you enabled the second factor."),
                          widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}))

    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": _("Too many failed attempts. Wait 15 minutes and try again."),
    }

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            if is_locked(username, client_ip(self.request)):
                raise forms.ValidationError(self.error_messages["locked"], code="locked")
            self.user_cache = authenticate(self.request, username=username, password=password,
                                           otp=self.cleaned_data.get("otp"))
            if self.user_cache is None:
                if is_locked(username, client_ip(self.request)):
                    raise forms.ValidationError(self.error_messages["locked"], code="locked")
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class AdminLoginForm(LoginForm):
    """The Django admin (the data browser) is for staff only."""

    error_messages = {**LoginForm.error_messages, **AdminAuthenticationForm.error_messages}
    required_css_class = "required"

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not user.is_staff:
            raise forms.ValidationError(self.error_messages["invalid_login"], code="invalid_login",
                                        params={"username": self.username_field.verbose_name})
