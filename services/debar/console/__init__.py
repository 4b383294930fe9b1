"""The web console: reviewers work objections against their deadlines, and a refused person looks up a decision,
reads why and objects. An ASGI app (Starlette, Jinja2, plain forms, no JavaScript) and a gRPC client of the
sanction service; every call to that service goes through sanction_client.py."""
