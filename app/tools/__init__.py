"""IT command-line tools (top of the client's layers, beside app.main and app.headless).

    python -m app.tools.policy   keygen | sign | verify | trust   (signed machine policy)
    python -m app.tools.release  sign | verify                    (signed release manifests)
"""
