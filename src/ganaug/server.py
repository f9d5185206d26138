"""`make server`: a team's MLflow tracking server, and its users.

    python -m ganaug.server serve                       # 127.0.0.1:5000, this machine only
    python -m ganaug.server serve --host 0.0.0.0        # open to the network: always with logins (basic auth)
    python -m ganaug.server add-user alice              # the admin adds a user (password: asked, $GANAUG_NEW_PASSWORD)
    python -m ganaug.server grant alice ganaug          # ... and lets her log runs to experiment `ganaug`

A server bound to anything but loopback runs MLflow's basic-auth app: every request needs a user name and
password, a new experiment belongs to its creator, and everyone else may only read it until granted more. The
admin's password comes from $MLFLOW_AUTH_ADMIN_PASSWORD or the git-ignored file `.mlflow-admin-password`, never
from git; MLflow sets it when the user store is created. Every client, the pipeline's stages included, logs in
the MLflow way: $MLFLOW_TRACKING_USERNAME and $MLFLOW_TRACKING_PASSWORD (the admin too, for add-user and grant).
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import os
import subprocess
import sys
from pathlib import Path

from ganaug.errors import GanaugError

ADMIN_PASSWORD_FILE = Path(".mlflow-admin-password")
AUTH_CONFIG = Path("mlflow-auth.ini")
AUTH_DB = Path("mlflow-auth.db")
SECRET_KEY_FILE = Path(".mlflow-server-secret")  # signs the login forms' CSRF tokens: made once, kept out of git
# a new experiment is its creator's; the others may read it (compare runs) but not change it until granted
DEFAULT_PERMISSION = "READ"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def admin_password(auth_db: Path) -> str | None:
    """The admin's password for a new user store: $MLFLOW_AUTH_ADMIN_PASSWORD, else the git-ignored file. An
    existing store keeps the admin it has (MLflow ignores the setting then), so none is needed."""
    password = os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD") or (
        ADMIN_PASSWORD_FILE.read_text().strip() if ADMIN_PASSWORD_FILE.is_file() else ""
    )
    if not password and not auth_db.exists():
        raise GanaugError(
            f"the server needs logins, and its first start needs an admin password: set MLFLOW_AUTH_ADMIN_PASSWORD "
            f"or write it to {ADMIN_PASSWORD_FILE} (git-ignored); never put it in a tracked file"
        )
    return password or None


def secret_key(state: Path) -> str:
    """$MLFLOW_FLASK_SERVER_SECRET_KEY, else a random key made on the first start and kept in a git-ignored file,
    so that a restart keeps the sessions valid."""
    if key := os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY"):
        return key
    path = state / SECRET_KEY_FILE
    if not path.is_file():
        import secrets

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, even briefly
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip()


def server_command(
    host: str, port: int, backend: str, artifacts: str, auth: bool = False, state: Path = Path(".")
) -> tuple[list[str], dict[str, str]]:
    """The `mlflow server` command line and the environment it adds; logins whenever ``host`` is not loopback."""
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    argv = [
        mlflow,
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--backend-store-uri",
        backend,
        "--artifacts-destination",
        artifacts,
    ]
    if not (auth or not is_loopback(host)):
        return argv, {}
    auth_db = state / AUTH_DB
    config = state / AUTH_CONFIG
    config.write_text(
        "[mlflow]\n"
        f"default_permission = {DEFAULT_PERMISSION}\n"
        f"database_uri = sqlite:///{auth_db.resolve()}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(config.resolve()), "MLFLOW_FLASK_SERVER_SECRET_KEY": secret_key(state)}
    if password := admin_password(auth_db):
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = password
    return [*argv, "--app-name", "basic-auth"], env


def auth_client(url: str):
    from mlflow.server import get_app_client

    if not (os.environ.get("MLFLOW_TRACKING_USERNAME") and os.environ.get("MLFLOW_TRACKING_PASSWORD")):
        raise GanaugError("log in as the admin first: set MLFLOW_TRACKING_USERNAME=admin and MLFLOW_TRACKING_PASSWORD")
    return get_app_client("basic-auth", tracking_uri=url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the tracking server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--backend", default="sqlite:///mlflow-server.db", help="any SQLAlchemy URI")
    serve.add_argument("--artifacts", default="mlartifacts", help="a folder, or s3://bucket/path")
    serve.add_argument("--auth", action="store_true", help="logins on loopback too (always on for any other host)")
    serve.add_argument(
        "--allowed-hosts",
        help="Host headers the server answers (mlflow server --allowed-hosts), e.g. "
        "mlflow.example.org: by default MLflow answers only localhost and private addresses",
    )
    url = os.environ.get("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    add = sub.add_parser("add-user", help="create a user (as the admin)")
    add.add_argument("user")
    add.add_argument("--url", default=url)
    grant = sub.add_parser("grant", help="let a user log runs to an experiment (as the admin or its owner)")
    grant.add_argument("user")
    grant.add_argument("experiment")
    grant.add_argument("--permission", default="EDIT", choices=["READ", "EDIT", "MANAGE"])
    grant.add_argument("--url", default=url)
    args = parser.parse_args(argv)

    if args.command == "serve":
        command, env = server_command(args.host, args.port, args.backend, args.artifacts, args.auth)
        if args.allowed_hosts:
            command += ["--allowed-hosts", args.allowed_hosts]
        print(
            f"mlflow server on http://{args.host}:{args.port} "
            f"({'logins required' if env else 'no logins: this machine only'})",
            flush=True,
        )
        try:
            return subprocess.call(command, env={**os.environ, **env})
        except KeyboardInterrupt:
            return 0
    from mlflow.exceptions import MlflowException

    try:
        return administer(args)
    except MlflowException as err:  # refused by the server: a short password, an existing user, no permission
        raise GanaugError(f"{args.command} {args.user}: {err.message}") from None


def administer(args) -> int:
    from mlflow.exceptions import MlflowException

    client = auth_client(args.url)
    if args.command == "add-user":
        password = os.environ.get("GANAUG_NEW_PASSWORD") or getpass.getpass(f"password for {args.user}: ")
        client.create_user(args.user, password)
        print(
            f"user {args.user} created on {args.url}; they log in with MLFLOW_TRACKING_USERNAME / "
            "MLFLOW_TRACKING_PASSWORD"
        )
    else:
        import mlflow

        experiment = mlflow.MlflowClient(args.url).get_experiment_by_name(args.experiment)
        if experiment is None:
            raise GanaugError(f"experiment {args.experiment!r} not found on {args.url}")
        try:
            client.create_experiment_permission(experiment.experiment_id, args.user, args.permission)
        except MlflowException as err:  # the user already has a permission there: change it
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            client.update_experiment_permission(experiment.experiment_id, args.user, args.permission)
        print(f"{args.user} may now {args.permission} experiment {args.experiment}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except GanaugError as error:
        sys.exit(f"error: {error}")
