"""A small app served by graphgate in the tests: two chains of its own, declared in
`examples/routes.toml` (see docs/routes.md, "Serve your own chain")."""
