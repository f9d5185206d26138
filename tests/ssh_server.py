"""A real SSH + SFTP server for the SSH remote test, from asyncssh (installed with dvc-ssh, so `make install`
brings it; no system sshd). Key login only, as one user; SFTP serves this machine's files, and an exec request
runs its command in a shell, as OpenSSH does for dvc-ssh's few remote commands.

    python tests/ssh_server.py PORT HOST_KEY AUTHORIZED_KEYS   (listens on 127.0.0.1 only)
"""

from __future__ import annotations

import asyncio
import sys

import asyncssh


async def run_command(process: asyncssh.SSHServerProcess) -> None:
    """An exec request: its command through /bin/sh, output and exit status back over the channel."""
    proc = await asyncio.create_subprocess_shell(
        process.command or "true",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    process.stdout.write(out.decode(errors="replace"))
    process.stderr.write(err.decode(errors="replace"))
    process.exit(proc.returncode or 0)


async def serve(port: int, host_key: str, authorized_keys: str) -> None:
    await asyncssh.listen(
        "127.0.0.1",
        port,
        server_host_keys=[host_key],
        authorized_client_keys=authorized_keys,
        sftp_factory=True,  # the local filesystem, as the user this server runs as
        process_factory=run_command,
        allow_scp=True,
    )
    print("listening", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    port, host_key, authorized = sys.argv[1:4]
    asyncio.run(serve(int(port), host_key, authorized))
