"""`python -m openai_double --port 8001`: serve the OpenAI-compatible double on loopback."""

from __future__ import annotations

import argparse

import uvicorn

from openai_double.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m openai_double", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, access_log=False)


if __name__ == "__main__":
    main()
