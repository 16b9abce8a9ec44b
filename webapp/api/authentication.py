"""Bearer API keys for the SDK and workers; the browser uses the session."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from webapp.core import lockout
from webapp.core.keys import check_api_key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").strip()
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower():
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <key>'")
        key, genuine = check_api_key(parts[1])
        if key is None:
            if not genuine:
                wait = lockout.refuse_guess(request)
                if wait:
                    raise exceptions.Throttled(
                        wait, detail="too many failed API keys from this address; retry later"
                    )
            raise exceptions.AuthenticationFailed("invalid, expired or revoked API key")
        return key.user, key

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Describes the key in the OpenAPI schema (`Authorization: Bearer pk_...`)."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: `Authorization: Bearer pk_<prefix>_<secret>`.",
        }
