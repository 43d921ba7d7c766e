"""The admin's login form."""

from django.contrib.admin.forms import AdminAuthenticationForm

from studyserver.throttling import account_sign_in


class ThrottledAuthenticationForm(AdminAuthenticationForm):
    """Django's, its credentials checked inside the account's sign-in throttle with the username as the form
    cleaned it for `authenticate()` (trimmed, NFKC): SignInLocked when the account is locked (a 429 from
    StudyAdminSite.login)."""

    def clean(self) -> dict:
        if not self.cleaned_data.get("username") or not self.cleaned_data.get("password"):
            return super().clean()  # (nothing is authenticated)
        with account_sign_in(self.cleaned_data["username"]):
            return super().clean()
