"""The bundle's entry point: the same ``safeconsult`` command as the installed package's."""

from app.main import main

if __name__ == "__main__":
    raise SystemExit(main())
