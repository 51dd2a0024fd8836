"""``mlops login`` / ``logout`` / ``whoami``: a token kept for later CLI calls."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from mlops.cli.common import console, fail
from mlops.credentials import credentials_path, load_credentials, save_credentials

if TYPE_CHECKING:
    import httpx


def login(
    url: Annotated[str, typer.Option(help="Platform URL, e.g. http://127.0.0.1:8000")],
    username: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
) -> None:
    """Log in and keep the token (file mode 600) for later CLI calls."""
    import httpx

    base = url.rstrip("/")
    try:
        response = httpx.post(
            f"{base}/api/v1/auth/login",
            json={"username": username, "password": password},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach {base}: {exc}")
    if response.status_code != 200:
        fail(_error_message(response))
    body = response.json()
    path = save_credentials(
        {
            "url": base,
            "username": username,
            "access_token": body["access_token"],
            "expires_at": time.time() + body["expires_in"],
        }
    )
    console.print(f"logged in to {base} as [bold]{username}[/]; token kept in {path}")


def logout() -> None:
    """Revoke the kept token and forget it."""
    import httpx

    creds = load_credentials()
    if creds is None:
        console.print("not logged in")
        return
    try:
        httpx.post(
            f"{creds['url']}/api/v1/auth/logout",
            headers={"Authorization": f"Bearer {creds['access_token']}"},
            timeout=30,
        )
    except httpx.HTTPError:
        pass  # the local copy goes anyway; the token still expires on its own
    credentials_path().unlink(missing_ok=True)
    console.print("logged out")


def whoami() -> None:
    """Show who the kept token belongs to."""
    import httpx

    creds = load_credentials()
    if creds is None:
        fail("not logged in; run `mlops login --url URL`")
    response = httpx.get(
        f"{creds['url']}/api/v1/users/me",
        headers={"Authorization": f"Bearer {creds['access_token']}"},
        timeout=30,
    )
    if response.status_code != 200:
        fail(_error_message(response))
    me = response.json()
    console.print(f"{me['username']} ({me['role']}) at {creds['url']}")


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{error['message']} ({response.status_code} {error['code']})"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"
