"""Identity: the people who use Watchtower, how they prove who they are (password, company sign-in
through OpenID Connect, personal access tokens) and the roles they hold.

- `oidc`: Company sign-in (OpenID Connect): map an identity provider's claim to Watchtower roles.
- `tokens`: Personal access tokens for scripts, the command line and the scoring API.
- `users`: Users, roles and passwords (scrypt with a per-user salt; never stored in clear).
"""

from core.lazy import reexport

__getattr__, __dir__, __all__ = reexport(__name__, {
    "oidc": (
        "sign_in",
    ),
    "tokens": (
        "TokenRead", "create_token", "list_tokens", "revoke_token", "authenticate_token",
    ),
    "users": (
        "UserRead", "create_user", "provision_company_user", "create_first_admin", "change_roles",
        "deactivate_user", "get_user", "list_users", "users_with_role", "authenticate",
        "verify_credentials", "record_sign_out", "record_sign_in",
    ),
})
