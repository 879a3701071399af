"""``geo user …``: logins and API keys."""

from __future__ import annotations

from typing import Optional

import typer

from geo.cli._app import app, console, fail as _fail


user_app = typer.Typer(help="Users and API keys.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(
    username: str,
    role: str = typer.Option(..., help="admin, planner, dispatcher, worker or leader."),
    jurisdiction: str = typer.Option(..., help="12-digit code of the subtree the user may see and change."),
    password: Optional[str] = typer.Option(None, help="Password (default: prompt; or GEO_NEW_PASSWORD)."),
    full_name: Optional[str] = typer.Option(None),
    replace: bool = typer.Option(False, help="Reset an existing user."),
) -> None:
    """Create a login scoped to a jurisdiction subtree."""
    import os

    from geo.db.session import cli_actor, get_engine
    from geo.db.users import UserError, add_user

    pw = password or os.environ.get("GEO_NEW_PASSWORD") or typer.prompt("password", hide_input=True,
                                                                         confirmation_prompt=True)
    try:
        uid = add_user(get_engine(), username, pw, role, jurisdiction, actor=cli_actor(), full_name=full_name,
                       replace=replace)
    except UserError as exc:
        _fail(str(exc), 2)
    console.print(f"user {username!r} ({role}, {jurisdiction}) saved as id {uid}")


@user_app.command("disable")
def user_disable(
    username: str,
    enable: bool = typer.Option(False, "--enable", help="Re-enable instead (old tokens stay invalid)."),
) -> None:
    """Disable a login: its tokens are refused by every API process within a second."""
    from geo.db.session import cli_actor, get_engine
    from geo.db.users import UserError, set_user_active

    try:
        uid = set_user_active(get_engine(), username, enable, actor=cli_actor())
    except UserError as exc:
        _fail(str(exc), 2)
    console.print(f"user {username!r} (id {uid}) {'enabled' if enable else 'disabled; its tokens are revoked'}")


@user_app.command("apikey")
def user_apikey(
    name: Optional[str] = typer.Argument(None, help="Name of the device or integration of a new key."),
    role: Optional[str] = typer.Option(None, help="Role of the device/integration (e.g. dispatcher for the 12345 "
                                                  "hotline)."),
    jurisdiction: Optional[str] = typer.Option(None, help="12-digit code of its subtree."),
    revoke: Optional[str] = typer.Option(None, "--revoke", metavar="NAME|ID",
                                         help="Revoke the active key with this name or id instead."),
) -> None:
    """Create an API key for a device or integration (the key is printed once), or --revoke one."""
    from geo.db.session import cli_actor, get_engine
    from geo.db.users import UserError, add_api_key, revoke_api_key

    if revoke is not None:
        if name or role or jurisdiction:
            _fail("--revoke NAME|ID takes no other argument or option", 2)
        try:
            ids = revoke_api_key(get_engine(), revoke, actor=cli_actor())
        except UserError as exc:
            _fail(str(exc), 2)
        console.print(f"API key {ids[0]} ({revoke!r}) revoked; every API process refuses it within a second")
        return
    if not (name and role and jurisdiction):
        _fail("a new API key needs NAME, --role and --jurisdiction (or --revoke NAME|ID)", 2)
    try:
        key = add_api_key(get_engine(), name, role, jurisdiction, actor=cli_actor())
    except UserError as exc:
        _fail(str(exc), 2)
    console.print(f"API key for {name!r} (store it now, it is not shown again):")
    print(key)
