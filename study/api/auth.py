"""POST /api/auth/token: trade username and password for a DRF token."""

from rest_framework.authtoken.views import ObtainAuthToken


class ObtainTokenView(ObtainAuthToken):
    pass
