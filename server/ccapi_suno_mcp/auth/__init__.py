"""Sign-in with the team's identity provider: the HTTP transport as an OAuth 2.1 resource server.

The provider (Keycloak, Entra ID, Okta, Auth0...) issues the tokens; this package only checks them
(`TokenVerifier`), serves the metadata that leads clients to the provider, and answers the challenges
(`OAuthMiddleware`). Each person is a principal from the token's issuer and subject.
"""

from ccapi_suno_mcp.auth._keys import KeysUnavailable, SigningKeys, provider_jwks
from ccapi_suno_mcp.auth._middleware import METADATA_PREFIX, OAuthMiddleware, metadata_url
from ccapi_suno_mcp.auth._verifier import ALGORITHMS, LEEWAY, Introspector, Person, Refusal, TokenVerifier
from ccapi_suno_mcp.settings import OAuthSettings

__all__ = [
    "ALGORITHMS",
    "LEEWAY",
    "METADATA_PREFIX",
    "Introspector",
    "KeysUnavailable",
    "OAuthMiddleware",
    "Person",
    "Refusal",
    "SigningKeys",
    "TokenVerifier",
    "build_verifier",
    "metadata_url",
    "provider_jwks",
]


def build_verifier(oauth: OAuthSettings) -> TokenVerifier:
    """The verifier of the provider `oauth` names: its keys (from the metadata or `jwks_url`), and introspection
    when configured."""
    introspector = None
    if oauth.introspection_url and oauth.client_id and oauth.client_secret:
        introspector = Introspector(oauth.introspection_url, oauth.client_id, oauth.client_secret)
    return TokenVerifier(oauth, SigningKeys(provider_jwks(oauth.issuer, oauth.jwks_url)), introspector)
