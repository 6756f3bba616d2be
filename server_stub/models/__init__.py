"""Request/response schemas (pydantic), one module per endpoint group."""
