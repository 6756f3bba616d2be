"""Request body for creating a blob upload; chunk bodies are raw bytes, not JSON."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CreateBlob(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    room_id: str = Field(min_length=1, max_length=64)
    total_size: int = Field(ge=1, lt=2**53)
    chunk_size: int = Field(ge=1, lt=2**53)
    chunk_count: int = Field(ge=1, lt=2**31)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
